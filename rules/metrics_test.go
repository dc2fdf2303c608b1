package rules

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// metricValue returns the value of a counter or gauge with the given label.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{%s=%q}", name, label, value)
	return 0
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	clk := clock.NewFake(t0)
	e, err := NewEngine(context.Background(), Options{Rules: lifecycleSet(t), Store: newFakeStore(clk.Now), Clock: clk,
		Logger: slog.New(slog.DiscardHandler), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Observe(ctx, []model.Observation{{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-1", State: model.StateCrashed, TimeGenerated: clk.Now()}}); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, reg, "vmtriage_rule_evaluations_total", "scope", "vm"); got != 2 {
		t.Errorf("vm evaluations %v, want 2", got)
	}
	if got := metricValue(t, reg, "vmtriage_incidents", "status", "firing"); got != 1 {
		t.Errorf("firing incidents %v, want 1", got)
	}
	if got := metricValue(t, reg, "vmtriage_incidents", "status", "pending"); got != 1 {
		t.Errorf("pending incidents %v, want 1", got)
	}
	if err := e.ReloadFiles("testdata/none.yaml"); err == nil {
		t.Fatal("reload of a missing file succeeded")
	}
	if got := metricValue(t, reg, "vmtriage_rule_reloads_total", "result", "failure"); got != 1 {
		t.Errorf("reload failures %v, want 1", got)
	}
	// A second engine on the same registry (tests, restarts) is fine.
	if _, err := NewEngine(ctx, Options{Rules: lifecycleSet(t), Store: newFakeStore(clk.Now), Clock: clk, Registerer: reg}); err != nil {
		t.Fatalf("second engine on one registry: %v", err)
	}
}

func TestRunTicksUntilCancelled(t *testing.T) {
	clk := clock.NewFake(t0)
	e, err := NewEngine(context.Background(), Options{Rules: lifecycleSet(t), Store: newFakeStore(clk.Now), Clock: clk,
		Logger: slog.New(slog.DiscardHandler), TickInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
