package bottest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

var (
	_ bot.FleetReader    = (*Fleet)(nil)
	_ bot.IncidentReader = (*Incidents)(nil)
	_ bot.ActionTaker    = (*Incidents)(nil)
	_ bot.EventSource    = (*Events)(nil)
	_ bot.Poster         = (*Poster)(nil)
	_ bot.Auditor        = (*Auditor)(nil)
)

// Fleet is a fake bot.FleetReader over maps. Unknown names give an error
// wrapping bot.ErrNotFound. Set Err to make every call fail with it.
type Fleet struct {
	mu    sync.Mutex
	vms   map[string]model.VMStatus
	hosts map[string]model.HostStatus
	sites []string
	Err   error
}

// NewFleet returns an empty fake fleet.
func NewFleet() *Fleet {
	return &Fleet{vms: map[string]model.VMStatus{}, hosts: map[string]model.HostStatus{}}
}

// AddVM adds or replaces a VM, and its site.
func (f *Fleet) AddVM(vms ...model.VMStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, vm := range vms {
		f.vms[vm.ID] = vm
		f.addSite(vm.Site)
	}
}

// AddHost adds or replaces a host, and its site.
func (f *Fleet) AddHost(hosts ...model.HostStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range hosts {
		f.hosts[h.ID] = h
		f.addSite(h.Site)
	}
}

func (f *Fleet) addSite(s string) {
	if s != "" && !slices.Contains(f.sites, s) {
		f.sites = append(f.sites, s)
		slices.Sort(f.sites)
	}
}

// VM returns a VM.
func (f *Fleet) VM(_ context.Context, id string) (model.VMStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return model.VMStatus{}, f.Err
	}
	vm, ok := f.vms[id]
	if !ok {
		return model.VMStatus{}, fmt.Errorf("vm %s: %w", id, bot.ErrNotFound)
	}
	return vm, nil
}

// Host returns a host with at most periods periods.
func (f *Fleet) Host(_ context.Context, id string, periods int) (model.HostStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return model.HostStatus{}, f.Err
	}
	h, ok := f.hosts[id]
	if !ok {
		return model.HostStatus{}, fmt.Errorf("host %s: %w", id, bot.ErrNotFound)
	}
	if len(h.Periods) > periods {
		h.Periods = h.Periods[:periods]
	}
	return h, nil
}

// ListVMs lists VMs by site and host ("" matches any), sorted by ID.
func (f *Fleet) ListVMs(_ context.Context, site, host string) ([]model.VMStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	var out []model.VMStatus
	for _, vm := range f.vms {
		if (site == "" || vm.Site == site) && (host == "" || vm.Host == host) {
			out = append(out, vm)
		}
	}
	slices.SortFunc(out, func(a, b model.VMStatus) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Sites lists the sites of every VM and host added.
func (f *Fleet) Sites(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	return slices.Clone(f.sites), nil
}

// Incidents is a fake of both bot.IncidentReader and bot.ActionTaker: acks
// and silences change its own incidents and silences, as the engine would.
// Set Err to make every call fail with it.
type Incidents struct {
	mu       sync.Mutex
	clock    clock.Clock
	incs     map[string]model.Incident
	silences []model.Silence
	Err      error
	// Acks records every Ack call as "id by user".
	Acks []string
}

// NewIncidents returns a fake holding incs, telling time by c.
func NewIncidents(c clock.Clock, incs ...model.Incident) *Incidents {
	f := &Incidents{clock: c, incs: map[string]model.Incident{}}
	f.Put(incs...)
	return f
}

// Put adds or replaces incidents.
func (f *Incidents) Put(incs ...model.Incident) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, inc := range incs {
		f.incs[inc.ID] = inc
	}
}

// Incidents lists the incidents f matches, newest first.
func (f *Incidents) Incidents(_ context.Context, filter model.IncidentFilter) ([]model.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	var out []model.Incident
	for _, inc := range f.incs {
		if filter.Match(&inc) {
			out = append(out, inc)
		}
	}
	slices.SortFunc(out, func(a, b model.Incident) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), cmp.Compare(a.ID, b.ID))
	})
	if filter.Limit > 0 && len(out) > filter.Limit {
		out = out[:filter.Limit]
	}
	return out, nil
}

// Incident returns one incident.
func (f *Incidents) Incident(_ context.Context, id string) (model.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return model.Incident{}, f.Err
	}
	inc, ok := f.incs[id]
	if !ok {
		return model.Incident{}, fmt.Errorf("incident %s: %w", id, bot.ErrNotFound)
	}
	return inc, nil
}

// Ack acknowledges an incident.
func (f *Incidents) Ack(_ context.Context, id, user string) (model.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return model.Incident{}, f.Err
	}
	inc, ok := f.incs[id]
	if !ok {
		return model.Incident{}, fmt.Errorf("incident %s: %w", id, bot.ErrNotFound)
	}
	inc.AckedBy, inc.AckedAt = user, f.clock.Now()
	inc.Version++
	f.incs[id] = inc
	f.Acks = append(f.Acks, id+" by "+user)
	return inc, nil
}

// AddSilence saves a silence as sil-N.
func (f *Incidents) AddSilence(_ context.Context, s model.Silence) (model.Silence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return model.Silence{}, f.Err
	}
	s.ID = fmt.Sprintf("sil-%d", len(f.silences)+1)
	f.silences = append(f.silences, s)
	return s, nil
}

// ExpireSilence ends a silence now.
func (f *Incidents) ExpireSilence(_ context.Context, id, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	for i := range f.silences {
		if f.silences[i].ID == id {
			f.silences[i].EndsAt = f.clock.Now()
			return nil
		}
	}
	return fmt.Errorf("silence %s: %w", id, bot.ErrNotFound)
}

// Silences lists every silence.
func (f *Incidents) Silences(context.Context) ([]model.Silence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	return slices.Clone(f.silences), nil
}

// Events is a fake incidents stream with one consumer group: Add appends
// events, Read delivers each once (blocking until there is one or ctx
// ends), Claim returns what MakeStale marked, Ack records acknowledgements.
type Events struct {
	mu      sync.Mutex
	next    int
	queue   []bot.Event
	pending map[string]bot.Event
	stale   []bot.Event
	acked   []string
	wake    chan struct{}
	// ReadErrs are returned, one per call, by the next Read calls.
	ReadErrs []error
	// AckErrs are returned, one per call, by the next Ack calls.
	AckErrs []error
}

// NewEvents returns an empty fake stream.
func NewEvents() *Events {
	return &Events{pending: map[string]bot.Event{}, wake: make(chan struct{}, 1)}
}

// Add appends one event per incident snapshot and returns their IDs.
func (e *Events) Add(incs ...model.Incident) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for _, inc := range incs {
		e.next++
		ev := bot.Event{ID: fmt.Sprintf("%d-0", e.next), Incident: inc}
		e.queue = append(e.queue, ev)
		ids = append(ids, ev.ID)
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return ids
}

// MakeStale marks delivered, unacknowledged events as left by a dead
// consumer, so the next Claim returns them.
func (e *Events) MakeStale(ids ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if ev, ok := e.pending[id]; ok {
			e.stale = append(e.stale, ev)
		}
	}
}

// ReadIncidentEvents delivers up to count new events, waiting for one until
// ctx ends (block is ignored: tests end the wait by cancelling).
func (e *Events) ReadIncidentEvents(ctx context.Context, _, _ string, count int, _ time.Duration) ([]bot.Event, error) {
	for {
		e.mu.Lock()
		if len(e.ReadErrs) > 0 {
			err := e.ReadErrs[0]
			e.ReadErrs = e.ReadErrs[1:]
			e.mu.Unlock()
			return nil, err
		}
		if len(e.queue) > 0 {
			n := min(count, len(e.queue))
			out := slices.Clone(e.queue[:n])
			e.queue = e.queue[n:]
			for _, ev := range out {
				e.pending[ev.ID] = ev
			}
			e.mu.Unlock()
			return out, nil
		}
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-e.wake:
		}
	}
}

// ClaimIncidentEvents returns up to count events marked stale.
func (e *Events) ClaimIncidentEvents(_ context.Context, _, _ string, _ time.Duration, count int) ([]bot.Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := min(count, len(e.stale))
	out := slices.Clone(e.stale[:n])
	e.stale = e.stale[n:]
	return out, nil
}

// AckIncidentEvents records acknowledgements.
func (e *Events) AckIncidentEvents(_ context.Context, _ string, ids ...string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.AckErrs) > 0 {
		err := e.AckErrs[0]
		e.AckErrs = e.AckErrs[1:]
		if err != nil {
			return err
		}
	}
	for _, id := range ids {
		if _, ok := e.pending[id]; ok {
			delete(e.pending, id)
			e.acked = append(e.acked, id)
		}
	}
	return nil
}

// Acked returns the IDs acknowledged so far, in order.
func (e *Events) Acked() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.acked)
}

// Pending returns the IDs delivered but not acknowledged, sorted.
func (e *Events) Pending() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for id := range e.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Poster is a fake bot.Poster that records notifications. Errs are
// returned, one per call, by the next Post calls (a nil entry succeeds);
// a failed call records nothing.
type Poster struct {
	mu    sync.Mutex
	posts []bot.Notification
	calls int
	Errs  []error
	wake  chan struct{}
}

// Post records n, or fails with the next of Errs.
func (p *Poster) Post(_ context.Context, n bot.Notification) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if len(p.Errs) > 0 {
		err := p.Errs[0]
		p.Errs = p.Errs[1:]
		if err != nil {
			return err
		}
	}
	p.posts = append(p.posts, n)
	if p.wake == nil {
		p.wake = make(chan struct{}, 1)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// Posts returns the notifications posted so far.
func (p *Poster) Posts() []bot.Notification {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.posts)
}

// Calls returns how many times Post was called, failures included.
func (p *Poster) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// WaitPosts waits until at least n notifications were posted, failing t
// after 10 seconds. It waits for another goroutine, not for time-based
// logic.
func (p *Poster) WaitPosts(t testing.TB, n int) []bot.Notification {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		if len(p.posts) >= n {
			out := slices.Clone(p.posts)
			p.mu.Unlock()
			return out
		}
		if p.wake == nil {
			p.wake = make(chan struct{}, 1)
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("waited for %d posts, got %d", n, len(p.Posts()))
		}
	}
}

// Auditor records refusals.
type Auditor struct {
	mu       sync.Mutex
	refusals []bot.Refusal
}

// Refused records r.
func (a *Auditor) Refused(_ context.Context, r bot.Refusal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refusals = append(a.refusals, r)
}

// Refusals returns what was recorded.
func (a *Auditor) Refusals() []bot.Refusal {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.refusals)
}

// Sleeper replaces the Notifier's Sleep: it records each wait and returns
// at once, or with ctx's error if ctx has ended.
type Sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

// Sleep records d.
func (s *Sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

// Waits returns the recorded waits.
func (s *Sleeper) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// RetryAfterError is an error carrying a Retry-After hint, as a chat API's
// 429 does.
type RetryAfterError struct{ After time.Duration }

// Error says it was rate limited.
func (e RetryAfterError) Error() string { return fmt.Sprintf("rate limited; retry after %s", e.After) }

// RetryAfter returns the hint.
func (e RetryAfterError) RetryAfter() time.Duration { return e.After }

// PermanentError is an error that retrying cannot fix.
type PermanentError struct{ Msg string }

// Error returns Msg.
func (e PermanentError) Error() string { return e.Msg }

// Permanent returns true.
func (e PermanentError) Permanent() bool { return true }
