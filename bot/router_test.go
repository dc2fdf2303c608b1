package bot_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

type world struct {
	router    *bot.Router
	fleet     *bottest.Fleet
	incidents *bottest.Incidents
	auditor   *bottest.Auditor
	clock     *clock.Fake
	log       *bottest.Recorder
}

func newWorld(t *testing.T, perms bot.Permissions) *world {
	t.Helper()
	w := &world{
		fleet:   bottest.FixtureFleet(),
		auditor: &bottest.Auditor{},
		clock:   clock.NewFake(bottest.Now),
	}
	w.incidents = bottest.NewIncidents(w.clock, bottest.AllIncidents()...)
	logger, rec := bottest.Logger()
	w.log = rec
	r, err := bot.NewRouter(bot.Options{
		Incidents: w.incidents, Fleet: w.fleet, Actions: w.incidents,
		Permissions: perms, Auditor: w.auditor, Clock: w.clock, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.router = r
	return w
}

func (w *world) run(t *testing.T, user, text string) bot.Reply {
	t.Helper()
	return w.router.HandleText(context.Background(), text, bot.Command{User: user, Channel: "C1", Origin: bot.OriginTyped})
}

// replyText flattens a reply to searchable text.
func replyText(r bot.Reply) string {
	var b strings.Builder
	b.WriteString(r.Title + "\n")
	for _, s := range r.Sections {
		b.WriteString(s.Heading + "\n")
		for _, f := range s.Fields {
			b.WriteString(f.Key + ": " + f.Value + "\n")
		}
		for _, l := range s.Lines {
			b.WriteString(l + "\n")
		}
		if s.List != nil {
			items, more := s.List.Shown()
			for _, it := range items {
				b.WriteString("- " + it + "\n")
			}
			if more > 0 {
				b.WriteString(bot.MoreText(more) + "\n")
			}
		}
	}
	for _, a := range r.Actions {
		b.WriteString("[" + a.Label + "] " + a.Command + a.URL + "\n")
	}
	return b.String()
}

func assertContains(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("reply does not contain %q:\n%s", w, got)
		}
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		tone     bot.Tone
		want     []string
		wantNot  []string
		wantUser bool // a *UserError answer
	}{
		{name: "crashed VM on a failing host", text: "/triage status vm-0042", tone: bot.ToneError,
			want: []string{"vm-0042 is crashed", "state: crashed since 10:02:02 UTC (9m ago)", "host: host-007",
				"host-007 in recent periods", "10:12: failed: ecc_uncorrected=3, mce=1", "10:09: healthy",
				"inc-42 critical firing", "inc-48 medium firing", "muted by inc-42",
				"[Acknowledge inc-42] ack inc-42", "[Silence VM 1h] silence vm-0042 1h"}},
		{name: "crashed VM on a healthy host", text: "status vm-0100", tone: bot.ToneError,
			want: []string{"vm-0100 is crashed", "last event: VirtualMachineCrashed", "crash reason: panicked",
				"source: azure-resource-health", "host-003 in recent periods", "inc-43 high firing", "acked by alice"},
			wantNot: []string{"[Acknowledge"}},
		{name: "running VM", text: "status vm-0052", tone: bot.ToneOK,
			want: []string{"vm-0052 is running", "since 2026-11-19 10:12 UTC (3d ago)", "Open incidents\nnone"}},
		{name: "failed host", text: "status host-007", tone: bot.ToneError,
			want: []string{"host-007 is failed", "reported: up", "VMs: 13 (12 down)", "Down VMs",
				"- vm-0051 crashed since", bot.MoreText(2), "inc-42 critical firing", "[Silence host 1h] silence host-007 1h"},
			wantNot: []string{"service libvirtd"}},
		{name: "degraded host with a service down", text: "status host-021", tone: bot.ToneWarning,
			want: []string{"host-021 is degraded", "service multipathd: down since", "storage_reachable=false", "inc-44"}},
		{name: "site", text: "status pod-a", tone: bot.ToneWarning,
			want: []string{"pod-a: 14 VMs, 13 down", "by state: crashed 13, running 1", "hosts: 2 (1 failed)",
				"open incidents: critical 1, high 1, medium 1, low 1", "host-007 failed since 10:02:00 UTC",
				"host-007: 12 of 13 VMs down", "host-003: 1 of 1 VMs down", "vm-0100 crashed on host-003",
				"inc-42", "inc-43", "inc-46"},
			wantNot: []string{"inc-44", "inc-40"}},
		{name: "healthy site", text: "status pod-b", tone: bot.ToneOK,
			want: []string{"pod-b: 5 VMs, 0 down", "inc-44", "inc-45", "inc-47", "hosts: 1 (1 degraded)", "host-021 degraded since"}},
		{name: "unknown name", text: "status vm-9999", wantUser: true,
			want: []string{`nothing is named "vm-9999": it is not a known VM, host or site`, "incidents lists what is open"}},
	}
	w := newWorld(t, bot.Permissions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.run(t, "alice", tt.text)
			got := replyText(r)
			assertContains(t, got, tt.want...)
			for _, s := range tt.wantNot {
				if strings.Contains(got, s) {
					t.Errorf("reply contains %q:\n%s", s, got)
				}
			}
			if tt.wantUser {
				if r.Tone != bot.ToneWarning {
					t.Errorf("tone = %q, want a warning for a user error", r.Tone)
				}
				return
			}
			if r.Tone != tt.tone {
				t.Errorf("tone = %q, want %q", r.Tone, tt.tone)
			}
			if r.Visibility != bot.Ephemeral {
				t.Errorf("a lookup is answered in channel")
			}
		})
	}
}

func TestIncidentsFilters(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		title   string
		ids     []string // in order
		wantErr string
	}{
		{name: "open by default, most urgent first", text: "incidents", title: "7 open incidents",
			ids: []string{"inc-44", "inc-42", "inc-45", "inc-43", "inc-48", "inc-47", "inc-46"}},
		{name: "site", text: "incidents pod-b", title: "3 open incidents in pod-b", ids: []string{"inc-44", "inc-45", "inc-47"}},
		{name: "severity", text: "incidents critical", title: "2 open incidents (critical)", ids: []string{"inc-44", "inc-42"}},
		{name: "site and severity in any order", text: "incidents HIGH pod-a", title: "1 open incident in pod-a (high)", ids: []string{"inc-43"}},
		{name: "resolved", text: "incidents resolved", title: "1 resolved incident", ids: []string{"inc-40"}},
		{name: "all", text: "incidents all pod-a", title: "5 incidents in pod-a", ids: []string{"inc-42", "inc-43", "inc-40", "inc-48", "inc-46"}},
		{name: "none match", text: "incidents pod-b low resolved", title: "No resolved incidents in pod-b (low)"},
		{name: "unknown word", text: "incidents pod-z", wantErr: `"pod-z" is not a known site, severity or status`},
		{name: "two severities", text: "incidents high low", wantErr: "give one severity, not high and low"},
	}
	w := newWorld(t, bot.Permissions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.run(t, "alice", tt.text)
			if tt.wantErr != "" {
				assertContains(t, r.Title, tt.wantErr)
				return
			}
			if r.Title != tt.title {
				t.Errorf("title = %q, want %q", r.Title, tt.title)
			}
			var ids []string
			if len(r.Sections) > 0 && r.Sections[0].List != nil {
				for _, it := range r.Sections[0].List.Items {
					ids = append(ids, strings.Fields(it)[0])
				}
			}
			if !slices.Equal(ids, tt.ids) {
				t.Errorf("incidents = %v, want %v", ids, tt.ids)
			}
		})
	}
}

func TestAck(t *testing.T) {
	tests := []struct {
		name       string
		perms      bot.Permissions
		user       string
		text       string
		title      string
		tone       bot.Tone
		acked      bool
		refused    bool
		visibility bot.Visibility
	}{
		{name: "empty ack list lets everyone ack", user: "bob", text: "ack inc-42",
			title: "inc-42 acknowledged by bob.", tone: bot.ToneOK, acked: true, visibility: bot.InChannel},
		{name: "on the ack list", perms: bot.Permissions{Ack: []string{"U1", "bob"}}, user: "bob", text: "ack inc-42",
			title: "inc-42 acknowledged by bob.", tone: bot.ToneOK, acked: true, visibility: bot.InChannel},
		{name: "everyone entry", perms: bot.Permissions{Ack: []string{bot.Everyone}}, user: "zoe", text: "ack inc-42",
			title: "inc-42 acknowledged by zoe.", tone: bot.ToneOK, acked: true, visibility: bot.InChannel},
		{name: "not on the ack list", perms: bot.Permissions{Ack: []string{"U1"}}, user: "mallory", text: "ack inc-42",
			title: `You may not run ack: you are not on the "ack" allow-list.`, tone: bot.ToneRefused, refused: true},
		{name: "unknown incident", user: "bob", text: "ack inc-999",
			title: `there is no incident "inc-999"`, tone: bot.ToneWarning},
		{name: "already acknowledged", user: "bob", text: "ack inc-43",
			title: "inc-43 was already acknowledged by alice at 10:10:00 UTC (2m ago)."},
		{name: "stale button on a resolved incident", user: "bob", text: "ack inc-40",
			title: "inc-40 is already resolved; there is nothing to acknowledge."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.perms)
			r := w.run(t, tt.user, tt.text)
			if r.Title != tt.title || r.Tone != tt.tone || r.Visibility != tt.visibility {
				t.Errorf("reply = %q tone %q visibility %q; want %q tone %q visibility %q",
					r.Title, r.Tone, r.Visibility, tt.title, tt.tone, tt.visibility)
			}
			if got := len(w.incidents.Acks) > 0; got != tt.acked {
				t.Errorf("acked = %v, want %v (%v)", got, tt.acked, w.incidents.Acks)
			}
			refusals := w.auditor.Refusals()
			if (len(refusals) > 0) != tt.refused {
				t.Fatalf("refusals = %+v, want refused %v", refusals, tt.refused)
			}
			if tt.refused {
				want := bot.Refusal{At: bottest.Now, User: tt.user, Channel: "C1", Origin: bot.OriginTyped,
					Command: "ack inc-42", Group: bot.GroupAck, Reason: `you are not on the "ack" allow-list`}
				if refusals[0] != want {
					t.Errorf("refusal = %+v, want %+v", refusals[0], want)
				}
			}
		})
	}
}

// A button click is the same command as the typed text, so it meets the
// same permission check.
func TestButtonGoesThroughTheSameCheck(t *testing.T) {
	w := newWorld(t, bot.Permissions{Ack: []string{"U1"}})
	view := bot.NewIncidentView(bottest.HostFault)
	i := slices.IndexFunc(view.Actions, func(a bot.Action) bool { return a.Label == "Acknowledge" })
	if i < 0 {
		t.Fatalf("no Acknowledge button in %+v", view.Actions)
	}
	r := w.router.HandleText(context.Background(), view.Actions[i].Command,
		bot.Command{User: "mallory", Channel: "C1", Origin: bot.OriginButton})
	if r.Tone != bot.ToneRefused {
		t.Fatalf("button click by a stranger: %q", r.Title)
	}
	if got := w.auditor.Refusals(); len(got) != 1 || got[0].Origin != bot.OriginButton {
		t.Fatalf("refusals = %+v", got)
	}
	r = w.router.HandleText(context.Background(), view.Actions[i].Command,
		bot.Command{User: "U1", Channel: "C1", Origin: bot.OriginButton})
	if r.Title != "inc-42 acknowledged by U1." {
		t.Fatalf("button click by an acker: %q", r.Title)
	}
}

// approveVerb stands in for the remedies issue's approve, to test the
// approve group's rules now.
func approveVerb(ran *[]string) bot.Verb {
	return bot.Verb{Name: "approve", Args: "<incident>", Help: "approve the proposed remedy", Group: bot.GroupApprove,
		MinArgs: 1, MaxArgs: 1, Run: func(_ context.Context, cmd bot.Command) (bot.Reply, error) {
			*ran = append(*ran, cmd.User+" "+cmd.Args[0])
			return bot.Reply{Title: "approved"}, nil
		}}
}

func TestApprovePermissions(t *testing.T) {
	tests := []struct {
		name   string
		perms  bot.Permissions
		user   string
		ran    bool
		reason string
	}{
		{name: "empty approve list means nobody", perms: bot.Permissions{}, user: "alice",
			reason: "nobody may approve or deny: no approvers are configured"},
		{name: "empty approve list refuses even ackers", perms: bot.Permissions{Ack: []string{"alice"}}, user: "alice",
			reason: "nobody may approve or deny: no approvers are configured"},
		{name: "not an approver", perms: bot.Permissions{Approve: []string{"carol"}}, user: "alice",
			reason: `you are not on the "approve" allow-list`},
		{name: "approver", perms: bot.Permissions{Approve: []string{"carol"}}, user: "carol", ran: true},
		{name: "no user is never allowed", perms: bot.Permissions{Approve: []string{"carol"}}, user: "",
			reason: `you are not on the "approve" allow-list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.perms)
			var ran []string
			if err := w.router.Register(approveVerb(&ran)); err != nil {
				t.Fatal(err)
			}
			r := w.run(t, tt.user, "approve inc-42")
			if (len(ran) > 0) != tt.ran {
				t.Fatalf("ran = %v, want %v; reply %q", ran, tt.ran, r.Title)
			}
			if tt.ran {
				return
			}
			if want := "You may not run approve: " + tt.reason + "."; r.Title != want {
				t.Errorf("reply = %q, want %q", r.Title, want)
			}
			if got := w.auditor.Refusals(); len(got) != 1 || got[0].Reason != tt.reason || got[0].Group != bot.GroupApprove {
				t.Errorf("refusals = %+v", got)
			}
			help := replyText(w.run(t, tt.user, "help"))
			if strings.Contains(help, "approve") {
				t.Errorf("help offers approve to someone who may not:\n%s", help)
			}
		})
	}
}

type membership map[string][]string

func (m membership) IsMember(_ context.Context, user, group string) (bool, error) {
	if group == "broken" {
		return false, errors.New("user group lookup failed")
	}
	return slices.Contains(m[group], user), nil
}

func TestMembership(t *testing.T) {
	tests := []struct {
		name  string
		list  []string
		user  string
		title string
	}{
		{name: "member of an allowed group", list: []string{"S0OPS"}, user: "dave", title: "inc-42 acknowledged by dave."},
		{name: "not a member", list: []string{"S0OPS"}, user: "erin", title: `You may not run ack: you are not on the "ack" allow-list.`},
		{name: "lookup failure is an internal error", list: []string{"broken"}, user: "erin", title: "Something went wrong; logged as err-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fleet := bottest.FixtureFleet()
			incs := bottest.NewIncidents(clock.NewFake(bottest.Now), bottest.AllIncidents()...)
			r, err := bot.NewRouter(bot.Options{Incidents: incs, Fleet: fleet, Actions: incs,
				Permissions: bot.Permissions{Ack: tt.list}, Membership: membership{"S0OPS": {"dave"}}})
			if err != nil {
				t.Fatal(err)
			}
			got := r.HandleText(context.Background(), "ack inc-42", bot.Command{User: tt.user})
			if !strings.HasPrefix(got.Title, tt.title) {
				t.Errorf("reply = %q, want %q", got.Title, tt.title)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name    string
		perms   bot.Permissions
		user    string
		text    string
		title   string
		want    []string
		wantNot []string
	}{
		{name: "everyone may ack in the demo", user: "alice", text: "help", title: "Commands you can run",
			want: []string{"/triage status <vm|host|site>", "/triage ack <incident>", "/triage silence <vm|host|site> <duration> [reason]",
				"/triage silences", "/triage unsilence <silence>", "/triage incidents"}},
		{name: "read-only user sees only lookups", perms: bot.Permissions{Ack: []string{"U1"}}, user: "alice", text: "help",
			title: "Commands you can run", want: []string{"/triage status", "/triage incidents", "/triage silences:"},
			wantNot: []string{"/triage ack", "/triage silence <", "/triage unsilence"}},
		{name: "unknown verb answers with help", user: "alice", text: "/triage frobnicate",
			title: `Unknown command "frobnicate". These are the commands you can run:`, want: []string{"/triage status"}},
		{name: "empty text is help", user: "alice", text: "/triage", title: "Commands you can run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.perms)
			r := w.run(t, tt.user, tt.text)
			if r.Title != tt.title {
				t.Errorf("title = %q, want %q", r.Title, tt.title)
			}
			got := replyText(r)
			assertContains(t, got, tt.want...)
			for _, s := range tt.wantNot {
				if strings.Contains(got, s) {
					t.Errorf("help contains %q:\n%s", s, got)
				}
			}
		})
	}
}

func TestSilence(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		title   string
		want    model.Silence // ID, times and author checked separately
		lines   []string
		wantErr string
	}{
		{name: "host with a quoted reason", text: `silence host-007 2h "disk swap"`,
			title: "Silenced host host-007 for 2h (sil-1).", want: model.Silence{Host: "host-007", Comment: "disk swap"},
			lines: []string{"It mutes 2 open incidents."}},
		{name: "VM without a reason", text: "silence vm-0100 30m",
			title: "Silenced VM vm-0100 for 30m (sil-1).", want: model.Silence{VM: "vm-0100"},
			lines: []string{"It mutes 1 open incident."}},
		{name: "site with an unquoted reason", text: "silence pod-b 1d network work tonight",
			title: "Silenced site pod-b for 1d (sil-1).", want: model.Silence{Site: "pod-b", Comment: "network work tonight"}},
		{name: "unknown target", text: "silence host-999 1h", wantErr: `nothing is named "host-999"`},
		{name: "bad duration", text: "silence host-007 forever", wantErr: `"forever" is not a duration`},
		{name: "missing duration", text: "silence host-007", wantErr: "missing arguments; usage: /triage silence <vm|host|site> <duration> [reason]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, bot.Permissions{})
			r := w.run(t, "alice", tt.text)
			sils, _ := w.incidents.Silences(context.Background())
			if tt.wantErr != "" {
				assertContains(t, r.Title, tt.wantErr)
				if len(sils) != 0 {
					t.Errorf("a refused silence was saved: %+v", sils)
				}
				return
			}
			if r.Title != tt.title || r.Visibility != bot.InChannel {
				t.Errorf("reply = %q (%q), want %q in channel", r.Title, r.Visibility, tt.title)
			}
			if len(sils) != 1 {
				t.Fatalf("silences = %+v", sils)
			}
			s := sils[0]
			d, _ := bot.ParseDuration(strings.Fields(tt.text)[2])
			if s.VM != tt.want.VM || s.Host != tt.want.Host || s.Site != tt.want.Site || s.Comment != tt.want.Comment ||
				s.Author != "alice" || !s.StartsAt.Equal(bottest.Now) || !s.EndsAt.Equal(bottest.Now.Add(d)) {
				t.Errorf("silence = %+v", s)
			}
			assertContains(t, replyText(r), tt.lines...)
			if len(r.Actions) != 1 || r.Actions[0].Command != "unsilence sil-1" {
				t.Errorf("actions = %+v, want an Unsilence button", r.Actions)
			}
		})
	}
}

func TestSilencesAndUnsilence(t *testing.T) {
	w := newWorld(t, bot.Permissions{})
	if r := w.run(t, "alice", "silences"); r.Title != "No active silences." {
		t.Fatalf("silences before any: %q", r.Title)
	}
	w.run(t, "alice", `silence host-007 2h "disk swap"`)
	w.clock.Advance(time.Minute)
	w.run(t, "bob", "silence pod-b 30m")
	r := w.run(t, "alice", "silences")
	got := replyText(r)
	assertContains(t, got, "2 active silences",
		"- sil-2 · site pod-b · until 10:43:00 UTC (in 30m) · by bob",
		"- sil-1 · host host-007 · until 12:12:00 UTC (in 1h59m) · by alice · disk swap",
		"[Unsilence sil-1] unsilence sil-1")

	tests := []struct {
		name  string
		text  string
		title string
	}{
		{name: "unknown silence", text: "unsilence sil-9", title: `there is no silence "sil-9"`},
		{name: "end one", text: "unsilence sil-1", title: "sil-1 (host host-007) ended by carol; notifications resume."},
		{name: "end it again", text: "unsilence sil-1", title: "sil-1 (host host-007) already ended 10:13:00 UTC (now)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := w.run(t, "carol", tt.text); r.Title != tt.title {
				t.Errorf("reply = %q, want %q", r.Title, tt.title)
			}
		})
	}
	w.clock.Advance(time.Hour)
	r = w.run(t, "alice", "silences")
	if r.Title != "No active silences." || !strings.Contains(replyText(r), "") {
		t.Errorf("after expiry: %q", replyText(r))
	}
}

func TestInternalErrorsAreNotShown(t *testing.T) {
	const secret = "hunter2-redis-password"
	w := newWorld(t, bot.Permissions{})
	failure := fmt.Errorf("dial redis://:%s@10.0.0.5:6379: connection refused", secret)
	w.fleet.Err = failure
	w.incidents.Err = failure
	for _, text := range []string{"status vm-0042", "incidents", "ack inc-42", "silence host-007 1h", "silences", "unsilence sil-1"} {
		t.Run(text, func(t *testing.T) {
			r := w.run(t, "alice", text)
			if !strings.HasPrefix(r.Title, "Something went wrong; logged as err-") || r.Tone != bot.ToneError {
				t.Fatalf("reply = %q", r.Title)
			}
			ref := strings.TrimSuffix(strings.TrimPrefix(r.Title, "Something went wrong; logged as "), ".")
			log := w.log.String()
			assertContains(t, log, `"error_id":"`+ref+`"`, `"verb":"`+strings.Fields(text)[0]+`"`, `"user":"alice"`)
			bottest.AssertNoSecrets(t, []string{secret}, map[string]string{"reply": replyText(r)})
		})
	}
}

// User-controlled text is kept as data: the reply holds it verbatim (the
// renderer escapes it), and no markup is added around it.
func TestUserTextIsData(t *testing.T) {
	w := newWorld(t, bot.Permissions{})
	r := w.run(t, "<!channel>", `silence host-007 1h "<https://evil.example|click> & co"`)
	got := replyText(r)
	assertContains(t, got, "by: <!channel>", "reason: <https://evil.example|click> & co")
}

func TestNewRouterRequiresItsDependencies(t *testing.T) {
	fleet := bottest.FixtureFleet()
	incs := bottest.NewIncidents(clock.NewFake(bottest.Now))
	tests := []struct {
		name string
		opts bot.Options
	}{
		{name: "no incidents", opts: bot.Options{Fleet: fleet, Actions: incs}},
		{name: "no fleet", opts: bot.Options{Incidents: incs, Actions: incs}},
		{name: "no actions", opts: bot.Options{Incidents: incs, Fleet: fleet}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := bot.NewRouter(tt.opts); err == nil {
				t.Fatal("NewRouter accepted missing dependencies")
			}
		})
	}
}
