package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// IncidentStore is what the engine needs from the state store: incidents
// with compare-and-set versions, silences, the escalation due-time set and
// the derived host periods. internal/store implements it.
type IncidentStore interface {
	// NextIncidentID returns a new unique incident id.
	NextIncidentID(ctx context.Context) (string, error)
	// SaveIncident stores inc if the stored version equals inc.Version,
	// then increments inc.Version and sets inc.UpdatedAt.
	SaveIncident(ctx context.Context, inc *model.Incident) error
	// Incident returns the stored incident; used to merge after a
	// version conflict.
	Incident(ctx context.Context, id string) (model.Incident, error)
	// DeleteIncident removes a pending incident that was withdrawn before
	// it fired, if the stored version equals inc.Version.
	DeleteIncident(ctx context.Context, inc *model.Incident) error
	// OpenIncidents lists pending and firing incidents (at start-up).
	OpenIncidents(ctx context.Context) ([]model.Incident, error)
	Silences(ctx context.Context) ([]model.Silence, error)
	SaveSilence(ctx context.Context, s model.Silence) error
	ExpireSilence(ctx context.Context, id string, at time.Time) error
	NextSilenceID(ctx context.Context) (string, error)
	// ScheduleEscalation sets when the incident's next level is due;
	// ClaimDueEscalations atomically takes the due ones so that two
	// replicas never escalate the same level twice.
	ScheduleEscalation(ctx context.Context, incidentID string, due time.Time) error
	CancelEscalation(ctx context.Context, incidentID string) error
	ClaimDueEscalations(ctx context.Context, now time.Time, limit int) ([]string, error)
	// SaveHostPeriod records a host's derived state for one period.
	SaveHostPeriod(ctx context.Context, host string, p model.HostPeriod) error
}

// Options configure an Engine.
type Options struct {
	// Rules is the rule set; nil means Default().
	Rules *Set
	// Store persists every incident change. Required.
	Store IncidentStore
	// Clock defaults to the wall clock.
	Clock clock.Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the engine's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Runbooks turns an incident into runbook links; nil lists the rule's
	// runbook slug as it is.
	Runbooks func(inc *model.Incident) []string
	// Services tells which services an incident's VMs belong to and how
	// badly each is hit (inventory.Manager.IncidentServices); nil leaves
	// Incident.Services empty. It is called under the engine's lock each
	// time an incident changes, so it must not do I/O.
	Services func(inc *model.Incident) []model.ServiceImpact
	// Impact fills in what the subject's fault does to its services
	// (inventory.Manager.RuleImpact), for rules that read impact.*. It is
	// called under the engine's lock for every evaluation of a vm or host
	// rule set that reads it, so it must not do I/O or allocate; nil
	// leaves impact zero.
	Impact func(q ImpactQuery, out *ImpactEnv)
	// TickInterval is how often Run ticks; default a twelfth of the period,
	// at least a second.
	TickInterval time.Duration
}

// Engine evaluates rules over observations and keeps incidents. It is safe
// for concurrent use; evaluation is serialised by one lock, which is what
// makes each evaluation allocation-free (one reused expr VM and Env).
type Engine struct {
	mu       sync.Mutex
	set      *Set
	store    IncidentStore
	clock    clock.Clock
	log      *slog.Logger
	runbooks func(inc *model.Incident) []string
	services func(inc *model.Incident) []model.ServiceImpact
	impact   func(q ImpactQuery, out *ImpactEnv)
	tick     time.Duration
	m        *metrics

	ev    *evaluator
	fleet *fleet

	// incidents by group key and by fingerprint; byID for acks and
	// escalation claims; open is the set of pending and firing ones.
	byKey map[incKey]*incState
	byFP  map[string]*incState
	byID  map[string]*incState
	open  map[*incState]struct{}
	// dirty incidents await persistence; changedOpen says whether
	// inhibition must be recomputed.
	dirty       map[*incState]struct{}
	changedOpen bool
	periods     map[*periodRec]*hostRec
	silences    []model.Silence
	startedAt   time.Time

	// now is the engine clock for the current operation.
	now time.Time
	// evals counts rule evaluations per scope until flushed to metrics.
	evals          [4]int
	errs           int
	lastStaleCheck time.Time
	// cur describes the subject under evaluation to incidents it joins.
	cur evalCtx
	// reasonCache maps a reason mask to its names (per rule set).
	reasonCache map[uint64][]string
}

// NewEngine builds an engine and loads the open incidents and silences from
// the store, so that a restart neither duplicates nor forgets incidents.
func NewEngine(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("new rule engine: a store is required")
	}
	if opts.Rules == nil {
		s, err := Default()
		if err != nil {
			return nil, fmt.Errorf("new rule engine: %w", err)
		}
		opts.Rules = s
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := &Engine{
		set:      opts.Rules,
		store:    opts.Store,
		clock:    opts.Clock,
		log:      opts.Logger,
		runbooks: opts.Runbooks,
		services: opts.Services,
		impact:   opts.Impact,
		tick:     opts.TickInterval,
		ev:       newEvaluator(),
		fleet:    newFleet(opts.Rules.Settings.History),
		byKey:    map[incKey]*incState{},
		byFP:     map[string]*incState{},
		byID:     map[string]*incState{},
		open:     map[*incState]struct{}{},
		dirty:    map[*incState]struct{}{},
		periods:  map[*periodRec]*hostRec{},
	}
	if e.tick <= 0 {
		e.tick = max(e.set.Settings.Period/12, time.Second)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new rule engine: %w", err)
	}
	e.m = m
	e.startedAt = e.clock.Now()
	open, err := e.store.OpenIncidents(ctx)
	if err != nil {
		return nil, fmt.Errorf("new rule engine: load open incidents: %w", err)
	}
	for _, inc := range open {
		r := e.set.Rule(inc.Rule)
		st := &incState{rule: r, inc: inc, members: map[string]struct{}{}, loaded: true, escScheduled: true}
		if r == nil {
			// The rule is gone: resolve the incident at the next tick.
			st.rule = &Rule{Name: inc.Rule, ResolveDelay: 0}
		}
		e.byFP[inc.Fingerprint] = st
		e.byID[inc.ID] = st
		e.open[st] = struct{}{}
	}
	e.silences, err = e.store.Silences(ctx)
	if err != nil {
		return nil, fmt.Errorf("new rule engine: load silences: %w", err)
	}
	e.m.setOpen(e.open)
	return e, nil
}

// Period returns the collection period length of the current rules.
func (e *Engine) Period() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set.Settings.Period
}

// Rules returns the rule set in force.
func (e *Engine) Rules() *Set {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set
}

// Observe applies a batch of observations to the fleet index, evaluates
// the rules they concern, and persists every incident change before it
// returns. Applying the same batch twice changes nothing. On error the
// unsaved changes are kept and retried by the next Observe or Tick.
//
// A VM observation without a state is taken as a heartbeat: it proves the
// VM is alive (for stopped reporting) and changes nothing else.
func (e *Engine) Observe(ctx context.Context, obs []model.Observation) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.clock.Now()
	for i := range obs {
		o := &obs[i]
		switch o.Kind {
		case model.KindVM:
			e.observeVM(o)
		case model.KindHost:
			e.observeHost(o)
		case model.KindService:
			e.observeService(o)
		}
	}
	return e.flush(ctx)
}

// Tick advances time-based logic to the clock's now: pending incidents
// fire after their rule's "for", clear ones resolve after the resolve
// delay, silent VMs, hosts and sources become stale, silences start and
// end, and due escalations are claimed and applied.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.clock.Now()
	// The stale scan visits every VM; a twentieth of the timeout is
	// precise enough and keeps ticks cheap on a 100,000-VM fleet.
	if every := e.set.Settings.StoppedReporting / 20; e.now.Sub(e.lastStaleCheck) >= every {
		e.lastStaleCheck = e.now
		e.checkStale()
	}
	e.advanceLifecycle()
	e.refreshSilences()
	if err := e.claimEscalations(ctx); err != nil {
		return errors.Join(err, e.flush(ctx))
	}
	e.prune()
	return e.flush(ctx)
}

// Run ticks until ctx ends. Errors are logged and retried at the next tick.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("rule engine tick failed", "err", err)
			}
		}
	}
}

// Reload swaps the rule set atomically. Every subject is re-evaluated
// under the new rules; incidents of removed rules resolve. The resulting
// incident changes are persisted by the next Observe or Tick.
func (e *Engine) Reload(s *Set) {
	if s == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.clock.Now()
	e.set = s
	if s.Settings.History != e.fleet.ringLen {
		e.fleet.resizeRings(s.Settings.History)
	}
	// Memberships point at rules of the old set: drop them all and let the
	// sweep rebuild them, so only incidents whose condition no longer holds
	// start to clear.
	for _, st := range e.byKey {
		if r := s.Rule(st.rule.Name); r != nil {
			st.rule = r
		} else {
			st.rule = &Rule{Name: st.rule.Name}
		}
		st.prevMembers = st.members
		st.members = map[string]struct{}{}
	}
	for _, st := range e.byFP {
		if r := s.Rule(st.rule.Name); r != nil {
			st.rule = r
		}
	}
	e.clearMatches()
	e.sweep()
	for _, st := range e.byKey {
		if st.prevMembers == nil {
			continue
		}
		if len(st.members) == 0 && st.inc.Open() {
			if s.Rule(st.rule.Name) == nil {
				// The rule is gone: nothing will ever clear it otherwise.
				st.clearedAt = e.now
				e.resolve(st)
			} else if len(st.prevMembers) > 0 {
				e.cleared(st)
			}
		}
		st.prevMembers = nil
	}
	e.changedOpen = true
	e.m.reloads.WithLabelValues("success").Inc()
	e.log.Info("rules reloaded", "rules", len(s.Rules))
}

// ReloadFiles loads paths and swaps them in. A bad file is refused: the
// error is returned, counted, and the rules in force stay.
func (e *Engine) ReloadFiles(paths ...string) error {
	s, err := LoadFiles(paths...)
	if err != nil {
		e.m.reloads.WithLabelValues("failure").Inc()
		return fmt.Errorf("reload rules: %w", err)
	}
	e.Reload(s)
	return nil
}

// ReloadFailed counts a refused reload done outside ReloadFiles (e.g. by
// Watch).
func (e *Engine) ReloadFailed() { e.m.reloads.WithLabelValues("failure").Inc() }

// ErrNoIncident is returned when an id names no open incident.
var ErrNoIncident = errors.New("no such open incident")

// Ack acknowledges an open incident, which stops its escalation.
func (e *Engine) Ack(ctx context.Context, id, user string) (model.Incident, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.clock.Now()
	st := e.byID[id]
	if st == nil || !st.inc.Open() {
		return model.Incident{}, fmt.Errorf("ack %s: %w", id, ErrNoIncident)
	}
	if st.inc.AckedBy == "" {
		st.inc.AckedBy = user
		st.inc.AckedAt = e.now
		e.markDirty(st)
	}
	if err := e.flush(ctx); err != nil {
		return st.inc, fmt.Errorf("ack %s: %w", id, err)
	}
	return st.inc, nil
}

// Incident returns the engine's copy of an incident it holds in memory
// (open, or resolved within the reopen window).
func (e *Engine) Incident(id string) (model.Incident, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.byID[id]
	if st == nil {
		return model.Incident{}, false
	}
	return st.inc, true
}

// OpenIncidents returns the open incidents, oldest first.
func (e *Engine) OpenIncidents() []model.Incident {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]model.Incident, 0, len(e.open))
	for st := range e.open {
		if st.inc.ID != "" {
			out = append(out, st.inc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}

// PlatformRecovery reports whether the platform is recovering the VM itself
// (e.g. planned maintenance), and the incident that says so. Remedies must
// refuse manual restarts and migrations while it is true.
func (e *Engine) PlatformRecovery(vm string) (incidentID string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for st := range e.open {
		if e.recovering(st) && (st.labels.vm == vm || containsString(st.inc.VMs, vm)) {
			return st.inc.ID, true
		}
	}
	return "", false
}

// recovering says whether an incident's platform recovery is in progress:
// its rule marks platform recovery and its condition (e.g. the maintenance
// event) still holds. Once the VM is back, the recovery is over even while
// the incident waits out its resolve delay. An incident loaded at start-up
// counts as recovering until its subject is evaluated again.
func (e *Engine) recovering(st *incState) bool {
	return st.rule.PlatformRecovery && st.inc.Open() && (len(st.members) > 0 || st.loaded)
}

// AddSilence stores a silence (assigning an id and creation time when
// missing) and applies it to open incidents at once.
func (e *Engine) AddSilence(ctx context.Context, s model.Silence) (model.Silence, error) {
	if s.VM == "" && s.Host == "" && s.Site == "" && s.Rule == "" {
		return s, errors.New("add silence: it must match a vm, host, site or rule")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.clock.Now()
	if s.StartsAt.IsZero() {
		s.StartsAt = e.now
	}
	if !s.EndsAt.After(s.StartsAt) {
		return s, errors.New("add silence: it must end after it starts")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = e.now
	}
	if s.ID == "" {
		id, err := e.store.NextSilenceID(ctx)
		if err != nil {
			return s, fmt.Errorf("add silence: %w", err)
		}
		s.ID = id
	}
	if err := e.store.SaveSilence(ctx, s); err != nil {
		return s, fmt.Errorf("add silence %s: %w", s.ID, err)
	}
	replaced := false
	for i := range e.silences {
		if e.silences[i].ID == s.ID {
			e.silences[i] = s
			replaced = true
		}
	}
	if !replaced {
		e.silences = append(e.silences, s)
	}
	e.refreshSilences()
	return s, e.flush(ctx)
}

// ExpireSilence ends a silence now. user is recorded in the log.
func (e *Engine) ExpireSilence(ctx context.Context, id, user string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.clock.Now()
	if err := e.store.ExpireSilence(ctx, id, e.now); err != nil {
		return fmt.Errorf("expire silence %s: %w", id, err)
	}
	for i := range e.silences {
		if e.silences[i].ID == id && e.silences[i].EndsAt.After(e.now) {
			e.silences[i].EndsAt = e.now
		}
	}
	e.log.Info("silence expired", "silence", id, "user", user)
	e.refreshSilences()
	return e.flush(ctx)
}

// Silences returns the silences the engine knows, including recently
// expired ones.
func (e *Engine) Silences() []model.Silence {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]model.Silence(nil), e.silences...)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
