package sites

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// Poller reads one endpoint once and sends what it read to the sink it was
// made with. An error means the poll failed.
type Poller interface {
	Poll(ctx context.Context) error
}

// Factory makes the poller of one endpoint of a site.
type Factory func(site string, ep store.SiteEndpoint, deps Deps) (Poller, error)

// Deps are what a factory may hand to the poller it makes.
type Deps struct {
	// Interval is how often the poller is called (PollInterval), for
	// pollers whose queries look back over one period.
	Interval   time.Duration
	Sink       Sink
	HTTPClient *http.Client
	Clock      clock.Clock
	Logger     *slog.Logger
}

// Sink makes observations durable; the state store's AppendObservations
// is one.
type Sink interface {
	AppendObservations(ctx context.Context, obs []model.Observation) error
}

// Registry is where registered sites and their endpoints' statuses live;
// the state store is one.
type Registry interface {
	RegisteredSites(ctx context.Context) ([]store.RegisteredSite, error)
	EndpointStatuses(ctx context.Context) (map[string]map[string]store.EndpointStatus, error)
	SaveEndpointStatus(ctx context.Context, st store.EndpointStatus) error
	DeleteEndpointStatus(ctx context.Context, site, endpoint string) error
	LeaseEndpoint(ctx context.Context, site, endpoint, owner string, ttl time.Duration) (bool, error)
}

var _ Registry = (*store.Store)(nil)

// Defaults applied by NewManager.
const (
	DefaultInterval     = 10 * time.Second
	DefaultPollInterval = time.Minute
	DefaultPollTimeout  = 30 * time.Second
	DefaultFailAfter    = 3
	DefaultKeepAlive    = 5 * time.Minute
	DefaultConcurrency  = 32
	DefaultSource       = "sites"
	// ServiceID names the service observation a blind site gets.
	ServiceID = "site-collectors"
)

// ManagerOptions configures a Manager. Registry, Sink and Kinds are
// required.
type ManagerOptions struct {
	Registry Registry
	Sink     Sink
	// Kinds are the endpoint kinds polled, by name.
	Kinds map[string]Kind
	// Owner names this replica in endpoint leases.
	Owner string
	// Interval is how often the registry is read; default 10s.
	Interval time.Duration
	// PollInterval is how often each endpoint is polled; default 1m.
	PollInterval time.Duration
	// PollTimeout bounds one poll; default 30s.
	PollTimeout time.Duration
	// Concurrency bounds the polls in flight; default 32.
	Concurrency int
	// FailAfter is how many failed polls in a row make an endpoint count
	// as failing; a site whose every endpoint fails is down. Default 3.
	FailAfter int
	// KeepAlive is how often a site's unchanged state is sent again, so
	// that neither the "sites" source nor the service looks silent; keep
	// it below the rules' stopped_reporting. Default 5m.
	KeepAlive time.Duration
	// Source names the site-collectors observations; default "sites".
	Source     string
	HTTPClient *http.Client
	Clock      clock.Clock
	// Wait sleeps between steps; default a timer. It returns ctx's error
	// when ctx ends first.
	Wait       func(ctx context.Context, d time.Duration) error
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Manager keeps one poller per registered endpoint and polls them.
type Manager struct {
	opts ManagerOptions
	log  *slog.Logger
	m    *metrics

	mu      sync.Mutex
	running map[string]*endpoint // by site + "\n" + endpoint id
	sites   map[string]model.State
	sentAt  map[string]time.Time
	// gone are sites unregistered while down, whose incident must clear.
	gone []string
}

// endpoint is a running poller and its record.
type endpoint struct {
	site    string
	ep      store.SiteEndpoint
	poller  Poller
	due     time.Time
	status  store.EndpointStatus
	makeErr string // the factory's refusal, reported as every poll's error
}

type metrics struct {
	polls    *prometheus.CounterVec
	pollers  prometheus.Gauge
	lastOK   *prometheus.GaugeVec
	sitesOff prometheus.Gauge
}

// NewManager checks opts, fills in defaults and registers the metrics.
func NewManager(opts ManagerOptions) (*Manager, error) {
	var problems []string
	if opts.Registry == nil {
		problems = append(problems, "a registry is required")
	}
	if opts.Sink == nil {
		problems = append(problems, "a sink is required")
	}
	if len(opts.Kinds) == 0 {
		problems = append(problems, "at least one endpoint kind is required")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("sites manager: %s", strings.Join(problems, "; "))
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = DefaultPollTimeout
	}
	if opts.FailAfter <= 0 {
		opts.FailAfter = DefaultFailAfter
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if opts.Owner == "" {
		opts.Owner = "vmtriage"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.PollTimeout}
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Wait == nil {
		opts.Wait = sleep
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_sites_polls_total", Help: "Polls of registered sites' endpoints, by site, kind and result (ok, error).",
		}, []string{"site", "kind", "result"}),
		pollers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vmtriage_sites_endpoints", Help: "Registered endpoints this replica keeps a poller for.",
		}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vmtriage_sites_last_success_timestamp_seconds", Help: "When a site's latest successful poll finished (Unix time).",
		}, []string{"site"}),
		sitesOff: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vmtriage_sites_down", Help: "Registered sites whose every endpoint is failing.",
		}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{m.polls, m.pollers, m.lastOK, m.sitesOff} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register sites metrics: %w", err)
			}
		}
	}
	return &Manager{opts: opts, log: opts.Logger.With("collector", "sites"), m: m,
		running: map[string]*endpoint{}, sites: map[string]model.State{}, sentAt: map[string]time.Time{}}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Run reads the registry and polls the due endpoints every Interval until
// ctx ends, then returns nil. A failed step is logged; the next one tries
// again.
func (m *Manager) Run(ctx context.Context) error {
	m.log.Info("registered-sites poller starting", "interval", m.opts.Interval, "poll_interval", m.opts.PollInterval,
		"fail_after", m.opts.FailAfter, "kinds", kindList(m.opts.Kinds))
	for {
		if err := m.Step(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("registered sites: step failed; the next one retries", "err", err)
		}
		if m.opts.Wait(ctx, m.opts.Interval) != nil || ctx.Err() != nil {
			m.log.Info("registered-sites poller stopped")
			return nil
		}
	}
}

// Step reads the registry, starts a poller for each new endpoint and drops
// those no longer registered, then polls every endpoint that is due (in
// parallel) and sends a blind site's observation. It returns when the
// polls are done.
func (m *Manager) Step(ctx context.Context) error {
	regs, err := m.opts.Registry.RegisteredSites(ctx)
	if err != nil {
		// Keep polling what is known: Redis being away must not stop the
		// pollers, whose data is queued once it is back.
		m.log.Warn("read registered sites", "err", err)
	}
	statuses, serr := m.opts.Registry.EndpointStatuses(ctx)
	if serr != nil {
		m.log.Warn("read endpoint statuses", "err", serr)
	}
	if err == nil {
		m.sync(ctx, regs, statuses)
	}
	m.pollDue(ctx)
	if err == nil && serr == nil {
		m.judgeSites(ctx, regs, statuses)
	}
	return errors.Join(err, serr)
}

// Endpoints lists the endpoints with a poller, as "<site> <kind> <target>",
// sorted; for tests and logs.
func (m *Manager) Endpoints() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.running))
	for _, e := range m.running {
		out = append(out, e.site+" "+e.ep.ID())
	}
	slices.Sort(out)
	return out
}

func (m *Manager) sync(ctx context.Context, regs []store.RegisteredSite, statuses map[string]map[string]store.EndpointStatus) {
	now := m.opts.Clock.Now()
	want := map[string]bool{}
	registered := map[string]bool{}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rs := range regs {
		registered[rs.Site] = true
		for _, ep := range rs.Endpoints {
			key := rs.Site + "\n" + ep.ID()
			want[key] = true
			if e, ok := m.running[key]; ok {
				// Another replica may have polled it since.
				if st, ok := statuses[rs.Site][ep.ID()]; ok && st.LastPoll.After(e.status.LastPoll) {
					e.status = st
				}
				continue
			}
			// Start from the recorded status, which another replica or an
			// earlier run of this one may have kept.
			st, ok := statuses[rs.Site][ep.ID()]
			if !ok {
				st = store.EndpointStatus{Site: rs.Site, Endpoint: ep.ID()}
			}
			e := &endpoint{site: rs.Site, ep: ep, due: now, status: st}
			k, ok := m.opts.Kinds[ep.Kind]
			if !ok {
				e.makeErr = fmt.Sprintf("kind %q is not polled by this server", ep.Kind)
			} else if p, err := k.New(rs.Site, ep, Deps{Interval: m.opts.PollInterval, Sink: m.opts.Sink, HTTPClient: m.opts.HTTPClient,
				Clock: m.opts.Clock, Logger: m.log.With("site", rs.Site, "kind", ep.Kind)}); err != nil {
				e.makeErr = err.Error()
			} else {
				e.poller = p
			}
			m.running[key] = e
			m.log.Info("polling a registered endpoint", "site", rs.Site, "kind", ep.Kind, "target", ep.ID())
		}
	}
	for key, e := range m.running {
		if want[key] {
			continue
		}
		delete(m.running, key)
		m.log.Info("stopped polling an endpoint no longer registered", "site", e.site, "kind", e.ep.Kind, "target", e.ep.ID())
		if err := m.opts.Registry.DeleteEndpointStatus(ctx, e.site, e.ep.ID()); err != nil {
			m.log.Warn("forget endpoint status", "site", e.site, "err", err)
		}
	}
	for site := range m.sites {
		if !registered[site] {
			if m.sites[site] == model.StateDown {
				m.gone = append(m.gone, site)
			}
			delete(m.sites, site)
			delete(m.sentAt, site)
		}
	}
	m.m.pollers.Set(float64(len(m.running)))
}

func (m *Manager) pollDue(ctx context.Context) {
	now := m.opts.Clock.Now()
	var due []*endpoint
	m.mu.Lock()
	for _, e := range m.running {
		if !now.Before(e.due) {
			due = append(due, e)
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, m.opts.Concurrency)
	for _, e := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m.pollOne(ctx, e, now)
		})
	}
	wg.Wait()
}

// pollOne polls one endpoint if this replica holds its lease, and records
// the result in the registry.
func (m *Manager) pollOne(ctx context.Context, e *endpoint, now time.Time) {
	e.due = now.Add(m.opts.PollInterval)
	ok, err := m.opts.Registry.LeaseEndpoint(ctx, e.site, e.ep.ID(), m.opts.Owner, 2*m.opts.PollInterval)
	if err != nil {
		m.log.Warn("lease endpoint", "site", e.site, "target", e.ep.ID(), "err", err)
		return
	}
	if !ok {
		// Another replica polls it; its statuses are in the registry.
		return
	}
	var perr error
	if e.poller == nil {
		perr = errors.New(e.makeErr)
	} else {
		pctx, cancel := context.WithTimeout(ctx, m.opts.PollTimeout)
		perr = e.poller.Poll(pctx)
		cancel()
	}
	if ctx.Err() != nil {
		return
	}
	e.status.LastPoll = m.opts.Clock.Now()
	if perr != nil {
		e.status.Failures++
		e.status.LastError = clip1k(perr.Error())
		m.m.polls.WithLabelValues(e.site, e.ep.Kind, "error").Inc()
		m.log.Warn("registered endpoint poll failed", "site", e.site, "kind", e.ep.Kind, "target", e.ep.ID(),
			"consecutive_failures", e.status.Failures, "err", perr)
	} else {
		e.status.Failures = 0
		e.status.LastError = ""
		e.status.LastSuccess = e.status.LastPoll
		m.m.polls.WithLabelValues(e.site, e.ep.Kind, "ok").Inc()
		m.m.lastOK.WithLabelValues(e.site).Set(float64(e.status.LastSuccess.UnixNano()) / 1e9)
	}
	if err := m.opts.Registry.SaveEndpointStatus(ctx, e.status); err != nil {
		m.log.Warn("save endpoint status", "site", e.site, "err", err)
	}
}

// judgeSites sends a site's collectors' state when it differs from what
// this replica last sent: down when every registered endpoint of the site
// has failed its last FailAfter polls, up when any of them worked at its
// last poll. The statuses are the registry's, overlaid with this replica's
// polls, so the verdict is the same whichever replica polled what.
func (m *Manager) judgeSites(ctx context.Context, regs []store.RegisteredSite, statuses map[string]map[string]store.EndpointStatus) {
	now := m.opts.Clock.Now()
	var obs []model.Observation
	m.mu.Lock()
	for _, rs := range regs {
		classes := make([]string, 0, len(rs.Endpoints))
		failing := 0
		for _, ep := range rs.Endpoints {
			st := statuses[rs.Site][ep.ID()]
			if e := m.running[rs.Site+"\n"+ep.ID()]; e != nil && e.status.LastPoll.After(st.LastPoll) {
				st = e.status
			}
			c := classify(st, m.opts.FailAfter)
			if c == statusFailing {
				failing++
			}
			classes = append(classes, c)
		}
		state := siteState(classes)
		if state == "" {
			continue
		}
		// The same state again only every KeepAlive: enough to keep the
		// source and the service from looking silent to stopped-reporting.
		if m.sites[rs.Site] == state && now.Sub(m.sentAt[rs.Site]) < m.opts.KeepAlive {
			continue
		}
		obs = append(obs, model.Observation{
			Source: m.opts.Source, Kind: model.KindService, ID: ServiceID, Host: HostOf(rs.Site), Site: rs.Site,
			State: state, Attrs: map[string]any{"endpoints": float64(len(rs.Endpoints)), "failing": float64(failing)},
			TimeGenerated: now, TimeReceived: now,
		})
	}
	// A site no longer registered is no longer watched: its state is
	// unknown, which clears its incident.
	gone := m.gone
	m.gone = nil
	for _, site := range gone {
		obs = append(obs, model.Observation{Source: m.opts.Source, Kind: model.KindService, ID: ServiceID, Host: HostOf(site),
			Site: site, State: model.StateUnknown, TimeGenerated: now, TimeReceived: now})
	}
	m.mu.Unlock()
	if len(obs) > 0 {
		if err := m.opts.Sink.AppendObservations(ctx, obs); err != nil {
			// Not remembered: the next step sends them again.
			m.log.Warn("send site states", "sites", len(obs), "err", err)
			obs = nil
			m.mu.Lock()
			m.gone = append(m.gone, gone...)
			m.mu.Unlock()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range obs {
		if o.State == model.StateUnknown {
			m.log.Info("a site unregistered while down is no longer watched", "site", o.Site)
			continue
		}
		was := m.sites[o.Site]
		m.sites[o.Site] = o.State
		m.sentAt[o.Site] = now
		if was == o.State {
			continue
		}
		if o.State == model.StateDown {
			m.log.Warn("every collector endpoint of a registered site is failing", "site", o.Site)
		} else {
			m.log.Info("a registered site's collectors answer", "site", o.Site)
		}
	}
	down := 0
	for _, s := range m.sites {
		if s == model.StateDown {
			down++
		}
	}
	m.m.sitesOff.Set(float64(down))
}

// HostOf is the host a site's site-collectors service is reported on: the
// engine judges services per host, and a site's collectors belong to no
// one host of it.
func HostOf(site string) string { return "site:" + site }

func clip1k(s string) string {
	if r := []rune(s); len(r) > 1000 {
		return string(r[:1000]) + "…"
	}
	return s
}
