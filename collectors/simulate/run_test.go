package simulate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// batch is one emit call as Run made it.
type batch struct {
	at  time.Time
	obs []model.Observation
}

// runFleet starts Run on a fake clock and returns the channel of its emits
// and of its result. The fake clock never moves by itself; the test moves
// it and waits for the batch that must follow, so nothing sleeps.
func runFleet(t *testing.T, ctx context.Context, opts Options, emitErr error) (*clock.Fake, <-chan batch, <-chan error) {
	t.Helper()
	fake := clock.NewFake(t0.Add(10 * time.Second))
	opts.Clock, opts.Tick = fake, time.Millisecond
	f := newFleet(t, opts)
	batches := make(chan batch, 100)
	done := make(chan error, 1)
	go func() {
		done <- f.Run(ctx, func(ctx context.Context, obs []model.Observation) error {
			batches <- batch{at: obs[0].TimeGenerated, obs: obs}
			return emitErr
		})
	}()
	return fake, batches, done
}

func next(t *testing.T, batches <-chan batch) batch {
	t.Helper()
	select {
	case b := <-batches:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no batch emitted")
		return batch{}
	}
}

func countVMs(obs []model.Observation) int {
	n := 0
	for _, o := range obs {
		if o.Kind == model.KindVM {
			n++
		}
	}
	return n
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	opts := Options{VMs: 10, Hosts: 2, Sites: 1, ChangesOnly: true, Start: t0.Add(-5 * time.Minute), Faults: []Fault{}}
	fake, batches, done := runFleet(t, ctx, opts, nil)

	tests := []struct {
		name    string
		advance time.Duration
		want    []time.Time // the periods emitted, in order
		vms     []int       // VMs in each
	}{
		{name: "current period at once, every VM", want: []time.Time{t0}, vms: []int{10}},
		{name: "next period", advance: time.Minute, want: []time.Time{t0.Add(time.Minute)}, vms: []int{0}},
		{name: "missed periods in order", advance: 3 * time.Minute, want: []time.Time{t0.Add(2 * time.Minute), t0.Add(3 * time.Minute), t0.Add(4 * time.Minute)}, vms: []int{0, 0, 0}},
		{name: "a long gap skips to now with every VM", advance: time.Hour, want: []time.Time{t0.Add(64 * time.Minute)}, vms: []int{10}},
		{name: "and goes on with changes", advance: time.Minute, want: []time.Time{t0.Add(65 * time.Minute)}, vms: []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake.Advance(tc.advance)
			for k, want := range tc.want {
				b := next(t, batches)
				if !b.at.Equal(want) {
					t.Fatalf("emitted period %s, want %s", b.at, want)
				}
				if got := countVMs(b.obs); got != tc.vms[k] {
					t.Errorf("period %s: %d VMs, want %d", b.at, got, tc.vms[k])
				}
			}
		})
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	select {
	case b := <-batches:
		t.Errorf("unexpected batch for %s", b.at)
	default:
	}
}

func TestRunEmitError(t *testing.T) {
	boom := errors.New("redis down")
	_, batches, done := runFleet(t, t.Context(), Options{VMs: 2, Hosts: 1, Sites: 1}, boom)
	next(t, batches)
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Errorf("Run = %v, want it to wrap %v", err, boom)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return the emit error")
	}
}
