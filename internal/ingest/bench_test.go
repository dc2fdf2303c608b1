package ingest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/ingest"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

type nopEvaluator struct{}

func (nopEvaluator) Observe(context.Context, []model.Observation) error { return nil }

// BenchmarkStep measures the consumer side: one stream entry of 500 VM
// observations appended, then read, applied to the state in Redis and
// acknowledged by Step (the rules engine is left out).
func BenchmarkStep(b *testing.B) {
	const batch = 500
	clk := clock.NewFake(t0)
	st := storetest.New(b, store.Options{Clock: clk})
	p, err := ingest.New(ingest.Options{Stream: st, Evaluator: nopEvaluator{}, Consumer: "bench", Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	obs := make([]model.Observation, batch)
	for i := range obs {
		obs[i] = vmObs("libvirt", fmt.Sprintf("vm-%05d", i), model.StateRunning)
		obs[i].Host = fmt.Sprintf("host-%03d", i%50)
	}
	ctx := context.Background()
	for b.Loop() {
		if err := st.AppendObservations(ctx, obs); err != nil {
			b.Fatal(err)
		}
		n, err := p.Step(ctx, 0)
		if err != nil {
			b.Fatal(err)
		}
		if n != batch {
			b.Fatalf("Step applied %d, want %d", n, batch)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "obs/s")
}
