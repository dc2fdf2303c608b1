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

// BenchmarkIncidentBlocksWithFixes renders the same message with three
// previous fixes and a ticket refusal, what the knowledge base and the
// ticket worker add.
func BenchmarkIncidentBlocksWithFixes(b *testing.B) {
	inc := bottest.HostFault
	inc.TicketError = "jira: comment on OPS-123: HTTP 403: You do not have the permission to comment on this issue"
	v := bot.NewIncidentView(inc)
	v.PreviousFixes = append(previousFixes(), bot.Fix{Incident: "inc-5", Text: "Replaced the PSU; firmware 2.1 fixed the fan curve.", Author: "U0CAROL"})
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
