package rules

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// lifecycleRules is a small set that makes lifecycle tests independent of
// the default rules' tuning.
const lifecycleRules = `
settings:
  resolve_delay: 5m
  reopen_window: 1h
  stopped_reporting: 10m
host_states:
  - {reason: mce, state: failed, when: host.facts.mce > 0}
rules:
  - name: vm-down
    scope: vm
    expr: vm.down
    classification: {cause: vm-down, trigger: vm, severity: critical}
    action: {type: restart-vm}
    summary: "{{.VM}} is down"
  - name: host-bad
    scope: host
    expr: host.state == "failed"
    resolve_delay: 0s
    classification: {cause: host-bad, trigger: platform, severity: high}
    action: {type: migrate-host, approval: true}
    escalation: quiet
    summary: "{{.Host}} is bad, {{.Count}} VM(s) muted"
  - name: vm-slow
    scope: vm
    expr: vm.down
    for: 2m
    classification: {cause: vm-slow, trigger: vm, severity: low}
inhibit:
  - name: host-mutes-vm
    source_rules: [host-bad]
    target_rules: [vm-down]
    equal: [host]
escalation:
  - name: five
    severities: [critical]
    levels:
      - {wait: 0s, targets: [{channel: "#l1"}]}
      - {wait: 1m, targets: [{usergroup: l2}]}
      - {wait: 2m, targets: [{user: l3}]}
      - {wait: 3m, targets: [{jira-priority: Highest}]}
      - {wait: 4m, targets: [{usergroup: l5}, {user: boss}]}
  - name: quiet
    levels:
      - {wait: 1h, targets: [{channel: "#later"}]}
`

func lifecycleSet(t testing.TB) *Set {
	t.Helper()
	s, err := Parse("lifecycle.yaml", []byte(lifecycleRules))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func TestInhibitionRegardlessOfOrder(t *testing.T) {
	tests := []struct {
		name string
		run  func(h *harness)
		// escalated: the VM incident fired and escalated before the host
		// incident existed, which muting does not undo.
		escalated bool
	}{
		{name: "host first, then VM", run: func(h *harness) {
			h.observe(h.host("host-1", facts("mce", 1.0)))
			h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
		}},
		{name: "VM first, then host", run: func(h *harness) {
			h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
			h.observe(h.host("host-1", facts("mce", 1.0)))
		}, escalated: true},
		{name: "one batch, VM first", run: func(h *harness) {
			h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil), h.host("host-1", facts("mce", 1.0)))
		}},
		{name: "one batch, host first", run: func(h *harness) {
			h.observe(h.host("host-1", facts("mce", 1.0)), h.vm("vm-1", "host-1", model.StateCrashed, nil))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, lifecycleSet(t))
			h.observe(h.vm("vm-2", "host-2", model.StateCrashed, nil)) // another host: not muted
			tc.run(h)
			host := h.one("host-bad")
			var vm1, vm2 model.Incident
			for _, inc := range h.incidents("vm-down") {
				switch inc.Subject {
				case "vm-1":
					vm1 = inc
				case "vm-2":
					vm2 = inc
				}
			}
			if vm1.InhibitedBy != host.ID {
				t.Errorf("vm-1 incident inhibited_by %q, want %q", vm1.InhibitedBy, host.ID)
			}
			if vm2.InhibitedBy != "" {
				t.Errorf("vm-2 on another host is inhibited by %q", vm2.InhibitedBy)
			}
			if !slices.Equal(host.VMs, []string{"vm-1"}) {
				t.Errorf("host incident vms %v, want [vm-1]", host.VMs)
			}
			if vm1.Level != 0 && !tc.escalated {
				t.Errorf("a muted incident escalated to level %d", vm1.Level)
			}
			// The host recovers: the VM incident is no longer muted.
			h.advance(time.Minute)
			h.observe(h.host("host-1", healthy()))
			if got := h.one("host-bad"); got.Status != model.StatusResolved {
				t.Fatalf("host incident %s, want resolved", got.Status)
			}
			for _, inc := range h.incidents("vm-down") {
				if inc.Subject == "vm-1" && inc.InhibitedBy != "" {
					t.Errorf("vm-1 still inhibited by %q after the host resolved", inc.InhibitedBy)
				}
			}
		})
	}
}

func TestFlappingAndReopen(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	down := func() { h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil)) }
	up := func() { h.observe(h.vm("vm-1", "host-1", model.StateRunning, nil)) }

	down()
	first := h.one("vm-down")
	if first.Status != model.StatusFiring {
		t.Fatalf("status %s, want firing", first.Status)
	}
	// Flapping within the resolve delay keeps the one incident open.
	for i := 0; i < 3; i++ {
		h.advance(time.Minute)
		up()
		h.advance(2 * time.Minute)
		down()
	}
	inc := h.one("vm-down")
	if inc.ID != first.ID || inc.Status != model.StatusFiring || inc.Reopened != 0 || !inc.ResolvedAt.IsZero() {
		t.Fatalf("after flapping: %+v, want the same firing incident never resolved", inc)
	}
	// Clear for longer than the resolve delay: resolved, dated when it cleared.
	h.advance(time.Minute)
	up()
	clearedAt := h.clk.Now()
	h.advance(4 * time.Minute)
	if got := h.one("vm-down"); got.Status != model.StatusFiring {
		t.Fatalf("resolved before the resolve delay: %s", got.Status)
	}
	h.advance(2 * time.Minute)
	inc = h.one("vm-down")
	if inc.Status != model.StatusResolved || !inc.ResolvedAt.Equal(clearedAt) {
		t.Fatalf("got %s resolved at %s, want resolved at %s", inc.Status, inc.ResolvedAt, clearedAt)
	}
	// A recurrence within the reopen window reopens the same incident.
	h.advance(30 * time.Minute)
	down()
	inc = h.one("vm-down")
	if inc.ID != first.ID || inc.Status != model.StatusFiring || inc.Reopened != 1 || !inc.ResolvedAt.IsZero() {
		t.Fatalf("recurrence: %+v, want %s reopened once and firing", inc, first.ID)
	}
	// After the window a recurrence is a new incident.
	up()
	h.advance(6 * time.Minute)
	h.advance(2 * time.Hour)
	down()
	incs := h.incidents("vm-down")
	if len(incs) != 2 || incs[1].ID == first.ID || incs[1].Status != model.StatusFiring || incs[0].Status != model.StatusResolved {
		t.Fatalf("after the reopen window: %+v, want the old one resolved and a new one firing", incs)
	}
}

func TestPendingThenFiring(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
	if got := h.one("vm-slow"); got.Status != model.StatusPending || !got.FiringAt.IsZero() {
		t.Fatalf("got %s, want pending", got.Status)
	}
	h.advance(time.Minute)
	if got := h.one("vm-slow"); got.Status != model.StatusPending {
		t.Fatalf("fired before its for: %s", got.Status)
	}
	h.advance(time.Minute)
	if got := h.one("vm-slow"); got.Status != model.StatusFiring || !got.FiringAt.Equal(h.clk.Now()) {
		t.Fatalf("got %s at %s, want firing at %s", got.Status, got.FiringAt, h.clk.Now())
	}
	// A pending incident that clears is withdrawn at once: nobody was
	// told, so it never was an incident (TestWithdraw has the details).
	h.observe(h.vm("vm-2", "host-1", model.StateCrashed, nil))
	h.advance(time.Minute)
	if got := len(h.incidents("vm-slow")); got != 2 {
		t.Fatalf("%d vm-slow incidents, want 2 (vm-2's pending)", got)
	}
	h.observe(h.vm("vm-2", "host-1", model.StateRunning, nil))
	for _, inc := range h.incidents("vm-slow") {
		if inc.Subject == "vm-2" {
			t.Fatalf("cleared pending incident is still stored as %s", inc.Status)
		}
	}
}

func TestSilences(t *testing.T) {
	tests := []struct {
		name    string
		silence model.Silence
		want    bool
	}{
		{name: "by vm", silence: model.Silence{VM: "vm-1"}, want: true},
		{name: "by host", silence: model.Silence{Host: "host-1"}, want: true},
		{name: "by site", silence: model.Silence{Site: "pod-a"}, want: true},
		{name: "by rule", silence: model.Silence{Rule: "vm-down"}, want: true},
		{name: "other vm", silence: model.Silence{VM: "vm-9"}, want: false},
		{name: "other site", silence: model.Silence{Site: "pod-z"}, want: false},
		{name: "host and wrong rule", silence: model.Silence{Host: "host-1", Rule: "host-bad"}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, lifecycleSet(t))
			s := tc.silence
			s.EndsAt = h.clk.Now().Add(time.Hour)
			s.Author, s.Comment = "alice", "maintenance"
			sil, err := h.e.AddSilence(h.ctx, s)
			if err != nil {
				t.Fatalf("AddSilence: %v", err)
			}
			if sil.ID == "" || !sil.StartsAt.Equal(h.clk.Now()) {
				t.Fatalf("silence %+v lacks id or start", sil)
			}
			h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
			inc := h.one("vm-down")
			if inc.Silenced != tc.want {
				t.Fatalf("silenced %v, want %v", inc.Silenced, tc.want)
			}
			wantLevel := 1
			if tc.want {
				wantLevel = 0 // silenced incidents are recorded, not escalated
			}
			if inc.Level != wantLevel {
				t.Errorf("level %d, want %d", inc.Level, wantLevel)
			}
			// The resolution of a silenced incident is recorded too.
			h.observe(h.vm("vm-1", "host-1", model.StateRunning, nil))
			h.advance(6 * time.Minute)
			if got := h.one("vm-down"); got.Status != model.StatusResolved || got.ResolvedAt.IsZero() {
				t.Errorf("got %s, want a recorded resolution", got.Status)
			}
		})
	}
}

func TestSilenceStartsAndExpires(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	sil, err := h.e.AddSilence(h.ctx, model.Silence{Host: "host-1", StartsAt: t0.Add(10 * time.Minute), EndsAt: t0.Add(time.Hour), Author: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
	if h.one("vm-down").Silenced {
		t.Fatal("silenced before the silence starts")
	}
	h.advance(10 * time.Minute)
	if !h.one("vm-down").Silenced {
		t.Fatal("not silenced once the silence started")
	}
	if err := h.e.ExpireSilence(h.ctx, sil.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if h.one("vm-down").Silenced {
		t.Fatal("still silenced after the silence expired")
	}
	if got := h.store.silences[sil.ID]; !got.EndsAt.Equal(h.clk.Now()) {
		t.Fatalf("stored silence ends %s, want %s", got.EndsAt, h.clk.Now())
	}
	if _, err := h.e.AddSilence(h.ctx, model.Silence{EndsAt: t0.Add(time.Hour)}); err == nil {
		t.Fatal("a silence matching nothing was accepted")
	}
}

func TestEscalationFiveLevels(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
	wantTargets := [][]string{
		{"channel:#l1"}, {"usergroup:l2"}, {"user:l3"}, {"jira-priority:Highest"}, {"usergroup:l5", "user:boss"},
	}
	waits := []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute}
	for lvl := 1; lvl <= 5; lvl++ {
		if lvl > 1 {
			h.advance(waits[lvl-1] - time.Second)
			if got := h.one("vm-down").Level; got != lvl-1 {
				t.Fatalf("level %d before the wait ended, want %d", got, lvl-1)
			}
			h.advance(time.Second)
		}
		inc := h.one("vm-down")
		if inc.Level != lvl || !slices.Equal(inc.Targets, wantTargets[lvl-1]) || inc.Escalation != "five" {
			t.Fatalf("level %d targets %v policy %q, want level %d targets %v policy five", inc.Level, inc.Targets, inc.Escalation, lvl, wantTargets[lvl-1])
		}
	}
	h.advance(time.Hour)
	if got := h.one("vm-down").Level; got != 5 {
		t.Fatalf("level %d after the last level, want 5", got)
	}
	if len(h.store.due) != 0 {
		t.Fatalf("escalations still scheduled after the last level: %v", h.store.due)
	}
}

func TestAckStopsEscalation(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
	h.advance(time.Minute)
	h.advance(2 * time.Minute)
	inc := h.one("vm-down")
	if inc.Level != 3 {
		t.Fatalf("level %d, want 3", inc.Level)
	}
	acked, err := h.e.Ack(h.ctx, inc.ID, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if acked.AckedBy != "carol" || !acked.AckedAt.Equal(h.clk.Now()) {
		t.Fatalf("ack not recorded: %+v", acked)
	}
	if _, scheduled := h.store.due[inc.ID]; scheduled {
		t.Fatal("escalation still scheduled after ack")
	}
	h.advance(time.Hour)
	if got := h.one("vm-down"); got.Level != 3 || got.AckedBy != "carol" {
		t.Fatalf("after ack: level %d acked by %q, want 3 and carol", got.Level, got.AckedBy)
	}
	if _, err := h.e.Ack(h.ctx, "inc-999", "carol"); err == nil {
		t.Fatal("ack of an unknown incident succeeded")
	}
}

func TestResolveEndsEscalation(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
	id := h.one("vm-down").ID
	if _, ok := h.store.due[id]; !ok {
		t.Fatal("level 2 not scheduled")
	}
	// The VM is back at once; the incident stays firing for its 5m
	// resolve delay and keeps escalating meanwhile (levels 2 at 1m and 3
	// at 3m), then resolves at 5m, before level 4 (due at 6m).
	h.observe(h.vm("vm-1", "host-1", model.StateRunning, nil))
	wantLevels := []int{2, 2, 3, 3, 3, 3, 3, 3, 3, 3}
	for i, want := range wantLevels {
		h.advance(time.Minute)
		got := h.one("vm-down")
		if got.Level != want {
			t.Fatalf("after %dm: level %d, want %d", i+1, got.Level, want)
		}
		if resolved := got.Status == model.StatusResolved; resolved != (i+1 >= 5) {
			t.Fatalf("after %dm: status %s", i+1, got.Status)
		}
	}
	if _, ok := h.store.due[id]; ok {
		t.Fatal("escalation still scheduled after resolution")
	}
}

func TestRestartKeepsIncidents(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	batch := []model.Observation{h.vm("vm-1", "host-1", model.StateCrashed, nil)}
	h.observe(batch...)
	before := h.one("vm-down")
	// Re-processing the same batch changes nothing.
	h.observe(batch...)
	if got := h.one("vm-down"); got.Version != before.Version {
		t.Fatalf("re-processing saved the incident again (version %d → %d)", before.Version, got.Version)
	}
	// A new engine over the same store adopts the open incident.
	e2, err := NewEngine(h.ctx, Options{Rules: lifecycleSet(t), Store: h.store, Clock: h.clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Observe(h.ctx, batch); err != nil {
		t.Fatal(err)
	}
	incs := h.incidents("vm-down")
	if len(incs) != 1 || incs[0].ID != before.ID || incs[0].Status != model.StatusFiring {
		t.Fatalf("after restart: %+v, want the one incident %s still firing", incs, before.ID)
	}
	// Escalation state survived in the store and the new engine applies it.
	h.clk.Advance(time.Minute)
	if err := e2.Tick(h.ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.one("vm-down").Level; got != 2 {
		t.Fatalf("level %d after restart and 1m, want 2", got)
	}
}

func TestRestartForgetsWhatNoLongerHolds(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
	e2, err := NewEngine(h.ctx, Options{Rules: lifecycleSet(t), Store: h.store, Clock: h.clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// The VM came back while the engine was down; nothing re-confirms it.
	if err := e2.Observe(h.ctx, []model.Observation{h.vm("vm-1", "host-1", model.StateRunning, nil)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		h.clk.Advance(time.Minute)
		if err := e2.Tick(h.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.one("vm-down"); got.Status != model.StatusResolved {
		t.Fatalf("loaded incident is %s, want resolved once the index was rebuilt", got.Status)
	}
}

func TestStoreFailureIsRetried(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	h.store.failSave = 1
	err := h.e.Observe(h.ctx, []model.Observation{h.vm("vm-1", "host-1", model.StateCrashed, nil)})
	if err == nil {
		t.Fatal("Observe succeeded although the store failed")
	}
	// Redelivery of the same observation persists what was not saved.
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
	if got := h.one("vm-down"); got.Status != model.StatusFiring {
		t.Fatalf("got %s, want firing", got.Status)
	}
}

func TestVersionConflictKeepsOtherWritersFields(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
	inc := h.one("vm-down")
	// The ticket path saves the incident behind the engine's back.
	inc.Ticket = "OPS-7"
	inc.TicketError = "jira: comment on OPS-7: HTTP 403: no permission"
	if err := h.store.SaveIncident(context.Background(), &inc); err != nil {
		t.Fatal(err)
	}
	h.observe(h.vm("vm-1", "host-2", model.StateCrashed, nil)) // moves: the incident changes
	got := h.one("vm-down")
	if got.Ticket != "OPS-7" || got.Host != "host-2" || got.TicketError != inc.TicketError {
		t.Fatalf("after a conflict: ticket %q host %q ticket error %q, want OPS-7, host-2 and %q",
			got.Ticket, got.Host, got.TicketError, inc.TicketError)
	}
}

func TestReload(t *testing.T) {
	h := newHarness(t, lifecycleSet(t))
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil), h.host("host-1", facts("mce", 1.0)))
	hostInc := h.one("host-bad")
	// Same rules again: nothing changes.
	h.e.Reload(lifecycleSet(t))
	if err := h.e.Observe(h.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := h.one("host-bad"); got.Status != model.StatusFiring || got.ID != hostInc.ID {
		t.Fatalf("after an identical reload: %+v", got)
	}
	// Without host-bad: its incident resolves, the VM is no longer muted.
	smaller, err := Parse("small.yaml", []byte(`
rules:
  - name: vm-down
    scope: vm
    expr: vm.down
    resolve_delay: 0s
    classification: {cause: vm-down, trigger: vm, severity: critical}
`))
	if err != nil {
		t.Fatal(err)
	}
	h.e.Reload(smaller)
	h.tick()
	if got := h.one("host-bad"); got.Status != model.StatusResolved {
		t.Fatalf("incident of a removed rule is %s, want resolved", got.Status)
	}
	if got := h.one("vm-down"); got.Status != model.StatusFiring || got.InhibitedBy != "" {
		t.Fatalf("vm-down after reload: %s inhibited by %q", got.Status, got.InhibitedBy)
	}
	if err := h.e.ReloadFiles("testdata/does-not-exist.yaml"); err == nil {
		t.Fatal("reload of a missing file succeeded")
	}
	if h.e.Rules() != smaller {
		t.Fatal("a failed reload replaced the rules")
	}
}

// TestEscalationPolicyChoice: a rule naming a policy uses it; otherwise the
// policy for the incident's severity applies; with neither, it is never
// escalated.
func TestEscalationPolicyChoice(t *testing.T) {
	tests := []struct {
		name   string
		rule   string
		policy string
		// levels are the expected levels 2m, 1h2m and 2h2m after the start.
		levels [3]int
	}{
		{name: "by severity (critical)", rule: "vm-down", policy: "five", levels: [3]int{2, 5, 5}},
		{name: "named by the rule", rule: "host-bad", policy: "quiet", levels: [3]int{0, 1, 1}},
		{name: "no policy for low severity", rule: "vm-slow", policy: "", levels: [3]int{0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, lifecycleSet(t))
			h.observe(h.host("host-1", facts("mce", 1.0)), h.vm("vm-1", "host-2", model.StateCrashed, nil))
			h.advance(2 * time.Minute) // vm-slow fires
			for i, want := range tc.levels {
				if i > 0 {
					for m := 0; m < 60; m++ {
						h.advance(time.Minute)
					}
				}
				inc := h.one(tc.rule)
				if inc.Status != model.StatusFiring || inc.Escalation != tc.policy || inc.Level != want {
					t.Fatalf("after %dh: %s policy %q level %d, want firing, policy %q, level %d", i, inc.Status, inc.Escalation, inc.Level, tc.policy, want)
				}
			}
			if inc := h.one(tc.rule); tc.rule == "host-bad" && !slices.Equal(inc.Targets, []string{"channel:#later"}) {
				t.Errorf("targets %v, want [channel:#later]", inc.Targets)
			}
		})
	}
}
