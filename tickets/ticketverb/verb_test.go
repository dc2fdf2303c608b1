package ticketverb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/tickets"
	"github.com/vmtriage/vmtriage/tickets/ticketverb"
)

// creator answers CreateNow from a table.
type creator struct {
	key, url string
	err      error
	asked    []string
}

func (c *creator) CreateNow(_ context.Context, id string) (string, string, error) {
	c.asked = append(c.asked, id)
	return c.key, c.url, c.err
}

func flatten(r bot.Reply) string {
	var b strings.Builder
	b.WriteString(r.Title)
	for _, s := range r.Sections {
		for _, f := range s.Fields {
			b.WriteString("\n" + f.Key + ": " + f.Value)
		}
		for _, l := range s.Lines {
			b.WriteString("\n" + l)
		}
	}
	for _, a := range r.Actions {
		b.WriteString("\n[" + a.Label + "](" + a.URL + ")")
	}
	return b.String()
}

func TestTicketVerb(t *testing.T) {
	refused := &tickets.APIError{Op: "create issue in OPS", Status: 400,
		Messages: []string{"priority: Specify a valid 'id' or 'name' for Priority"}, Hint: "check VMTRIAGE_JIRA_PRIORITIES"}
	tests := []struct {
		name    string
		user    string
		text    string
		c       creator
		want    []string
		tone    bot.Tone
		noAsk   bool
		logsErr bool
	}{
		{name: "created", user: "U1", text: "/triage ticket inc-43",
			c:    creator{key: "OPS-7", url: "https://jira.example/browse/OPS-7"},
			want: []string{"Ticket OPS-7 follows incident inc-43.", "Link: https://jira.example/browse/OPS-7", "[Open OPS-7](https://jira.example/browse/OPS-7)"}, tone: bot.ToneOK},
		{name: "unknown incident", user: "U1", text: "/triage ticket inc-404",
			c:    creator{err: fmt.Errorf("read incident inc-404: %w", tickets.ErrNotFound)},
			want: []string{"There is no incident inc-404.", "/triage incidents lists the open ones"}, tone: bot.ToneWarning},
		{name: "Jira down", user: "U1", text: "/triage ticket inc-43",
			c:    creator{err: fmt.Errorf("ticket for inc-43: %w: %w", tickets.ErrQueued, &tickets.APIError{Op: "search", Status: 503})},
			want: []string{"queued and will be opened as soon as it does"}, tone: bot.ToneWarning},
		{name: "Jira refuses", user: "U1", text: "/triage ticket inc-43",
			c:    creator{err: fmt.Errorf("ticket for inc-43: %w", refused)},
			want: []string{"Jira refused the ticket for inc-43: priority: Specify a valid 'id' or 'name' for Priority", "check VMTRIAGE_JIRA_PRIORITIES"}, tone: bot.ToneWarning},
		{name: "ticket exists, update refused", user: "U1", text: "/triage ticket inc-43",
			c:    creator{key: "OPS-7", url: "https://jira.example/browse/OPS-7", err: errors.New("jira: cannot move OPS-7")},
			want: []string{"Ticket OPS-7 follows incident inc-43.", "Jira refused an update: jira: cannot move OPS-7"}, tone: bot.ToneWarning},
		{name: "internal error answered generically", user: "U1", text: "/triage ticket inc-43",
			c:    creator{err: errors.New("redis: connection refused at 10.0.0.7:6379")},
			want: []string{"Something went wrong; logged as err-"}, tone: bot.ToneError, logsErr: true},
		{name: "missing argument", user: "U1", text: "/triage ticket",
			want: []string{"missing arguments; usage: /triage ticket <incident>", "e.g. /triage ticket inc-42"}, tone: bot.ToneWarning, noAsk: true},
		{name: "not an operator", user: "U9", text: "/triage ticket inc-43",
			want: []string{`You may not run ticket: you are not on the "ack" allow-list.`}, tone: bot.ToneRefused, noAsk: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(bottest.Now)
			incs := bottest.NewIncidents(clk, bottest.AllIncidents()...)
			logger, logs := bottest.Logger()
			r, err := bot.NewRouter(bot.Options{Incidents: incs, Fleet: bottest.FixtureFleet(), Actions: incs,
				Permissions: bot.Permissions{Ack: []string{"U1"}}, Clock: clk, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			c := tc.c
			if err := r.Register(ticketverb.Verb(&c)); err != nil {
				t.Fatal(err)
			}
			reply := r.HandleText(context.Background(), tc.text, bot.Command{User: tc.user, Channel: "C1", Origin: bot.OriginTyped})
			got := flatten(reply)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("reply lacks %q:\n%s", w, got)
				}
			}
			if reply.Tone != tc.tone {
				t.Errorf("tone = %q; want %q", reply.Tone, tc.tone)
			}
			if asked := len(c.asked) > 0; asked == tc.noAsk {
				t.Errorf("CreateNow asked = %v", asked)
			}
			if strings.Contains(got, "10.0.0.7") {
				t.Error("an internal error leaked into the reply")
			}
			if tc.logsErr != strings.Contains(logs.String(), "10.0.0.7") {
				t.Errorf("internal error logged = %v; want %v", !tc.logsErr, tc.logsErr)
			}
		})
	}
}
