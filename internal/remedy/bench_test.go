package remedy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// BenchmarkPlanMigration plans moving 60 VMs off a host in a site of 500
// hosts, a large pod.
func BenchmarkPlanMigration(b *testing.B) {
	vms := make([]VMSize, 60)
	for i := range vms {
		vms[i] = VMSize{ID: fmt.Sprintf("vm-%03d", i), VCPUs: float64(1 + i%8), MemMB: float64(1024 * (1 + i%16)), SizeKnown: true}
	}
	cands := make([]Candidate, 500)
	for i := range cands {
		state := model.HostHealthy
		if i%10 == 0 {
			state = model.HostDegraded
		}
		cands[i] = Candidate{ID: fmt.Sprintf("host-%03d", i), Site: "pod-a", State: state,
			CPUFree: float64(i % 32), MemFreeMB: float64(2048 * (i % 40)), HasCapacity: true}
	}
	b.ReportAllocs()
	for b.Loop() {
		p := PlanMigration("host-000", "pod-a", vms, cands)
		if len(p.Moves)+len(p.Unplaced) != len(vms) {
			b.Fatal("lost a VM")
		}
	}
}

// BenchmarkPlanMigrationAntiAffinity is BenchmarkPlanMigration with every
// VM in one of 10 services and every candidate already running instances
// of 3 of them, so anti-affinity weighs in on each choice.
func BenchmarkPlanMigrationAntiAffinity(b *testing.B) {
	vms := make([]VMSize, 60)
	for i := range vms {
		vms[i] = VMSize{ID: fmt.Sprintf("vm-%03d", i), VCPUs: float64(1 + i%8), MemMB: float64(1024 * (1 + i%16)),
			SizeKnown: true, Group: fmt.Sprintf("svc-%d", i%10)}
	}
	cands := make([]Candidate, 500)
	for i := range cands {
		cands[i] = Candidate{ID: fmt.Sprintf("host-%03d", i), Site: "pod-a", State: model.HostHealthy,
			CPUFree: float64(i % 32), MemFreeMB: float64(2048 * (i % 40)), HasCapacity: true,
			Groups: map[string]int{fmt.Sprintf("svc-%d", i%10): 1, fmt.Sprintf("svc-%d", (i+3)%10): 2, fmt.Sprintf("svc-%d", (i+7)%10): 1}}
	}
	b.ReportAllocs()
	for b.Loop() {
		p := PlanMigration("host-000", "pod-a", vms, cands)
		if len(p.Moves)+len(p.Unplaced) != len(vms) {
			b.Fatal("lost a VM")
		}
	}
}

// BenchmarkRemedyLifecycle measures the Redis side of one remedy's life:
// request (plan from the store), approve, claim and run with the dry run.
func BenchmarkRemedyLifecycle(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	for _, h := range []struct {
		id    string
		state model.HostState
	}{{"host-1", model.HostFailed}, {"host-2", model.HostHealthy}, {"host-3", model.HostHealthy}} {
		f.host(b, h.id, h.state, 64, 65536)
	}
	f.vms(b, "host-1", 3)
	m, err := NewManager(Options{Store: f.st, Clock: f.clk, Approvers: []string{"U1"}})
	if err != nil {
		b.Fatal(err)
	}
	x, err := NewExecutor(ExecutorOptions{Store: f.st, Actuator: &DryRun{}, Owner: "x", Clock: f.clk})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		inc := f.incident(b, hostIncident([]string{"vm-1", "vm-2", "vm-3"}))
		if _, err := m.Request(ctx, inc); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Decide(ctx, inc.ID, Approve, "U1", ""); err != nil {
			b.Fatal(err)
		}
		if n, err := x.RunOnce(ctx); err != nil || n != 1 {
			b.Fatalf("RunOnce = %d, %v", n, err)
		}
		// Resolve it, so open incidents do not pile up across iterations.
		done, err := f.st.Incident(ctx, inc.ID)
		if err != nil {
			b.Fatal(err)
		}
		done.Status, done.ResolvedAt = model.StatusResolved, f.clk.Now()
		if err := f.st.SaveIncident(ctx, &done); err != nil {
			b.Fatal(err)
		}
		f.clk.Advance(time.Millisecond)
	}
}
