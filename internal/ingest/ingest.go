// Package ingest moves observations from the Redis stream into the state
// store and the rules engine. An entry is acknowledged only after both have
// taken it, so a consumer that dies mid-batch leaves the entry pending and
// another consumer reclaims it; re-applying a batch is harmless because the
// store and the engine are idempotent.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// Stream is what the pipeline needs of the store.
type Stream interface {
	ReadObservations(ctx context.Context, consumer string, count int, block time.Duration) ([]store.Delivery, error)
	ClaimStaleObservations(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]store.Delivery, error)
	AckObservations(ctx context.Context, ids ...string) error
	Apply(ctx context.Context, obs []model.Observation) error
}

// Evaluator is the rules engine as the pipeline sees it.
type Evaluator interface {
	Observe(ctx context.Context, obs []model.Observation) error
}

var _ Stream = (*store.Store)(nil)

// Options configures a Pipeline.
type Options struct {
	Stream    Stream
	Evaluator Evaluator
	// Consumer names this process in the consumer group.
	Consumer string
	// Batch is how many stream entries a read takes (each holds up to 500
	// observations); default 8.
	Batch int
	// Block is how long a read waits for new entries; default 2s.
	Block time.Duration
	// ReclaimIdle is how long an entry may stay pending with another
	// consumer before it is taken over; default 30s.
	ReclaimIdle time.Duration
	Clock       clock.Clock
	Logger      *slog.Logger
	Metrics     *Metrics
}

// Pipeline consumes the observation stream.
type Pipeline struct {
	opts Options
}

// New returns a pipeline; Stream, Evaluator and Consumer are required.
func New(opts Options) (*Pipeline, error) {
	if opts.Stream == nil || opts.Evaluator == nil || opts.Consumer == "" {
		return nil, errors.New("ingest: stream, evaluator and consumer are required")
	}
	if opts.Batch <= 0 {
		opts.Batch = 8
	}
	if opts.Block <= 0 {
		opts.Block = 2 * time.Second
	}
	if opts.ReclaimIdle <= 0 {
		opts.ReclaimIdle = 30 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	return &Pipeline{opts: opts}, nil
}

// Run consumes until ctx ends. Errors talking to Redis are logged and
// retried with backoff; they never end the loop, because Redis coming back
// must not need an operator.
func (p *Pipeline) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	lastClaim := time.Time{}
	for ctx.Err() == nil {
		var err error
		if p.opts.Clock.Now().Sub(lastClaim) >= p.opts.ReclaimIdle/2 {
			lastClaim = p.opts.Clock.Now()
			_, err = p.Reclaim(ctx)
		}
		if err == nil {
			_, err = p.Step(ctx, p.opts.Block)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.opts.Logger.Warn("ingest step failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
	return nil
}

// Step reads one batch (waiting up to block) and processes it; it returns
// how many observations were applied.
func (p *Pipeline) Step(ctx context.Context, block time.Duration) (int, error) {
	ds, err := p.opts.Stream.ReadObservations(ctx, p.opts.Consumer, p.opts.Batch, block)
	if err != nil {
		return 0, fmt.Errorf("read observations: %w", err)
	}
	return p.process(ctx, ds)
}

// Reclaim takes over entries another consumer left pending too long and
// processes them.
func (p *Pipeline) Reclaim(ctx context.Context) (int, error) {
	ds, err := p.opts.Stream.ClaimStaleObservations(ctx, p.opts.Consumer, p.opts.ReclaimIdle, p.opts.Batch)
	if err != nil {
		return 0, fmt.Errorf("reclaim observations: %w", err)
	}
	if len(ds) > 0 {
		p.opts.Logger.Info("reclaimed observations left by another consumer", "entries", len(ds))
		p.opts.Metrics.reclaimed.Add(float64(len(ds)))
	}
	return p.process(ctx, ds)
}

func (p *Pipeline) process(ctx context.Context, ds []store.Delivery) (int, error) {
	n := 0
	for _, d := range ds {
		if len(d.Observations) > 0 {
			if err := p.opts.Stream.Apply(ctx, d.Observations); err != nil {
				return n, fmt.Errorf("apply entry %s: %w", d.ID, err)
			}
			if err := p.opts.Evaluator.Observe(ctx, d.Observations); err != nil {
				return n, fmt.Errorf("evaluate entry %s: %w", d.ID, err)
			}
			p.opts.Metrics.observe(d.Observations)
		}
		if err := p.opts.Stream.AckObservations(ctx, d.ID); err != nil {
			return n, fmt.Errorf("ack entry %s: %w", d.ID, err)
		}
		n += len(d.Observations)
	}
	return n, nil
}

// Metrics are the pipeline's Prometheus metrics.
type Metrics struct {
	applied   *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	reclaimed prometheus.Counter
}

// NewMetrics registers the pipeline's metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_observations_applied_total",
			Help: "Observations applied to the state store and evaluated, by source.",
		}, []string{"source"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vmtriage_ingest_latency_seconds",
			Help:    "Time from generation at the source to receipt and to storage, by source and stage.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600},
		}, []string{"source", "stage"}),
		reclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_observation_entries_reclaimed_total",
			Help: "Stream entries taken over from a consumer that stopped.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.applied, m.latency, m.reclaimed)
	}
	return m
}

func (m *Metrics) observe(obs []model.Observation) {
	for i := range obs {
		o := &obs[i]
		m.applied.WithLabelValues(o.Source).Inc()
		if !o.TimeReceived.IsZero() {
			m.latency.WithLabelValues(o.Source, "received").Observe(latency(o.TimeGenerated, o.TimeReceived))
		}
		if !o.TimeStored.IsZero() {
			m.latency.WithLabelValues(o.Source, "stored").Observe(latency(o.TimeGenerated, o.TimeStored))
		}
	}
}

// latency is the seconds from generated to t. A source clock running ahead
// (by up to model.MaxSkew) would make it negative, which would pull the
// histogram's sum below the truth; it counts as no delay instead.
func latency(generated, t time.Time) float64 {
	return max(t.Sub(generated).Seconds(), 0)
}
