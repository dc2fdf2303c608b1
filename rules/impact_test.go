package rules

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

const impactRules = `
rules:
  - name: vm-crash-service-majority-down
    scope: vm
    expr: vm.crashed && impact.max_fraction_down > 0.5
    classification: {cause: service-majority-down, trigger: vm, severity: critical}
    action: {type: notify}
  - name: host-last-in-site
    scope: host
    expr: host.facts.ecc_uncorrected > 0 && impact.last_in_site
    classification: {cause: service-last-in-site, trigger: platform, severity: high}
    action: {type: notify}
`

// fakeImpact answers from fixed values per VM and host, and records the
// queries.
type fakeImpact struct {
	vms     map[string]ImpactEnv
	hosts   map[string]ImpactEnv
	queries []ImpactQuery
}

func (f *fakeImpact) fill(q ImpactQuery, out *ImpactEnv) {
	f.queries = append(f.queries, q)
	if q.VM != "" {
		*out = f.vms[q.VM]
		return
	}
	*out = f.hosts[q.Host]
}

func TestRulesReadImpact(t *testing.T) {
	set, err := Parse("impact.yaml", []byte(impactRules))
	if err != nil {
		t.Fatal(err)
	}
	fi := &fakeImpact{
		vms:   map[string]ImpactEnv{"vm-1": {MaxFractionDown: 0.75, Services: 1}, "vm-2": {MaxFractionDown: 0.25, Services: 1}},
		hosts: map[string]ImpactEnv{"host-7": {LastInSite: true, Services: 2}},
	}
	h := newHarness(t, set)
	e, err := NewEngine(context.Background(), Options{Rules: set, Store: h.store, Clock: h.clk, Logger: slog.New(slog.DiscardHandler), Impact: fi.fill})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil), h.vm("vm-2", "host-1", model.StateCrashed, nil))
	if inc := h.one("vm-crash-service-majority-down"); inc.Subject != "vm-1" {
		t.Errorf("the majority rule fired for %s, want vm-1 (0.75 of its service down, vm-2 only 0.25)", inc.Subject)
	}
	h.observe(h.host("host-7", map[string]any{"ecc_uncorrected": 1.0}), h.host("host-8", map[string]any{"ecc_uncorrected": 1.0}))
	if inc := h.one("host-last-in-site"); inc.Subject != "host-7" {
		t.Errorf("the last-in-site rule fired for %s, want host-7", inc.Subject)
	}
	want := ImpactQuery{VM: "vm-1", Host: "host-1", Site: "pod-a", Down: true}
	if fi.queries[0] != want {
		t.Errorf("first query = %+v, want %+v", fi.queries[0], want)
	}
}

func TestImpactOnlyWhereRead(t *testing.T) {
	calls := 0
	h := newHarness(t, nil) // the default rules read no impact
	e, err := NewEngine(context.Background(), Options{Rules: h.e.Rules(), Store: h.store, Clock: h.clk, Logger: slog.New(slog.DiscardHandler),
		Impact: func(ImpactQuery, *ImpactEnv) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil), h.host("host-1", healthy()))
	if calls != 0 {
		t.Errorf("the Impact hook was called %d times for rules that do not read impact", calls)
	}
}

func TestImpactScopeErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"service scope", `
rules:
  - name: svc
    scope: service
    expr: impact.services > 0
    classification: {cause: x, trigger: platform, severity: low}
    action: {type: notify}
`, "impact is not available in this scope"},
		{"host states", `
host_states:
  - {reason: r, state: failed, when: impact.last_in_site}
`, "impact is not available in host_states"},
		{"unknown field", `
rules:
  - name: v
    scope: vm
    expr: impact.fraction > 0
    classification: {cause: x, trigger: platform, severity: low}
    action: {type: notify}
`, "fraction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// BenchmarkObserveDownVMImpact is BenchmarkObserveDownVM with a rule that
// reads impact and a hook that does not allocate: reading impact must keep
// evaluation allocation-free.
func BenchmarkObserveDownVMImpact(b *testing.B) {
	set, err := Parse("impact.yaml", []byte(impactRules))
	if err != nil {
		b.Fatal(err)
	}
	// The fleet's crashed VMs (every thousandth) are in a service that is
	// mostly down, so the rule holds for them from the start.
	fractions := map[string]float64{}
	for i := 0; i < benchVMs; i += 1000 {
		fractions[fmt.Sprintf("vm-%06d", i)] = 0.75
	}
	e, vms := benchFleetWith(b, set, func(q ImpactQuery, out *ImpactEnv) {
		out.MaxFractionDown = fractions[q.VM]
		out.Services = 1
	})
	ctx := context.Background()
	var down []model.Observation
	for _, o := range vms {
		if o.State != model.StateRunning {
			down = append(down, o)
		}
	}
	batch := make([]model.Observation, 1)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		batch[0] = down[i%len(down)]
		i++
		if err := e.Observe(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
