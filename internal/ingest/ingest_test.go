package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/ingest"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// t0 is the fake clock's time when a test starts.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// vmObs is a VM observation generated a minute before t0 and received two
// seconds later.
func vmObs(source, id string, state model.State) model.Observation {
	at := t0.Add(-time.Minute)
	return model.Observation{Source: source, Kind: model.KindVM, ID: id, Host: "host-7", Site: "pod-a",
		State: state, TimeGenerated: at, TimeReceived: at.Add(2 * time.Second)}
}

// evaluator records what the engine was given; fail, when set, decides
// whether a call fails.
type evaluator struct {
	mu    sync.Mutex
	seen  []model.Observation
	calls int
	fail  func(call int) error
}

func (e *evaluator) Observe(_ context.Context, obs []model.Observation) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	if e.fail != nil {
		if err := e.fail(e.calls); err != nil {
			return err
		}
	}
	e.seen = append(e.seen, obs...)
	return nil
}

func (e *evaluator) ids() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, o := range e.seen {
		out = append(out, o.ID)
	}
	sort.Strings(out)
	return out
}

type fixture struct {
	st   *store.Store
	clk  *clock.Fake
	reg  *prometheus.Registry
	eval *evaluator
	// metrics are shared by every pipeline of the fixture, as the
	// replicas' workers share them in the service.
	metrics *ingest.Metrics
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := clock.NewFake(t0)
	reg := prometheus.NewRegistry()
	return &fixture{st: storetest.New(t, store.Options{Clock: clk}), clk: clk, reg: reg, eval: &evaluator{}, metrics: ingest.NewMetrics(reg)}
}

// pipeline returns a pipeline on the fixture's store named consumer.
func (f *fixture) pipeline(t *testing.T, consumer string, change func(*ingest.Options)) *ingest.Pipeline {
	t.Helper()
	opts := ingest.Options{Stream: f.st, Evaluator: f.eval, Consumer: consumer, Clock: f.clk, Metrics: f.metrics}
	if change != nil {
		change(&opts)
	}
	p, err := ingest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// appendEntries puts each batch on the stream as its own entry.
func (f *fixture) appendEntries(t *testing.T, batches ...[]model.Observation) {
	t.Helper()
	for _, b := range batches {
		if err := f.st.AppendObservations(testCtx(t), b); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) backlog(t *testing.T) (pending, lag int64) {
	t.Helper()
	pending, lag, err := f.st.Backlog(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return pending, lag
}

// series renders every series of the named metrics in g as
// `name{labels} value`; histograms as their _count and _sum.
func series(t *testing.T, g prometheus.Gatherer, names ...string) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			ls := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetHistogram() != nil:
				out = append(out, fmt.Sprintf("%s_count%s %d", mf.GetName(), ls, m.GetHistogram().GetSampleCount()),
					fmt.Sprintf("%s_sum%s %g", mf.GetName(), ls, m.GetHistogram().GetSampleSum()))
			default:
				out = append(out, fmt.Sprintf("%s%s %g", mf.GetName(), ls, m.GetCounter().GetValue()))
			}
		}
	}
	sort.Strings(out)
	return out
}

func assertSeries(t *testing.T, g prometheus.Gatherer, want []string, names ...string) {
	t.Helper()
	got := series(t, g, names...)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("metrics:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// eventually polls cond every 10ms until it holds or within passes. It
// waits on Redis, whose idle times run on Redis's own clock.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewRequiresStreamEvaluatorAndConsumer(t *testing.T) {
	st := storetest.New(t, store.Options{})
	tests := []struct {
		name string
		opts ingest.Options
	}{
		{name: "no stream", opts: ingest.Options{Evaluator: &evaluator{}, Consumer: "c"}},
		{name: "no evaluator", opts: ingest.Options{Stream: st, Consumer: "c"}},
		{name: "no consumer", opts: ingest.Options{Stream: st, Evaluator: &evaluator{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ingest.New(tc.opts); err == nil {
				t.Error("New accepted incomplete options")
			}
		})
	}
}

func TestStepAppliesEvaluatesAndAcks(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	f.appendEntries(t,
		[]model.Observation{vmObs("libvirt", "vm-1", model.StateCrashed), vmObs("libvirt", "vm-2", model.StateRunning)},
		[]model.Observation{vmObs("azure", "vm-3", model.StatePaused)},
	)
	p := f.pipeline(t, "c1", nil)

	n, err := p.Step(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("Step applied %d observations, want 3", n)
	}
	if got := f.eval.ids(); !slices.Equal(got, []string{"vm-1", "vm-2", "vm-3"}) {
		t.Errorf("evaluated %v", got)
	}
	for _, o := range f.eval.seen {
		if !o.TimeStored.Equal(t0) {
			t.Errorf("%s reached the engine with time_stored %v, want the store's clock %v", o.ID, o.TimeStored, t0)
		}
	}
	vm, err := f.st.VM(ctx, "vm-1")
	if err != nil {
		t.Fatal(err)
	}
	if vm.State != model.StateCrashed {
		t.Errorf("vm-1 is %s in the store, want crashed", vm.State)
	}
	if pending, lag := f.backlog(t); pending != 0 || lag != 0 {
		t.Errorf("backlog after Step: %d pending, %d new; want all acknowledged", pending, lag)
	}
	if n, err := p.Step(ctx, 0); err != nil || n != 0 {
		t.Errorf("second Step = %d, %v; want 0, nil", n, err)
	}

	// Received 2s after generation, stored 60s after.
	assertSeries(t, f.reg, []string{
		`vmtriage_observations_applied_total{source="azure"} 1`,
		`vmtriage_observations_applied_total{source="libvirt"} 2`,
		`vmtriage_ingest_latency_seconds_count{source="azure",stage="received"} 1`,
		`vmtriage_ingest_latency_seconds_sum{source="azure",stage="received"} 2`,
		`vmtriage_ingest_latency_seconds_count{source="azure",stage="stored"} 1`,
		`vmtriage_ingest_latency_seconds_sum{source="azure",stage="stored"} 60`,
		`vmtriage_ingest_latency_seconds_count{source="libvirt",stage="received"} 2`,
		`vmtriage_ingest_latency_seconds_sum{source="libvirt",stage="received"} 4`,
		`vmtriage_ingest_latency_seconds_count{source="libvirt",stage="stored"} 2`,
		`vmtriage_ingest_latency_seconds_sum{source="libvirt",stage="stored"} 120`,
		`vmtriage_observation_entries_reclaimed_total{} 0`,
	}, "vmtriage_observations_applied_total", "vmtriage_ingest_latency_seconds", "vmtriage_observation_entries_reclaimed_total")
}

func TestStepLatencyEdges(t *testing.T) {
	f := newFixture(t)
	// No receive stamp: only the stored latency is known.
	replayed := vmObs("replay", "vm-1", model.StateRunning)
	replayed.TimeReceived = time.Time{}
	// A source clock 3 minutes ahead: received "before" it was generated.
	ahead := vmObs("fast", "vm-2", model.StateRunning)
	ahead.TimeGenerated = t0.Add(3 * time.Minute)
	ahead.TimeReceived = t0
	f.appendEntries(t, []model.Observation{replayed, ahead})
	if _, err := f.pipeline(t, "c1", nil).Step(testCtx(t), 0); err != nil {
		t.Fatal(err)
	}
	assertSeries(t, f.reg, []string{
		`vmtriage_ingest_latency_seconds_count{source="replay",stage="stored"} 1`,
		`vmtriage_ingest_latency_seconds_sum{source="replay",stage="stored"} 60`,
		`vmtriage_ingest_latency_seconds_count{source="fast",stage="received"} 1`,
		`vmtriage_ingest_latency_seconds_sum{source="fast",stage="received"} 0`,
		`vmtriage_ingest_latency_seconds_count{source="fast",stage="stored"} 1`,
		`vmtriage_ingest_latency_seconds_sum{source="fast",stage="stored"} 0`,
	}, "vmtriage_ingest_latency_seconds")
}

func TestReclaimTakesOverADeadConsumersEntries(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	f.appendEntries(t,
		[]model.Observation{vmObs("libvirt", "vm-1", model.StateCrashed)},
		[]model.Observation{vmObs("libvirt", "vm-2", model.StateCrashed), vmObs("libvirt", "vm-3", model.StateRunning)},
	)
	// A consumer reads both entries and dies before acknowledging them.
	ds, err := f.st.ReadObservations(ctx, "dead", 10, 0)
	if err != nil || len(ds) != 2 {
		t.Fatalf("dead consumer read %d entries, %v; want 2", len(ds), err)
	}

	// Nothing new for a live consumer, and the dead one's entries are not
	// yet idle for an hour.
	patient := f.pipeline(t, "patient", func(o *ingest.Options) { o.ReclaimIdle = time.Hour })
	if n, err := patient.Step(ctx, 0); err != nil || n != 0 {
		t.Fatalf("Step = %d, %v; want 0, nil (the entries belong to the dead consumer)", n, err)
	}
	if n, err := patient.Reclaim(ctx); err != nil || n != 0 {
		t.Fatalf("Reclaim with a 1h idle = %d, %v; want 0, nil", n, err)
	}
	if pending, _ := f.backlog(t); pending != 2 {
		t.Fatalf("%d entries pending, want the dead consumer's 2", pending)
	}

	// Redis measures idleness with its own clock: a 10ms idle soon passes.
	alive := f.pipeline(t, "alive", func(o *ingest.Options) { o.ReclaimIdle = 10 * time.Millisecond })
	total := 0
	eventually(t, 5*time.Second, "the dead consumer's entries are reclaimed", func() bool {
		n, err := alive.Reclaim(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		return total == 3
	})
	if got := f.eval.ids(); !slices.Equal(got, []string{"vm-1", "vm-2", "vm-3"}) {
		t.Errorf("evaluated %v, want each reclaimed observation once", got)
	}
	if pending, lag := f.backlog(t); pending != 0 || lag != 0 {
		t.Errorf("backlog after reclaim: %d pending, %d new", pending, lag)
	}
	if vm, err := f.st.VM(ctx, "vm-2"); err != nil || vm.State != model.StateCrashed {
		t.Errorf("vm-2 = %+v, %v; want crashed", vm, err)
	}
	assertSeries(t, f.reg, []string{
		`vmtriage_observation_entries_reclaimed_total{} 2`,
		`vmtriage_observations_applied_total{source="libvirt"} 3`,
	}, "vmtriage_observation_entries_reclaimed_total", "vmtriage_observations_applied_total")
}

func TestEvaluatorErrorLeavesTheEntryPending(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	engineDown := errors.New("engine: save incident: connection reset")
	f.eval.fail = func(call int) error {
		if call == 1 {
			return engineDown
		}
		return nil
	}
	f.appendEntries(t,
		[]model.Observation{vmObs("libvirt", "vm-1", model.StateCrashed)},
		[]model.Observation{vmObs("libvirt", "vm-2", model.StateCrashed)},
	)
	p := f.pipeline(t, "c1", func(o *ingest.Options) { o.ReclaimIdle = 10 * time.Millisecond })

	n, err := p.Step(ctx, 0)
	if !errors.Is(err, engineDown) {
		t.Fatalf("Step error = %v, want the evaluator's", err)
	}
	if n != 0 {
		t.Errorf("Step reports %d observations done, want 0", n)
	}
	// The first entry failed and the second was not reached: both stay
	// pending, neither is counted as applied.
	if pending, lag := f.backlog(t); pending != 2 || lag != 0 {
		t.Fatalf("backlog: %d pending, %d new; want 2 pending", pending, lag)
	}
	assertSeries(t, f.reg, nil, "vmtriage_observations_applied_total")
	// The store took the batch before the engine failed; applying it again
	// is harmless, which is why the pipeline may retry it whole.
	if vm, err := f.st.VM(ctx, "vm-1"); err != nil || vm.State != model.StateCrashed {
		t.Errorf("vm-1 = %+v, %v; want crashed", vm, err)
	}
	// Nothing new to read: the entries are this consumer's pending ones.
	if n, err := p.Step(ctx, 0); err != nil || n != 0 {
		t.Fatalf("Step = %d, %v; want 0, nil", n, err)
	}

	// Once idle, the entries are reclaimed (here by the same consumer) and
	// processed with the engine back.
	total := 0
	eventually(t, 5*time.Second, "the failed entries are retried", func() bool {
		n, err := p.Reclaim(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		return total == 2
	})
	if got := f.eval.ids(); !slices.Equal(got, []string{"vm-1", "vm-2"}) {
		t.Errorf("evaluated %v", got)
	}
	if pending, lag := f.backlog(t); pending != 0 || lag != 0 {
		t.Errorf("backlog after retry: %d pending, %d new", pending, lag)
	}
}

// failingStream is the store with one operation broken.
type failingStream struct {
	*store.Store
	applyErr, ackErr error
	empty            bool // deliver entries without observations, as for an undecodable payload
}

func (s *failingStream) Apply(ctx context.Context, obs []model.Observation) error {
	if s.applyErr != nil {
		return s.applyErr
	}
	return s.Store.Apply(ctx, obs)
}

func (s *failingStream) AckObservations(ctx context.Context, ids ...string) error {
	if s.ackErr != nil {
		return s.ackErr
	}
	return s.Store.AckObservations(ctx, ids...)
}

func (s *failingStream) ReadObservations(ctx context.Context, consumer string, count int, block time.Duration) ([]store.Delivery, error) {
	ds, err := s.Store.ReadObservations(ctx, consumer, count, block)
	if s.empty {
		for i := range ds {
			ds[i].Observations = nil
		}
	}
	return ds, err
}

func TestStoreFailures(t *testing.T) {
	redisDown := errors.New("redis: connection refused")
	tests := []struct {
		name        string
		stream      failingStream
		wantErr     error
		wantPending int64
		wantEval    int
	}{
		{name: "apply fails: not evaluated, not acknowledged", stream: failingStream{applyErr: redisDown}, wantErr: redisDown, wantPending: 1},
		{name: "ack fails: evaluated, still pending", stream: failingStream{ackErr: redisDown}, wantErr: redisDown, wantPending: 1, wantEval: 1},
		{name: "undecodable entry: acknowledged without apply or evaluation", stream: failingStream{empty: true, applyErr: redisDown}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.appendEntries(t, []model.Observation{vmObs("libvirt", "vm-1", model.StateCrashed)})
			stream := tc.stream
			stream.Store = f.st
			p := f.pipeline(t, "c1", func(o *ingest.Options) { o.Stream = &stream })
			_, err := p.Step(testCtx(t), 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Step error = %v, want %v", err, tc.wantErr)
			}
			if pending, _ := f.backlog(t); pending != tc.wantPending {
				t.Errorf("%d entries pending, want %d", pending, tc.wantPending)
			}
			if got := len(f.eval.ids()); got != tc.wantEval {
				t.Errorf("engine saw %d observations, want %d", got, tc.wantEval)
			}
		})
	}
}

func TestRunConsumesAndReclaimsUntilCancelled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	// An entry a dead consumer holds, and one nobody has read.
	f.appendEntries(t, []model.Observation{vmObs("libvirt", "vm-1", model.StateCrashed)})
	if ds, err := f.st.ReadObservations(ctx, "dead", 10, 0); err != nil || len(ds) != 1 {
		t.Fatalf("dead consumer read %d, %v", len(ds), err)
	}
	f.appendEntries(t, []model.Observation{vmObs("libvirt", "vm-2", model.StateRunning)})

	p := f.pipeline(t, "c1", func(o *ingest.Options) {
		o.ReclaimIdle = 10 * time.Millisecond
		o.Block = 20 * time.Millisecond
	})
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	// Run reclaims on its own clock's schedule (every ReclaimIdle/2), so
	// the fake clock is moved on while we wait for Redis's idle time.
	eventually(t, 5*time.Second, "Run applies the new entry and the dead consumer's", func() bool {
		f.clk.Advance(time.Second)
		return len(f.eval.ids()) == 2
	})
	if pending, lag := f.backlog(t); pending != 0 || lag != 0 {
		t.Errorf("backlog: %d pending, %d new", pending, lag)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
