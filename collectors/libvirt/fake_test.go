package libvirt

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vmtriage/vmtriage/internal/model"
)

// fakeConn is an in-memory libvirtd connection.
type fakeConn struct {
	mu       sync.Mutex
	domains  []domain
	listErr  error
	events   chan golibvirt.DomainEventLifecycleMsg
	gone     chan struct{}
	closed   bool
	listings int
}

func newFakeConn(doms ...domain) *fakeConn {
	return &fakeConn{domains: doms, events: make(chan golibvirt.DomainEventLifecycleMsg, 16), gone: make(chan struct{})}
}

func (f *fakeConn) Domains() ([]domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errors.New("connection closed")
	}
	f.listings++
	if f.listErr != nil {
		return nil, f.listErr
	}
	return append([]domain(nil), f.domains...), nil
}

func (f *fakeConn) Events(context.Context) (<-chan golibvirt.DomainEventLifecycleMsg, error) {
	return f.events, nil
}

func (f *fakeConn) Disconnected() <-chan struct{} { return f.gone }

// Close ends the connection as go-libvirt does: Disconnected closes, then
// the event channel.
func (f *fakeConn) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.gone)
		close(f.events)
	}
}

// recordSink keeps every batch it is given.
type recordSink struct {
	mu      sync.Mutex
	batches [][]model.Observation
	err     error
}

func (s *recordSink) AppendObservations(_ context.Context, obs []model.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.batches = append(s.batches, append([]model.Observation(nil), obs...))
	return nil
}

// all returns every observation received so far, in order.
func (s *recordSink) all() []model.Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []model.Observation
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

// waitFor waits (bounded, never asserted on) until pred holds for what the
// sink received, and returns that.
func (s *recordSink) waitFor(t *testing.T, what string, pred func([]model.Observation) bool) []model.Observation {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		obs := s.all()
		if pred(obs) {
			return obs
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s; received:\n%s", what, describe(obs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// describe renders observations one per line for failure messages.
func describe(obs []model.Observation) string {
	var b []byte
	for _, o := range obs {
		b = append(b, line(o)...)
		b = append(b, '\n')
	}
	return string(b)
}

// line is the part of an observation the tests compare.
func line(o model.Observation) string {
	s := string(o.Kind) + " " + o.Host + "/" + o.ID + " " + string(o.State)
	if o.Event != "" {
		s += " event=" + o.Event
	}
	if r := o.Str(model.AttrCrashReason); r != "" {
		s += " crash_reason=" + r
	}
	if e := o.Str(AttrError); e != "" {
		s += " error"
	}
	return s
}

// waits is a Wait that does not sleep: interval waits block until ctx
// ends (tests call Poll themselves), backoff waits advance the fake clock,
// are recorded, and yield briefly so a real daemon's reconnection is not a
// busy loop.
type waits struct {
	interval time.Duration
	advance  func(time.Duration)

	mu      sync.Mutex
	backoff []time.Duration
}

func (w *waits) wait(ctx context.Context, d time.Duration) error {
	if d == w.interval {
		<-ctx.Done()
		return ctx.Err()
	}
	w.mu.Lock()
	w.backoff = append(w.backoff, d)
	w.mu.Unlock()
	if w.advance != nil {
		w.advance(d)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Millisecond):
		return nil
	}
}

func (w *waits) recorded() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.backoff...)
}

// value reads a counter or gauge (prometheus/testutil would need a module
// that is not in go.mod).
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.GetCounter().GetValue()
	}
	return d.GetGauge().GetValue()
}
