package store_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// fleetBatches builds n batches of 500 observations of a 20,000-VM,
// 400-host fleet, as collectors would send them: 90% VMs (one in ten
// changing state), 8% hosts with four hardware facts, 2% services, with
// time moving forward so every record is news.
func fleetBatches(n int) [][]model.Observation {
	const (
		batch = 500
		nVMs  = 20_000
		nHost = 400
	)
	base := time.Now().Add(-time.Hour).UTC()
	out := make([][]model.Observation, n)
	seq := 0
	for b := range out {
		obs := make([]model.Observation, batch)
		at := base.Add(time.Duration(b) * time.Millisecond)
		for i := range obs {
			seq++
			switch {
			case i%50 == 0:
				obs[i] = svcObs("host-"+strconv.Itoa(seq%nHost), "libvirtd", model.StateUp, at)
			case i%12 == 0:
				obs[i] = hostObs("host-"+strconv.Itoa(seq%nHost), "pod-"+strconv.Itoa(seq%4), at, map[string]any{
					model.AttrECCUncorrected: float64(seq % 3), model.AttrMCE: 0.0,
					model.AttrNICUp: true, model.AttrTempC: 55.0,
				})
			default:
				v := seq % nVMs
				st := model.StateRunning
				if seq%10 == 0 {
					st = model.StateCrashed
				}
				obs[i] = vmObs("vm-"+strconv.Itoa(v), "host-"+strconv.Itoa(v%nHost), "pod-"+strconv.Itoa(v%4), st, at)
				obs[i].Attrs = map[string]any{"vcpus": 4.0}
			}
		}
		out[b] = obs
	}
	return out
}

func BenchmarkApply(b *testing.B) {
	s := storetest.New(b, store.Options{})
	ctx := b.Context()
	batches := fleetBatches(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "obs/s")
}

func BenchmarkAppendObservations(b *testing.B) {
	s := storetest.New(b, store.Options{})
	ctx := b.Context()
	batches := fleetBatches(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.AppendObservations(ctx, batches[0]); err != nil {
			b.Fatal(err)
		}
		if i%200 == 199 {
			// keep the stream (and Redis's memory) small, as acks would
			b.StopTimer()
			if err := storetest.Client(b).Del(ctx, store.KeysOf(s).Observations()).Err(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "obs/s")
}
