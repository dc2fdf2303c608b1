package remedy

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// stuck blocks every migration until its context ends, like a replica that
// hangs and is then killed.
type stuck struct {
	DryRun
	started chan string
}

func (s *stuck) MigrateVM(ctx context.Context, t Target, to string) error {
	s.started <- t.VM
	<-ctx.Done()
	return ctx.Err()
}

// A replica dies mid-plan: another takes the remedy over once the lease
// ran out, marks the steps that were under way as of unknown outcome
// (never moving a VM twice) and finishes the rest.
func TestReplicaKilledMidPlanIsTakenOver(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	f.host(t, "host-2", model.HostHealthy, 64, 65536)
	inc := f.incident(t, hostIncident(f.vms(t, "host-1", 5)))
	m := f.manager(t, Options{})
	if _, err := m.Request(ctx, inc); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Decide(ctx, inc.ID, Approve, "U1", ""); err != nil {
		t.Fatal(err)
	}

	a := &stuck{started: make(chan string, 10)}
	xa := f.executor(t, "replica-a", a)
	actx, kill := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _, _ = xa.RunOnce(actx) }()
	for range DefaultConcurrency {
		select {
		case <-a.started:
		case <-time.After(10 * time.Second):
			t.Fatal("replica-a did not start its first batch")
		}
	}
	kill() // the replica dies: nothing after this point is recorded by it
	<-done

	r, _ := f.st.RemedyForIncident(ctx, inc.ID)
	if r.State != model.RemedyRunning || r.Owner != "replica-a" {
		t.Fatalf("after the kill: %s owned by %s", r.State, r.Owner)
	}
	b := &DryRun{}
	xb := f.executor(t, "replica-b", b)
	if n, _ := xb.RunOnce(ctx); n != 0 {
		t.Fatal("replica-b took the remedy while replica-a's lease was still valid")
	}
	f.clk.Advance(DefaultLease)
	if n, err := xb.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("takeover: %d, %v", n, err)
	}
	got := b.Calls()
	slices.Sort(got)
	if want := []string{"migrate-vm vm-4 from host-1 to host-2", "migrate-vm vm-5 from host-1 to host-2"}; !slices.Equal(got, want) {
		t.Errorf("replica-b ran %q, want only the steps not yet started %q", got, want)
	}
	r, _ = f.st.RemedyForIncident(ctx, inc.ID)
	if r.State != model.RemedyFailed || !strings.HasPrefix(r.Result, "2 moved, 3 failed (vm-1: interrupted: replica-a stopped") {
		t.Errorf("remedy %s: %s", r.State, r.Result)
	}
	audit, _ := f.st.RemedyAudit(ctx, r.ID)
	var whats []string
	for _, e := range audit {
		whats = append(whats, e.Who+" "+e.What)
	}
	if !slices.Contains(whats, "replica-b taken over from replica-a") {
		t.Errorf("audit = %q", whats)
	}
}

// gate blocks migrations until it is opened.
type gate struct {
	DryRun
	started chan string
	open    chan struct{}
}

func (g *gate) MigrateVM(ctx context.Context, t Target, to string) error {
	g.started <- t.VM
	select {
	case <-g.open:
		return g.DryRun.MigrateVM(ctx, t, to)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A step that takes longer than the lease does not let another executor
// take the remedy over: the lease is renewed while the step runs.
func TestLongStepKeepsItsLease(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	f.host(t, "host-2", model.HostHealthy, 64, 65536)
	inc := f.incident(t, hostIncident(f.vms(t, "host-1", 1)))
	m := f.manager(t, Options{})
	if _, err := m.Request(ctx, inc); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Decide(ctx, inc.ID, Approve, "U1", ""); err != nil {
		t.Fatal(err)
	}
	g := &gate{started: make(chan string, 1), open: make(chan struct{})}
	xa, err := NewExecutor(ExecutorOptions{Store: f.st, Actuator: g, Owner: "replica-a", Clock: f.clk, RenewEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := xa.RunOnce(ctx); done <- err }()
	select {
	case <-g.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the migration did not start")
	}
	f.clk.Advance(DefaultLease + time.Second) // the step outlasts the lease it started with
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _ := f.st.RemedyForIncident(ctx, inc.ID)
		if r.LeaseUntil.After(f.clk.Now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease was not renewed while the step ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b := &DryRun{}
	if n, err := f.executor(t, "replica-b", b).RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("replica-b took over a remedy whose step is still running: %d, %v", n, err)
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r, _ := f.st.RemedyForIncident(ctx, inc.ID)
	if r.State != model.RemedyDone || r.Result != "1 moved" || r.Owner != "replica-a" {
		t.Errorf("remedy %s %q owned by %s", r.State, r.Result, r.Owner)
	}
}
