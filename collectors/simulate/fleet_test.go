package simulate

import (
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// t0 is an aligned period start used as period 0 throughout the tests.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newFleet(t testing.TB, opts Options) *Fleet {
	t.Helper()
	if opts.Start.IsZero() {
		opts.Start = t0
	}
	f, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

// period is one stepped period, indexed by what tests look up.
type period struct {
	all      []model.Observation
	full     bool // every VM is reported, not only the changed ones
	hosts    map[string]model.Observation
	services map[string]model.Observation // by host
	vms      map[string]model.Observation
}

func step(t testing.TB, f *Fleet, i int) period {
	t.Helper()
	p := period{
		all:      f.Step(f.PeriodStart(i)),
		full:     !f.changesOnly || i <= 0,
		hosts:    map[string]model.Observation{},
		services: map[string]model.Observation{},
		vms:      map[string]model.Observation{},
	}
	for _, o := range p.all {
		var m map[string]model.Observation
		key := o.ID
		switch o.Kind {
		case model.KindHost:
			m = p.hosts
		case model.KindService:
			m, key = p.services, o.Host
		case model.KindVM:
			m = p.vms
		}
		if _, dup := m[key]; dup {
			t.Fatalf("period %d: %s %s reported twice", i, o.Kind, key)
		}
		m[key] = o
	}
	return p
}

func TestNewDefaults(t *testing.T) {
	f := newFleet(t, Options{})
	vms, hosts, sites := f.VMs(), f.Hosts(), f.Sites()
	if len(vms) != DefaultVMs || len(hosts) != DefaultHosts || len(sites) != DefaultSites {
		t.Fatalf("sizes = %d VMs, %d hosts, %d sites; want %d, %d, %d", len(vms), len(hosts), len(sites), DefaultVMs, DefaultHosts, DefaultSites)
	}
	if f.Period() != DefaultPeriod {
		t.Errorf("Period() = %s, want %s", f.Period(), DefaultPeriod)
	}
	if got := strings.Join(sites, ","); got != "pod-a,pod-b,pod-c" {
		t.Errorf("Sites() = %s", got)
	}
	if vms[0].ID != "vm-0001" || vms[999].ID != "vm-1000" || hosts[0].ID != "host-001" || hosts[49].ID != "host-050" {
		t.Errorf("names = %s..%s, %s..%s", vms[0].ID, vms[999].ID, hosts[0].ID, hosts[49].ID)
	}
	perSite := map[string]int{}
	for _, h := range hosts {
		perSite[h.Site]++
		if len(h.VMs) != 20 {
			t.Errorf("%s carries %d VMs, want 20 (round-robin)", h.ID, len(h.VMs))
		}
		used := 0
		for _, id := range h.VMs {
			j, _ := f.vmIndex(id)
			if vms[j].Host != h.ID || vms[j].Site != h.Site {
				t.Errorf("%s listed on %s but placed on %s/%s", id, h.ID, vms[j].Host, vms[j].Site)
			}
			used += vms[j].VCPUs
		}
		if h.VCPUs <= used || h.MemoryMB <= 0 {
			t.Errorf("%s: %d vCPUs for %d allocated, %d MiB", h.ID, h.VCPUs, used, h.MemoryMB)
		}
	}
	for _, s := range sites {
		if perSite[s] < 16 || perSite[s] > 17 {
			t.Errorf("site %s has %d hosts, want 16 or 17", s, perSite[s])
		}
	}
}

func TestNewStartDefaultsToClock(t *testing.T) {
	fake := clock.NewFake(t0.Add(90 * time.Second))
	f, err := New(Options{Clock: fake, Faults: []Fault{}})
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Minute); !f.Start().Equal(want) {
		t.Errorf("Start() = %s, want the clock's period %s", f.Start(), want)
	}
}

func TestNaming(t *testing.T) {
	tests := []struct {
		name                   string
		vms, hosts, sites      int
		lastVM, lastHost, site string
	}{
		{name: "small", vms: 7, hosts: 2, sites: 1, lastVM: "vm-0007", lastHost: "host-002", site: "pod-a"},
		{name: "load test", vms: 100_000, hosts: 5_000, sites: 30, lastVM: "vm-100000", lastHost: "host-5000", site: "pod-ad"},
		{name: "many sites", vms: 30, hosts: 28, sites: 28, lastVM: "vm-0030", lastHost: "host-028", site: "pod-ab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, Options{VMs: tc.vms, Hosts: tc.hosts, Sites: tc.sites})
			vms, hosts, sites := f.VMs(), f.Hosts(), f.Sites()
			if got := vms[len(vms)-1].ID; got != tc.lastVM {
				t.Errorf("last VM = %s, want %s", got, tc.lastVM)
			}
			if got := hosts[len(hosts)-1].ID; got != tc.lastHost {
				t.Errorf("last host = %s, want %s", got, tc.lastHost)
			}
			if got := sites[len(sites)-1]; got != tc.site {
				t.Errorf("last site = %s, want %s", got, tc.site)
			}
			for i := 1; i < len(vms); i++ {
				if vms[i-1].ID >= vms[i].ID {
					t.Fatalf("VM names do not sort by number: %s before %s", vms[i-1].ID, vms[i].ID)
				}
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string // substrings of the error
	}{
		{name: "negative sizes", opts: Options{VMs: -1, Hosts: -2}, want: []string{"vms -1 is negative", "hosts -2 is negative"}},
		{name: "negative period", opts: Options{Period: -time.Second}, want: []string{"period -1s is negative"}},
		{name: "bad source", opts: Options{Source: "my sim"}, want: []string{"source", "whitespace"}},
		{name: "unknown kind", opts: Options{Faults: []Fault{{Kind: "meteor", Target: "host-001"}}}, want: []string{`kind "meteor" is not one of`}},
		{name: "VM fault on a host", opts: Options{Faults: []Fault{{Kind: GuestCrash, Target: "host-001"}}}, want: []string{`target "host-001" is not a VM`}},
		{name: "host fault on a VM", opts: Options{Faults: []Fault{{Kind: ServiceDown, Target: "vm-0001"}}}, want: []string{`target "vm-0001" is not a host`}},
		{name: "no such VM", opts: Options{Faults: []Fault{{Kind: GuestCrash, Target: "vm-1001"}}}, want: []string{`"vm-1001" is not a VM`}},
		{name: "unpadded name", opts: Options{Faults: []Fault{{Kind: GuestCrash, Target: "vm-1"}}}, want: []string{`"vm-1" is not a VM`}},
		{name: "negative start and duration", opts: Options{Faults: []Fault{{Kind: UserRestart, Target: "vm-0001", Start: -1, Duration: -2}}}, want: []string{"start -1 is negative", "duration -2 is negative"}},
		{name: "unknown hardware", opts: Options{Faults: []Fault{{Kind: HostHardware, Target: "host-001", Hardware: "gpu"}}}, want: []string{`hardware "gpu" is not one of`}},
		{name: "hardware on another kind", opts: Options{Faults: []Fault{{Kind: StorageUnreachable, Target: "host-001", Hardware: HardwareNIC}}}, want: []string{"only applies to host-hardware"}},
		{name: "every bad fault is listed", opts: Options{Faults: []Fault{
			{Kind: GuestCrash, Target: "vm-0001"},
			{Kind: GuestCrash, Target: "nope"},
			{Kind: HeartbeatLoss, Target: "nada"},
		}}, want: []string{`fault 1 (guest-crash on "nope")`, `fault 2 (heartbeat-loss on "nada")`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Start = t0
			f, err := New(tc.opts)
			if err == nil {
				t.Fatalf("New = %v, want an error", f)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestIndex(t *testing.T) {
	f := newFleet(t, Options{Faults: []Fault{}})
	tests := []struct {
		name string
		t    time.Time
		want int
	}{
		{name: "start", t: t0, want: 0},
		{name: "inside period 0", t: t0.Add(59 * time.Second), want: 0},
		{name: "period 3", t: t0.Add(3 * time.Minute), want: 3},
		{name: "just before start", t: t0.Add(-time.Nanosecond), want: -1},
		{name: "two before start", t: t0.Add(-2 * time.Minute), want: -2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.Index(tc.t); got != tc.want {
				t.Errorf("Index(%s) = %d, want %d", tc.t, got, tc.want)
			}
		})
	}
}
