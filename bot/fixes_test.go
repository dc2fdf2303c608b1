package bot_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
)

// fixSource answers PreviousFixes from a map of cause to fixes, or fails.
type fixSource struct {
	fixes map[string][]bot.Fix
	err   error
	asked []string
}

func (f *fixSource) PreviousFixes(_ context.Context, cause string) ([]bot.Fix, error) {
	f.asked = append(f.asked, cause)
	if f.err != nil {
		return nil, f.err
	}
	return f.fixes[cause], nil
}

func TestFixLine(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		fix  bot.Fix
		want string
	}{
		{name: "everything", fix: bot.Fix{Incident: "inc-40", Text: "replaced DIMM B2", Author: "U0ALICE", Time: at},
			want: "replaced DIMM B2 — U0ALICE on inc-40, 2026-11-20"},
		{name: "no author", fix: bot.Fix{Incident: "inc-40", Text: "reseated the NIC", Time: at},
			want: "reseated the NIC — on inc-40, 2026-11-20"},
		{name: "no time", fix: bot.Fix{Incident: "inc-40", Text: "reseated the NIC", Author: "bob"},
			want: "reseated the NIC — bob on inc-40"},
		{name: "text only", fix: bot.Fix{Text: "rebooted the switch"}, want: "rebooted the switch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fix.Line(); got != tt.want {
				t.Errorf("Line() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNotifierAddsPreviousFixes checks that a posted incident carries how
// earlier incidents of its cause were fixed, without its own note, and
// that a failing source delays nothing: the incident is posted without.
func TestNotifierAddsPreviousFixes(t *testing.T) {
	earlier := bot.Fix{Incident: "inc-7", Text: "replaced DIMM B2", Author: "U0ALICE", Time: bottest.Now.Add(-48 * time.Hour)}
	own := bot.Fix{Incident: bottest.HostFault.ID, Text: "moved the VMs by hand", Author: "U0BOB", Time: bottest.Now}
	tests := []struct {
		name  string
		src   *fixSource
		want  []bot.Fix
		asked []string
	}{
		{name: "earlier fixes of the same cause",
			src:   &fixSource{fixes: map[string][]bot.Fix{"host-hardware-fault": {own, earlier}, "guest-crash": {{Incident: "inc-1", Text: "not this one"}}}},
			want:  []bot.Fix{earlier},
			asked: []string{"host-hardware-fault"}},
		{name: "none known", src: &fixSource{}, asked: []string{"host-hardware-fault"}},
		{name: "source down", src: &fixSource{err: errors.New("redis: connection refused")}, asked: []string{"host-hardware-fault"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			poster := &bottest.Poster{}
			events := bottest.NewEvents()
			n, err := bot.NewNotifier(bot.NotifierOptions{
				Events: events, Poster: poster, Consumer: "test-1", Fixes: tt.src,
				Sleep: (&bottest.Sleeper{}).Sleep, Clock: clock.NewFake(bottest.Now),
			})
			if err != nil {
				t.Fatal(err)
			}
			events.Add(bottest.HostFault)
			if err := n.Step(context.Background()); err != nil {
				t.Fatal(err)
			}
			posts := poster.Posts()
			if len(posts) != 1 {
				t.Fatalf("posted %d notifications, want 1", len(posts))
			}
			if got := posts[0].View.PreviousFixes; !slices.Equal(got, tt.want) {
				t.Errorf("PreviousFixes = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(tt.src.asked, tt.asked) {
				t.Errorf("asked for causes %q, want %q", tt.src.asked, tt.asked)
			}
		})
	}
}

func TestIncidentViewTicketProblem(t *testing.T) {
	tests := []struct {
		name   string
		ticket string
		err    string
		want   string
	}{
		{name: "none", ticket: "OPS-1"},
		{name: "refused create", err: "jira: create issue: HTTP 400: priority: invalid",
			want: "Jira refused the ticket: jira: create issue: HTTP 400: priority: invalid"},
		{name: "refused update", ticket: "OPS-1", err: "jira: comment on OPS-1: HTTP 403",
			want: "Jira refused an update of OPS-1: jira: comment on OPS-1: HTTP 403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := bottest.GuestCrash
			inc.Ticket, inc.TicketURL, inc.TicketError = tt.ticket, "", tt.err
			if got := bot.NewIncidentView(inc).TicketProblem(); got != tt.want {
				t.Errorf("TicketProblem() = %q, want %q", got, tt.want)
			}
		})
	}
}
