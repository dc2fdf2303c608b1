package remedy

import (
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
			moves:      []Move{{"vm-1", "h-2"}, {"vm-2", "h-3"}},
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
			moves:      []Move{{"vm-small", "h-2"}},
			unplaced:   []Unplaced{{"vm-big", "fits nowhere: no eligible host in site pod-a has 16 vCPUs and 65536 MiB free"}},
		},
		{
			name:       "capacity is used up as VMs are placed, biggest first",
			vms:        []VMSize{vm("vm-1", 1, 1024), vm("vm-2", 1, 3072), vm("vm-3", 1, 1024)},
			candidates: []Candidate{healthy("h-2", 2, 4096)},
			moves:      []Move{{"vm-1", "h-2"}, {"vm-2", "h-2"}},
			unplaced:   []Unplaced{{"vm-3", "fits nowhere: no eligible host in site pod-a has 1 vCPUs and 1024 MiB free"}},
		},
		{
			name:       "cpu limits too",
			vms:        []VMSize{vm("vm-1", 4, 1024)},
			candidates: []Candidate{healthy("h-2", 2, 99999), healthy("h-3", 4, 2048)},
			moves:      []Move{{"vm-1", "h-3"}},
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
			moves:      []Move{{"vm-1", "h-4"}, {"vm-2", "h-2"}},
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

func TestPlanSteps(t *testing.T) {
	p := Plan{Host: "h-1", Moves: []Move{{"vm-1", "h-2"}}, Unplaced: []Unplaced{{"vm-2", "fits nowhere: x"}}}
	want := []model.RemedyStep{
		{Do: model.StepHostMaintenance, Host: "h-1", State: model.StepPending},
		{Do: model.StepMigrateVM, VM: "vm-1", Host: "h-1", Target: "h-2", State: model.StepPending},
		{Do: model.StepMigrateVM, VM: "vm-2", Host: "h-1", State: model.StepSkipped, Detail: "fits nowhere: x"},
	}
	if got := p.Steps(); !reflect.DeepEqual(got, want) {
		t.Errorf("steps = %+v, want %+v", got, want)
	}
}
