package rules

import (
	"fmt"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

// TestGuardsNeverChangeAResult: a guard may only skip a rule whose
// expression would be false. Every vm rule of the default set, and
// expressions of tricky shapes, are run over VMs in every combination of
// state, event, staleness and host state; whenever the expression holds,
// its guards must pass.
func TestGuardsNeverChangeAResult(t *testing.T) {
	set, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	extra := []string{
		`vm.crashed || vm.event == "VirtualMachineCrashed"`,
		`!vm.crashed && vm.event == ""`,
		`vm.event in ["A", "B"] && vm.stale`,
		`"A" == vm.event && vm.down`,
		`not vm.down`,
		`vm.event != "A" && vm.running`,
		`(vm.crashed && vm.event == "") || vm.stale`,
	}
	var src string
	for i, x := range extra {
		src += fmt.Sprintf("  - {name: x%d, scope: vm, expr: '%s', classification: {cause: c, trigger: vm, severity: low}}\n", i, x)
	}
	more, err := Parse("extra.yaml", []byte("rules:\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	var rules []*Rule
	for _, s := range []*Set{set, more} {
		for _, r := range s.Rules {
			if r.Scope == ScopeVM {
				rules = append(rules, r)
			}
		}
	}
	events := []string{"", "A", "B", "Other"}
	for _, r := range rules {
		for _, g := range r.guards {
			for ev := range g.events {
				events = append(events, ev)
			}
		}
	}
	states := []model.State{model.StateRunning, model.StateCrashed, model.StateShutoff, model.StatePaused, model.StateUnavailable, model.StateUnknown}
	hostStates := []string{"healthy", "degraded", "failed", "unknown"}
	ev := newEvaluator()
	checked, held := 0, 0
	for _, r := range rules {
		for _, state := range states {
			for _, reason := range []string{"", "crashed"} {
				for _, event := range events {
					for _, stale := range []bool{false, true} {
						for _, hs := range hostStates {
							for _, known := range []bool{false, true} {
								attrs := map[string]any{}
								if reason != "" {
									attrs[model.AttrCrashReason] = reason
								}
								env := ev.env
								env.VM = VMEnv{ID: "vm-1", State: string(state), Event: event, Attrs: attrs,
									Crashed: crashedState(state, attrs), Down: state.Down(), Running: state == model.StateRunning,
									CrashReason: reason, Stale: stale}
								env.Host = HostEnv{ID: "h", State: hs, HardwareState: hs, Known: known, Facts: defaultFacts}
								ok, err := ev.run(r.prog)
								if err != nil {
									t.Fatalf("%s: %v", r.Name, err)
								}
								checked++
								if !ok {
									continue
								}
								held++
								if !guardsPass(r.guards, &env.VM) {
									t.Errorf("%s (%s) holds for %+v, but its guards rule it out", r.Name, r.Expr, env.VM)
								}
							}
						}
					}
				}
			}
		}
	}
	if held == 0 {
		t.Fatalf("no expression held in %d runs: the test checks nothing", checked)
	}
}
