package rules

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// The real store satisfies the engine's interface.
var _ IncidentStore = (*store.Store)(nil)

// TestEngineOnRedis runs the host-fault scenario against the real store:
// incidents, host periods and the escalation schedule land in Redis, and a
// second engine (a restart) carries on from there.
func TestEngineOnRedis(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := storetest.New(t, store.Options{Clock: clk})
	opts := Options{Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler)}
	e, err := NewEngine(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	obs := []model.Observation{
		{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-1", Site: "pod-a", State: model.StateCrashed, TimeGenerated: clk.Now()},
		{Source: "libvirt", Kind: model.KindVM, ID: "vm-2", Host: "host-1", Site: "pod-a", State: model.StateCrashed, TimeGenerated: clk.Now()},
		{Source: "prometheus", Kind: model.KindHost, ID: "host-1", Site: "pod-a", Attrs: map[string]any{"mce": 1.0}, TimeGenerated: clk.Now()},
	}
	if err := e.Observe(ctx, obs); err != nil {
		t.Fatal(err)
	}
	open, err := st.OpenIncidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Rule != "vm-crash-on-failing-host" || !slices.Equal(open[0].VMs, []string{"vm-1", "vm-2"}) || open[0].Level != 1 {
		t.Fatalf("open incidents in Redis: %+v", open)
	}
	id := open[0].ID
	host, err := st.Host(ctx, "host-1", 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(host.Periods) == 0 || host.Periods[0].State != model.HostFailed || !slices.Contains(host.Periods[0].Reasons, "mce") {
		t.Fatalf("host periods in Redis: %+v", host.Periods)
	}

	// Restart: the new engine adopts the incident and escalates it on time.
	e2, err := NewEngine(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Observe(ctx, obs); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Minute)
	if err := e2.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	inc, err := st.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Level != 2 || inc.Status != model.StatusFiring {
		t.Fatalf("after restart and 5m: level %d status %s, want 2 firing", inc.Level, inc.Status)
	}
	if _, err := e2.Ack(ctx, id, "alice"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if err := e2.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if inc, _ := st.Incident(ctx, id); inc.Level != 2 || inc.AckedBy != "alice" {
		t.Fatalf("after ack: level %d acked by %q", inc.Level, inc.AckedBy)
	}
}
