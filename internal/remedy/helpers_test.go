package remedy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC)

// fixture is a store on real Redis holding a small site: host-1 failing
// with vm-1..vm-n on it, and healthy hosts with capacity.
type fixture struct {
	st  *store.Store
	clk *clock.Fake
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newBenchFixture(t)
}

// newBenchFixture is newFixture for tests and benchmarks alike.
func newBenchFixture(tb testing.TB) *fixture {
	tb.Helper()
	clk := clock.NewFake(t0)
	return &fixture{st: storetest.New(tb, store.Options{Clock: clk}), clk: clk}
}

// host stores a host of pod-a in a derived state with free capacity.
func (f *fixture) host(t testing.TB, id string, state model.HostState, cpu, mem float64) {
	t.Helper()
	ctx := context.Background()
	o := model.Observation{Source: "test", Kind: model.KindHost, ID: id, Site: "pod-a", State: model.StateUp,
		Attrs: map[string]any{model.AttrCPUFree: cpu, model.AttrMemFreeMB: mem}, TimeGenerated: f.clk.Now()}
	if err := f.st.Apply(ctx, []model.Observation{o}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SaveHostPeriod(ctx, id, model.HostPeriod{Start: f.clk.Now(), State: state}); err != nil {
		t.Fatal(err)
	}
}

// vms stores n VMs on host, vm-<host>-1..n, each of 1 vCPU and 1024 MiB.
func (f *fixture) vms(t testing.TB, host string, n int) []string {
	t.Helper()
	var obs []model.Observation
	var ids []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("vm-%d", i)
		ids = append(ids, id)
		obs = append(obs, model.Observation{Source: "test", Kind: model.KindVM, ID: id, Host: host, Site: "pod-a",
			State: model.StateCrashed, Attrs: map[string]any{"vcpus": 1.0, "memory_mb": 1024.0}, TimeGenerated: f.clk.Now()})
	}
	if err := f.st.Apply(context.Background(), obs); err != nil {
		t.Fatal(err)
	}
	return ids
}

// incident stores a firing incident.
func (f *fixture) incident(t testing.TB, inc model.Incident) model.Incident {
	t.Helper()
	ctx := context.Background()
	id, err := f.st.NextIncidentID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inc.ID, inc.Fingerprint, inc.Status, inc.StartedAt = id, "fp-"+id, model.StatusFiring, f.clk.Now()
	if err := f.st.SaveIncident(ctx, &inc); err != nil {
		t.Fatal(err)
	}
	return inc
}

func hostIncident(vms []string) model.Incident {
	return model.Incident{Rule: "vm-crash-on-failing-host", Severity: model.SeverityCritical, Cause: "host-hardware-fault",
		Action: model.ActionMigrateHost, Approval: model.ApprovalPending, Kind: model.KindHost, Subject: "host-1",
		Host: "host-1", Site: "pod-a", VMs: vms}
}

func (f *fixture) manager(t *testing.T, o Options) *Manager {
	t.Helper()
	o.Store, o.Clock = f.st, f.clk
	if o.Approvers == nil {
		o.Approvers = []string{"U1", "U2"}
	}
	m, err := NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) executor(t *testing.T, owner string, a Actuator) *Executor {
	t.Helper()
	x, err := NewExecutor(ExecutorOptions{Store: f.st, Actuator: a, Owner: owner, Clock: f.clk})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func (f *fixture) remedy(t *testing.T, id string) model.Remedy {
	t.Helper()
	r, err := f.st.Remedy(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) storedIncident(t *testing.T, id string) model.Incident {
	t.Helper()
	inc, err := f.st.Incident(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return inc
}
