package rules

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// TestSupersededPendingIsNoIncident: a pending incident whose condition
// stops holding (or is taken over by another rule) before its "for" ran
// out never fired, so it never was an incident. It must not be listed at
// all — least of all as "resolved".
func TestSupersededPendingIsNoIncident(t *testing.T) {
	crashed, running := model.StateCrashed, model.StateRunning
	tests := []struct {
		name string
		run  func(h *harness)
		// gone must leave no stored incident; kept must be stored (and
		// what it must be).
		gone []string
		kept map[string]model.Status
	}{
		{
			name: "host unknown, then the host's fault claims the VM",
			run: func(h *harness) {
				// The host is known (its VMs report it) but sent no facts
				// for the period of the crash.
				h.observe(h.vm("vm-1", "host-1", crashed, nil), h.vm("vm-2", "host-1", running, nil))
				if got := h.one("vm-crash-host-unknown"); got.Status != model.StatusPending {
					h.t.Fatalf("vm-crash-host-unknown is %s, want pending", got.Status)
				}
				h.clk.Advance(20 * time.Second)
				h.observe(h.host("host-1", facts("mce", 1.0)))
				h.advance(3 * time.Minute)
			},
			gone: []string{"vm-crash-host-unknown", "vm-guest-crash"},
			kept: map[string]model.Status{"vm-crash-on-failing-host": model.StatusFiring},
		},
		{
			name: "host unknown, then healthy facts make it a guest crash",
			run: func(h *harness) {
				h.observe(h.vm("vm-1", "host-1", crashed, nil))
				h.clk.Advance(20 * time.Second)
				h.observe(h.host("host-1", healthy()))
				h.advance(3 * time.Minute)
			},
			gone: []string{"vm-crash-host-unknown", "vm-crash-on-failing-host"},
			kept: map[string]model.Status{"vm-guest-crash": model.StatusFiring},
		},
		{
			name: "guest crash pending, then a fault later in the period",
			run: func(h *harness) {
				h.observe(h.host("host-1", healthy()), h.vm("vm-1", "host-1", crashed, nil))
				h.clk.Advance(10 * time.Second)
				h.observe(h.host("host-1", facts("ecc_uncorrected", 1.0)))
				h.advance(3 * time.Minute)
			},
			gone: []string{"vm-guest-crash", "vm-crash-host-unknown"},
			kept: map[string]model.Status{"vm-crash-on-failing-host": model.StatusFiring},
		},
		{
			name: "host unknown, then the VM runs again",
			run: func(h *harness) {
				h.observe(h.vm("vm-1", "host-1", crashed, nil))
				h.clk.Advance(time.Minute)
				h.observe(h.vm("vm-1", "host-1", running, nil))
				h.advance(time.Hour)
			},
			gone: []string{"vm-crash-host-unknown", "vm-guest-crash", "vm-crash-on-failing-host"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			tc.run(h)
			h.none(tc.gone...)
			for rule, status := range tc.kept {
				if got := h.one(rule); got.Status != status {
					t.Errorf("%s is %s, want %s", rule, got.Status, status)
				}
			}
			for _, inc := range h.store.all() {
				if inc.Status == model.StatusResolved && inc.FiringAt.IsZero() {
					t.Errorf("incident %s (%s) is listed as resolved but never fired", inc.ID, inc.Rule)
				}
			}
		})
	}
}

// TestSupersededPendingOnRedis is the reported bug end to end: what GET
// /v1/incidents lists (store.Incidents) after a pending
// vm-crash-host-unknown is absorbed by the host incident.
func TestSupersededPendingOnRedis(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := storetest.New(t, store.Options{Clock: clk})
	e, err := NewEngine(ctx, Options{Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	vm := func(id string, state model.State) model.Observation {
		return model.Observation{Source: "libvirt", Kind: model.KindVM, ID: id, Host: "host-1", Site: "pod-a", State: state, TimeGenerated: clk.Now()}
	}
	if err := e.Observe(ctx, []model.Observation{vm("vm-1", model.StateCrashed), vm("vm-2", model.StateRunning)}); err != nil {
		t.Fatal(err)
	}
	pending, err := st.Incidents(ctx, model.IncidentFilter{Status: model.StatusPending})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Rule != "vm-crash-host-unknown" {
		t.Fatalf("pending incidents %+v, want the one vm-crash-host-unknown", pending)
	}
	clk.Advance(20 * time.Second)
	host := model.Observation{Source: "prometheus", Kind: model.KindHost, ID: "host-1", Site: "pod-a",
		Attrs: map[string]any{"mce": 1.0}, TimeGenerated: clk.Now()}
	if err := e.Observe(ctx, []model.Observation{host}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Minute)
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := st.Incidents(ctx, model.IncidentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Rule != "vm-crash-on-failing-host" || all[0].Status != model.StatusFiring {
		t.Fatalf("listed incidents %+v, want only the firing host incident", all)
	}
	if _, err := st.Incident(ctx, pending[0].ID); err == nil {
		t.Fatalf("the withdrawn incident %s can still be read", pending[0].ID)
	}
	if _, err := st.IncidentByFingerprint(ctx, pending[0].Fingerprint); err == nil {
		t.Fatalf("the withdrawn incident is still found by its fingerprint")
	}
}

// TestWithdraw covers the lifecycle around a withdrawn pending incident
// (vm-slow: "for" 2m, resolve delay 5m, reopen window 1h).
func TestWithdraw(t *testing.T) {
	crash := func(h *harness) { h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil)) }
	run := func(h *harness) { h.observe(h.vm("vm-1", "host-1", model.StateRunning, nil)) }
	tests := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{
			name: "cleared before its for: gone, with a final snapshot, and no escalation",
			run: func(t *testing.T, h *harness) {
				crash(h)
				id := h.one("vm-slow").ID
				h.advance(time.Minute)
				run(h)
				h.none("vm-slow")
				if len(h.store.deleted) != 1 || h.store.deleted[0].ID != id || h.store.deleted[0].Status != model.StatusResolved {
					t.Fatalf("deleted snapshots %+v, want %s's, resolved", h.store.deleted, id)
				}
				if _, ok := h.e.Incident(id); ok {
					t.Error("the engine still holds the withdrawn incident")
				}
				if _, err := h.e.Ack(h.ctx, id, "ann"); err == nil {
					t.Error("ack of a withdrawn incident succeeded")
				}
			},
		},
		{
			name: "a recurrence after the withdrawal is a new incident",
			run: func(t *testing.T, h *harness) {
				crash(h)
				first := h.one("vm-slow").ID
				h.advance(time.Minute)
				run(h)
				h.advance(time.Minute)
				crash(h)
				inc := h.one("vm-slow")
				if inc.ID == first || inc.Status != model.StatusPending || inc.Reopened != 0 {
					t.Fatalf("recurrence %+v, want a new pending incident (not %s reopened)", inc, first)
				}
				h.advance(2 * time.Minute)
				if got := h.one("vm-slow"); got.Status != model.StatusFiring {
					t.Fatalf("recurrence is %s after its for, want firing", got.Status)
				}
			},
		},
		{
			name: "cleared and back within one batch: still the one pending incident",
			run: func(t *testing.T, h *harness) {
				crash(h)
				first := h.one("vm-slow").ID
				h.clk.Advance(time.Minute)
				h.observe(h.vm("vm-1", "host-1", model.StateRunning, nil), h.vm("vm-1", "host-1", model.StateCrashed, nil))
				inc := h.one("vm-slow")
				if inc.ID != first || inc.Status != model.StatusPending {
					t.Fatalf("got %+v, want %s pending", inc, first)
				}
				// Its "for" counts from when the condition held again.
				h.advance(time.Minute + 30*time.Second)
				if got := h.one("vm-slow"); got.Status != model.StatusPending {
					t.Fatalf("fired %s after the condition came back, want pending until 2m", got.Status)
				}
				h.advance(30 * time.Second)
				if got := h.one("vm-slow"); got.Status != model.StatusFiring {
					t.Fatalf("got %s, want firing", got.Status)
				}
			},
		},
		{
			name: "a recurrence that reopened a resolved incident, cleared before its for, leaves it as it was",
			run: func(t *testing.T, h *harness) {
				crash(h)
				h.advance(2 * time.Minute)
				run(h)
				h.advance(6 * time.Minute)
				resolved := h.one("vm-slow")
				if resolved.Status != model.StatusResolved || resolved.FiringAt.IsZero() {
					t.Fatalf("got %+v, want a resolved incident that fired", resolved)
				}
				h.advance(10 * time.Minute)
				saves := len(h.store.history)
				crash(h)
				// Waiting out its "for", the recurrence is not told to
				// anyone: the stored incident stays resolved.
				if got := h.one("vm-slow"); !reflect.DeepEqual(got, resolved) {
					t.Fatalf("stored during the recurrence's for: %+v, want it unchanged: %+v", got, resolved)
				}
				h.advance(time.Minute)
				run(h)
				h.advance(time.Hour)
				if got := h.one("vm-slow"); !reflect.DeepEqual(got, resolved) {
					t.Fatalf("after the recurrence cleared: %+v, want it unchanged: %+v", got, resolved)
				}
				for _, inc := range h.store.history[saves:] {
					if inc.ID == resolved.ID {
						t.Errorf("the recurrence that never fired was saved: %+v", inc)
					}
				}
				if len(h.store.deleted) != 0 {
					t.Fatalf("an incident that fired was deleted: %+v", h.store.deleted)
				}
			},
		},
		{
			name: "a recurrence within the reopen window that fires reopens the incident",
			run: func(t *testing.T, h *harness) {
				crash(h)
				h.advance(2 * time.Minute)
				run(h)
				h.advance(6 * time.Minute)
				resolved := h.one("vm-slow")
				h.advance(10 * time.Minute)
				crash(h)
				h.advance(time.Minute)
				if got := h.one("vm-slow"); got.Status != model.StatusResolved {
					t.Fatalf("reopened before the recurrence fired: %s", got.Status)
				}
				h.advance(time.Minute)
				got := h.one("vm-slow")
				if got.ID != resolved.ID || got.Status != model.StatusFiring || got.Reopened != 1 || !got.ResolvedAt.IsZero() ||
					!got.FiringAt.Equal(h.clk.Now()) {
					t.Fatalf("after the recurrence's for: %+v, want %s reopened and firing now", got, resolved.ID)
				}
			},
		},
		{
			name: "a failed delete is retried, and the incident stays out of sight meanwhile",
			run: func(t *testing.T, h *harness) {
				crash(h)
				h.advance(time.Minute)
				h.store.failSave = 2 // vm-down's save and vm-slow's delete, in any order
				if err := h.e.Observe(h.ctx, []model.Observation{h.vm("vm-1", "host-1", model.StateRunning, nil)}); err == nil {
					t.Fatal("Observe succeeded although the store failed")
				}
				for _, inc := range h.e.OpenIncidents() {
					if inc.Rule == "vm-slow" {
						t.Fatalf("withdrawn incident still open: %+v", inc)
					}
				}
				h.tick()
				h.none("vm-slow")
			},
		},
		{
			name: "a pending incident loaded at a restart and never confirmed is withdrawn",
			run: func(t *testing.T, h *harness) {
				crash(h)
				e2, err := NewEngine(h.ctx, Options{Rules: lifecycleSet(t), Store: h.store, Clock: h.clk, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				if err := e2.Observe(h.ctx, []model.Observation{h.vm("vm-1", "host-1", model.StateRunning, nil)}); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 20; i++ {
					h.clk.Advance(time.Minute)
					if err := e2.Tick(h.ctx); err != nil {
						t.Fatal(err)
					}
				}
				h.none("vm-slow")
				if got := h.one("vm-down"); got.Status != model.StatusResolved {
					t.Errorf("vm-down (it fired) is %s, want resolved", got.Status)
				}
			},
		},
		{
			name: "a pending incident of a rule removed by a reload is withdrawn",
			run: func(t *testing.T, h *harness) {
				crash(h)
				smaller, err := Parse("small.yaml", []byte(`
rules:
  - name: vm-down
    scope: vm
    expr: vm.down
    classification: {cause: vm-down, trigger: vm, severity: critical}
`))
				if err != nil {
					t.Fatal(err)
				}
				h.e.Reload(smaller)
				h.tick()
				h.none("vm-slow")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, lifecycleSet(t))
			tc.run(t, h)
		})
	}
}
