package rules

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// TestSilenceLifecycle follows one silence from creation to expiry with
// the lifecycle rules (vm-down: critical, five levels, the first at 0s).
func TestSilenceLifecycle(t *testing.T) {
	tests := []struct {
		name string
		// end ends the silence: at its end time or by expiring it.
		end func(h *harness, sil model.Silence)
	}{
		{name: "expired by hand", end: func(h *harness, sil model.Silence) {
			h.clk.Advance(10 * time.Minute)
			if err := h.e.ExpireSilence(h.ctx, sil.ID, "alice"); err != nil {
				h.t.Fatal(err)
			}
		}},
		{name: "runs out at its end", end: func(h *harness, sil model.Silence) {
			h.clk.Advance(sil.EndsAt.Sub(h.clk.Now()))
			h.tick()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, lifecycleSet(t))
			sil, err := h.e.AddSilence(h.ctx, model.Silence{Host: "host-1", EndsAt: t0.Add(time.Hour), Author: "alice", Comment: "firmware update"})
			if err != nil {
				t.Fatal(err)
			}
			list := h.e.Silences()
			if len(list) != 1 || list[0].ID != sil.ID || list[0].Author != "alice" || list[0].Comment != "firmware update" ||
				!list[0].StartsAt.Equal(t0) || !list[0].CreatedAt.Equal(t0) || !list[0].EndsAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("Silences() = %+v, want the one silence as created", list)
			}
			if got := h.store.silences[sil.ID]; got != list[0] {
				t.Fatalf("stored silence %+v, want %+v", got, list[0])
			}
			h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil), h.vm("vm-9", "host-9", model.StateCrashed, nil))
			for _, inc := range h.incidents("vm-down") {
				silenced := inc.Subject == "vm-1"
				if inc.Silenced != silenced || inc.Status != model.StatusFiring {
					t.Errorf("%s: silenced %v status %s, want silenced %v and firing (recorded)", inc.Subject, inc.Silenced, inc.Status, silenced)
				}
				if silenced && inc.Level != 0 {
					t.Errorf("silenced incident escalated to level %d", inc.Level)
				}
			}
			// A restarted engine knows the silence from the store.
			e2, err := NewEngine(h.ctx, Options{Rules: lifecycleSet(t), Store: h.store, Clock: h.clk, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if got := e2.Silences(); len(got) != 1 || got[0].ID != sil.ID {
				t.Fatalf("restarted engine's silences %+v, want %s", got, sil.ID)
			}
			h.e = e2
			h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil), h.vm("vm-2", "host-1", model.StateCrashed, nil))
			for _, inc := range h.incidents("vm-down") {
				if inc.Host == "host-1" && !inc.Silenced {
					t.Errorf("%s on the silenced host is not silenced after the restart", inc.Subject)
				}
			}

			tc.end(h, sil)
			if got := h.e.Silences(); len(got) != 1 || !got[0].EndsAt.Equal(h.clk.Now()) || got[0].Active(h.clk.Now()) {
				t.Fatalf("after the end: %+v, want it listed, ended now", got)
			}
			for _, inc := range h.incidents("vm-down") {
				if inc.Host != "host-1" {
					continue
				}
				if inc.Silenced || inc.Level != 1 {
					t.Errorf("%s: silenced %v level %d after the silence ended, want heard and escalating (level 1)", inc.Subject, inc.Silenced, inc.Level)
				}
			}
			// A day after its end the silence is forgotten.
			h.advance(24*time.Hour + time.Minute)
			if got := h.e.Silences(); len(got) != 0 {
				t.Fatalf("a day after the end: %+v, want none", got)
			}
		})
	}
}

func TestAddSilenceRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		s    model.Silence
	}{
		{name: "matches nothing", s: model.Silence{EndsAt: t0.Add(time.Hour), Author: "a"}},
		{name: "ends before it starts", s: model.Silence{VM: "vm-1", StartsAt: t0.Add(time.Hour), EndsAt: t0, Author: "a"}},
		{name: "ends when it starts", s: model.Silence{VM: "vm-1", StartsAt: t0, EndsAt: t0, Author: "a"}},
		{name: "already over (no end given)", s: model.Silence{VM: "vm-1", Author: "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, lifecycleSet(t))
			if _, err := h.e.AddSilence(h.ctx, tc.s); err == nil {
				t.Fatal("accepted")
			}
			if len(h.store.silences) != 0 || len(h.e.Silences()) != 0 {
				t.Fatal("a refused silence was kept")
			}
		})
	}
}

// TestSilenceOnRedis: a silence lives in Redis, so another engine (a
// restart or a replica) applies it, and a silenced incident and its
// resolution are recorded there.
func TestSilenceOnRedis(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := storetest.New(t, store.Options{Clock: clk})
	opts := Options{Rules: lifecycleSet(t), Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler)}
	a, err := NewEngine(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	sil, err := a.AddSilence(ctx, model.Silence{Rule: "vm-down", EndsAt: t0.Add(time.Hour), Author: "bob", Comment: "noisy"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewEngine(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	obs := func(state model.State) []model.Observation {
		return []model.Observation{{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-1", State: state, TimeGenerated: clk.Now()}}
	}
	if err := b.Observe(ctx, obs(model.StateCrashed)); err != nil {
		t.Fatal(err)
	}
	incs, err := st.Incidents(ctx, model.IncidentFilter{VM: "vm-1"})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, inc := range incs {
		if inc.Rule == "vm-down" {
			id = inc.ID
			if !inc.Silenced || inc.Level != 0 {
				t.Fatalf("stored incident silenced %v level %d, want silenced at level 0", inc.Silenced, inc.Level)
			}
		}
	}
	if id == "" {
		t.Fatalf("no vm-down incident stored: %+v", incs)
	}
	clk.Advance(time.Minute)
	if err := b.Observe(ctx, obs(model.StateRunning)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(6 * time.Minute)
	if err := b.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	inc, err := st.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != model.StatusResolved || inc.ResolvedAt.IsZero() || !inc.Silenced {
		t.Fatalf("silenced incident after recovery: %s resolved at %s silenced %v, want its resolution recorded", inc.Status, inc.ResolvedAt, inc.Silenced)
	}
	if err := b.ExpireSilence(ctx, sil.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Silences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || !stored[0].EndsAt.Equal(clk.Now()) || stored[0].Author != "bob" || stored[0].Comment != "noisy" {
		t.Fatalf("stored silences %+v, want %s ended now", stored, sil.ID)
	}
}
