package rules

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// A rule file: host states derived per period, a rule, an inhibition and
// an escalation policy. Expressions are compiled while loading.
func ExampleParse() {
	set, err := Parse("example.yaml", []byte(`
settings:
  period: 1m

host_states:
  - reason: ecc_uncorrected
    state: failed
    when: host.facts.ecc_uncorrected > 0

rules:
  - name: vm-crash-on-failing-host
    scope: vm
    expr: vm.crashed && host.hardware_state in ["degraded", "failed"]
    group_by: [host]
    classification: {cause: host-hardware-fault, trigger: platform, severity: critical}
    action: {type: migrate-host, approval: true}
    runbook: host-hardware-fault
    summary: "{{.Count}} VM(s) crashed on {{.Host}}"

  - name: vm-guest-crash
    scope: vm
    expr: vm.crashed && host.hardware_state == "healthy"
    for: 30s
    classification: {cause: guest-crash, trigger: vm, severity: medium}
    action: {type: restart-vm}

inhibit:
  - name: host-mutes-vms
    source_rules: [vm-crash-on-failing-host]
    target_rules: [vm-guest-crash]
    equal: [host]

escalation:
  - name: critical
    severities: [critical]
    levels:
      - {wait: 0s, targets: [{channel: "#ops"}]}
      - {wait: 10m, targets: [{usergroup: oncall}, {jira-priority: Highest}]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range set.Summary() {
		fmt.Println(f)
	}
	// Output:
	// example.yaml: ok: 2 rules, 1 host states, 1 inhibit rules, 1 escalation policies, 1 settings
}

// Every problem is reported with its file, line, rule and key; expression
// errors add the column within the expression.
func ExampleParse_errors() {
	_, err := Parse("bad.yaml", []byte(`
rules:
  - name: crash
    scope: vm
    expr: vm.crashed && host.sate == "failed"
    classification: {cause: c, trigger: guest, severity: high}
    colour: red
`))
	fmt.Println(err)
	// Output:
	// bad.yaml:5: rule crash: expr: type host has no field sate (col 20)
	// bad.yaml:6: rule crash: classification.trigger: must be platform, user or vm, got "guest"
	// bad.yaml:7: rule crash: colour: unknown key (allowed: name, scope, expr, for, group_by, classification, action, runbook, summary, resolve_delay, escalation, platform_recovery)
}

// History helpers look back over the host's recent collection periods:
// host_held(state, n), reason_held(reason, n), fault_held(n) (the same
// hardware reason in each of the last n periods) and crashes_on_host(n).
// Their arguments are literals, which lets the engine compute them once
// per host and period.
func ExampleEngine_history() {
	set, err := Parse("history.yaml", []byte(`
host_states:
  - {reason: disk_errors, state: degraded, when: host.facts.disk_errors > 0}
rules:
  - name: disk-errors-persistent
    scope: host
    expr: fault_held(3) && host.vm_count > 0
    classification: {cause: disk-errors, trigger: platform, severity: high}
    action: {type: migrate-host, approval: true}
    summary: "{{.Host}}: {{.HostState}} for 3 periods"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	e, _ := NewEngine(context.Background(), Options{Rules: set, Store: newFakeStore(clk.Now), Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	_ = e.Observe(ctx, []model.Observation{{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-7", State: model.StateRunning, TimeGenerated: clk.Now()}})
	for period := 1; period <= 3; period++ {
		_ = e.Observe(ctx, []model.Observation{{Source: "prometheus", Kind: model.KindHost, ID: "host-7",
			Attrs: map[string]any{"disk_errors": 4.0}, TimeGenerated: clk.Now()}})
		fmt.Println("period", period, "open incidents:", len(e.OpenIncidents()))
		clk.Advance(time.Minute)
	}
	inc := e.OpenIncidents()[0]
	fmt.Println(inc.Rule, inc.Status, inc.Action, inc.Approval)
	fmt.Println(inc.Summary)
	// Output:
	// period 1 open incidents: 0
	// period 2 open incidents: 0
	// period 3 open incidents: 1
	// disk-errors-persistent firing migrate-host pending
	// host-7: degraded for 3 periods
}

// The engine with the default rules: a VM crash and its host's fault in
// the same collection period give one host incident, whichever arrives
// first. Any IncidentStore works (internal/store in the service).
func ExampleEngine_Observe() {
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC))
	e, err := NewEngine(context.Background(), Options{Store: newFakeStore(clk.Now), Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	_ = e.Observe(ctx, []model.Observation{
		{Source: "libvirt", Kind: model.KindVM, ID: "vm-42", Host: "host-7", Site: "pod-a", State: model.StateCrashed, TimeGenerated: clk.Now()},
		{Source: "libvirt", Kind: model.KindVM, ID: "vm-43", Host: "host-7", Site: "pod-a", State: model.StateCrashed, TimeGenerated: clk.Now()},
	})
	clk.Advance(20 * time.Second)
	_ = e.Observe(ctx, []model.Observation{
		{Source: "prometheus", Kind: model.KindHost, ID: "host-7", Site: "pod-a", Attrs: map[string]any{"ecc_uncorrected": 2.0}, TimeGenerated: clk.Now()},
	})
	for _, inc := range e.OpenIncidents() {
		fmt.Println(inc.Rule, inc.Status, inc.Severity, inc.Trigger, inc.Action, inc.Approval, inc.VMs, "level", inc.Level)
		fmt.Println(inc.Summary)
	}
	// Output:
	// vm-crash-on-failing-host firing critical platform migrate-host pending [vm-42 vm-43] level 1
	// 2 VM(s) crashed on host-7 while its hardware was failed: host fault, migrate the host's VMs (vm-42, vm-43).
}
