package remedy

import (
	"context"
	"maps"
	"reflect"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

func healthy(id string, cpu, mem float64) Candidate {
	return Candidate{ID: id, Site: "pod-a", State: model.HostHealthy, CPUFree: cpu, MemFreeMB: mem, HasCapacity: true}
}

func vm(id string, cpu, mem float64) VMSize {
	return VMSize{ID: id, VCPUs: cpu, MemMB: mem, SizeKnown: true}
}

func TestPlanMigration(t *testing.T) {
	tests := []struct {
		name       string
		vms        []VMSize
		candidates []Candidate
		moves      []Move
		unplaced   []Unplaced
	}{
		{
			name:       "spreads by free memory",
			vms:        []VMSize{vm("vm-1", 2, 4096), vm("vm-2", 2, 4096)},
			candidates: []Candidate{healthy("h-2", 8, 8192), healthy("h-3", 8, 6144)},
			moves:      []Move{{VM: "vm-1", Target: "h-2"}, {VM: "vm-2", Target: "h-3"}},
		},
		{
			name: "never onto degraded, failed, unknown, silenced, planned, itself, other site or hosts without capacity",
			vms:  []VMSize{vm("vm-1", 1, 1024)},
			candidates: []Candidate{
				{ID: "h-1", Site: "pod-a", State: model.HostHealthy, CPUFree: 99, MemFreeMB: 99999, HasCapacity: true},
				{ID: "h-deg", Site: "pod-a", State: model.HostDegraded, CPUFree: 99, MemFreeMB: 99999, HasCapacity: true},
				{ID: "h-fail", Site: "pod-a", State: model.HostFailed, CPUFree: 99, MemFreeMB: 99999, HasCapacity: true},
				{ID: "h-unk", Site: "pod-a", State: model.HostUnknown, CPUFree: 99, MemFreeMB: 99999, HasCapacity: true},
				{ID: "h-sil", Site: "pod-a", State: model.HostHealthy, CPUFree: 99, MemFreeMB: 99999, HasCapacity: true, Silenced: true},
				{ID: "h-plan", Site: "pod-a", State: model.HostHealthy, CPUFree: 99, MemFreeMB: 99999, HasCapacity: true, Planned: true},
				{ID: "h-b", Site: "pod-b", State: model.HostHealthy, CPUFree: 99, MemFreeMB: 99999, HasCapacity: true},
				{ID: "h-nocap", Site: "pod-a", State: model.HostHealthy},
			},
			unplaced: []Unplaced{{"vm-1", "fits nowhere: no eligible host in site pod-a (h-deg degraded, h-fail failed, h-unk unknown, h-sil silenced, and 2 more)"}},
		},
		{
			name:       "a VM too big for any host is listed, the others still move",
			vms:        []VMSize{vm("vm-big", 16, 65536), vm("vm-small", 1, 512)},
			candidates: []Candidate{healthy("h-2", 4, 8192)},
			moves:      []Move{{VM: "vm-small", Target: "h-2"}},
			unplaced:   []Unplaced{{"vm-big", "fits nowhere: no eligible host in site pod-a has 16 vCPUs and 65536 MiB free"}},
		},
		{
			name:       "capacity is used up as VMs are placed, biggest first",
			vms:        []VMSize{vm("vm-1", 1, 1024), vm("vm-2", 1, 3072), vm("vm-3", 1, 1024)},
			candidates: []Candidate{healthy("h-2", 2, 4096)},
			moves:      []Move{{VM: "vm-1", Target: "h-2"}, {VM: "vm-2", Target: "h-2"}},
			unplaced:   []Unplaced{{"vm-3", "fits nowhere: no eligible host in site pod-a has 1 vCPUs and 1024 MiB free"}},
		},
		{
			name:       "cpu limits too",
			vms:        []VMSize{vm("vm-1", 4, 1024)},
			candidates: []Candidate{healthy("h-2", 2, 99999), healthy("h-3", 4, 2048)},
			moves:      []Move{{VM: "vm-1", Target: "h-3"}},
		},
		{
			name:     "no other host in the site",
			vms:      []VMSize{vm("vm-1", 1, 1)},
			unplaced: []Unplaced{{"vm-1", "fits nowhere: no other host in site pod-a"}},
		},
		{
			name:       "ties go to the host with more free CPU, then by name",
			vms:        []VMSize{vm("vm-1", 1, 1024), vm("vm-2", 1, 1024)},
			candidates: []Candidate{healthy("h-3", 4, 4096), healthy("h-2", 4, 4096), healthy("h-4", 8, 4096)},
			moves:      []Move{{VM: "vm-1", Target: "h-4"}, {VM: "vm-2", Target: "h-2"}},
		},
		{name: "no VMs, no moves", candidates: []Candidate{healthy("h-2", 1, 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanMigration("h-1", "pod-a", tc.vms, tc.candidates)
			if !reflect.DeepEqual(p.Moves, tc.moves) {
				t.Errorf("moves = %v, want %v", p.Moves, tc.moves)
			}
			if !reflect.DeepEqual(p.Unplaced, tc.unplaced) {
				t.Errorf("unplaced = %#v, want %#v", p.Unplaced, tc.unplaced)
			}
		})
	}
}

func grouped(id, group string) VMSize {
	v := vm(id, 1, 1024)
	v.Group = group
	return v
}

func holding(c Candidate, groups map[string]int) Candidate {
	c.Groups = groups
	return c
}

// TestPlanMigrationAntiAffinity checks that a service's instances are
// spread over target hosts before free memory decides, and that a move
// that cannot be spread says so.
func TestPlanMigrationAntiAffinity(t *testing.T) {
	tests := []struct {
		name       string
		vms        []VMSize
		candidates []Candidate
		moves      []Move
	}{
		{
			name: "instances of one service go to different hosts although one host has most room",
			vms:  []VMSize{grouped("pay-1", "payments-api"), grouped("pay-2", "payments-api"), grouped("pay-3", "payments-api")},
			candidates: []Candidate{
				healthy("h-big", 64, 262144), healthy("h-2", 4, 8192), healthy("h-3", 4, 8192),
			},
			moves: []Move{{VM: "pay-1", Target: "h-big"}, {VM: "pay-2", Target: "h-2"}, {VM: "pay-3", Target: "h-3"}},
		},
		{
			name: "a host already running an instance is avoided",
			vms:  []VMSize{grouped("pay-1", "payments-api")},
			candidates: []Candidate{
				holding(healthy("h-big", 64, 262144), map[string]int{"payments-api": 1}),
				holding(healthy("h-2", 4, 8192), map[string]int{"search": 5}),
			},
			moves: []Move{{VM: "pay-1", Target: "h-2"}},
		},
		{
			name: "when every fitting host holds an instance it still moves, to the one with fewest, and says so",
			vms:  []VMSize{grouped("pay-1", "payments-api")},
			candidates: []Candidate{
				holding(healthy("h-big", 64, 262144), map[string]int{"payments-api": 2}),
				holding(healthy("h-2", 4, 8192), map[string]int{"payments-api": 1}),
				healthy("h-tiny", 1, 512),
			},
			moves: []Move{{VM: "pay-1", Target: "h-2", Note: "shares h-2 with 1 other instance(s) of payments-api: every host it fits on already holds one"}},
		},
		{
			name: "more instances than hosts: spread evenly, the extra ones flagged",
			vms:  []VMSize{grouped("pay-1", "payments-api"), grouped("pay-2", "payments-api"), grouped("pay-3", "payments-api")},
			candidates: []Candidate{
				healthy("h-2", 8, 16384), healthy("h-3", 8, 8192),
			},
			moves: []Move{
				{VM: "pay-1", Target: "h-2"}, {VM: "pay-2", Target: "h-3"},
				{VM: "pay-3", Target: "h-2", Note: "shares h-2 with 1 other instance(s) of payments-api: every host it fits on already holds one"},
			},
		},
		{
			name: "different services and ungrouped VMs do not repel each other",
			vms:  []VMSize{grouped("pay-1", "payments-api"), grouped("web-1", "web"), vm("vm-x", 1, 1024)},
			candidates: []Candidate{
				holding(healthy("h-big", 64, 262144), map[string]int{"search": 3}), healthy("h-2", 4, 8192),
			},
			moves: []Move{{VM: "pay-1", Target: "h-big"}, {VM: "vm-x", Target: "h-big"}, {VM: "web-1", Target: "h-big"}},
		},
		{
			name: "capacity still rules: a host without room is not chosen for spreading",
			vms:  []VMSize{grouped("pay-1", "payments-api"), grouped("pay-2", "payments-api")},
			candidates: []Candidate{
				healthy("h-2", 8, 16384), healthy("h-tiny", 1, 512),
			},
			moves: []Move{
				{VM: "pay-1", Target: "h-2"},
				{VM: "pay-2", Target: "h-2", Note: "shares h-2 with 1 other instance(s) of payments-api: every host it fits on already holds one"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := make([]map[string]int, len(tc.candidates))
			for i, c := range tc.candidates {
				before[i] = maps.Clone(c.Groups)
			}
			p := PlanMigration("h-1", "pod-a", tc.vms, tc.candidates)
			if !reflect.DeepEqual(p.Moves, tc.moves) {
				t.Errorf("moves = %+v, want %+v", p.Moves, tc.moves)
			}
			if len(p.Unplaced) != 0 {
				t.Errorf("unplaced = %+v, want none", p.Unplaced)
			}
			for i, c := range tc.candidates {
				if !maps.Equal(c.Groups, before[i]) {
					t.Errorf("candidate %s groups changed to %v: the plan must not write the caller's maps", c.ID, c.Groups)
				}
			}
		})
	}
}

func TestPlanSteps(t *testing.T) {
	p := Plan{Host: "h-1", Moves: []Move{{VM: "vm-1", Target: "h-2"}, {VM: "vm-3", Target: "h-2", Note: "shares h-2"}}, Unplaced: []Unplaced{{"vm-2", "fits nowhere: x"}}}
	want := []model.RemedyStep{
		{Do: model.StepHostMaintenance, Host: "h-1", State: model.StepPending},
		{Do: model.StepMigrateVM, VM: "vm-1", Host: "h-1", Target: "h-2", State: model.StepPending},
		{Do: model.StepMigrateVM, VM: "vm-3", Host: "h-1", Target: "h-2", State: model.StepPending, Detail: "shares h-2"},
		{Do: model.StepMigrateVM, VM: "vm-2", Host: "h-1", State: model.StepSkipped, Detail: "fits nowhere: x"},
	}
	if got := p.Steps(); !reflect.DeepEqual(got, want) {
		t.Errorf("steps = %+v, want %+v", got, want)
	}
}

// serviceMap is a Services from a fixed map.
type serviceMap map[string]string

func (s serviceMap) ServiceOf(vm string) string { return s[vm] }

// TestPlanHostAntiAffinity plans from the store with the inventory's
// services: host-2 has the most room but already runs a payments-api
// instance, so the two payments-api VMs of host-1 go to host-3 and
// host-4, while the ungrouped VM still goes where room is largest.
func TestPlanHostAntiAffinity(t *testing.T) {
	f := newFixture(t)
	f.host(t, "host-1", model.HostFailed, 64, 65536)
	f.host(t, "host-2", model.HostHealthy, 64, 262144)
	f.host(t, "host-3", model.HostHealthy, 8, 16384)
	f.host(t, "host-4", model.HostHealthy, 8, 8192)
	f.vms(t, "host-1", 3)
	obs := model.Observation{Source: "test", Kind: model.KindVM, ID: "pay-0", Host: "host-2", Site: "pod-a",
		State: model.StateUp, TimeGenerated: f.clk.Now()}
	if err := f.st.Apply(context.Background(), []model.Observation{obs}); err != nil {
		t.Fatal(err)
	}
	svc := serviceMap{"vm-1": "payments-api", "vm-2": "payments-api", "pay-0": "payments-api"}
	for _, tc := range []struct {
		name     string
		services Services
		moves    []Move
	}{
		{"with the inventory", svc, []Move{{VM: "vm-1", Target: "host-3"}, {VM: "vm-2", Target: "host-4"}, {VM: "vm-3", Target: "host-2"}}},
		{"without it, room alone decides", nil, []Move{{VM: "vm-1", Target: "host-2"}, {VM: "vm-2", Target: "host-2"}, {VM: "vm-3", Target: "host-2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := f.manager(t, Options{Services: tc.services})
			p, err := m.PlanHost(context.Background(), "host-1", "pod-a", "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Moves, tc.moves) {
				t.Errorf("moves = %+v, want %+v", p.Moves, tc.moves)
			}
		})
	}
}
