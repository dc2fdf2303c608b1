package console

import (
	"bufio"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name.golden, or rewrites the file with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run go test -update if the change is intended)\n--- got ---\n%s--- want ---\n%s", path, got, want)
	}
}

func with(inc model.Incident, change func(*model.Incident)) model.Incident {
	inc.VMs = append([]string(nil), inc.VMs...)
	change(&inc)
	return inc
}

func TestRenderNotification(t *testing.T) {
	resolved := func(i *model.Incident) {
		i.Status, i.ResolvedAt = model.StatusResolved, i.StartedAt.Add(23*time.Minute+40*time.Second)
	}
	tests := []struct {
		name    string
		inc     model.Incident
		changes []bot.Change
		color   bool
		fixes   []bot.Fix
	}{
		{name: "host-hardware-fault", inc: bottest.HostFault},
		{name: "host-hardware-fault-color", inc: bottest.HostFault, color: true},
		{name: "guest-crash", inc: bottest.GuestCrash},
		{name: "storage-unreachable", inc: bottest.StorageLoss},
		{name: "service-down", inc: bottest.ServiceDown},
		{name: "planned-maintenance", inc: bottest.Maintenance},
		{name: "user-restart", inc: bottest.UserRestart},
		{name: "heartbeat-loss", inc: bottest.HeartbeatLoss},
		{name: "resolved", inc: bottest.Resolved, changes: []bot.Change{bot.ChangeResolved}},
		{name: "resolved-color", inc: bottest.Resolved, changes: []bot.Change{bot.ChangeResolved}, color: true},
		{name: "escalated-and-resolved", inc: with(bottest.HostFault, func(i *model.Incident) { i.Level = 2; resolved(i) }),
			changes: []bot.Change{bot.ChangeEscalated, bot.ChangeResolved}},
		{name: "acked", inc: with(bottest.HostFault, func(i *model.Incident) { i.AckedBy = "alice" }), changes: []bot.Change{bot.ChangeAcked}},
		{name: "escalated", inc: with(bottest.StorageLoss, func(i *model.Incident) { i.Level = 3 }), changes: []bot.Change{bot.ChangeEscalated}},
		{name: "approved", inc: with(bottest.HostFault, func(i *model.Incident) { i.Approval = model.ApprovalApproved }), changes: []bot.Change{bot.ChangeApproval}},
		{name: "ticket", inc: bottest.HostFault, changes: []bot.Change{bot.ChangeTicket}},
		{name: "silenced", inc: with(bottest.GuestCrash, func(i *model.Incident) { i.Silenced = true }), changes: []bot.Change{bot.ChangeSilenced}},
		{name: "muted-by-host", inc: bottest.HeartbeatLoss, changes: []bot.Change{bot.ChangeSilenced}},
		{name: "reopened", inc: with(bottest.GuestCrash, func(i *model.Incident) { i.Reopened = 2 }), changes: []bot.Change{bot.ChangeReopened}},
		{name: "updated", inc: with(bottest.HostFault, func(i *model.Incident) { i.VMs = append(i.VMs, "vm-0052") }), changes: []bot.Change{bot.ChangeUpdated}},
		{name: "services", inc: with(bottest.HostFault, func(i *model.Incident) {
			i.Services = []model.ServiceImpact{
				{Service: "ledger", Team: "team-ledger", Instances: 1, Down: 1, Hit: 1, LastInSites: []string{"pod-a"}},
				{Service: "payments-api", Team: "team-pay", Instances: 6, Down: 3, Hit: 3},
				{Service: "web\x1b[2J\n10:00:00 [RESOLVED] fake", Instances: 4, Down: 1, Hit: 1},
				{Service: "s4", Instances: 9, Down: 1, Hit: 1}, {Service: "s5", Instances: 9, Down: 1, Hit: 1},
				{Service: "s6", Instances: 9, Down: 1, Hit: 1}, {Service: "s7", Instances: 9, Down: 1, Hit: 1},
			}
		})},
		{name: "fixed-before", inc: bottest.HostFault, fixes: []bot.Fix{
			{Incident: "inc-31", Text: "Replaced DIMM B2 after ipmitool sel list showed ECC on it", Author: "U0ALICE", Time: bottest.Now.Add(-50 * time.Hour)},
			{Incident: "inc-12", Text: "reseated the NIC\x1b[2J\n10:00:00 [RESOLVED] fake line", Author: "bob", Time: bottest.Now.Add(-20 * 24 * time.Hour)},
		}},
		{name: "ticket-refused", inc: with(bottest.GuestCrash, func(i *model.Incident) {
			i.Ticket, i.TicketURL = "", ""
			i.TicketError = "jira: create issue: HTTP 400: priority: Priority name 'Urgent' is not valid (check VMTRIAGE_JIRA_PRIORITIES)"
		}), changes: []bot.Change{bot.ChangeTicketError}},
		{name: "opened-ticket-refused", inc: with(bottest.GuestCrash, func(i *model.Incident) {
			i.Ticket, i.TicketURL = "", ""
			i.TicketError = "jira: create issue: HTTP 403: you may not create issues in OPS"
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := tt.changes
			if changes == nil {
				changes = []bot.Change{bot.ChangeOpened}
			}
			v := bot.NewIncidentView(tt.inc)
			v.PreviousFixes = tt.fixes
			n := bot.Notification{View: v, Changes: changes}
			golden(t, "notify-"+tt.name, RenderNotification(n, bottest.Now.Add(5*time.Second), tt.color))
		})
	}
}

func newRouter(t *testing.T, perms bot.Permissions) *bot.Router {
	t.Helper()
	c := clock.NewFake(bottest.Now)
	incs := bottest.NewIncidents(c, bottest.AllIncidents()...)
	r, err := bot.NewRouter(bot.Options{Incidents: incs, Fleet: bottest.FixtureFleet(), Actions: incs, Permissions: perms, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRenderReply(t *testing.T) {
	tests := []struct {
		name  string
		perms bot.Permissions
		text  string
		color bool
	}{
		{name: "help", text: "/triage help"},
		{name: "help-read-only", perms: bot.Permissions{Ack: []string{"U1"}}, text: "/triage help"},
		{name: "unknown-verb", text: "/triage reboot everything"},
		{name: "status-vm", text: "/triage status vm-0042"},
		{name: "status-vm-color", text: "/triage status vm-0042", color: true},
		{name: "status-vm-healthy-host", text: "/triage status vm-0100"},
		{name: "status-host", text: "/triage status host-007"},
		{name: "status-site", text: "/triage status pod-a"},
		{name: "status-unknown", text: "/triage status vm-9999"},
		{name: "incidents", text: "/triage incidents"},
		{name: "incidents-site", text: "/triage incidents pod-b"},
		{name: "ack", text: "/triage ack inc-42"},
		{name: "ack-refused", perms: bot.Permissions{Ack: []string{"U1"}}, text: "/triage ack inc-42"},
		{name: "silence", text: `/triage silence host-007 2h "disk swap"`},
		{name: "bad-duration", text: "/triage silence host-007 soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(t, tt.perms)
			reply := r.HandleText(context.Background(), tt.text, bot.Command{User: "console", Channel: Channel, Origin: bot.OriginConsole})
			golden(t, "reply-"+tt.name, RenderReply(reply, tt.color))
		})
	}
}

func TestRenderIncidentReply(t *testing.T) {
	golden(t, "reply-incident-host-hardware-fault", RenderReply(bot.NewIncidentView(bottest.HostFault).Reply(), false))
}

func TestClean(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "vm-0042 crashed", want: "vm-0042 crashed"},
		{name: "unicode kept", in: "naïve — ok ✓", want: "naïve — ok ✓"},
		{name: "escape sequence", in: "\x1b[2Jwiped", want: `\u001b[2Jwiped`},
		{name: "newline cannot fake a line", in: "ok\n10:00:00 [RESOLVED] all good", want: "ok 10:00:00 [RESOLVED] all good"},
		{name: "carriage return", in: "real\rfake", want: "real fake"},
		{name: "bell", in: "ding\a", want: `ding\u0007`},
		{name: "C1 control", in: "a\u009bb", want: `a\u009bb`},
		{name: "bidi override", in: "abc\u202edcba", want: `abc\u202edcba`},
		{name: "invalid UTF-8", in: "a\xffb", want: "a�b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clean(tt.in); got != tt.want {
				t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// User data reaches the terminal cleaned, whatever field it sits in.
func TestRenderReplyCleansEveryField(t *testing.T) {
	evil := "\x1b]0;pwned\a"
	r := bot.Reply{Title: evil, Sections: []bot.Section{{Heading: evil, Fields: []bot.Field{{Key: evil, Value: evil}},
		Lines: []string{evil}, List: &bot.List{Items: []string{evil}}}},
		Actions: []bot.Action{{Label: evil, Command: evil}, {Label: evil, URL: evil}}}
	for _, color := range []bool{false, true} {
		out := RenderReply(r, color)
		if strings.Contains(out, "\x1b]") || strings.Contains(out, "\a") {
			t.Errorf("raw control characters in the output (color %v): %q", color, out)
		}
	}
	n := bot.Notification{View: bot.NewIncidentView(model.Incident{ID: evil, Subject: evil, Summary: evil, AckedBy: evil,
		Status: model.StatusFiring, Runbooks: []string{evil}}), Changes: []bot.Change{bot.ChangeOpened, bot.ChangeAcked}}
	if out := RenderNotification(n, bottest.Now, true); strings.Contains(out, "\x1b]") || strings.Contains(out, "\a") {
		t.Errorf("raw control characters in a notification: %q", out)
	}
}

// lineReader reads the chat's output line by line, failing the test if
// the expected line does not come.
type lineReader struct {
	lines chan string
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 100)}
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			lr.lines <- s.Text()
		}
		close(lr.lines)
	}()
	return lr
}

func (lr *lineReader) waitFor(t *testing.T, want string) []string {
	t.Helper()
	var seen []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-lr.lines:
			if !ok {
				t.Fatalf("output ended before %q; saw:\n%s", want, strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			if strings.Contains(line, want) {
				return seen
			}
		case <-timeout:
			t.Fatalf("no %q in the output; saw:\n%s", want, strings.Join(seen, "\n"))
		}
	}
}

func TestChatEndToEnd(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	chat, err := NewChat(Options{In: inR, Out: outW, Router: newRouter(t, bot.Permissions{}), User: "ops",
		Clock: clock.NewFake(bottest.Now)})
	if err != nil {
		t.Fatal(err)
	}
	out := newLineReader(outR)
	done := make(chan error, 1)
	go func() { done <- chat.Run(context.Background()) }()
	out.waitFor(t, "type /triage help")

	type step struct {
		name  string
		input string
		want  string
	}
	for _, s := range []step{
		{name: "help", input: "/triage help\n", want: "Commands you can run"},
		{name: "status", input: "/triage status host-007\n", want: "host-007 is failed"},
		{name: "without the prefix", input: "incidents critical\n", want: "2 open incidents (critical)"},
		{name: "ack as the chat's user", input: "/triage ack inc-42\n", want: "inc-42 acknowledged by ops."},
		{name: "another slash command", input: "/who\n", want: "Only /triage commands work here"},
		{name: "parse error", input: "/triage silence host-007 \"oops\n", want: "a quote is not closed"},
	} {
		t.Run(s.name, func(t *testing.T) {
			if _, err := io.WriteString(inW, s.input); err != nil {
				t.Fatal(err)
			}
			out.waitFor(t, s.want)
		})
	}

	// A notification printed while the chat runs shares its output.
	if err := chat.Poster().Post(context.Background(), bot.Notification{View: bot.NewIncidentView(bottest.GuestCrash),
		Changes: []bot.Change{bot.ChangeOpened}}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "[HIGH]")

	inW.Close() // end of input ends the chat
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v at end of input", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return at end of input")
	}
	outW.Close()
}

func TestChatStopsWithItsContext(t *testing.T) {
	inR, inW := io.Pipe() // never written: Run must not wait for input
	defer inW.Close()
	chat, err := NewChat(Options{In: inR, Out: io.Discard, Router: newRouter(t, bot.Permissions{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- chat.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// overlapDetector fails if two writes are in progress at once.
type overlapDetector struct {
	busy     atomic.Int32
	overlaps atomic.Int32
	writes   atomic.Int32
}

func (d *overlapDetector) Write(p []byte) (int, error) {
	if d.busy.Add(1) > 1 {
		d.overlaps.Add(1)
	}
	time.Sleep(time.Millisecond) // widen the window a race would need
	d.busy.Add(-1)
	d.writes.Add(1)
	return len(p), nil
}

func TestOutputIsSafeToInterleave(t *testing.T) {
	w := &overlapDetector{}
	chat, err := NewChat(Options{In: strings.NewReader(""), Out: w, Router: newRouter(t, bot.Permissions{})})
	if err != nil {
		t.Fatal(err)
	}
	poster := chat.Poster()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_ = poster.Post(context.Background(), bot.Notification{View: bot.NewIncidentView(bottest.AllIncidents()[i]),
				Changes: []bot.Change{bot.ChangeOpened}})
		}()
		go func() {
			defer wg.Done()
			_ = chat.handle(context.Background(), "/triage status vm-0042")
		}()
	}
	wg.Wait()
	if w.overlaps.Load() != 0 || w.writes.Load() != 16 {
		t.Errorf("%d overlapping writes of %d", w.overlaps.Load(), w.writes.Load())
	}
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name string
		f    *os.File
		want bool
	}{
		{name: "pipe", f: w, want: false},
		{name: "regular file", f: f, want: false},
		{name: "nil", f: nil, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTerminal(tt.f); got != tt.want {
				t.Errorf("IsTerminal = %v, want %v", got, tt.want)
			}
		})
	}
}
