package remedy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

func TestRequestPlansAndWaitsForApproval(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	f.host(t, "host-2", model.HostHealthy, 2, 2048)
	f.host(t, "host-3", model.HostDegraded, 64, 65536)
	vms := f.vms(t, "host-1", 3)
	inc := f.incident(t, hostIncident(vms))
	m := f.manager(t, Options{})

	r, err := m.Request(ctx, inc)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != model.RemedyAwaiting || r.ApprovalsNeeded != 1 || !r.ExpiresAt.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("remedy = %+v, want awaiting one approval until 10:30", r)
	}
	if got := PlanText(r.Steps); got != "vm-1 → host-2, vm-2 → host-2; fits nowhere: vm-3" {
		t.Errorf("plan = %q", got)
	}
	again, err := m.Request(ctx, inc)
	if err != nil || again.ID != r.ID {
		t.Errorf("second request = %s, %v; want the same remedy %s", again.ID, err, r.ID)
	}
	stored := f.storedIncident(t, inc.ID)
	if stored.Approval != model.ApprovalPending || !strings.Contains(stored.Remedy, "awaiting approval (0 of 1)") ||
		!strings.Contains(stored.Remedy, "fits nowhere: vm-3") {
		t.Errorf("incident shows approval %q, remedy %q", stored.Approval, stored.Remedy)
	}
}

func TestApprovalIsCheckedAndAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	f.host(t, "host-2", model.HostHealthy, 8, 8192)
	inc := f.incident(t, hostIncident(f.vms(t, "host-1", 2)))
	m := f.manager(t, Options{TwoApprovers: true})
	if _, err := m.Request(ctx, inc); err != nil {
		t.Fatal(err)
	}
	var re *RefusedError
	if _, err := m.Decide(ctx, inc.ID, Approve, "U-stranger", ""); !errors.As(err, &re) {
		t.Fatalf("a stranger's approval: err = %v, want a refusal", err)
	}
	r, err := m.Decide(ctx, inc.ID, Approve, "U1", "")
	if err != nil || r.State != model.RemedyAwaiting {
		t.Fatalf("first approval: %v, state %s; want awaiting the second", err, r.State)
	}
	if _, err := m.Decide(ctx, inc.ID, Approve, "U1", ""); !errors.As(err, &re) || !strings.Contains(re.Msg, "already approved") {
		t.Fatalf("same approver twice: err = %v", err)
	}
	r, err = m.Decide(ctx, r.ID, Approve, "U2", "")
	if err != nil || r.State != model.RemedyApproved {
		t.Fatalf("second approval: %v, state %s", err, r.State)
	}
	if _, err := m.Decide(ctx, inc.ID, Deny, "U2", "too late"); !errors.As(err, &re) || !strings.Contains(re.Msg, "already approved") {
		t.Fatalf("deny after approval: err = %v", err)
	}
	if got := f.storedIncident(t, inc.ID); got.Approval != model.ApprovalApproved || !strings.Contains(got.Remedy, "approved by U1, U2") {
		t.Errorf("incident: approval %q remedy %q", got.Approval, got.Remedy)
	}
	audit, err := f.st.RemedyAudit(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, a := range audit {
		whats = append(whats, a.Who+" "+a.What)
	}
	want := []string{"vmtriage requested migrate 2 VM(s) off host-1", "U1 approved (1 of 2)", "U1 approve refused",
		"U2 approved (2 of 2)", "U2 deny refused"}
	if !slices.Equal(whats, want) {
		t.Errorf("audit = %q, want %q", whats, want)
	}
}

func TestApprovalExpires(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	inc := f.incident(t, hostIncident(f.vms(t, "host-1", 1)))
	m := f.manager(t, Options{ApprovalTimeout: 10 * time.Minute})
	r, err := m.Request(ctx, inc)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(9 * time.Minute)
	if n, err := m.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("ExpireDue before the time = %d, %v", n, err)
	}
	f.clk.Advance(time.Minute)
	if n, err := m.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireDue at the time = %d, %v; want 1", n, err)
	}
	if got := f.remedy(t, r.ID); got.State != model.RemedyExpired {
		t.Errorf("state = %s, want expired", got.State)
	}
	if got := f.storedIncident(t, inc.ID); got.Approval != model.ApprovalExpired || !strings.Contains(got.Remedy, "nothing was done") {
		t.Errorf("incident: approval %q remedy %q", got.Approval, got.Remedy)
	}
	var re *RefusedError
	if _, err := m.Decide(ctx, inc.ID, Approve, "U1", ""); !errors.As(err, &re) || !strings.Contains(re.Msg, "expired") {
		t.Errorf("approve after expiry: err = %v", err)
	}
	x := f.executor(t, "x1", &DryRun{})
	if n, err := x.RunOnce(ctx); err != nil || n != 0 {
		t.Errorf("executor ran %d expired remedies (%v)", n, err)
	}
}

func TestDenyNeedsReason(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	inc := f.incident(t, hostIncident(f.vms(t, "host-1", 1)))
	m := f.manager(t, Options{})
	if _, err := m.Request(ctx, inc); err != nil {
		t.Fatal(err)
	}
	var re *RefusedError
	if _, err := m.Decide(ctx, inc.ID, Deny, "U1", ""); !errors.As(err, &re) {
		t.Fatalf("deny without reason: %v", err)
	}
	r, err := m.Decide(ctx, inc.ID, Deny, "U1", "it is a sensor glitch")
	if err != nil || r.State != model.RemedyDenied {
		t.Fatalf("deny: %v, %s", err, r.State)
	}
	if got := f.storedIncident(t, inc.ID); got.Approval != model.ApprovalDenied || !strings.Contains(got.Remedy, "denied by U1: it is a sensor glitch") {
		t.Errorf("incident: approval %q remedy %q", got.Approval, got.Remedy)
	}
}

// Two executors (two replicas) poll the same store at once; every step of
// the approved remedy runs exactly once.
func TestTwoExecutorsRunARemedyOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	f.host(t, "host-2", model.HostHealthy, 64, 65536)
	f.host(t, "host-3", model.HostHealthy, 64, 65536)
	inc := f.incident(t, hostIncident(f.vms(t, "host-1", 7)))
	m := f.manager(t, Options{})
	if _, err := m.Request(ctx, inc); err != nil {
		t.Fatal(err)
	}
	// Two approvers click at once: one approval wins, the other is told.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, u := range []string{"U1", "U2"} {
		wg.Go(func() { _, errs[i] = m.Decide(ctx, inc.ID, Approve, u, "") })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("concurrent approvals: errs = %v; want exactly one accepted", errs)
	}
	d1, d2 := &DryRun{}, &DryRun{}
	x1, x2 := f.executor(t, "replica-1", d1), f.executor(t, "replica-2", d2)
	for range 3 {
		wg.Go(func() { _, _ = x1.RunOnce(ctx) })
		wg.Go(func() { _, _ = x2.RunOnce(ctx) })
	}
	wg.Wait()
	calls := append(d1.Calls(), d2.Calls()...)
	if len(calls) != 8 {
		t.Fatalf("calls = %q; want maintenance plus 7 moves, once each", calls)
	}
	if len(d1.Calls()) > 0 && len(d2.Calls()) > 0 {
		t.Errorf("both executors acted: %q and %q", d1.Calls(), d2.Calls())
	}
	slices.Sort(calls)
	if len(slices.Compact(calls)) != 8 {
		t.Errorf("a step ran twice: %q", calls)
	}
	r, _ := f.st.RemedyForIncident(ctx, inc.ID)
	if r.State != model.RemedyDone || r.Result != "7 moved" {
		t.Errorf("remedy %s: %s", r.State, r.Result)
	}
	if got := f.storedIncident(t, inc.ID); !strings.Contains(got.Remedy, "done: 7 moved") {
		t.Errorf("incident remedy = %q", got.Remedy)
	}
	// Running the executors again finds nothing to do.
	if n, err := x1.RunOnce(ctx); err != nil || n != 0 {
		t.Errorf("rerun = %d, %v", n, err)
	}
}

func TestNoApprovalNeededRunsAtOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostHealthy, 8, 8192)
	f.vms(t, "host-1", 1)
	inc := f.incident(t, model.Incident{Rule: "guest-crash", Action: model.ActionRestartVM, Approval: model.ApprovalNotRequired,
		Kind: model.KindVM, Subject: "vm-1", Host: "host-1", Site: "pod-a", VMs: []string{"vm-1"}})
	m := f.manager(t, Options{})
	if err := m.HandleIncident(ctx, inc); err != nil {
		t.Fatal(err)
	}
	d := &DryRun{}
	if n, err := f.executor(t, "x", d).RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if got := d.Calls(); !slices.Equal(got, []string{"restart-vm vm-1 on host-1"}) {
		t.Errorf("calls = %q", got)
	}
	if got := f.storedIncident(t, inc.ID); got.Approval != model.ApprovalNotRequired || got.Remedy != "rem-1 done: 1 done" {
		t.Errorf("incident: %q %q", got.Approval, got.Remedy)
	}
}

// recovering says every VM is being recovered by the platform.
type recovering struct{}

func (recovering) PlatformRecovery(vm string) (string, bool) { return "inc-77", true }

func TestPlatformRecoveryBlocksManualAction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	f.host(t, "host-2", model.HostHealthy, 8, 8192)
	inc := f.incident(t, hostIncident(f.vms(t, "host-1", 1)))
	m := f.manager(t, Options{Recovery: recovering{}})
	if _, err := m.Request(ctx, inc); err != nil {
		t.Fatal(err)
	}
	var re *RefusedError
	if _, err := m.Decide(ctx, inc.ID, Approve, "U1", ""); !errors.As(err, &re) || !strings.Contains(re.Msg, "inc-77") {
		t.Fatalf("approve during platform recovery: %v", err)
	}
	// Approved before the platform started: the executor skips the VM.
	m2 := f.manager(t, Options{})
	if _, err := m2.Decide(ctx, inc.ID, Approve, "U1", ""); err != nil {
		t.Fatal(err)
	}
	d := &DryRun{}
	x, _ := NewExecutor(ExecutorOptions{Store: f.st, Actuator: d, Owner: "x", Clock: f.clk, Recovery: recovering{}})
	if _, err := x.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := f.st.RemedyForIncident(ctx, inc.ID)
	if r.Result != "0 moved, 1 skipped (vm-1: platform recovery in progress (inc-77))" {
		t.Errorf("result = %q", r.Result)
	}
}

// An incident that resolves before anyone approved its remedy withdraws
// it: approving afterwards is refused and nothing runs.
func TestResolvedIncidentWithdrawsItsRemedy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	f.host(t, "host-2", model.HostHealthy, 8, 8192)
	inc := f.incident(t, hostIncident(f.vms(t, "host-1", 1)))
	m := f.manager(t, Options{})
	if err := m.HandleIncident(ctx, inc); err != nil {
		t.Fatal(err)
	}
	stored := f.storedIncident(t, inc.ID)
	stored.Status, stored.ResolvedAt = model.StatusResolved, f.clk.Now()
	if err := f.st.SaveIncident(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	var re *RefusedError
	if _, err := m.Decide(ctx, inc.ID, Approve, "U1", ""); !errors.As(err, &re) || !strings.Contains(re.Msg, "is resolved") {
		t.Fatalf("approve after resolution: %v", err)
	}
	if err := m.HandleIncident(ctx, f.storedIncident(t, inc.ID)); err != nil { // the resolved event, late
		t.Fatal(err)
	}
	r, _ := f.st.RemedyForIncident(ctx, inc.ID)
	if r.State != model.RemedyExpired || !strings.HasPrefix(Summary(r), r.ID+" withdrawn: the incident resolved") {
		t.Errorf("remedy %s: %q", r.State, Summary(r))
	}
	if got := f.storedIncident(t, inc.ID); got.Approval != model.ApprovalExpired {
		t.Errorf("incident approval = %s", got.Approval)
	}
	if n, _ := f.executor(t, "x", &DryRun{}).RunOnce(ctx); n != 0 {
		t.Errorf("a withdrawn remedy ran")
	}
}

// An old "firing" event of an incident that has resolved since (a first
// start reading the stream from its beginning) requests nothing.
func TestStaleFiringEventRequestsNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostHealthy, 8, 8192)
	f.vms(t, "host-1", 1)
	inc := f.incident(t, model.Incident{Rule: "guest-crash", Action: model.ActionRestartVM, Approval: model.ApprovalNotRequired,
		Kind: model.KindVM, Subject: "vm-1", Host: "host-1", Site: "pod-a", VMs: []string{"vm-1"}})
	firing := inc
	inc.Status, inc.ResolvedAt = model.StatusResolved, f.clk.Now()
	if err := f.st.SaveIncident(ctx, &inc); err != nil {
		t.Fatal(err)
	}
	m := f.manager(t, Options{})
	if err := m.HandleIncident(ctx, firing); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.RemedyForIncident(ctx, inc.ID); err == nil {
		t.Error("a remedy was requested for an incident that is resolved now")
	}
	if n, _ := f.executor(t, "x", &DryRun{}).RunOnce(ctx); n != 0 {
		t.Error("something ran")
	}
}
