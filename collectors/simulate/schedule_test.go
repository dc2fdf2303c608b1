package simulate

import (
	"reflect"
	"strings"
	"testing"
)

func TestDefaultSchedule(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		// introBy is the period by which every kind must have started.
		introBy int
	}{
		{name: "demo fleet", opts: Options{Seed: 1}, introBy: 5},
		{name: "other seed", opts: Options{Seed: 987654321}, introBy: 5},
		{name: "load test fleet", opts: Options{Seed: 2, VMs: 100_000, Hosts: 5_000, Sites: 10}, introBy: 5},
		{name: "two hosts share the opening", opts: Options{Seed: 3, VMs: 3, Hosts: 2, Sites: 1}, introBy: 12},
		{name: "one host runs the opening one by one", opts: Options{VMs: 1, Hosts: 1, Sites: 1}, introBy: 22},
		{name: "hosts without VMs are never targets", opts: Options{Seed: 4, VMs: 4, Hosts: 9, Sites: 3}, introBy: 10},
	}
	const horizon = 400
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, tc.opts)
			seen := map[FaultKind]int{}
			for _, x := range f.Schedule(0, tc.introBy) {
				seen[x.Kind]++
			}
			for _, k := range FaultKinds() {
				if seen[k] == 0 {
					t.Errorf("no %s starts in periods 0..%d: %v", k, tc.introBy-1, f.Schedule(0, tc.introBy))
				}
			}
			if got := f.Schedule(0, 1); len(got) != 0 {
				t.Errorf("period 0 injects %v; want a clean first period", got)
			}

			all := f.Schedule(0, horizon)
			again := map[FaultKind]bool{}
			for _, x := range all {
				if x.Start >= f.introLen {
					again[x.Kind] = true
				}
				checkPlaced(t, f, x)
			}
			for _, k := range FaultKinds() {
				if !again[k] {
					t.Errorf("%s never repeats within %d periods", k, horizon)
				}
			}

			for i := range horizon {
				active := f.ActiveFaults(i)
				var want []Fault
				for _, x := range all {
					if x.Active(i) {
						want = append(want, x)
					}
				}
				if !reflect.DeepEqual(active, want) {
					t.Fatalf("period %d: ActiveFaults = %v, Schedule says %v", i, active, want)
				}
				// One fault per host at a time, counting its recovery
				// period, so a guest crash is always on a healthy host and
				// each fault's effect is its own.
				busy := map[string]Fault{}
				for _, x := range all {
					if i >= x.Start && i <= x.End() {
						if other, ok := busy[x.Host]; ok {
							t.Fatalf("period %d: %q and %q overlap on %s", i, other, x, x.Host)
						}
						busy[x.Host] = x
					}
				}
			}
		})
	}
}

func checkPlaced(t *testing.T, f *Fleet, x Fault) {
	t.Helper()
	if x.Start < 0 || x.Duration < 1 || x.Host == "" || x.Site == "" {
		t.Errorf("badly placed fault %#v", x)
	}
	h, ok := f.hostIndex(x.Host)
	if !ok || h >= f.usable {
		t.Errorf("fault %q on host %s, which carries no VMs", x, x.Host)
	}
	if x.Kind.onVM() {
		j, ok := f.vmIndex(x.Target)
		if !ok || j%len(f.hostIDs) != h {
			t.Errorf("fault %q: %s is not on %s", x, x.Target, x.Host)
		}
	} else if x.Target != x.Host {
		t.Errorf("host fault %q targets %s but names host %s", x, x.Target, x.Host)
	}
	if (x.Kind == HostHardware) != (x.Hardware != "") {
		t.Errorf("fault %q: hardware %q", x, x.Hardware)
	}
	if d := x.Description(); !strings.Contains(d, x.Target) || x.String() != d {
		t.Errorf("description %q does not name the target %s", d, x.Target)
	}
}

func TestCustomSchedule(t *testing.T) {
	faults := []Fault{
		{Kind: UserRestart, Target: "vm-0004", Start: 6},
		{Kind: HostHardware, Target: "host-002", Start: 2, Duration: 2},
	}
	f := newFleet(t, Options{VMs: 10, Hosts: 3, Sites: 2, Faults: faults})
	tests := []struct {
		name     string
		from, to int
		want     []string // targets, in order of start
	}{
		{name: "everything", from: 0, to: 100, want: []string{"host-002", "vm-0004"}},
		{name: "one period", from: 2, to: 3, want: []string{"host-002"}},
		{name: "negative from", from: -5, to: 3, want: []string{"host-002"}},
		{name: "nothing", from: 3, to: 6},
		{name: "empty range", from: 6, to: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, x := range f.Schedule(tc.from, tc.to) {
				got = append(got, x.Target)
				checkPlaced(t, f, x)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Schedule(%d, %d) = %v, want %v", tc.from, tc.to, got, tc.want)
			}
		})
	}
	if got := f.ActiveFaults(6); len(got) != 1 || got[0].Host != "host-001" || got[0].Site != "pod-a" || got[0].Duration != 1 {
		t.Errorf("ActiveFaults(6) = %#v, want the restart of vm-0004 on host-001 in pod-a", got)
	}
	if got := f.ActiveFaults(7); len(got) != 0 {
		t.Errorf("ActiveFaults(7) = %v; a zero duration lasts one period", got)
	}
	if got := f.Schedule(0, 100)[0].Hardware; got != HardwareECC {
		t.Errorf("hardware defaults to %q, want ecc", got)
	}

	quiet := newFleet(t, Options{Faults: []Fault{}})
	if got := quiet.Schedule(0, 1000); len(got) != 0 {
		t.Errorf("an empty schedule injects %v", got)
	}
}

func TestDescriptions(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		want  string
	}{
		{name: "guest crash", fault: Fault{Kind: GuestCrash, Target: "vm-0042", Host: "host-003", Duration: 2},
			want: "guest crash on vm-0042 (kernel panic; host host-003 is healthy), running again after 2 periods"},
		{name: "host hardware", fault: Fault{Kind: HostHardware, Target: "host-007", Site: "pod-b", Hardware: HardwareMCE, Duration: 1},
			want: "host hardware failure on host-007 in pod-b (machine-check exceptions): its VMs crash in the same period; repaired after 1 period"},
		{name: "storage", fault: Fault{Kind: StorageUnreachable, Target: "host-012", Duration: 4},
			want: "external storage unreachable from host-012 for 4 periods in a row"},
		{name: "service", fault: Fault{Kind: ServiceDown, Target: "host-020", Site: "pod-c", Duration: 2},
			want: "libvirtd down on host-020 in pod-c (hardware healthy) for 2 periods"},
		{name: "maintenance", fault: Fault{Kind: PlannedMaintenance, Target: "vm-0101", Host: "host-002", Duration: 2},
			want: "planned maintenance reboot of vm-0101 announced by the platform (host host-002), unavailable for 2 periods"},
		{name: "restart", fault: Fault{Kind: UserRestart, Target: "vm-0203"},
			want: "user-initiated restart of vm-0203 (host unknown), unavailable for 1 period"},
		{name: "heartbeat", fault: Fault{Kind: HeartbeatLoss, Target: "vm-0304", Host: "host-005", Duration: 3},
			want: "heartbeat loss: vm-0304 (host host-005) is not reported at all for 3 periods"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fault.Description(); got != tc.want {
				t.Errorf("Description() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
