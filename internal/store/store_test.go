package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// t0 is a fixed, period-aligned test time.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newStore(t *testing.T) (*store.Store, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0.Add(time.Hour))
	return storetest.New(t, store.Options{Clock: clk}), clk
}

func vmObs(id, host, site string, state model.State, at time.Time) model.Observation {
	return model.Observation{Source: "libvirt", Kind: model.KindVM, ID: id, Host: host, Site: site,
		State: state, TimeGenerated: at, TimeReceived: at.Add(time.Second)}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestObservationStream(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	var batch []model.Observation
	for i := range 1203 {
		batch = append(batch, vmObs("vm-"+itoa(i), "host-1", "pod-a", model.StateRunning, t0))
	}
	if err := s.AppendObservations(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadObservations(ctx, "c1", 10, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d entries, want 3 chunks", len(got))
	}
	total := 0
	for _, d := range got {
		total += len(d.Observations)
	}
	if total != 1203 || len(got[0].Observations) != 500 {
		t.Fatalf("got %d observations (first chunk %d), want 1203 (500)", total, len(got[0].Observations))
	}
	pending, lag, err := s.Backlog(ctx)
	if err != nil || pending != 3 || lag != 0 {
		t.Fatalf("backlog = %d, %d, %v; want 3, 0, nil", pending, lag, err)
	}
	if err := s.AckObservations(ctx, got[0].ID, got[1].ID, got[2].ID); err != nil {
		t.Fatal(err)
	}
	pending, lag, err = s.Backlog(ctx)
	if err != nil || pending != 0 || lag != 0 {
		t.Fatalf("backlog after ack = %d, %d, %v; want 0, 0, nil", pending, lag, err)
	}
	none, err := s.ReadObservations(ctx, "c1", 10, 0)
	if err != nil || none != nil {
		t.Fatalf("empty read = %v, %v; want nil, nil", none, err)
	}
}

func itoa(i int) string {
	return fmtInt(i)
}
