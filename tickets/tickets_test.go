package tickets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/tickets/jiratest"
)

func TestCreatesTicketForAutomaticSeverities(t *testing.T) {
	for _, flavor := range []struct {
		name       string
		server     bool
		searchPath string
		assignee   string
	}{
		{"cloud", false, "/rest/api/2/search/jql", "acc-42"},
		{"server", true, "/rest/api/2/search", "jdoe"},
	} {
		t.Run(flavor.name, func(t *testing.T) {
			h := newHarness(t, setup{server: flavor.server})
			crit := h.open("inc-1", model.SeverityCritical)
			h.open("inc-2", model.SeverityMedium)                                                           // not automatic
			h.open("inc-3", model.SeverityHigh, func(i *model.Incident) { i.Status = model.StatusPending }) // not firing yet
			h.open("inc-4", model.SeverityHigh, func(i *model.Incident) { i.Silenced = true })              // silenced
			h.open("inc-5", model.SeverityCritical, func(i *model.Incident) { i.InhibitedBy = "inc-1" })    // muted by inc-1
			h.drain()

			is := h.only()
			if is.Project != "OPS" || is.Type != "Incident" || is.Priority != "Highest" ||
				!slices.Equal(is.Components, []string{"Compute"}) || is.Assignee != flavor.assignee || is.Status != jiratest.StatusToDo {
				t.Errorf("issue = %+v", is)
			}
			want := []string{"vmtriage", FingerprintLabel(&crit), IncidentLabel(&crit)}
			if !slices.Equal(is.Labels, want) {
				t.Errorf("labels = %v; want %v", is.Labels, want)
			}
			if !strings.HasPrefix(is.Summary, "[CRITICAL] inc-1: ") || !strings.Contains(is.Description, "[host-hardware-fault|https://kb.example/runbooks/host-hardware-fault]") {
				t.Errorf("summary %q / description %q", is.Summary, is.Description)
			}
			inc := h.incident("inc-1")
			if inc.Ticket != is.Key || inc.TicketURL != h.jira.URL+"/browse/"+is.Key {
				t.Errorf("incident ticket = %q %q; want %s", inc.Ticket, inc.TicketURL, is.Key)
			}
			// The lookup before creating used the flavour's endpoint and a
			// quoted JQL.
			var searched []string
			for _, r := range h.jira.Requests() {
				if strings.Contains(r.Path, "/search") {
					q, _ := url.ParseQuery(r.Query)
					searched = append(searched, r.Path+" "+q.Get("jql"))
				}
			}
			// The create payload as Jira received it.
			for _, r := range h.jira.Requests() {
				if r.Method == "POST" && r.Path == "/rest/api/2/issue" {
					var pretty bytes.Buffer
					if err := json.Indent(&pretty, []byte(r.Body), "", "  "); err != nil {
						t.Fatal(err)
					}
					golden(t, "payload-create-"+flavor.name, pretty.String()+"\n")
				}
			}
			wantSearch := flavor.searchPath + ` project = "OPS" AND labels = "` + FingerprintLabel(&crit) + `" ORDER BY created DESC`
			if len(searched) != 1 || searched[0] != wantSearch {
				t.Errorf("searches = %q; want [%q]", searched, wantSearch)
			}
			h.assertNoSecrets()
		})
	}
}

func TestTicketFollowsIncident(t *testing.T) {
	h := newHarness(t, setup{})
	h.open("inc-1", model.SeverityCritical)
	h.drain()
	key := h.only().Key

	h.change("inc-1", func(i *model.Incident) {
		i.Level, i.Targets = 2, []string{"user:U123", "jira-priority:Highest"}
		i.VMs = append(i.VMs, "vm-0042")
	})
	h.drain()
	h.change("inc-1", func(i *model.Incident) { i.AckedBy, i.AckedAt = "alice", h.clk.Now() })
	h.change("inc-1", func(i *model.Incident) { i.Approval = model.ApprovalApproved })
	h.drain()
	if err := h.tk.Note(h.ctx, "inc-1", "migrate-host finished: 3 VMs moved to host-008"); err != nil {
		t.Fatal(err)
	}
	h.drain()
	h.clk.Advance(25 * time.Minute)
	h.change("inc-1", func(i *model.Incident) { i.Status, i.ResolvedAt = model.StatusResolved, h.clk.Now() })
	h.drain()

	is, _ := h.jira.Issue(key)
	wantComments := []string{
		"1 more VM(s) affected, 3 in all: vm-0042.",
		"Escalated to level 2: user:U123, jira-priority:Highest told.",
		"Acknowledged by alice at 2026-11-22 10:12:00 UTC.",
		"The proposed action *migrate-host* was approved; vmtriage runs it and reports the result here.",
		"migrate-host finished: 3 VMs moved to host-008",
		"Resolved at 2026-11-22 10:37:00 UTC. Outage duration: *27m* (from 2026-11-22 10:10:00 UTC).",
	}
	if !slices.Equal(is.Comments, wantComments) {
		t.Errorf("comments:\n%s\nwant:\n%s", strings.Join(is.Comments, "\n"), strings.Join(wantComments, "\n"))
	}
	if is.Status != jiratest.StatusDone || !slices.Equal(is.Transitions, []string{"Done"}) {
		t.Errorf("status %q after transitions %v; want Done", is.Status, is.Transitions)
	}

	// The rules engine reopens the incident within its own window.
	h.clk.Advance(10 * time.Minute)
	h.change("inc-1", func(i *model.Incident) {
		i.Reopened, i.Status, i.ResolvedAt = 1, model.StatusFiring, time.Time{}
		i.AckedBy, i.AckedAt, i.Level, i.Approval = "", time.Time{}, 1, model.ApprovalPending
		i.Targets = []string{"channel:#ops"}
	})
	h.drain()
	is, _ = h.jira.Issue(key)
	if is.Status != jiratest.StatusToDo || !slices.Equal(is.Transitions, []string{"Done", "Reopen"}) {
		t.Errorf("after reopening: status %q, transitions %v", is.Status, is.Transitions)
	}
	last := is.Comments[len(is.Comments)-3:]
	if last[0] != "The incident came back at 2026-11-22 10:47:00 UTC and was reopened (once so far)." ||
		last[1] != `Escalated to level 1: channel:\#ops told.` || !strings.Contains(last[2], "awaits approval") {
		t.Errorf("reopen comments = %q", last)
	}
	if n := len(h.jira.Issues()); n != 1 {
		t.Errorf("%d issues; the reopened incident must keep its ticket", n)
	}
	h.assertNoSecrets()
}

func TestRecurrenceWithinReopenWindow(t *testing.T) {
	h := newHarness(t, setup{})
	first := h.open("inc-1", model.SeverityCritical)
	h.drain()
	h.change("inc-1", func(i *model.Incident) { i.Status, i.ResolvedAt = model.StatusResolved, h.clk.Now() })
	h.drain()
	key := h.only().Key

	// Past the rules engine's window the same fingerprint makes a new
	// incident; within the ticket reopen window it reuses the ticket.
	h.clk.Advance(3 * time.Hour)
	second := h.open("inc-2", model.SeverityCritical, func(i *model.Incident) {
		i.Fingerprint, i.StartedAt = first.Fingerprint, h.clk.Now()
	})
	h.drain()
	is := h.only()
	if is.Status != jiratest.StatusToDo || !slices.Contains(is.Labels, IncidentLabel(&second)) {
		t.Errorf("recurrence: status %q labels %v", is.Status, is.Labels)
	}
	if got := h.incident("inc-2").Ticket; got != key {
		t.Errorf("inc-2 ticket = %q; want the reused %s", got, key)
	}
	if c := is.Comments[len(is.Comments)-1]; !strings.HasPrefix(c, "The same problem came back as incident inc-2") {
		t.Errorf("last comment = %q", c)
	}

	// A recurrence after the window gets a ticket of its own.
	h.change("inc-2", func(i *model.Incident) { i.Status, i.ResolvedAt = model.StatusResolved, h.clk.Now() })
	h.drain()
	h.clk.Advance(DefaultReopenWindow + time.Hour)
	h.open("inc-3", model.SeverityCritical, func(i *model.Incident) { i.Fingerprint, i.StartedAt = first.Fingerprint, h.clk.Now() })
	h.drain()
	issues := h.jira.Issues()
	if len(issues) != 2 || h.incident("inc-3").Ticket != issues[1].Key {
		t.Fatalf("after the window: %d issues, inc-3 on %q", len(issues), h.incident("inc-3").Ticket)
	}
}

func TestJiraRefusalIsRecordedNotRetried(t *testing.T) {
	tests := []struct {
		name     string
		setup    setup
		wantErr  []string
		creates  int
		noTicket bool
	}{
		{
			name:     "unknown priority",
			setup:    setup{opts: func(o *Options) { o.Priorities = map[model.Severity]string{model.SeverityCritical: "P0"} }},
			wantErr:  []string{"HTTP 400", "priority: Specify a valid 'id' or 'name' for Priority", "VMTRIAGE_JIRA_PRIORITIES"},
			creates:  1,
			noTicket: true,
		},
		{
			name:     "unknown component",
			setup:    setup{opts: func(o *Options) { o.Components = map[string]string{"host-hardware-fault": "Kompute"} }},
			wantErr:  []string{"components: Component name 'Kompute' is not valid", "VMTRIAGE_JIRA_COMPONENTS"},
			creates:  1,
			noTicket: true,
		},
		{
			name:     "wrong token",
			setup:    setup{jira: func(o *jiratest.Options) { o.Token = "another-token" }},
			wantErr:  []string{"HTTP 401", "VMTRIAGE_JIRA_TOKEN"},
			creates:  0, // the lookup before it is refused already
			noTicket: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.setup)
			h.open("inc-1", model.SeverityCritical)
			h.drain()
			if n := len(h.jira.Issues()); tc.noTicket && n != 0 {
				t.Fatalf("%d issues created", n)
			}
			creates := 0
			for _, r := range h.jira.Requests() {
				if r.Method == "POST" && r.Path == "/rest/api/2/issue" {
					creates++
				}
			}
			if creates != tc.creates {
				t.Errorf("%d create requests; want %d (4xx must not be retried)", creates, tc.creates)
			}
			if s := h.slept(); len(s) != 0 {
				t.Errorf("waited %v before retrying a 4xx", s)
			}
			rec, err := h.tk.Status(h.ctx, "inc-1")
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(rec.Error, w) {
					t.Errorf("recorded error %q lacks %q", rec.Error, w)
				}
			}
			if !strings.Contains(h.logs.String(), "Jira refused a ticket operation") {
				t.Error("the refusal was not logged")
			}
			if n := h.counter(h.tk.m.refused); n != 1 {
				t.Errorf("refused attempts counted %v; want 1", n)
			}
			// The bot verb gets the same actionable error.
			_, _, cerr := h.tk.CreateNow(h.ctx, "inc-1")
			if cerr == nil || !strings.Contains(cerr.Error(), tc.wantErr[0]) {
				t.Errorf("CreateNow error = %v", cerr)
			}
			h.assertNoSecrets(cerr)
		})
	}
}

func TestUnknownTransitionNamesAreReported(t *testing.T) {
	h := newHarness(t, setup{jira: func(o *jiratest.Options) { o.ResolveName = "Finish" }})
	h.open("inc-1", model.SeverityHigh)
	h.drain()
	h.change("inc-1", func(i *model.Incident) { i.Status, i.ResolvedAt = model.StatusResolved, h.clk.Now() })
	h.drain()
	is := h.only()
	if is.Status == jiratest.StatusDone {
		t.Fatal("ticket was moved although no configured transition exists")
	}
	if len(is.Comments) != 1 || !strings.HasPrefix(is.Comments[0], "Resolved at") {
		t.Errorf("comments = %q; the resolution comment must still be added", is.Comments)
	}
	rec, _ := h.tk.Status(h.ctx, "inc-1")
	for _, w := range []string{`"Done", "Resolve Issue", "Close Issue"`, `offered: "Start Progress", "Finish"`, "VMTRIAGE_JIRA_RESOLVE_TRANSITIONS"} {
		if !strings.Contains(rec.Error, w) {
			t.Errorf("recorded error %q lacks %q", rec.Error, w)
		}
	}

	// Configured right, the next change moves it.
	h2 := newHarness(t, setup{jira: func(o *jiratest.Options) { o.ResolveName = "Resolve Issue" }})
	h2.open("inc-1", model.SeverityHigh)
	h2.change("inc-1", func(i *model.Incident) { i.Status, i.ResolvedAt = model.StatusResolved, h2.clk.Now() })
	h2.drain()
	if is := h2.only(); is.Status != jiratest.StatusDone || !slices.Equal(is.Transitions, []string{"Resolve Issue"}) {
		t.Errorf("status %q transitions %v; want Done by \"Resolve Issue\"", is.Status, is.Transitions)
	}
}

func TestCreateNow(t *testing.T) {
	h := newHarness(t, setup{})
	h.open("inc-1", model.SeverityMedium) // not automatic
	h.drain()
	if n := len(h.jira.Issues()); n != 0 {
		t.Fatalf("%d issues for a medium incident", n)
	}
	key, u, err := h.tk.CreateNow(h.ctx, "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	if is := h.only(); is.Key != key || is.Priority != "Medium" || u != h.jira.URL+"/browse/"+key {
		t.Fatalf("CreateNow = %s %s; issue %+v", key, u, is)
	}
	again, _, err := h.tk.CreateNow(h.ctx, "inc-1")
	if err != nil || again != key {
		t.Fatalf("second CreateNow = %s, %v; want %s", again, err, key)
	}
	// From now on the ticket follows the incident.
	h.change("inc-1", func(i *model.Incident) { i.AckedBy, i.AckedAt = "bob", h.clk.Now() })
	h.drain()
	if is := h.only(); len(is.Comments) != 1 || !strings.HasPrefix(is.Comments[0], "Acknowledged by bob") {
		t.Fatalf("comments = %q", is.Comments)
	}

	if _, _, err := h.tk.CreateNow(h.ctx, "inc-404"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown incident: err = %v; want ErrNotFound", err)
	}

	// Jira down: queued, then created once it answers.
	h.open("inc-2", model.SeverityLow)
	h.jira.SetFault(func(jiratest.Request) *jiratest.Fault { return &jiratest.Fault{Status: 503} })
	_, _, err = h.tk.CreateNow(h.ctx, "inc-2")
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("Jira down: err = %v; want ErrQueued", err)
	}
	h.jira.SetFault(nil)
	h.drain()
	if got := h.incident("inc-2").Ticket; got == "" || len(h.jira.Issues()) != 2 {
		t.Fatalf("queued ticket not created: inc-2 ticket %q, %d issues", got, len(h.jira.Issues()))
	}
	h.assertNoSecrets(err)
}

// TestStorm runs a stream of incidents through a Jira that answers 429,
// 503 and, worst, 502 after doing the write: every incident ends with
// exactly one ticket of its own, and Retry-After is honoured.
func TestStorm(t *testing.T) {
	const incidents = 24
	h := newHarness(t, setup{opts: func(o *Options) { o.MinBackoff, o.MaxBackoff = time.Second, 8*time.Second }})
	lostCreates, lostComments := 0, 0 // written, but answered 502
	h.jira.SetFault(func(r jiratest.Request) *jiratest.Fault {
		switch {
		case r.N%7 == 0:
			if r.Method == "POST" && r.Path == "/rest/api/2/issue" {
				lostCreates++
			}
			if r.Method == "POST" && strings.HasSuffix(r.Path, "/comment") {
				lostComments++
			}
			return &jiratest.Fault{Status: 502, AfterCommit: true}
		case r.N%5 == 0:
			return &jiratest.Fault{Status: 429, RetryAfter: "7"}
		case r.N%3 == 0:
			return &jiratest.Fault{Status: 503}
		}
		return nil
	})
	second := h.newTickets("w2", setup{opts: func(o *Options) { o.MinBackoff, o.MaxBackoff = time.Second, 8*time.Second }})
	for i := range incidents {
		id := "inc-" + string(rune('A'+i))
		h.open(id, model.SeverityCritical)
		if i%4 == 0 {
			h.change(id, func(inc *model.Incident) { inc.AckedBy, inc.AckedAt = "alice", h.clk.Now() })
		}
		if i%3 == 0 {
			h.change(id, func(inc *model.Incident) { inc.Status, inc.ResolvedAt = model.StatusResolved, h.clk.Now() })
		}
	}
	h.drain(h.tk, second)
	h.jira.SetFault(nil)
	h.drain(h.tk, second)

	issues := h.jira.Issues()
	if len(issues) != incidents {
		t.Fatalf("%d issues for %d incidents", len(issues), incidents)
	}
	byKey := map[string]jiratest.Issue{}
	for _, is := range issues {
		byKey[is.Key] = is
	}
	for i := range incidents {
		inc := h.incident("inc-" + string(rune('A'+i)))
		is, ok := byKey[inc.Ticket]
		if !ok || !slices.Contains(is.Labels, IncidentLabel(&inc)) {
			t.Errorf("%s: ticket %q missing or not its own", inc.ID, inc.Ticket)
			continue
		}
		delete(byKey, inc.Ticket)
		resolved := inc.Status == model.StatusResolved
		if resolved != (is.Status == jiratest.StatusDone) {
			t.Errorf("%s resolved=%v but %s is %q", inc.ID, resolved, is.Key, is.Status)
		}
		wantComments := 0
		if resolved {
			wantComments = 1 // the resolution; the ack is in the description
		}
		if len(is.Comments) != wantComments || (resolved && !strings.HasPrefix(is.Comments[0], "Resolved at")) {
			t.Errorf("%s comments = %q; want %d, none repeated", is.Key, is.Comments, wantComments)
		}
	}
	if len(byKey) != 0 {
		t.Errorf("tickets of no incident: %v", byKey)
	}
	// The storm must have hit the dangerous case: a write done whose
	// answer was lost. Creates are then found again by label, comments
	// among the ticket's comments.
	if lostCreates == 0 || lostComments == 0 {
		t.Errorf("the storm lost %d create and %d comment answers; the test needs both", lostCreates, lostComments)
	}
	honoured := false
	for _, d := range h.slept() {
		if d == 7*time.Second {
			honoured = true
		}
	}
	if !honoured {
		t.Errorf("never waited the 7s Retry-After; waits: %v", h.slept())
	}
	// Both replicas count into the same metrics. A create whose answer
	// was lost is found again by its label, and not counted as created.
	if c, r, f := h.counter(h.tk.m.created), h.counter(h.tk.m.retried), h.counter(second.m.refused); c != float64(incidents-lostCreates) || r == 0 || f != 0 {
		t.Errorf("metrics: created %v (want %d), retried %v (want > 0), refused %v (want 0)", c, incidents-lostCreates, r, f)
	}
	h.assertNoSecrets()
}

// TestTwoWorkersOneTicket races two replicas, each running its follower
// and worker and each asked by command, on the same incidents: each
// incident gets exactly one ticket.
func TestTwoWorkersOneTicket(t *testing.T) {
	const incidents = 8
	h := newHarness(t, setup{})
	fast := setup{opts: func(o *Options) { o.Sleep, o.MinBackoff = nil, 2*time.Millisecond }}
	a, b := h.newTickets("replica-a", fast), h.newTickets("replica-b", fast)
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.Run(ctx) })
	wg.Go(func() { _ = b.Run(ctx) })
	var ids []string
	for i := range incidents {
		id := "inc-" + string(rune('a'+i))
		ids = append(ids, id)
		h.open(id, model.SeverityCritical)
	}
	var errs sync.Map
	var asked sync.WaitGroup
	for _, id := range ids {
		for _, tk := range []*Tickets{a, b} {
			asked.Go(func() {
				if _, _, err := tk.CreateNow(h.ctx, id); err != nil {
					errs.Store(id, err)
				}
			})
		}
	}
	asked.Wait()
	// Let the followers catch up with the changes the tickets made.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := h.st.TicketBacklog(h.ctx); err == nil && n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	errs.Range(func(k, v any) bool {
		t.Errorf("CreateNow(%v): %v", k, v)
		return true
	})
	issues := h.jira.Issues()
	if len(issues) != incidents {
		t.Fatalf("%d issues for %d incidents", len(issues), incidents)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		inc := h.incident(id)
		if inc.Ticket == "" || seen[inc.Ticket] {
			t.Errorf("%s: ticket %q missing or shared", id, inc.Ticket)
		}
		seen[inc.Ticket] = true
	}
}

func TestOptionsValidation(t *testing.T) {
	valid := func() Options {
		return Options{BaseURL: "https://jira.example", User: "a@example.com", Token: testToken, Project: "OPS", Store: fakeStore{}}
	}
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"valid", func(*Options) {}, ""},
		{"no URL", func(o *Options) { o.BaseURL = "" }, "BaseURL is required"},
		{"not http", func(o *Options) { o.BaseURL = "ftp://jira" }, "not an http(s) URL"},
		{"credentials in URL", func(o *Options) { o.BaseURL = "https://u:" + testToken + "@jira.example" }, "must not contain credentials"},
		{"no token", func(o *Options) { o.Token = "" }, "Token is required"},
		{"cloud without user", func(o *Options) { o.User, o.Flavor = "", Cloud }, "User (the account's e-mail) is required"},
		{"bad flavor", func(o *Options) { o.Flavor = "onprem" }, `Flavor "onprem"`},
		{"project with space", func(o *Options) { o.Project = "O PS" }, "without spaces"},
		{"bad severity", func(o *Options) { o.Severities = []model.Severity{"urgent"} }, `Severities: "urgent"`},
		{"bad priority severity", func(o *Options) { o.Priorities = map[model.Severity]string{"sev1": "P1"} }, `Priorities: "sev1"`},
		{"description over Jira's limit", func(o *Options) { o.MaxDescription = 40000 }, "over Jira's limit"},
		{"bad template", func(o *Options) { o.SummaryTemplate = "{{.Nope" }, "summary template"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.mod(&o)
			_, err := New(o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New: err = %v; want it to contain %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Fatal("the token appears in the error")
			}
		})
	}
	tk, err := New(valid())
	if err != nil {
		t.Fatal(err)
	}
	if tk.opts.Flavor != Cloud || tk.opts.IssueType != "Incident" || !slices.Equal(tk.opts.ResolveTransitions, DefaultResolveTransitions) {
		t.Errorf("defaults: %+v", tk.opts)
	}
	o := valid()
	o.User = ""
	if tk, _ := New(o); tk.opts.Flavor != Server {
		t.Error("no user did not default to Server")
	}
}

// fakeStore satisfies Store for option tests, which never call it.
type fakeStore struct{ Store }

// TestDeadReplicaLeavesNothingBehind: a replica reads an operation and
// dies before doing it; another one takes it over.
func TestDeadReplicaLeavesNothingBehind(t *testing.T) {
	h := newHarness(t, setup{})
	h.open("inc-1", model.SeverityCritical)
	if err := h.tk.FollowStep(h.ctx); err != nil {
		t.Fatal(err)
	}
	// "dead" reads the operation, then never acknowledges it.
	ops, err := h.st.ReadTicketOps(h.ctx, "dead", 10, 0)
	if err != nil || len(ops) != 1 {
		t.Fatalf("read = %v, %v", ops, err)
	}
	heir := h.newTickets("heir", setup{opts: func(o *Options) { o.ClaimIdle = time.Millisecond }})
	time.Sleep(5 * time.Millisecond) // Redis measures idle time on its own clock
	if err := heir.WorkStep(h.ctx); err != nil {
		t.Fatal(err)
	}
	if h.incident("inc-1").Ticket != h.only().Key {
		t.Fatal("the orphaned operation was not done")
	}
	if n, _ := h.st.TicketBacklog(h.ctx); n != 0 {
		t.Fatalf("backlog %d after the takeover", n)
	}
}

// TestLostRecordFollowsIncidentTicket: when the ticket record is gone
// (expired, Redis restored from an old backup), the ticket named on the
// incident is followed; no second one is opened. What changed while the
// record was missing is taken as known (the ack here): the record is
// rebuilt from the incident as it is, and later changes are commented.
func TestLostRecordFollowsIncidentTicket(t *testing.T) {
	h := newHarness(t, setup{})
	h.open("inc-1", model.SeverityCritical)
	h.drain()
	key := h.only().Key
	if err := h.st.SaveTicketRecord(h.ctx, &TicketRecord{Incident: "inc-1"}); err != nil { // forget the key
		t.Fatal(err)
	}
	h.change("inc-1", func(i *model.Incident) { i.AckedBy, i.AckedAt = "carol", h.clk.Now() })
	h.drain()
	is := h.only()
	if is.Key != key || len(is.Comments) != 0 {
		t.Fatalf("issue %s comments %q", is.Key, is.Comments)
	}
	h.change("inc-1", func(i *model.Incident) { i.Level = 2 })
	h.drain()
	if is := h.only(); len(is.Comments) != 1 || is.Comments[0] != "Escalated to level 2." {
		t.Fatalf("comments after the record was rebuilt: %q", is.Comments)
	}
}

func TestNotes(t *testing.T) {
	h := newHarness(t, setup{})
	h.open("inc-1", model.SeverityMedium) // no ticket
	if err := h.tk.Note(h.ctx, "inc-1", "restart-vm done"); err != nil {
		t.Fatal(err)
	}
	if err := h.tk.Note(h.ctx, "inc-1", "  "); err == nil {
		t.Error("an empty note was accepted")
	}
	h.drain()
	if n := len(h.jira.Issues()); n != 0 {
		t.Fatalf("a note opened %d tickets; notes only go to existing ones", n)
	}

	h.open("inc-2", model.SeverityCritical)
	h.drain()
	long := strings.Repeat("migrated vm-0042 {ok} ", 2000) // 44,000 characters
	if err := h.tk.Note(h.ctx, "inc-2", long); err != nil {
		t.Fatal(err)
	}
	h.drain()
	is := h.only()
	if len(is.Comments) != 1 || !strings.Contains(is.Comments[0], `\{ok\}`) || !strings.Contains(is.Comments[0], "_(Trimmed: ") {
		t.Fatalf("comments = %.200q", is.Comments)
	}
}
