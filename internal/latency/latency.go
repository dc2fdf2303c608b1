// Package latency measures how late observations arrive, per source, over
// a recent window (p50, p95 and max of received − generated, and of stored
// − generated), and notices sources, VMs and hosts that stopped reporting.
// It answers GET /v1/latency and `/triage latency`, like the Heartbeat
// queries of Azure Monitor: which sources lag, and who went quiet.
//
// A Tracker is fed every observation the ingest pipeline applied (wrap the
// rules engine with Tee), so it sees what this replica consumed; with
// several replicas each sees its share of the stream, which leaves the
// quantiles representative but makes its stopped list that replica's view.
// The durable, shared verdict on silence stays the rules engine's
// stopped-reporting incidents.
//
// Quantiles come from log-scaled histograms (eight buckets per doubling,
// so a quantile is at most about 9% above the true value; the max is
// exact) kept per time slot, so memory per source is fixed whatever the
// volume, and old slots fall out of the window.
package latency

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultWindow       = 15 * time.Minute
	DefaultSlot         = time.Minute
	DefaultStoppedAfter = 10 * time.Minute
	DefaultForget       = 24 * time.Hour
	DefaultMaxSubjects  = 500_000
	// DefaultMaxStopped caps the stopped list of a report.
	DefaultMaxStopped = 1000
)

// Options configures a Tracker.
type Options struct {
	// Window is how far back quantiles look; default 15m.
	Window time.Duration
	// Slot is the window's resolution; default 1m.
	Slot time.Duration
	// StoppedAfter is the silence after which a source, or a VM or host
	// whose source kept reporting without it, counts as stopped. Use the
	// rules' stopped_reporting setting; default 10m.
	StoppedAfter time.Duration
	// Forget drops VMs and hosts not seen for this long; default 24h.
	Forget time.Duration
	// MaxSubjects bounds how many VMs and hosts are followed; default
	// 500,000. Past it new ones are not followed (and counted).
	MaxSubjects int
	Clock       clock.Clock
}

// Tracker measures ingestion latency and silence. It is safe for
// concurrent use.
type Tracker struct {
	opts    Options
	nslots  int
	mu      sync.Mutex
	sources map[string]*source
	subj    map[subject]time.Time
	dropped int
	pruned  time.Time
}

type subject struct {
	source string
	kind   model.Kind
	id     string
}

type source struct {
	lastSeen time.Time
	received []slot
	stored   []slot
}

// Histogram layout: bucket 0 holds everything up to minLatency; bucket i
// (i ≥ 1) holds (minLatency·2^((i-1)/8), minLatency·2^(i/8)].
const (
	minLatency       = time.Millisecond
	bucketsPerDouble = 8
	nbuckets         = 1 + 30*bucketsPerDouble // up to 2^30 ms ≈ 12 days
)

type slot struct {
	idx    int64
	count  uint64
	max    time.Duration
	bucket [nbuckets]uint32
}

// New returns a Tracker.
func New(opts Options) *Tracker {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Slot <= 0 {
		opts.Slot = DefaultSlot
	}
	opts.Slot = min(opts.Slot, opts.Window)
	if opts.StoppedAfter <= 0 {
		opts.StoppedAfter = DefaultStoppedAfter
	}
	if opts.Forget <= 0 {
		opts.Forget = DefaultForget
	}
	if opts.MaxSubjects <= 0 {
		opts.MaxSubjects = DefaultMaxSubjects
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	return &Tracker{
		opts:    opts,
		nslots:  int((opts.Window + opts.Slot - 1) / opts.Slot),
		sources: map[string]*source{},
		subj:    map[subject]time.Time{},
	}
}

func bucketOf(d time.Duration) int {
	if d <= minLatency {
		return 0
	}
	b := int(math.Ceil(math.Log2(float64(d)/float64(minLatency)) * bucketsPerDouble))
	return min(max(b, 1), nbuckets-1)
}

// upper is bucket b's upper bound.
func upper(b int) time.Duration {
	return time.Duration(float64(minLatency) * math.Exp2(float64(b)/bucketsPerDouble))
}

// Record takes observations that were received (and possibly stored). An
// observation without TimeReceived counts as received now.
func (t *Tracker) Record(obs []model.Observation) {
	now := t.opts.Clock.Now()
	idx := now.UnixNano() / int64(t.opts.Slot)
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.pruned) >= t.opts.Slot {
		t.pruned = now
		t.prune(now)
	}
	for i := range obs {
		o := &obs[i]
		if o.Source == "" || o.TimeGenerated.IsZero() {
			continue
		}
		s := t.sources[o.Source]
		if s == nil {
			s = &source{received: make([]slot, t.nslots), stored: make([]slot, t.nslots)}
			t.sources[o.Source] = s
		}
		recv := o.TimeReceived
		if recv.IsZero() {
			recv = now
		}
		s.lastSeen = maxTime(s.lastSeen, now)
		t.add(s.received, idx, recv.Sub(o.TimeGenerated))
		if !o.TimeStored.IsZero() {
			t.add(s.stored, idx, o.TimeStored.Sub(o.TimeGenerated))
		}
		k := subject{o.Source, o.Kind, o.ID}
		if _, ok := t.subj[k]; ok || len(t.subj) < t.opts.MaxSubjects {
			t.subj[k] = now
		} else {
			t.dropped++
		}
	}
}

func (t *Tracker) add(slots []slot, idx int64, d time.Duration) {
	d = max(d, 0) // a source clock ahead of ours: call it on time
	sl := &slots[int(idx%int64(len(slots)))]
	if sl.idx != idx {
		*sl = slot{idx: idx}
	}
	sl.count++
	sl.max = max(sl.max, d)
	sl.bucket[bucketOf(d)]++
}

func (t *Tracker) prune(now time.Time) {
	for k, seen := range t.subj {
		if now.Sub(seen) > t.opts.Forget {
			delete(t.subj, k)
		}
	}
	for name, s := range t.sources {
		if now.Sub(s.lastSeen) > t.opts.Forget {
			delete(t.sources, name)
		}
	}
}

// Evaluator is the stage after the tracker, as the ingest pipeline calls
// it (the rules engine).
type Evaluator interface {
	Observe(ctx context.Context, obs []model.Observation) error
}

// Tee returns an Evaluator that hands observations to next and records
// them once next took them, so a batch the pipeline retries is counted
// once.
func (t *Tracker) Tee(next Evaluator) Evaluator { return tee{next: next, t: t} }

type tee struct {
	next Evaluator
	t    *Tracker
}

func (e tee) Observe(ctx context.Context, obs []model.Observation) error {
	if err := e.next.Observe(ctx, obs); err != nil {
		return err
	}
	e.t.Record(obs)
	return nil
}

// Quantiles summarise latencies in seconds.
type Quantiles struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_seconds"`
	P95   float64 `json:"p95_seconds"`
	Max   float64 `json:"max_seconds"`
}

// SourceReport is one source's latency and liveness.
type SourceReport struct {
	Source string `json:"source"`
	// Received is time received − time generated; Stored is time stored −
	// time generated, when the store stamped it.
	Received  Quantiles  `json:"received"`
	Stored    *Quantiles `json:"stored,omitempty"`
	LastSeen  time.Time  `json:"last_seen"`
	SilentFor string     `json:"silent_for"`
	Stopped   bool       `json:"stopped"`
}

// Stopped is a VM or host whose source kept reporting without it.
type Stopped struct {
	Source    string     `json:"source"`
	Kind      model.Kind `json:"kind"`
	ID        string     `json:"id"`
	LastSeen  time.Time  `json:"last_seen"`
	SilentFor string     `json:"silent_for"`
}

// Report is the tracker's answer at one moment.
type Report struct {
	At           time.Time      `json:"at"`
	Window       string         `json:"window"`
	StoppedAfter string         `json:"stopped_after"`
	Sources      []SourceReport `json:"sources"`
	// Stopped lists the silent VMs and hosts of sources that still report,
	// longest silent first, at most DefaultMaxStopped of StoppedTotal.
	Stopped      []Stopped `json:"stopped"`
	StoppedTotal int       `json:"stopped_total"`
	// Untracked counts observations of subjects past MaxSubjects.
	Untracked int `json:"untracked,omitempty"`
}

// Report summarises the window ending now. A non-empty source narrows it
// to that source.
func (t *Tracker) Report(only string) Report {
	now := t.opts.Clock.Now()
	idx := now.UnixNano() / int64(t.opts.Slot)
	t.mu.Lock()
	defer t.mu.Unlock()
	r := Report{At: now, Window: t.opts.Window.String(), StoppedAfter: t.opts.StoppedAfter.String(),
		Sources: []SourceReport{}, Stopped: []Stopped{}, Untracked: t.dropped}
	for name, s := range t.sources {
		if only != "" && name != only {
			continue
		}
		sr := SourceReport{Source: name, Received: t.quantiles(s.received, idx), LastSeen: s.lastSeen,
			SilentFor: now.Sub(s.lastSeen).Truncate(time.Second).String(), Stopped: now.Sub(s.lastSeen) > t.opts.StoppedAfter}
		if q := t.quantiles(s.stored, idx); q.Count > 0 {
			sr.Stored = &q
		}
		r.Sources = append(r.Sources, sr)
	}
	slices.SortFunc(r.Sources, func(a, b SourceReport) int { return strings.Compare(a.Source, b.Source) })
	for k, seen := range t.subj {
		if only != "" && k.source != only {
			continue
		}
		s := t.sources[k.source]
		if s == nil || now.Sub(s.lastSeen) > t.opts.StoppedAfter || s.lastSeen.Sub(seen) <= t.opts.StoppedAfter {
			continue // its whole source is silent (one entry above), or it is not
		}
		r.StoppedTotal++
		r.Stopped = append(r.Stopped, Stopped{Source: k.source, Kind: k.kind, ID: k.id, LastSeen: seen,
			SilentFor: now.Sub(seen).Truncate(time.Second).String()})
	}
	slices.SortFunc(r.Stopped, func(a, b Stopped) int {
		if c := a.LastSeen.Compare(b.LastSeen); c != 0 {
			return c
		}
		return strings.Compare(a.Source+"\x00"+a.ID, b.Source+"\x00"+b.ID)
	})
	if len(r.Stopped) > DefaultMaxStopped {
		r.Stopped = r.Stopped[:DefaultMaxStopped]
	}
	return r
}

func (t *Tracker) quantiles(slots []slot, idx int64) Quantiles {
	var q Quantiles
	var hist [nbuckets]uint64
	var mx time.Duration
	for i := range slots {
		sl := &slots[i]
		if sl.count == 0 || sl.idx <= idx-int64(len(slots)) || sl.idx > idx {
			continue
		}
		q.Count += sl.count
		mx = max(mx, sl.max)
		for b, n := range sl.bucket {
			hist[b] += uint64(n)
		}
	}
	if q.Count == 0 {
		return q
	}
	at := func(p float64) float64 {
		rank := uint64(math.Ceil(p * float64(q.Count)))
		var cum uint64
		for b, n := range hist {
			cum += n
			if cum >= rank {
				return seconds(min(upper(b), mx))
			}
		}
		return seconds(mx)
	}
	q.P50, q.P95, q.Max = at(0.50), at(0.95), seconds(mx)
	return q
}

// seconds rounds to the millisecond: finer digits would be noise.
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
