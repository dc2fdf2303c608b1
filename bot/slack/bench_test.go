package slack

import (
	"context"
	"testing"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/model"
)

func BenchmarkIncidentBlocks(b *testing.B) {
	v := bot.NewIncidentView(bottest.HostFault)
	b.ReportAllocs()
	for b.Loop() {
		IncidentBlocks(v)
	}
}

func BenchmarkReplyBlocks(b *testing.B) {
	r := bot.NewIncidentView(bottest.HostFault).Reply()
	b.ReportAllocs()
	for b.Loop() {
		ReplyBlocks(r)
	}
}

// BenchmarkPosterUpdate measures one incident version end to end: the
// lease in Redis, chat.update on the fake Slack (HTTP on loopback), the
// follow-up in the thread, and the record saved.
func BenchmarkPosterUpdate(b *testing.B) {
	ctx := context.Background()
	e := newPosterEnvTB(b)
	p := e.poster(b, nil)
	inc := version(bottest.GuestCrash, 1, nil)
	if err := p.Post(ctx, note(inc)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		inc = version(inc, inc.Version+1, func(i *model.Incident) { i.Level++ })
		if err := p.Post(ctx, note(inc, bot.ChangeEscalated)); err != nil {
			b.Fatal(err)
		}
	}
}
