package tickets

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/tickets/jiratest"
)

func countCreates(h *harness) int {
	n := 0
	for _, r := range h.jira.Requests() {
		if r.Method == http.MethodPost && r.Path == "/rest/api/2/issue" {
			n++
		}
	}
	return n
}

// TestRefusalShownOnIncident checks that Jira's refusal of a ticket reaches
// the incident (what Slack, the console and the API show), that showing it
// does not make the worker run the refused creation again, that a later
// incident change does try again, and that the ticket's creation clears it.
func TestRefusalShownOnIncident(t *testing.T) {
	bad := setup{opts: func(o *Options) { o.Priorities = map[model.Severity]string{model.SeverityCritical: "P0"} }}
	h := newHarness(t, bad)
	h.open("inc-1", model.SeverityCritical)
	h.drain()

	inc := h.incident("inc-1")
	for _, want := range []string{"HTTP 400", "Priority", "VMTRIAGE_JIRA_PRIORITIES"} {
		if !strings.Contains(inc.TicketError, want) {
			t.Errorf("incident ticket_error %q lacks %q", inc.TicketError, want)
		}
	}
	if inc.Ticket != "" {
		t.Errorf("incident ticket %q after a refusal", inc.Ticket)
	}
	if n := countCreates(h); n != 1 {
		t.Fatalf("%d create requests after one refusal; want 1 (showing the error must not retry it)", n)
	}

	// The incident changes (an escalation): creation is tried again, and
	// refused again with the same words, which changes nothing more.
	h.change("inc-1", func(i *model.Incident) { i.Level = 2 })
	h.drain()
	if n := countCreates(h); n != 2 {
		t.Fatalf("%d create requests after an incident change; want 2", n)
	}
	if got := h.incident("inc-1"); got.TicketError != inc.TicketError || got.Level != 2 {
		t.Errorf("after the second refusal: ticket_error %q level %d; want the same error and level 2", got.TicketError, got.Level)
	}

	// The priority mapping is fixed and the service restarted: the next
	// change creates the ticket and the error goes away.
	h.tk = h.newTickets("w2", setup{})
	h.change("inc-1", func(i *model.Incident) { i.Level = 3 })
	h.drain()
	is := h.only()
	got := h.incident("inc-1")
	if got.Ticket != is.Key || got.TicketError != "" {
		t.Errorf("after the fix: ticket %q ticket_error %q; want %s and no error", got.Ticket, got.TicketError, is.Key)
	}
	h.assertNoSecrets()
}

// TestRefusedUpdateShownOnIncident checks that a refused comment (no
// permission) is shown on the incident, without hiding the ticket, and
// cleared by the next update that goes through.
func TestRefusedUpdateShownOnIncident(t *testing.T) {
	h := newHarness(t, setup{})
	h.open("inc-1", model.SeverityCritical)
	h.drain()
	key := h.only().Key

	h.jira.SetFault(func(r jiratest.Request) *jiratest.Fault {
		if strings.HasSuffix(r.Path, "/comment") && r.Method == http.MethodPost {
			return &jiratest.Fault{Status: http.StatusForbidden}
		}
		return nil
	})
	h.change("inc-1", func(i *model.Incident) { i.AckedBy = "U0ALICE" })
	h.drain()
	got := h.incident("inc-1")
	if got.Ticket != key || !strings.Contains(got.TicketError, "HTTP 403") {
		t.Fatalf("after a refused comment: ticket %q ticket_error %q; want %s and the 403", got.Ticket, got.TicketError, key)
	}
	if slept := h.slept(); len(slept) != 0 {
		t.Errorf("waited %v before retrying a 403", slept)
	}

	h.jira.SetFault(nil)
	h.change("inc-1", func(i *model.Incident) { i.Level = 2 })
	h.drain()
	if got := h.incident("inc-1"); got.TicketError != "" {
		t.Errorf("after an update went through: ticket_error %q; want it cleared", got.TicketError)
	}
}
