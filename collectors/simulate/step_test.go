package simulate

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

func TestStepDeterministic(t *testing.T) {
	tests := []struct {
		name      string
		a, b      Options
		wantEqual bool
	}{
		{name: "same seed", a: Options{Seed: 42}, b: Options{Seed: 42}, wantEqual: true},
		{name: "same seed changes only", a: Options{Seed: 7, ChangesOnly: true}, b: Options{Seed: 7, ChangesOnly: true}, wantEqual: true},
		{name: "zero seed", a: Options{}, b: Options{}, wantEqual: true},
		{name: "different seeds", a: Options{Seed: 1}, b: Options{Seed: 2}, wantEqual: false},
		{name: "different seeds, quiet fleet", a: Options{Seed: 1, Faults: []Fault{}}, b: Options{Seed: 2, Faults: []Fault{}}, wantEqual: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fa, fb := newFleet(t, tc.a), newFleet(t, tc.b)
			equal := true
			for i := range 40 {
				a, b := fa.Step(fa.PeriodStart(i)), fb.Step(fb.PeriodStart(i))
				if !reflect.DeepEqual(a, b) {
					equal = false
					if tc.wantEqual {
						t.Fatalf("period %d differs between two fleets with the same options", i)
					}
				}
			}
			if !tc.wantEqual && equal {
				t.Fatal("40 periods identical for different seeds")
			}
			if !reflect.DeepEqual(fa.Schedule(0, 100), fb.Schedule(0, 100)) != !tc.wantEqual && tc.a.Faults == nil {
				t.Errorf("schedules equal = %v, want %v", !tc.wantEqual, tc.wantEqual)
			}
		})
	}
}

// TestStepOrderIndependent proves Step keeps no history: stepping a period
// out of order, or twice, gives what stepping in order gave.
func TestStepOrderIndependent(t *testing.T) {
	f := newFleet(t, Options{Seed: 3, ChangesOnly: true})
	inOrder := make([][]model.Observation, 30)
	for i := range inOrder {
		inOrder[i] = f.Step(f.PeriodStart(i))
	}
	for _, i := range []int{29, 3, 17, 0, 3} {
		if got := f.Step(f.PeriodStart(i)); !reflect.DeepEqual(got, inOrder[i]) {
			t.Errorf("period %d stepped again differs", i)
		}
	}
}

func TestStepValid(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{name: "default", opts: Options{Seed: 11}},
		{name: "changes only", opts: Options{Seed: 11, ChangesOnly: true}},
		{name: "tiny", opts: Options{Seed: 5, VMs: 3, Hosts: 2, Sites: 1, Period: 10 * time.Second}},
		{name: "more hosts than VMs", opts: Options{Seed: 5, VMs: 4, Hosts: 9, Sites: 4}},
		{name: "custom source", opts: Options{Source: "sim-east"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, tc.opts)
			hosts := len(f.Hosts())
			for i := range 60 {
				at := f.PeriodStart(i)
				p := step(t, f, i)
				for k, o := range p.all {
					if err := o.Validate(at); err != nil {
						t.Fatalf("period %d observation %d (%s %s) invalid: %v", i, k, o.Kind, o.ID, err)
					}
					if !o.TimeGenerated.Equal(at) {
						t.Fatalf("period %d: %s time_generated %s, want %s", i, o.ID, o.TimeGenerated, at)
					}
					if o.Source != f.source {
						t.Fatalf("period %d: %s source %q", i, o.ID, o.Source)
					}
				}
				if len(p.hosts) != hosts || len(p.services) != hosts {
					t.Fatalf("period %d: %d host and %d service observations, want %d each", i, len(p.hosts), len(p.services), hosts)
				}
				if !tc.opts.ChangesOnly {
					lost := 0
					for _, x := range f.ActiveFaults(i) {
						if x.Kind == HeartbeatLoss {
							lost++
						}
					}
					if want := len(f.vmIDs) - lost; len(p.vms) != want {
						t.Fatalf("period %d: %d VM observations, want %d", i, len(p.vms), want)
					}
				}
			}
		})
	}
}

func TestStepAlignsTime(t *testing.T) {
	f := newFleet(t, Options{VMs: 2, Hosts: 1, Sites: 1, Faults: []Fault{}})
	got := f.Step(t0.Add(2*time.Minute + 17*time.Second))
	for _, o := range got {
		if want := t0.Add(2 * time.Minute); !o.TimeGenerated.Equal(want) {
			t.Fatalf("%s time_generated = %s, want the period start %s", o.ID, o.TimeGenerated, want)
		}
	}
}

// healthyFacts are the facts of a host whose hardware is fine.
var healthyFacts = map[string]any{
	model.AttrECCUncorrected:   0.0,
	model.AttrMCE:              0.0,
	model.AttrDiskErrors:       0.0,
	model.AttrNICUp:            true,
	model.AttrPSUOK:            true,
	model.AttrStorageReachable: true,
	model.AttrNetworkReachable: true,
}

func checkFacts(t *testing.T, i int, o model.Observation, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got := o.Attrs[k]; got != v {
			t.Errorf("period %d: %s %s = %v, want %v", i, o.ID, k, got, v)
		}
	}
	if o.Num(model.AttrCPUFree) <= 0 || o.Num(model.AttrMemFreeMB) <= 0 {
		t.Errorf("period %d: %s has no free capacity: %v", i, o.ID, o.Attrs)
	}
	if temp := o.Num(model.AttrTempC); temp < 30 || temp > 70 {
		t.Errorf("period %d: %s temp_c = %v", i, o.ID, temp)
	}
}

func healthyExcept(kv ...any) map[string]any {
	m := map[string]any{}
	for k, v := range healthyFacts {
		m[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func checkVM(t *testing.T, i int, p period, id string, state model.State, event, reason string) {
	t.Helper()
	o, ok := p.vms[id]
	if !ok {
		t.Errorf("period %d: %s not reported", i, id)
		return
	}
	if o.State != state || o.Event != event || o.Str(model.AttrCrashReason) != reason {
		t.Errorf("period %d: %s = state %q event %q reason %q; want %q %q %q", i, id, o.State, o.Event, o.Str(model.AttrCrashReason), state, event, reason)
	}
}

// TestFaults checks each fault kind in its start period, while it lasts,
// and in the period its target recovers. Faults start in period 2 and last
// 3 periods (2, 3, 4); period 5 is the recovery.
func TestFaults(t *testing.T) {
	const start, dur = 2, 3
	const vm, host = "vm-0013", "host-003" // vm-0013 sits on host-003 (13 mod 5 = 3)
	tests := []struct {
		name  string
		fault Fault
		// during checks one period in which the fault is active.
		during func(t *testing.T, i int, p period)
		// after checks the recovery period.
		after func(t *testing.T, i int, p period)
	}{
		{
			name:  "guest crash on a healthy host",
			fault: Fault{Kind: GuestCrash, Target: vm},
			during: func(t *testing.T, i int, p period) {
				checkVM(t, i, p, vm, model.StateCrashed, "", CrashReasonPanicked)
				checkFacts(t, i, p.hosts[host], healthyFacts)
				if p.full {
					checkVM(t, i, p, "vm-0003", model.StateRunning, "", "") // its neighbour on host-003
				}
			},
			after: func(t *testing.T, i int, p period) { checkVM(t, i, p, vm, model.StateRunning, "", "") },
		},
		hostHardware(HardwareECC, healthyExcept(model.AttrECCUncorrected, nil)),
		hostHardware(HardwareMCE, healthyExcept(model.AttrMCE, nil)),
		hostHardware(HardwareDisk, healthyExcept(model.AttrDiskErrors, nil)),
		hostHardware(HardwareNIC, healthyExcept(model.AttrNICUp, false, model.AttrNetworkReachable, false)),
		hostHardware(HardwarePSU, healthyExcept(model.AttrPSUOK, false)),
		{
			name:  "external storage unreachable",
			fault: Fault{Kind: StorageUnreachable, Target: host},
			during: func(t *testing.T, i int, p period) {
				checkFacts(t, i, p.hosts[host], healthyExcept(model.AttrStorageReachable, false))
				if p.full {
					checkVM(t, i, p, vm, model.StateRunning, "", "") // VMs keep running
				}
			},
			after: func(t *testing.T, i int, p period) { checkFacts(t, i, p.hosts[host], healthyFacts) },
		},
		{
			name:  "libvirtd down on healthy hardware",
			fault: Fault{Kind: ServiceDown, Target: host},
			during: func(t *testing.T, i int, p period) {
				if s := p.services[host]; s.State != model.StateDown || s.ID != ServiceLibvirtd {
					t.Errorf("period %d: %s service %s = %s, want libvirtd down", i, host, s.ID, s.State)
				}
				if s := p.services["host-004"]; s.State != model.StateUp {
					t.Errorf("period %d: host-004 libvirtd = %s, want up", i, s.State)
				}
				checkFacts(t, i, p.hosts[host], healthyFacts)
			},
			after: func(t *testing.T, i int, p period) {
				if s := p.services[host]; s.State != model.StateUp {
					t.Errorf("period %d: %s libvirtd = %s, want up again", i, host, s.State)
				}
			},
		},
		{
			name:  "planned maintenance reboot",
			fault: Fault{Kind: PlannedMaintenance, Target: vm},
			during: func(t *testing.T, i int, p period) {
				checkVM(t, i, p, vm, model.StateUnavailable, EventPlannedMaintenance, "")
				checkFacts(t, i, p.hosts[host], healthyFacts)
			},
			after: func(t *testing.T, i int, p period) { checkVM(t, i, p, vm, model.StateRunning, "", "") },
		},
		{
			name:  "user-initiated restart",
			fault: Fault{Kind: UserRestart, Target: vm},
			during: func(t *testing.T, i int, p period) {
				checkVM(t, i, p, vm, model.StateUnavailable, EventUserRestart, "")
			},
			after: func(t *testing.T, i int, p period) { checkVM(t, i, p, vm, model.StateRunning, "", "") },
		},
		{
			name:  "heartbeat loss",
			fault: Fault{Kind: HeartbeatLoss, Target: vm},
			during: func(t *testing.T, i int, p period) {
				if o, ok := p.vms[vm]; ok {
					t.Errorf("period %d: %s reported (%s) during its heartbeat loss", i, vm, o.State)
				}
				if p.full {
					checkVM(t, i, p, "vm-0003", model.StateRunning, "", "")
				}
			},
			after: func(t *testing.T, i int, p period) { checkVM(t, i, p, vm, model.StateRunning, "", "") },
		},
	}
	for _, tc := range tests {
		for _, changesOnly := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/changes_only=%v", tc.name, changesOnly), func(t *testing.T) {
				tc.fault.Start, tc.fault.Duration = start, dur
				f := newFleet(t, Options{VMs: 25, Hosts: 5, Sites: 2, ChangesOnly: changesOnly, Faults: []Fault{tc.fault}})
				for i := range start + dur + 2 {
					p := step(t, f, i)
					active := f.ActiveFaults(i)
					switch {
					case i < start || i > start+dur:
						if len(active) != 0 {
							t.Errorf("period %d: active faults %v, want none", i, active)
						}
						for id, h := range p.hosts {
							checkFacts(t, i, h, healthyFacts)
							if s := p.services[id]; s.State != model.StateUp {
								t.Errorf("period %d: %s libvirtd %s", i, id, s.State)
							}
						}
						for id, o := range p.vms {
							if o.State != model.StateRunning || o.Event != "" || len(o.Attrs) != 0 {
								t.Errorf("period %d: %s = %s %q %v, want running", i, id, o.State, o.Event, o.Attrs)
							}
						}
						if changesOnly && i > 0 && len(p.vms) != 0 {
							t.Errorf("period %d: %d VMs reported though nothing changed", i, len(p.vms))
						}
					case i < start+dur:
						if len(active) != 1 || active[0].Kind != tc.fault.Kind || active[0].Host == "" {
							t.Errorf("period %d: active faults %v, want the %s", i, active, tc.fault.Kind)
						}
						if changesOnly && i > start {
							// Nothing changed since the start period.
							if len(p.vms) != 0 {
								t.Errorf("period %d: %d VMs reported though nothing changed", i, len(p.vms))
							}
							continue
						}
						tc.during(t, i, p)
					default: // i == start+dur: recovery
						if len(active) != 0 {
							t.Errorf("period %d: active faults %v after the duration", i, active)
						}
						tc.after(t, i, p)
					}
				}
			})
		}
	}
}

// hostHardware is the test case for one failing part: the host's facts turn
// bad and all its VMs crash in the very same period, and none elsewhere.
func hostHardware(hw Hardware, bad map[string]any) struct {
	name   string
	fault  Fault
	during func(t *testing.T, i int, p period)
	after  func(t *testing.T, i int, p period)
} {
	const host = "host-003"
	onHost := []string{"vm-0003", "vm-0008", "vm-0013", "vm-0018", "vm-0023"}
	return struct {
		name   string
		fault  Fault
		during func(t *testing.T, i int, p period)
		after  func(t *testing.T, i int, p period)
	}{
		name:  "host hardware " + string(hw),
		fault: Fault{Kind: HostHardware, Target: host, Hardware: hw},
		during: func(t *testing.T, i int, p period) {
			h := p.hosts[host]
			var want map[string]any
			for k, v := range bad {
				if v == nil {
					// A count: any positive number is a failure.
					if h.Num(k) <= 0 {
						t.Errorf("period %d: %s %s = %v, want > 0", i, host, k, h.Attrs[k])
					}
					continue
				}
				if want == nil {
					want = map[string]any{}
				}
				want[k] = v
			}
			checkFacts(t, i, h, want)
			for _, id := range onHost {
				checkVM(t, i, p, id, model.StateCrashed, "", CrashReasonUnknown)
			}
			crashed := 0
			for _, o := range p.vms {
				if o.State == model.StateCrashed {
					crashed++
				}
			}
			if crashed != len(onHost) {
				t.Errorf("period %d: %d VMs crashed, want only the %d on %s", i, crashed, len(onHost), host)
			}
			if s := p.services[host]; s.State != model.StateUp {
				t.Errorf("period %d: libvirtd %s on the failing host", i, s.State)
			}
		},
		after: func(t *testing.T, i int, p period) {
			checkFacts(t, i, p.hosts[host], healthyFacts)
			for _, id := range onHost {
				checkVM(t, i, p, id, model.StateRunning, "", "")
			}
		},
	}
}

// TestStorageConsecutive checks the property rules over external storage
// rely on: exactly Duration consecutive periods with storage_reachable=false.
func TestStorageConsecutive(t *testing.T) {
	tests := []struct {
		name            string
		start, duration int
	}{
		{name: "from period 0", start: 0, duration: 3},
		{name: "five periods", start: 4, duration: 5},
		{name: "zero duration is one period", start: 1, duration: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, Options{VMs: 10, Hosts: 2, Sites: 1, Faults: []Fault{{Kind: StorageUnreachable, Target: "host-002", Start: tc.start, Duration: tc.duration}}})
			var bad []int
			for i := range 15 {
				p := step(t, f, i)
				h1, h2 := p.hosts["host-001"], p.hosts["host-002"]
				if ok, _ := h2.Bool(model.AttrStorageReachable); !ok {
					bad = append(bad, i)
				}
				if ok, _ := h1.Bool(model.AttrStorageReachable); !ok {
					t.Errorf("period %d: host-001 lost storage too", i)
				}
			}
			var want []int
			for i := tc.start; i < tc.start+max(tc.duration, 1); i++ {
				want = append(want, i)
			}
			if !reflect.DeepEqual(bad, want) {
				t.Errorf("storage unreachable in periods %v, want %v", bad, want)
			}
		})
	}
}

func TestChangesOnly(t *testing.T) {
	f := newFleet(t, Options{VMs: 20, Hosts: 4, Sites: 2, ChangesOnly: true, Faults: []Fault{
		{Kind: GuestCrash, Target: "vm-0001", Start: 2, Duration: 1},
		{Kind: HostHardware, Target: "host-002", Start: 3, Duration: 2, Hardware: HardwareMCE},
		{Kind: HeartbeatLoss, Target: "vm-0020", Start: 3, Duration: 2},
	}})
	tests := []struct {
		name   string
		period int
		want   map[string]model.State // the VMs reported, and their state
	}{
		{name: "before period 0 everything is reported", period: -1, want: nil},
		{name: "period 0 reports every VM", period: 0},
		{name: "quiet period reports no VM", period: 1, want: map[string]model.State{}},
		{name: "crash", period: 2, want: map[string]model.State{"vm-0001": model.StateCrashed}},
		{name: "recovery, host failure and heartbeat loss", period: 3, want: map[string]model.State{
			"vm-0001": model.StateRunning, "vm-0002": model.StateCrashed, "vm-0006": model.StateCrashed,
			"vm-0010": model.StateCrashed, "vm-0014": model.StateCrashed, "vm-0018": model.StateCrashed,
		}},
		{name: "still failing: nothing new", period: 4, want: map[string]model.State{}},
		{name: "host repaired, heartbeat back", period: 5, want: map[string]model.State{
			"vm-0002": model.StateRunning, "vm-0006": model.StateRunning, "vm-0010": model.StateRunning,
			"vm-0014": model.StateRunning, "vm-0018": model.StateRunning, "vm-0020": model.StateRunning,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := step(t, f, tc.period)
			if len(p.hosts) != 4 || len(p.services) != 4 {
				t.Errorf("%d hosts and %d services reported, want 4 each every period", len(p.hosts), len(p.services))
			}
			if tc.want == nil {
				if len(p.vms) != 20 {
					t.Errorf("%d VMs reported, want all 20", len(p.vms))
				}
				return
			}
			got := map[string]model.State{}
			for id, o := range p.vms {
				got[id] = o.State
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("VMs reported = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestOverlappingVMFaults checks the precedence a hand-written schedule gets
// when it puts several faults on one VM.
func TestOverlappingVMFaults(t *testing.T) {
	f := newFleet(t, Options{VMs: 4, Hosts: 2, Sites: 1, Faults: []Fault{
		{Kind: UserRestart, Target: "vm-0001", Start: 1, Duration: 4},
		{Kind: GuestCrash, Target: "vm-0001", Start: 2, Duration: 1},
		{Kind: HeartbeatLoss, Target: "vm-0001", Start: 3, Duration: 1},
		{Kind: HostHardware, Target: "host-001", Start: 4, Duration: 1},
	}})
	tests := []struct {
		name   string
		period int
		state  model.State // "" = not reported
		event  string
	}{
		{name: "restart alone", period: 1, state: model.StateUnavailable, event: EventUserRestart},
		{name: "crash beats restart", period: 2, state: model.StateCrashed},
		{name: "heartbeat loss beats all", period: 3},
		{name: "host failure beats restart", period: 4, state: model.StateCrashed},
		{name: "all over", period: 5, state: model.StateRunning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := step(t, f, tc.period).vms["vm-0001"]
			switch {
			case tc.state == "" && ok:
				t.Errorf("reported as %s, want absent", o.State)
			case tc.state != "" && (!ok || o.State != tc.state || o.Event != tc.event):
				t.Errorf("= %v %s %q, want %s %q", ok, o.State, o.Event, tc.state, tc.event)
			}
		})
	}
}

// TestStepConcurrent lets the race detector check that Step shares nothing
// mutable: the demo's Run and a test's narration step the same fleet.
func TestStepConcurrent(t *testing.T) {
	f := newFleet(t, Options{Seed: 8, VMs: 200, Hosts: 10, ChangesOnly: true})
	want := f.Step(f.PeriodStart(2))
	done := make(chan []model.Observation)
	for range 4 {
		go func() {
			got := f.Step(f.PeriodStart(2))
			for k := range got {
				_ = got[k].Validate(got[k].TimeGenerated) // writes attrs in place
			}
			f.ActiveFaults(2)
			done <- got
		}()
	}
	for range 4 {
		if got := <-done; !reflect.DeepEqual(got, want) {
			t.Error("concurrent Step differs")
		}
	}
}
