package inventory

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

// fleet: payments-api has 6 instances, 3 on h1 (pod-a), 1 on h2 (pod-a),
// 2 on h3 (pod-b); ledger has 2, both on h1 (pod-a); web has 1 on h3, down
// already; vm-x on h1 belongs to no service.
func impactFixture() (*Placement, *Inventory) {
	vm := func(id, host, site string, st model.State) model.VMStatus {
		return model.VMStatus{ID: id, Host: host, Site: site, State: st}
	}
	p := NewPlacement([]model.VMStatus{
		vm("pay-1", "h1", "pod-a", model.StateRunning), vm("pay-2", "h1", "pod-a", model.StateRunning),
		vm("pay-3", "h1", "pod-a", model.StateRunning), vm("pay-4", "h2", "pod-a", model.StateRunning),
		vm("pay-5", "h3", "pod-b", model.StateRunning), vm("pay-6", "h3", "pod-b", model.StateCrashed),
		vm("led-1", "h1", "pod-a", model.StateRunning), vm("led-2", "h1", "pod-a", model.StateRunning),
		vm("web-1", "h3", "pod-b", model.StateShutoff),
		vm("vm-x", "h1", "pod-a", model.StateRunning),
	})
	rels := []model.InventoryRelation{
		r("service", "payments-api", "team", "team-pay"), r("service", "ledger", "team", "team-pay"),
		r("service", "web", "team", "team-web"),
		r("team", "team-pay", "slack_channel", "C0PAY"), r("team", "team-pay", "jira_component", "Payments"),
	}
	for _, id := range []string{"pay-1", "pay-2", "pay-3", "pay-4", "pay-5", "pay-6"} {
		rels = append(rels, r("vm", id, "service", "payments-api"))
	}
	rels = append(rels, r("vm", "led-1", "service", "ledger"), r("vm", "led-2", "service", "ledger"),
		r("vm", "web-1", "service", "web"), r("vm", "ghost", "service", "web"))
	return p, Merge(1, map[Source][]model.InventoryRelation{SourceFile: rels})
}

func impactLines(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vms=%d unowned=%v\n", rep.VMs, rep.Unowned)
	for _, s := range rep.Services {
		fmt.Fprintf(&b, "%s [hit %d, team %s]\n", s, s.Hit, s.Team)
	}
	for _, t := range rep.Teams {
		fmt.Fprintf(&b, "team %s %s: %v\n", t.Team.Name, t.Team.SlackChannel, t.Services)
	}
	return b.String()
}

func TestImpact(t *testing.T) {
	p, inv := impactFixture()
	for _, tc := range []struct {
		name  string
		fault Fault
		want  string
		max   float64
		last  bool
	}{
		{
			name:  "host failure: partial loss and total loss",
			fault: Fault{Hosts: []string{"h1"}},
			want: `vms=6 unowned=[vm-x]
ledger: 2 of 2 instances down (all); last instance in site pod-a [hit 2, team team-pay]
payments-api: 4 of 6 instances down [hit 3, team team-pay]
team team-pay C0PAY: [ledger payments-api]
`,
			max: 1, last: true,
		},
		{
			name:  "last running instance in a site, counting one already down",
			fault: Fault{VMs: []string{"pay-5"}},
			want: `vms=1 unowned=[]
payments-api: 2 of 6 instances down; last instance in site pod-b [hit 1, team team-pay]
team team-pay C0PAY: [payments-api]
`,
			max: 2.0 / 6, last: true,
		},
		{
			name:  "one of several in a site",
			fault: Fault{VMs: []string{"pay-1"}},
			want: `vms=1 unowned=[]
payments-api: 2 of 6 instances down [hit 1, team team-pay]
team team-pay C0PAY: [payments-api]
`,
			max: 2.0 / 6,
		},
		{
			name:  "site failure",
			fault: Fault{Sites: []string{"pod-b"}},
			want: `vms=3 unowned=[]
web: 1 of 2 instances down; last instance in site pod-b [hit 1, team team-web]
payments-api: 2 of 6 instances down; last instance in site pod-b [hit 2, team team-pay]
team team-pay C0PAY: [payments-api]
team team-web : [web]
`,
			max: 0.5, last: true,
		},
		{
			name:  "a hit VM the placement has down counts as running before (an incident's VMs crashed already)",
			fault: Fault{VMs: []string{"web-1"}},
			want: `vms=1 unowned=[]
web: 1 of 2 instances down; last instance in site pod-b [hit 1, team team-web]
team team-web : [web]
`,
			max: 0.5, last: true,
		},
		{
			name:  "hosts and VMs together count once",
			fault: Fault{VMs: []string{"pay-4", "pay-1"}, Hosts: []string{"h2"}},
			want: `vms=2 unowned=[]
payments-api: 3 of 6 instances down [hit 2, team team-pay]
team team-pay C0PAY: [payments-api]
`,
			max: 0.5,
		},
		{
			name:  "unowned only",
			fault: Fault{VMs: []string{"vm-x", "vm-unknown"}},
			want:  "vms=2 unowned=[vm-unknown vm-x]\n",
		},
		{
			name:  "unknown host",
			fault: Fault{Hosts: []string{"h9"}},
			want:  "vms=0 unowned=[]\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Impact(p, inv, tc.fault)
			if got := impactLines(rep); got != tc.want {
				t.Errorf("impact:\n%s\nwant:\n%s", got, tc.want)
			}
			if got := rep.MaxFractionDown(); got != tc.max {
				t.Errorf("MaxFractionDown = %v, want %v", got, tc.max)
			}
			if got := rep.LastInSite(); got != tc.last {
				t.Errorf("LastInSite = %v, want %v", got, tc.last)
			}
		})
	}
}

func TestImpactWithoutPlacement(t *testing.T) {
	_, inv := impactFixture()
	rep := Impact(nil, inv, Fault{VMs: []string{"pay-1"}, Hosts: []string{"h1"}})
	if got, want := impactLines(rep), "vms=1 unowned=[]\npayments-api: 1 of 6 instances down [hit 1, team team-pay]\nteam team-pay C0PAY: [payments-api]\n"; got != want {
		t.Errorf("impact without placement:\n%s\nwant:\n%s", got, want)
	}
}

// benchFleet is 100,000 VMs on 1,000 hosts in 10 sites, 2,000 services of
// 50 instances each, spread so that a host holds instances of 100 services.
func benchFleet() (*Placement, *Inventory) {
	const vms, hosts, sites, services = 100_000, 1_000, 10, 2_000
	status := make([]model.VMStatus, vms)
	rels := make([]model.InventoryRelation, 0, vms+services)
	for i := range vms {
		h := i % hosts
		status[i] = model.VMStatus{ID: fmt.Sprintf("vm-%06d", i), Host: fmt.Sprintf("host-%04d", h),
			Site: fmt.Sprintf("pod-%d", h%sites), State: model.StateRunning}
		rels = append(rels, r("vm", status[i].ID, "service", fmt.Sprintf("svc-%04d", (i/hosts*7+h)%services)))
	}
	for s := range services {
		rels = append(rels, r("service", fmt.Sprintf("svc-%04d", s), "team", fmt.Sprintf("team-%03d", s%150)))
	}
	return NewPlacement(status), Merge(1, map[Source][]model.InventoryRelation{SourceFile: rels})
}

// BenchmarkImpactHostFailure: a host failure in a 100,000-VM fleet with
// 2,000 services (the target is under 5 ms).
func BenchmarkImpactHostFailure(b *testing.B) {
	p, inv := benchFleet()
	f := Fault{Hosts: []string{"host-0042"}}
	rep := Impact(p, inv, f)
	if rep.VMs != 100 || len(rep.Services) == 0 {
		b.Fatalf("fixture: %d VMs, %d services hit", rep.VMs, len(rep.Services))
	}
	for b.Loop() {
		Impact(p, inv, f)
	}
	b.ReportMetric(float64(len(rep.Services)), "services")
}

func TestRuleImpactWithoutAllocating(t *testing.T) {
	p, inv := impactFixture()
	m := &Manager{}
	m.inv.Store(inv)
	m.placement.Store(p)
	for _, tc := range []struct {
		name     string
		vm, host string
		site     string
		down     bool
		frac     float64
		last     bool
		services int
	}{
		{name: "a running instance: what is down already", vm: "pay-1", site: "pod-a", frac: 1.0 / 6, services: 1},
		{name: "a crashed instance, others run in its site", vm: "pay-1", site: "pod-a", down: true, frac: 2.0 / 6, services: 1},
		{name: "the last running instance in pod-b", vm: "pay-5", site: "pod-b", down: true, frac: 2.0 / 6, last: true, services: 1},
		{name: "a VM in no service", vm: "vm-x", site: "pod-a", down: true},
		{name: "host h1 down", host: "h1", site: "pod-a", frac: 1, last: true, services: 2},
		{name: "host h2 down", host: "h2", site: "pod-a", frac: 2.0 / 6, services: 1},
		{name: "unknown host", host: "h9", site: "pod-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				frac float64
				last bool
				n    int
			)
			run := func() {
				if tc.vm != "" {
					frac, last, n = m.VMImpact(tc.vm, tc.site, tc.down)
				} else {
					frac, last, n = m.HostImpact(tc.host, tc.site)
				}
			}
			if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
				t.Errorf("%v allocations per call, want 0", allocs)
			}
			if frac != tc.frac || last != tc.last || n != tc.services {
				t.Errorf("= %v, %v, %d; want %v, %v, %d", frac, last, n, tc.frac, tc.last, tc.services)
			}
		})
	}
}
