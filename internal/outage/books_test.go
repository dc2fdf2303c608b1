package outage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

// step is one thing that happens to vm-1 on a constructed timeline: its
// state changes (seen by a sweep), or an incident changes.
type step struct {
	now   int // minutes after t0
	state model.State
	since int
	inc   *model.Incident
	del   bool
}

func vmState(now int, s model.State, since int) step { return step{now: now, state: s, since: since} }

func incident(now int, inc model.Incident) step { return step{now: now, inc: &inc} }

func inc(id string, trig model.Trigger, cause string, start, resolved int) model.Incident {
	i := model.Incident{ID: id, Kind: model.KindVM, Subject: "vm-1", VMs: []string{"vm-1"}, Trigger: trig,
		Cause: cause, Status: model.StatusFiring, StartedAt: at(start)}
	if resolved >= 0 {
		i.Status, i.ResolvedAt = model.StatusResolved, at(resolved)
	}
	return i
}

// run replays steps, keeping vm-1's current state as the store would.
func run(steps []step) []store.Outage {
	var ivs []store.Outage
	vm := model.VMStatus{ID: "vm-1", Host: "host-1", Site: "pod-a", State: model.StateRunning, Since: t0.Add(-time.Hour)}
	for _, s := range steps {
		if s.inc == nil {
			vm.State, vm.Since = s.state, at(s.since)
			ivs = ApplyState(ivs, vm, nil)
			continue
		}
		ivs = ApplyIncident(ivs, s.inc, s.del, vm, at(s.now))
	}
	return ivs
}

// show writes intervals compactly: "[0,10) guest guest-crash".
func show(ivs []store.Outage) string {
	var parts []string
	for _, o := range ivs {
		end := "open"
		if !o.Open() {
			end = fmt.Sprint(int(o.End.Sub(t0).Minutes()))
		}
		parts = append(parts, fmt.Sprintf("[%d,%s) %s %s", int(o.Start.Sub(t0).Minutes()), end, o.Attribution, o.Cause))
	}
	return strings.Join(parts, "; ")
}

func TestAttributionTimelines(t *testing.T) {
	silenced := inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)
	silenced.Silenced = true
	pending := inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)
	pending.Status = model.StatusPending
	hostInc := model.Incident{ID: "inc-9", Kind: model.KindHost, Subject: "host-1", VMs: []string{"vm-0", "vm-1"},
		Trigger: model.TriggerPlatform, Cause: "host-hardware-fault", Status: model.StatusFiring, StartedAt: at(1)}
	plannedByEvent := inc("inc-2", model.TriggerPlatform, "platform-unplanned", 5, -1)
	plannedByEvent.Event = "VirtualMachineRebootInitiatedForPlannedMaintenance"

	for _, tc := range []struct {
		name  string
		steps []step
		want  string
	}{
		{"crash, incident, recovery: guest",
			[]step{vmState(0, model.StateCrashed, 0), incident(1, inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)),
				vmState(10, model.StateRunning, 10), incident(15, inc("inc-1", model.TriggerVM, "guest-crash", 0, 10))},
			"[0,10) guest guest-crash"},
		{"incident before the sweep sees the VM down opens the interval at the crash",
			[]step{incident(0, inc("inc-1", model.TriggerVM, "guest-crash", 0, -1))},
			""}, // VM still running in the store: no outage
		{"down with nothing to explain it: unknown, still open",
			[]step{vmState(3, model.StateShutoff, 2)},
			"[2,open) unknown "},
		{"late planned maintenance re-attributes an open interval",
			[]step{vmState(0, model.StateCrashed, 0), incident(1, inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)),
				incident(6, inc("inc-2", model.TriggerPlatform, "planned-maintenance", 5, -1))},
			"[0,open) platform-planned planned-maintenance"},
		{"late planned maintenance re-attributes a closed interval",
			[]step{vmState(0, model.StateShutoff, 0), vmState(20, model.StateRunning, 20),
				incident(60, inc("inc-2", model.TriggerPlatform, "planned-maintenance", 1, 21))},
			"[0,20) platform-planned planned-maintenance"},
		{"planned maintenance known by its event name",
			[]step{vmState(0, model.StateShutoff, 0), incident(6, plannedByEvent)},
			"[0,open) platform-planned platform-unplanned"},
		{"overlap: platform beats user beats guest",
			[]step{vmState(0, model.StateCrashed, 0),
				incident(1, inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)),
				incident(2, inc("inc-3", model.TriggerUser, "user-operation", 1, -1)),
				incident(3, inc("inc-4", model.TriggerPlatform, "platform-unplanned", 2, -1))},
			"[0,open) platform-unplanned platform-unplanned"},
		{"overlap: user beats guest",
			[]step{vmState(0, model.StateCrashed, 0),
				incident(1, inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)),
				incident(2, inc("inc-3", model.TriggerUser, "user-operation", 1, -1))},
			"[0,open) user user-operation"},
		{"a host incident names its VMs",
			[]step{vmState(0, model.StateCrashed, 0), incident(1, hostInc)},
			"[0,open) platform-unplanned host-hardware-fault"},
		{"silenced incidents still count",
			[]step{vmState(0, model.StateCrashed, 0), incident(1, silenced)},
			"[0,open) guest guest-crash"},
		{"withdrawn incident explains nothing any more",
			[]step{vmState(0, model.StateCrashed, 0), incident(0, pending), step{now: 1, inc: &pending, del: true}},
			"[0,open) unknown "},
		{"an incident resolved before the next outage does not explain it",
			[]step{vmState(0, model.StateCrashed, 0), incident(1, inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)),
				vmState(10, model.StateRunning, 10), incident(15, inc("inc-1", model.TriggerVM, "guest-crash", 0, 10)),
				vmState(30, model.StateShutoff, 30)},
			"[0,10) guest guest-crash; [30,open) unknown "},
		{"resolution closes the interval when the VM runs again",
			[]step{vmState(0, model.StateCrashed, 0), incident(1, inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)),
				step{now: 12, inc: func() *model.Incident {
					i := inc("inc-1", model.TriggerVM, "guest-crash", 0, 10)
					return &i
				}()}},
			"[0,open) guest guest-crash"}, // the store still says crashed: the VM is still down
		{"repeated sweeps and replays change nothing",
			[]step{vmState(0, model.StateCrashed, 0), vmState(1, model.StateCrashed, 0),
				incident(1, inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)),
				incident(1, inc("inc-1", model.TriggerVM, "guest-crash", 0, -1)),
				vmState(10, model.StateRunning, 10), vmState(11, model.StateRunning, 10)},
			"[0,10) guest guest-crash"},
		{"state unknown says nothing",
			[]step{vmState(0, model.StateCrashed, 0), vmState(5, model.StateUnknown, 5)},
			"[0,open) unknown "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := show(run(tc.steps)); got != tc.want {
				t.Errorf("intervals\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestIncidentOpensIntervalWhenVMDown: the incident arrives when the store
// already says the VM is down (the engine applies before it evaluates), so
// the interval starts when the VM went down, not when the incident did.
func TestIncidentOpensIntervalWhenVMDown(t *testing.T) {
	vm := model.VMStatus{ID: "vm-1", Host: "host-1", Site: "pod-a", State: model.StateCrashed, Since: at(0)}
	i := inc("inc-1", model.TriggerPlatform, "host-hardware-fault", 1, -1)
	ivs := ApplyIncident(nil, &i, false, vm, at(2))
	if got, want := show(ivs), "[0,open) platform-unplanned host-hardware-fault"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if ivs[0].Host != "host-1" || ivs[0].Site != "pod-a" || ivs[0].State != "crashed" {
		t.Errorf("interval %+v does not carry the VM's host, site and state", ivs[0])
	}
	// Resolved while the VM runs again: closed when it started running.
	vm.State, vm.Since = model.StateRunning, at(7)
	i.Status, i.ResolvedAt = model.StatusResolved, at(7)
	ivs = ApplyIncident(ivs, &i, false, vm, at(12))
	if got, want := show(ivs), "[0,7) platform-unplanned host-hardware-fault"; got != want {
		t.Fatalf("after resolution got %s, want %s", got, want)
	}
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		trig  model.Trigger
		cause string
		event string
		want  Attribution
	}{
		{model.TriggerPlatform, "host-hardware-fault", "", PlatformUnplanned},
		{model.TriggerPlatform, "planned-maintenance", "", PlatformPlanned},
		{model.TriggerPlatform, "x", "VirtualMachinePlannedFreezeStarted", PlatformPlanned},
		{model.TriggerUser, "user-operation", "VirtualMachineRedeployInitiatedByControlPlaneDueToPlannedMaintenance", User},
		{model.TriggerVM, "guest-crash", "", Guest},
		{"", "", "", Unknown},
	} {
		i := model.Incident{Trigger: tc.trig, Cause: tc.cause, Event: tc.event}
		if got := Of(&i); got != tc.want {
			t.Errorf("Of(trigger %q cause %q event %q) = %s, want %s", tc.trig, tc.cause, tc.event, got, tc.want)
		}
	}
}

// The books may read an incident change after the VM it names ran again
// (a busy consumer, a restart): the outage is still booked, from the
// incident's start to the moment the VM ran, not lost.
func TestIncidentReadAfterTheVMRanAgain(t *testing.T) {
	i := inc("inc-1", model.TriggerPlatform, "host-hardware-fault", 1, -1)
	running := model.VMStatus{ID: "vm-1", Host: "host-1", Site: "pod-a", State: model.StateRunning, Since: at(4)}
	ivs := ApplyIncident(nil, &i, false, running, at(6))
	if got, want := show(ivs), "[1,4) platform-unplanned host-hardware-fault"; got != want {
		t.Fatalf("firing incident read late: got %s, want %s", got, want)
	}
	// The same change read again, and then its resolution: nothing doubles.
	ivs = ApplyIncident(ivs, &i, false, running, at(7))
	i.Status, i.ResolvedAt = model.StatusResolved, at(9)
	ivs = ApplyIncident(ivs, &i, false, running, at(10))
	if got, want := show(ivs), "[1,4) platform-unplanned host-hardware-fault"; got != want {
		t.Fatalf("after replay and resolution: got %s, want %s", got, want)
	}
	// A VM that has run since before the incident began was never down.
	steady := model.VMStatus{ID: "vm-2", Host: "host-1", Site: "pod-a", State: model.StateRunning, Since: at(-30)}
	if got := ApplyIncident(nil, &i, false, steady, at(10)); len(got) != 0 {
		t.Fatalf("a VM running throughout got %s, want no interval", show(got))
	}
}
