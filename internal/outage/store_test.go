package outage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/outage"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

func vmObs(id string, state model.State, at time.Time) model.Observation {
	return model.Observation{Source: "libvirt", Kind: model.KindVM, ID: id, Host: "host-1", Site: "pod-a",
		State: state, TimeGenerated: at, TimeReceived: at}
}

// TestBooksInRedis feeds the books from the real store: a VM crashes, its
// incident fires (silenced), the books replica stops, the VM runs again
// and the incident resolves while no replica runs; a new replica finds
// the changes on the stream and closes the interval at the recovery.
func TestBooksInRedis(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	st := storetest.New(t, store.Options{Clock: clk})
	if err := st.Apply(ctx, []model.Observation{vmObs("vm-1", model.StateCrashed, t0), vmObs("vm-2", model.StateRunning, t0)}); err != nil {
		t.Fatal(err)
	}
	inc := model.Incident{ID: "inc-1", Rule: "vm-guest-crash", Kind: model.KindVM, Subject: "vm-1", VMs: []string{"vm-1"},
		Status: model.StatusFiring, Trigger: model.TriggerVM, Cause: "guest-crash", Severity: model.SeverityMedium,
		StartedAt: t0, Silenced: true}
	if err := st.SaveIncident(ctx, &inc); err != nil {
		t.Fatal(err)
	}
	books, err := outage.New(outage.Options{Store: st, Consumer: "r1", Clock: clk, Block: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := books.Step(ctx); err != nil {
		t.Fatal(err)
	}
	ivs, err := st.Outages(ctx, "vm-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ivs) != 1 || !ivs[0].Open() || !ivs[0].Start.Equal(t0) || ivs[0].Attribution != "guest" {
		t.Fatalf("after the crash: %+v, want one open guest interval from %s", ivs, t0)
	}

	// The replica is gone; the VM runs again and the incident resolves.
	clk.Advance(7 * time.Minute)
	back := clk.Now()
	if err := st.Apply(ctx, []model.Observation{vmObs("vm-1", model.StateRunning, back)}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Minute)
	inc.Status, inc.ResolvedAt = model.StatusResolved, back
	if err := st.SaveIncident(ctx, &inc); err != nil {
		t.Fatal(err)
	}
	books2, err := outage.New(outage.Options{Store: st, Consumer: "r2", Clock: clk, Block: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := books2.Step(ctx); err != nil {
		t.Fatal(err)
	}
	ivs, _ = st.Outages(ctx, "vm-1")
	if len(ivs) != 1 || !ivs[0].End.Equal(back) || ivs[0].Attribution != "guest" || !ivs[0].Causes[0].Silenced {
		t.Fatalf("after the restart: %+v, want one guest interval closed at %s, its silenced cause kept", ivs, back)
	}
	open, err := st.OpenOutages(ctx)
	if err != nil || len(open) != 0 {
		t.Fatalf("open outages = %v, %v; want none", open, err)
	}

	between, err := st.OutagesBetween(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(between) != 1 {
		t.Fatalf("OutagesBetween = %+v, %v; want the one interval", between, err)
	}
	if later, _ := st.OutagesBetween(ctx, back.Add(time.Minute), back.Add(time.Hour)); len(later) != 0 {
		t.Errorf("OutagesBetween after the end = %+v, want none", later)
	}
	if n, _ := st.CountVMs(ctx, "pod-a"); n != 2 {
		t.Errorf("CountVMs(pod-a) = %d, want 2", n)
	}
	if m, _ := st.HostVMCounts(ctx, []string{"host-1", "host-x"}); m["host-1"] != 2 || m["host-x"] != 0 {
		t.Errorf("HostVMCounts = %v, want host-1:2 host-x:0", m)
	}
	if n, err := st.PruneOutages(ctx, back.Add(time.Second)); err != nil || n != 1 {
		t.Errorf("PruneOutages = %d, %v; want 1", n, err)
	}
	if ivs, _ := st.Outages(ctx, "vm-1"); len(ivs) != 0 {
		t.Errorf("after pruning: %+v, want none", ivs)
	}
}

// TestOutageIndexRoundTrip: the end index holds each interval's summary;
// names with the separator, escapes and spaces come back unchanged, and a
// changed attribution replaces the summary rather than adding one.
func TestOutageIndexRoundTrip(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	st := storetest.New(t, store.Options{})
	o := store.Outage{VM: "vm:1 <x>", Host: "host:%41 7", Site: "pod a:b", Start: t0, End: t0.Add(time.Minute),
		Attribution: "guest", Cause: "guest-crash:50%"}
	for _, a := range []string{"guest", "platform-planned"} {
		o.Attribution = a
		if err := st.UpdateOutages(ctx, o.VM, func([]store.Outage) ([]store.Outage, error) { return []store.Outage{o}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.OutagesBetween(ctx, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].VM != o.VM || got[0].Host != o.Host || got[0].Site != o.Site || got[0].Cause != o.Cause ||
		got[0].Attribution != "platform-planned" || !got[0].Start.Equal(o.Start) || !got[0].End.Equal(o.End) {
		t.Errorf("OutagesBetween = %+v, want %+v", got, o)
	}
	if n, err := st.PruneOutages(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("PruneOutages = %d, %v", n, err)
	}
	if left, _ := st.Outages(ctx, o.VM); len(left) != 0 {
		t.Errorf("after pruning the VM still has %+v", left)
	}
}

// TestOutagesBetweenOrder: intervals come back by VM, then start, whatever
// order their ends put them in the index, and only those overlapping the
// window.
func TestOutagesBetweenOrder(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	st := storetest.New(t, store.Options{})
	iv := func(vm string, start, end time.Duration) store.Outage {
		o := store.Outage{VM: vm, Host: "h1", Site: "pod-a", Start: t0.Add(start), Attribution: "guest"}
		if end != 0 { // zero: still open
			o.End = t0.Add(end)
		}
		return o
	}
	byVM := map[string][]store.Outage{
		"vm-b": {iv("vm-b", 0, 50*time.Minute), iv("vm-b", time.Hour, 0)},
		"vm-a": {iv("vm-a", -3*time.Hour, -2*time.Hour), iv("vm-a", 5*time.Minute, 10*time.Minute), iv("vm-a", 20*time.Minute, 90*time.Minute)},
		"vm-c": {iv("vm-c", 3*time.Hour, 4*time.Hour)},
	}
	for vm, ivs := range byVM {
		if err := st.UpdateOutages(ctx, vm, func([]store.Outage) ([]store.Outage, error) { return ivs, nil }); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.OutagesBetween(ctx, t0, t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, o := range got {
		seen = append(seen, o.VM+"@"+o.Start.Sub(t0).String())
	}
	want := []string{"vm-a@5m0s", "vm-a@20m0s", "vm-b@0s", "vm-b@1h0m0s"}
	if !slices.Equal(seen, want) {
		t.Errorf("OutagesBetween gave %v, want %v", seen, want)
	}
	if len(got) == 4 && (!got[3].Open() || got[2].Open()) {
		t.Errorf("open interval lost: %+v", got[2:])
	}
}
