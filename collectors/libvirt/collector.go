package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Sink takes the observations the collector produced; when it returns nil
// they are durable. The state store's AppendObservations (the HTTP API's
// Ingester) is one.
type Sink interface {
	AppendObservations(ctx context.Context, obs []model.Observation) error
}

// Defaults applied by New to zero Options fields.
const (
	DefaultInterval    = time.Minute
	DefaultRPCTimeout  = 30 * time.Second
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 2 * time.Minute
	DefaultConcurrency = 64
	DefaultSource      = "libvirt"
)

// ServiceName is the id of the service observation that reports each
// host's libvirtd.
const ServiceName = "libvirtd"

// AttrError carries, on a down libvirtd service observation, why the
// daemon could not be reached.
const AttrError = "error"

// Target is one host's libvirtd.
type Target struct {
	// URI is a libvirt URI: qemu+tls://host/system, qemu+tcp://host/system,
	// qemu:///system?socket=/path (unix socket), test:///path.xml (the test
	// driver, through the daemon), or a bare socket path for the system
	// QEMU driver. tls takes ?pkipath= and ?no_verify=1 as libvirt does.
	URI string
	// Host is the host name the observations carry; default the URI's
	// host. Required for unix sockets.
	Host string
	// Site overrides Options.Site for this host.
	Site string
}

// ParseTargets reads a comma-separated list of URIs, each optionally
// preceded by the host name and "=" ("host-007=qemu+tls://10.0.0.7/system").
func ParseTargets(s string) ([]Target, error) {
	var out []Target
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var t Target
		if host, uri, ok := strings.Cut(item, "="); ok && !strings.Contains(host, ":") && !strings.Contains(host, "/") {
			t.Host, t.URI = strings.TrimSpace(host), strings.TrimSpace(uri)
		} else {
			t.URI = item
		}
		if t.URI == "" {
			return nil, fmt.Errorf("libvirt target %d (%q): no URI after the host name", i+1, item)
		}
		out = append(out, t)
	}
	return out, nil
}

// Options configures a Collector. Targets and Sink are required.
type Options struct {
	Targets []Target
	// Site is the site of every target that does not name its own.
	Site string
	// Interval between full listings; default 1m.
	Interval time.Duration
	// RPCTimeout bounds every call to a libvirtd (dial, handshake, listing,
	// subscription); a daemon that does not answer in time gets its
	// connection closed. Default 30s.
	RPCTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts, doubled after each failure; default 1s and 2m.
	MinBackoff, MaxBackoff time.Duration
	// Concurrency is how many hosts are listed at once; default 64.
	Concurrency int
	// Source names the observations' source; default "libvirt".
	Source string
	Sink   Sink
	// Inventory, if set, gets each listed domain's service from its
	// metadata (see MetadataURI) in the "libvirt-metadata" layer; nil
	// leaves metadata unread.
	Inventory InventorySink
	Clock     clock.Clock
	// Wait sleeps between listings and reconnection attempts; default a
	// timer. It returns ctx's error when ctx ends first. Tests make it
	// advance a fake clock.
	Wait       func(ctx context.Context, d time.Duration) error
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Collector watches the libvirtds of Options.Targets.
type Collector struct {
	opts    Options
	targets []*target
	dial    dialFunc
	m       *metrics
	log     *slog.Logger
}

// target is one libvirtd and what the collector knows of its connection.
type target struct {
	uri, host, site string
	url             *url.URL
	remote          golibvirt.ConnectURI
	metadata        bool // read domains' vmtriage metadata

	mu      sync.Mutex
	conn    conn  // nil while not connected
	tried   bool  // a first connection attempt has finished
	lastErr error // why the last connection failed or ended
}

// New checks opts, fills in defaults and registers the collector's metrics.
func New(opts Options) (*Collector, error) {
	var problems []string
	if len(opts.Targets) == 0 {
		problems = append(problems, "at least one target URI is required")
	}
	if opts.Sink == nil {
		problems = append(problems, "a sink is required")
	}
	targets := make([]*target, 0, len(opts.Targets))
	seen := map[string]bool{}
	for i, t := range opts.Targets {
		u, remote, err := parseURI(t.URI)
		if err != nil {
			problems = append(problems, fmt.Sprintf("target %d URI %q: %v", i+1, t.URI, err))
			continue
		}
		host := t.Host
		if host == "" {
			host = u.Hostname()
		}
		site := t.Site
		if site == "" {
			site = opts.Site
		}
		// The names go into every observation: check them once here.
		now := time.Now()
		probe := model.Observation{Source: "libvirt", Kind: model.KindService, ID: ServiceName, Host: host, Site: site, State: model.StateUp, TimeGenerated: now}
		switch {
		case host == "":
			problems = append(problems, fmt.Sprintf("target %d URI %q: a host name is required for a local socket (write host=URI)", i+1, t.URI))
		case seen[host]:
			problems = append(problems, fmt.Sprintf("target %d: host %q is listed twice", i+1, host))
		default:
			if err := probe.Validate(now); err != nil {
				problems = append(problems, fmt.Sprintf("target %d: %v", i+1, err))
			}
		}
		seen[host] = true
		targets = append(targets, &target{uri: t.URI, host: host, site: site, url: u, remote: remote, metadata: opts.Inventory != nil})
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("libvirt collector: %s", strings.Join(problems, "; "))
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.RPCTimeout <= 0 {
		opts.RPCTimeout = DefaultRPCTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
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
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Collector{opts: opts, targets: targets, dial: dialLibvirt, m: m, log: opts.Logger.With("collector", "libvirt")}, nil
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

// Run connects to every target, keeps the connections (reconnecting and
// subscribing to events again when one is lost) and lists every connected
// host each Interval, until ctx ends; then it closes the connections and
// returns nil.
func (c *Collector) Run(ctx context.Context) error {
	uris := make([]string, len(c.targets))
	for i, t := range c.targets {
		uris[i] = t.uri
	}
	c.log.Info("libvirt collector starting", "targets", len(c.targets), "uris", uris,
		"interval", c.opts.Interval, "rpc_timeout", c.opts.RPCTimeout)
	var wg sync.WaitGroup
	for _, t := range c.targets {
		wg.Go(func() { c.keep(ctx, t) })
	}
	for {
		if c.opts.Wait(ctx, c.opts.Interval) != nil || ctx.Err() != nil {
			break
		}
		if err := c.Poll(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("libvirt poll incomplete; next poll retries", "err", err)
		}
	}
	wg.Wait()
	c.log.Info("libvirt collector stopped")
	return nil
}

// keep holds one target's connection until ctx ends: it connects,
// reports, follows events until the connection is lost, and tries again
// after a backoff that doubles while attempts keep failing.
func (c *Collector) keep(ctx context.Context, t *target) {
	backoff := c.opts.MinBackoff
	for ctx.Err() == nil {
		cn, err := c.dial(t, c.opts.RPCTimeout)
		if err == nil {
			var listed bool
			listed, err = c.session(ctx, t, cn)
			if ctx.Err() != nil {
				return
			}
			if listed {
				backoff = c.opts.MinBackoff
			}
		} else {
			c.m.errors.WithLabelValues("connect").Inc()
		}
		c.setDown(ctx, t, err)
		if c.opts.Wait(ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

// session follows one connection: it subscribes to lifecycle events,
// reports the host at once (so a reconnection catches up with what
// happened while it was down), then turns each event into an observation
// until the connection is lost or ctx ends. It returns whether the
// listing worked, and why the connection ended.
func (c *Collector) session(ctx context.Context, t *target, cn conn) (listed bool, err error) {
	// The subscription is not cancelled with ctx: go-libvirt's event
	// goroutine, when cancelled, shuts its queue down while the socket
	// reader may still push into it, which blocks the reader and with it
	// every pending RPC (go-libvirt issue #191). It ends instead when the
	// connection closes, and its channel is read to the end (stopEvents).
	events, err := cn.Events(context.WithoutCancel(ctx))
	if err != nil {
		c.m.errors.WithLabelValues("events").Inc()
		cn.Close()
		return false, err
	}
	stopEvents := func() {
		if events != nil {
			go drain(events)
		}
		cn.Close()
	}

	t.mu.Lock()
	wasDown := t.tried && t.conn == nil
	t.conn, t.tried, t.lastErr = cn, true, nil
	t.mu.Unlock()
	c.m.connected.Inc()
	defer c.m.connected.Dec()
	c.log.Info("connected to libvirtd", "host", t.host, "uri", t.uri, "reconnected", wasDown)

	obs, err := c.listTarget(t)
	if err == nil {
		listed = true
		c.send(ctx, obs, "listing")
	}
	for err == nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			c.m.events.Inc()
			if o, ok := c.eventObservation(t, ev); ok {
				c.send(ctx, []model.Observation{o}, "event")
			}
		case <-cn.Disconnected():
			err = errors.New("connection to libvirtd lost")
		case <-ctx.Done():
			t.mu.Lock()
			t.conn = nil
			t.mu.Unlock()
			stopEvents()
			return listed, ctx.Err()
		}
	}
	stopEvents()
	return listed, err
}

func drain[T any](ch <-chan T) {
	for range ch {
	}
}

// setDown records that a target is not connected and reports its libvirtd
// down when that is news (the first attempt failed, or a connection was
// lost); later polls repeat it while it lasts.
func (c *Collector) setDown(ctx context.Context, t *target, err error) {
	if err == nil {
		err = errors.New("connection to libvirtd ended")
	}
	t.mu.Lock()
	news := !t.tried || t.lastErr == nil
	t.conn, t.tried, t.lastErr = nil, true, err
	t.mu.Unlock()
	if !news {
		return
	}
	c.log.Warn("libvirtd unreachable; reconnecting with backoff", "host", t.host, "uri", t.uri, "err", err)
	if o, ok := c.serviceObservation(t, err, c.opts.Clock.Now()); ok {
		c.send(ctx, []model.Observation{o}, "service")
	}
}

// send hands obs to the sink, counting and logging a refusal: what an
// event said is also in the next listing, so nothing is retried here.
func (c *Collector) send(ctx context.Context, obs []model.Observation, kind string) {
	if len(obs) == 0 {
		return
	}
	if err := c.opts.Sink.AppendObservations(ctx, obs); err != nil {
		if ctx.Err() == nil {
			c.m.errors.WithLabelValues("sink").Inc()
			c.log.Warn("could not send libvirt observations; the next listing repeats them", "count", len(obs), "err", err)
		}
		return
	}
	c.m.sent.WithLabelValues(kind).Add(float64(len(obs)))
}

// Poll lists every connected host once and sends one batch: for each host
// its libvirtd service observation and one observation per domain; a host
// whose libvirtd is unreachable gets its service observation, down, and
// nothing about its VMs. A host whose listing fails has its connection
// closed (the reconnection reports it). Poll returns the listing errors and
// the sink's refusal, joined.
func (c *Collector) Poll(ctx context.Context) error {
	var (
		results = make([][]model.Observation, len(c.targets))
		errs    = make([]error, len(c.targets))
		sem     = make(chan struct{}, c.opts.Concurrency)
		wg      sync.WaitGroup
	)
	for i, t := range c.targets {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i], errs[i] = c.pollTarget(t)
		})
	}
	wg.Wait()
	n := 0
	for _, r := range results {
		n += len(r)
	}
	obs := make([]model.Observation, 0, n)
	for _, r := range results {
		obs = append(obs, r...)
	}
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			errs[i] = fmt.Errorf("list host %s: %w", c.targets[i].host, err)
		}
	}
	if len(obs) > 0 {
		if err := c.opts.Sink.AppendObservations(ctx, obs); err != nil {
			c.m.errors.WithLabelValues("sink").Inc()
			c.m.polls.WithLabelValues("failed").Inc()
			return errors.Join(append(errs, fmt.Errorf("send %d observations: %w", len(obs), err))...)
		}
		c.m.sent.WithLabelValues("listing").Add(float64(len(obs)))
	}
	switch {
	case failed == 0:
		c.m.polls.WithLabelValues("ok").Inc()
		c.m.lastSuccess.Set(float64(c.opts.Clock.Now().UnixNano()) / 1e9)
	case failed < len(c.targets):
		c.m.polls.WithLabelValues("partial").Inc()
	default:
		c.m.polls.WithLabelValues("failed").Inc()
	}
	return errors.Join(errs...)
}

// pollTarget reports one target for Poll: nothing before its first
// connection attempt has finished (so a starting collector does not call
// every libvirtd down), its service down while it is not connected, its
// listing when it is.
func (c *Collector) pollTarget(t *target) ([]model.Observation, error) {
	t.mu.Lock()
	cn, tried, lastErr := t.conn, t.tried, t.lastErr
	t.mu.Unlock()
	switch {
	case !tried:
		return nil, nil
	case cn == nil:
		o, ok := c.serviceObservation(t, lastErr, c.opts.Clock.Now())
		if !ok {
			return nil, nil
		}
		return []model.Observation{o}, nil
	}
	obs, err := c.listTarget(t)
	if err != nil {
		cn.Close() // the session sees it, reports the daemon down and reconnects
		return nil, err
	}
	return obs, nil
}

// listTarget lists one connected host: its service up, then its domains.
func (c *Collector) listTarget(t *target) ([]model.Observation, error) {
	t.mu.Lock()
	cn := t.conn
	t.mu.Unlock()
	if cn == nil {
		return nil, errors.New("not connected")
	}
	doms, err := cn.Domains()
	if err != nil {
		c.m.errors.WithLabelValues("list").Inc()
		return nil, err
	}
	now := c.opts.Clock.Now()
	obs := make([]model.Observation, 0, len(doms)+1)
	if o, ok := c.serviceObservation(t, nil, now); ok {
		obs = append(obs, o)
	}
	for _, d := range doms {
		state, reason := vmState(d.state, d.reason)
		o := model.Observation{
			Source: c.opts.Source, Kind: model.KindVM, ID: d.name, Host: t.host, Site: t.site,
			State: state, TimeGenerated: now, TimeReceived: now,
		}
		if reason != "" {
			o.Attrs = map[string]any{model.AttrCrashReason: reason}
		}
		if err := o.Validate(now); err != nil {
			c.badRecord(t, d.name, err)
			continue
		}
		obs = append(obs, o)
	}
	if c.opts.Inventory != nil {
		c.sendInventory(t, doms)
	}
	return obs, nil
}

// eventObservation turns a lifecycle event into a VM observation; ok is
// false for events that do not change whether the VM serves.
func (c *Collector) eventObservation(t *target, ev golibvirt.DomainEventLifecycleMsg) (model.Observation, bool) {
	state, reason, name, ok := eventState(ev.Event, ev.Detail)
	if !ok {
		return model.Observation{}, false
	}
	now := c.opts.Clock.Now()
	o := model.Observation{
		Source: c.opts.Source, Kind: model.KindVM, ID: ev.Dom.Name, Host: t.host, Site: t.site,
		State: state, Event: name, TimeGenerated: now, TimeReceived: now,
	}
	if reason != "" {
		o.Attrs = map[string]any{model.AttrCrashReason: reason}
	}
	if err := o.Validate(now); err != nil {
		c.badRecord(t, ev.Dom.Name, err)
		return model.Observation{}, false
	}
	return o, true
}

// serviceObservation reports a host's libvirtd: up when err is nil, else
// down with the reason in attrs.error.
func (c *Collector) serviceObservation(t *target, err error, now time.Time) (model.Observation, bool) {
	o := model.Observation{
		Source: c.opts.Source, Kind: model.KindService, ID: ServiceName, Host: t.host, Site: t.site,
		State: model.StateUp, TimeGenerated: now, TimeReceived: now,
	}
	if err != nil {
		o.State = model.StateDown
		o.Attrs = map[string]any{AttrError: truncate(err.Error(), model.MaxAttrValLen)}
	}
	if err := o.Validate(now); err != nil {
		c.badRecord(t, ServiceName, err)
		return model.Observation{}, false
	}
	return o, true
}

func (c *Collector) badRecord(t *target, name string, err error) {
	c.m.errors.WithLabelValues("record").Inc()
	c.log.Warn("skipping a libvirt record that is not a valid observation", "host", t.host, "domain", name, "err", err)
}

// truncate keeps at most n characters (not bytes) of s.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
