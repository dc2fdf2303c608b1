package rules

import (
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

func TestHistoryHelpers(t *testing.T) {
	set, err := Parse("helpers.yaml", []byte(`
host_states:
  - {reason: hot, state: degraded, when: host.facts.temp_c >= 85}
  - {reason: mce, state: failed, when: host.facts.mce > 0}
rules:
  - name: held-degraded
    scope: host
    expr: host_held("degraded", 2)
    classification: {cause: c, trigger: platform, severity: low}
  - name: held-failed
    scope: host
    expr: host_held("failed", 2)
    classification: {cause: c, trigger: platform, severity: low}
  - name: hot-twice
    scope: host
    expr: reason_held("hot", 2)
    classification: {cause: c, trigger: platform, severity: low}
  - name: crash-loop-host
    scope: vm
    expr: vm.crashed && crashes_on_host(3) >= 3
    group_by: [host]
    classification: {cause: c, trigger: platform, severity: low}
`))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, set)
	// Period 1 hot (degraded), period 2 mce (failed): degraded-or-worse
	// held twice, failed only once, hot only once.
	h.observe(h.host("host-1", facts("temp_c", 90.0)))
	h.advance(time.Minute)
	h.observe(h.host("host-1", facts("mce", 1.0)))
	if got := h.openRules(); len(got) != 1 || got[0] != "held-degraded" {
		t.Fatalf("open %v, want [held-degraded]", got)
	}
	// Crashes on one host over three periods.
	for i, vm := range []string{"vm-1", "vm-2", "vm-3"} {
		h.advance(time.Minute)
		h.observe(h.vm(vm, "host-2", model.StateCrashed, nil))
		incs := h.incidents("crash-loop-host")
		if (i < 2) != (len(incs) == 0) {
			t.Fatalf("after %d crashes: %d crash-loop incidents", i+1, len(incs))
		}
	}
	// Re-reporting a crashed VM does not count it twice.
	h.observe(h.vm("vm-3", "host-2", model.StateCrashed, nil))
	if got := h.e.fleet.hosts["host-2"]; got.period(h.e.periodIdx(h.clk.Now())).crashes != 1 {
		t.Fatalf("crash counted twice")
	}
	if inc := h.one("crash-loop-host"); len(inc.VMs) != 1 || inc.VMs[0] != "vm-3" {
		t.Fatalf("crash loop vms %v, want [vm-3] (the older crashes were outside its window when evaluated)", inc.VMs)
	}
}
