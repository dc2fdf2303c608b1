package remedy

import (
	"context"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/collectors/simulate"
	"github.com/vmtriage/vmtriage/internal/model"
)

// simulatorFor builds the simulator the way the demo does.
func simulatorFor(fleet *simulate.Fleet) *Simulator {
	var vms []Target
	for _, v := range fleet.VMs() {
		vms = append(vms, Target{VM: v.ID, Host: v.Host, Site: v.Site})
	}
	sites := map[string]string{}
	for _, h := range fleet.Hosts() {
		sites[h.ID] = h.Site
	}
	return NewSimulator(vms, sites)
}

func vmObs(obs []model.Observation, id string) (model.Observation, bool) {
	for _, o := range obs {
		if o.Kind == model.KindVM && o.ID == id {
			return o, true
		}
	}
	return model.Observation{}, false
}

func TestSimulatorRestartAndMigrate(t *testing.T) {
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	fleet, err := simulate.New(simulate.Options{VMs: 8, Hosts: 4, Sites: 1, Start: start, Faults: []simulate.Fault{
		{Kind: simulate.GuestCrash, Target: "vm-0001", Start: 1, Duration: 5},
		{Kind: simulate.HostHardware, Target: "host-002", Start: 1, Duration: 5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sim := simulatorFor(fleet)
	period := func(i int) []model.Observation { return sim.Apply(fleet.Step(fleet.PeriodStart(i))) }
	ctx := context.Background()

	p1 := period(1)
	if o, _ := vmObs(p1, "vm-0001"); o.State != model.StateCrashed {
		t.Fatalf("period 1: vm-0001 is %s, want crashed (the fault)", o.State)
	}
	if o, _ := vmObs(p1, "vm-0002"); o.State != model.StateCrashed || o.Host != "host-002" {
		t.Fatalf("period 1: vm-0002 is %s on %s, want crashed on host-002", o.State, o.Host)
	}
	if err := sim.RestartVM(ctx, Target{VM: "vm-0001", Host: "host-001"}); err != nil {
		t.Fatal(err)
	}
	if err := sim.HostMaintenance(ctx, "host-002"); err != nil {
		t.Fatal(err)
	}
	if err := sim.MigrateVM(ctx, Target{VM: "vm-0002", Host: "host-002"}, "host-003"); err != nil {
		t.Fatal(err)
	}
	if err := sim.MigrateVM(ctx, Target{VM: "vm-0006", Host: "host-002"}, "host-002"); err == nil {
		t.Error("migrated onto a host in maintenance")
	}
	if err := sim.RestartVM(ctx, Target{VM: "vm-9999"}); err == nil {
		t.Error("restarted a VM the fleet does not have")
	}

	p2 := period(2)
	if o, _ := vmObs(p2, "vm-0001"); o.State != model.StateRunning || o.Attrs != nil {
		t.Errorf("after the restart vm-0001 reports %s %v, want running", o.State, o.Attrs)
	}
	if o, _ := vmObs(p2, "vm-0002"); o.State != model.StateRunning || o.Host != "host-003" {
		t.Errorf("after the move vm-0002 reports %s on %s, want running on host-003", o.State, o.Host)
	}
	if o, _ := vmObs(p2, "vm-0006"); o.State != model.StateCrashed || o.Host != "host-002" {
		t.Errorf("vm-0006 (not moved) reports %s on %s, want still crashed on host-002", o.State, o.Host)
	}
	// Long after the faults, the moved VM stays on its new host.
	if o, _ := vmObs(period(9), "vm-0002"); o.State != model.StateRunning || o.Host != "host-003" {
		t.Errorf("period 9: vm-0002 reports %s on %s", o.State, o.Host)
	}
}

// A fleet that reports only changes does not mention a VM whose raw report
// did not change; the simulator adds one so the outcome shows.
func TestSimulatorReportsWhatItTouched(t *testing.T) {
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	fleet, err := simulate.New(simulate.Options{VMs: 4, Hosts: 2, Sites: 1, Start: start, ChangesOnly: true, Faults: []simulate.Fault{
		{Kind: simulate.GuestCrash, Target: "vm-0001", Start: 1, Duration: 5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	sim := simulatorFor(fleet)
	sim.Apply(fleet.Step(fleet.PeriodStart(1)))
	if err := sim.RestartVM(context.Background(), Target{VM: "vm-0001", Host: "host-001"}); err != nil {
		t.Fatal(err)
	}
	p2 := sim.Apply(fleet.Step(fleet.PeriodStart(2)))
	o, ok := vmObs(p2, "vm-0001")
	if !ok || o.State != model.StateRunning || !o.TimeGenerated.Equal(fleet.PeriodStart(2)) {
		t.Fatalf("period 2: vm-0001 reported %v %+v, want running at the period's start", ok, o)
	}
	if err := o.Validate(fleet.PeriodStart(2)); err != nil {
		t.Errorf("added observation is invalid: %v", err)
	}
}
