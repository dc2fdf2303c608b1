package rules

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// TestReplicasNeverEscalateTwice runs three engines on one Redis, as three
// replicas would: a holds the incident it created, b (started later, as
// after a restart) holds it too, and c never saw it. They tick at the same
// instants, concurrently. Every level must be raised exactly once, in
// order, whoever claims it, and the escalation schedule must end empty.
func TestReplicasNeverEscalateTwice(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := storetest.New(t, store.Options{Clock: clk})
	newEngine := func() *Engine {
		t.Helper()
		e, err := NewEngine(ctx, Options{Rules: lifecycleSet(t), Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	c := newEngine()
	a := newEngine()
	crash := []model.Observation{{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-1", Site: "pod-a",
		State: model.StateCrashed, TimeGenerated: clk.Now()}}
	if err := a.Observe(ctx, crash); err != nil {
		t.Fatal(err)
	}
	b := newEngine()
	if err := b.Observe(ctx, crash); err != nil {
		t.Fatal(err)
	}
	open, err := st.Incidents(ctx, model.IncidentFilter{Status: model.StatusFiring})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, inc := range open {
		if inc.Rule == "vm-down" {
			id = inc.ID
		}
	}
	if id == "" {
		t.Fatalf("no firing vm-down incident in %+v", open)
	}

	// The five-level policy: 0s, 1m, 2m, 3m, 4m after the previous level.
	for _, wait := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, time.Hour} {
		clk.Advance(wait)
		var wg sync.WaitGroup
		for _, e := range []*Engine{a, b, c} {
			wg.Go(func() {
				if err := e.Tick(ctx); err != nil {
					t.Errorf("Tick: %v", err)
				}
			})
		}
		wg.Wait()
	}

	inc, err := st.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Level != 5 || !slices.Equal(inc.Targets, []string{"usergroup:l5", "user:boss"}) {
		t.Fatalf("final level %d targets %v, want 5 [usergroup:l5 user:boss]", inc.Level, inc.Targets)
	}
	// Every stored change, in order: the levels must go 1, 2, 3, 4, 5.
	evs, err := st.ReadIncidentEvents(ctx, "check", "c", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var levels []int
	for _, ev := range evs {
		if ev.Incident.ID != id {
			continue
		}
		if n := len(levels); n == 0 || levels[n-1] != ev.Incident.Level {
			levels = append(levels, ev.Incident.Level)
		}
	}
	if !slices.Equal(levels, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("levels in the order stored %v, want [1 2 3 4 5] (each once)", levels)
	}
	due, err := st.ClaimDueEscalations(ctx, clk.Now().Add(24*time.Hour), 100)
	if err != nil || len(due) != 0 {
		t.Fatalf("escalations still scheduled after the last level: %v, %v", due, err)
	}
}

// TestReplicaAckStopsEscalationEverywhere: an acknowledgement taken by one
// replica stops the escalation that another would otherwise claim.
func TestReplicaAckStopsEscalationEverywhere(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := storetest.New(t, store.Options{Clock: clk})
	opts := Options{Rules: lifecycleSet(t), Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler)}
	a, err := NewEngine(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewEngine(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	crash := []model.Observation{{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-1", State: model.StateCrashed, TimeGenerated: clk.Now()}}
	if err := a.Observe(ctx, crash); err != nil {
		t.Fatal(err)
	}
	inc := a.OpenIncidents()
	if len(inc) == 0 {
		t.Fatal("no open incident")
	}
	var id string
	for _, i := range inc {
		if i.Rule == "vm-down" {
			id = i.ID
		}
	}
	if _, err := a.Ack(ctx, id, "ann"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		clk.Advance(time.Minute)
		if err := b.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Level != 1 || got.AckedBy != "ann" {
		t.Fatalf("level %d acked by %q, want level 1 acked by ann", got.Level, got.AckedBy)
	}
}

// TestEscalationByAReplicaThatDoesNotHoldTheIncident: the replica that
// claims a due level may not hold the incident (it never saw its VMs); it
// raises the stored incident all the same, and the replica that holds it
// does not undo those levels when it saves the incident later.
func TestEscalationByAReplicaThatDoesNotHoldTheIncident(t *testing.T) {
	h := newHarness(t, lifecycleSet(t)) // h.e holds the incident
	other, err := NewEngine(h.ctx, Options{Rules: lifecycleSet(t), Store: h.store, Clock: h.clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
	id := h.one("vm-down").ID
	for lvl, wait := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute} {
		h.clk.Advance(wait)
		if err := other.Tick(h.ctx); err != nil {
			t.Fatal(err)
		}
		if got := h.one("vm-down"); got.Level != lvl+2 {
			t.Fatalf("after %s: level %d, want %d", wait, got.Level, lvl+2)
		}
	}
	if len(h.store.due) != 0 {
		t.Fatalf("still scheduled after level 5: %v", h.store.due)
	}
	// The holder saves the incident (another VM joins its host): the
	// levels raised elsewhere stay.
	h.observe(h.vm("vm-1", "host-2", model.StateCrashed, nil))
	got := h.one("vm-down")
	if got.ID != id || got.Level != 5 || got.Host != "host-2" || !slices.Equal(got.Targets, []string{"usergroup:l5", "user:boss"}) {
		t.Fatalf("after the holder saved: %+v, want level 5 kept and host-2", got)
	}
	// An acknowledged incident is not raised by the other replica.
	h2 := newHarness(t, lifecycleSet(t))
	other2, err := NewEngine(h2.ctx, Options{Rules: lifecycleSet(t), Store: h2.store, Clock: h2.clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h2.observe(h2.vm("vm-1", "host-1", model.StateCrashed, nil))
	inc := h2.one("vm-down")
	inc.AckedBy = "ann" // acknowledged through the store by some other path
	if err := h2.store.SaveIncident(h2.ctx, &inc); err != nil {
		t.Fatal(err)
	}
	h2.clk.Advance(time.Minute)
	if err := other2.Tick(h2.ctx); err != nil {
		t.Fatal(err)
	}
	if got := h2.one("vm-down"); got.Level != 1 {
		t.Fatalf("an acknowledged incident was raised to level %d", got.Level)
	}
}
