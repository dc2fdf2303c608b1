package prometheus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	pmodel "github.com/prometheus/common/model"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Sink takes the observations a poll produced; when it returns nil they
// are durable. The state store's AppendObservations (the HTTP API's
// Ingester) is one.
type Sink interface {
	AppendObservations(ctx context.Context, obs []model.Observation) error
}

// Defaults applied by New to zero Options fields.
const (
	DefaultInterval    = time.Minute
	DefaultHostLabel   = "instance"
	DefaultConcurrency = 16
	DefaultSource      = "prometheus"
)

// Off, as a query, switches a default fact off.
const Off = "-"

// Options configures a Collector. Sink is required, and URL or Targets (or
// both).
type Options struct {
	// URL is the Prometheus server (http://prometheus:9090); empty reads no
	// queries.
	URL string
	// BearerToken, when set, is sent to URL as "Authorization: Bearer".
	BearerToken config.Secret
	// Queries replaces the PromQL of the named facts (keys from Facts);
	// the others keep DefaultQueries. Off switches a fact off.
	Queries map[string]string
	// Window replaces "$window" in the queries (the period a counter's
	// increase is taken over); default Interval.
	Window time.Duration
	// HostLabel is the label that names a sample's host; default instance.
	HostLabel string
	// Hosts maps a HostLabel value to a host name ("10.0.0.7:9100" →
	// "host-007"). A value not listed names the host itself, with its port
	// stripped unless KeepPort.
	Hosts    map[string]string
	KeepPort bool
	// SiteLabel, when set, is the label that names a sample's site (the
	// queries must keep it: sum by (instance, site)); Site is the default.
	SiteLabel string
	Site      string
	// Targets are exposition endpoints scraped directly, read with
	// ScrapeRules (default DefaultScrapeRules, for node_exporter).
	Targets     []ScrapeTarget
	ScrapeRules []ScrapeRule
	// Interval between polls; default 1m.
	Interval time.Duration
	// Concurrency bounds the queries and scrapes in flight; default 16.
	Concurrency int
	// Source names the observations' source; default "prometheus".
	Source string
	Sink   Sink
	// HTTPClient makes every call; default a client with a 30s timeout.
	HTTPClient *http.Client
	Clock      clock.Clock
	// Wait sleeps between polls; default a timer. It returns ctx's error
	// when ctx ends first.
	Wait       func(ctx context.Context, d time.Duration) error
	Logger     *slog.Logger
	Registerer promclient.Registerer
}

// Collector reads host hardware facts from Prometheus and exporters. Poll
// and Run must not be called concurrently with each other.
type Collector struct {
	opts     Options
	queryURL string
	queries  []factQuery
	targets  []scrapeTarget
	rules    []rule
	m        *metrics
	log      *slog.Logger

	mu sync.Mutex
}

type factQuery struct{ attr, promQL string }

type scrapeTarget struct {
	ScrapeTarget
	shown string // URL with any password masked, for logs and errors
	// prev holds each counter rule's last aggregate, by rule index.
	prev map[int]float64
}

// New checks opts, fills in defaults and registers the collector's metrics.
func New(opts Options) (*Collector, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if opts.Sink == nil {
		bad("a sink is required")
	}
	if opts.URL == "" && len(opts.Targets) == 0 {
		bad("a Prometheus URL or scrape targets are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Window <= 0 {
		opts.Window = opts.Interval
	}
	c := &Collector{}
	if opts.URL != "" {
		opts.URL = strings.TrimRight(opts.URL, "/")
		if u, err := url.Parse(opts.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad("Prometheus URL %q is not an http(s) URL", redact(opts.URL))
		}
		c.queryURL = opts.URL + "/api/v1/query"
		qs := DefaultQueries()
		for attr, q := range opts.Queries {
			if _, ok := factBool[attr]; !ok {
				bad("query for %q: not a fact (want one of %s)", attr, strings.Join(Facts(), ", "))
				continue
			}
			qs[attr] = strings.TrimSpace(q)
		}
		window := pmodel.Duration(opts.Window).String()
		for _, attr := range slices.Sorted(maps.Keys(qs)) {
			if q := qs[attr]; q != "" && q != Off {
				c.queries = append(c.queries, factQuery{attr: attr, promQL: strings.ReplaceAll(q, "$window", window)})
			}
		}
	}
	if len(opts.Targets) > 0 {
		if opts.ScrapeRules == nil {
			opts.ScrapeRules = DefaultScrapeRules()
		}
		for _, r := range opts.ScrapeRules {
			cr, err := compileRule(r)
			if err != nil {
				bad("scrape rule: %v", err)
				continue
			}
			c.rules = append(c.rules, cr)
		}
	}
	seen := map[string]bool{}
	for i, t := range opts.Targets {
		u, err := url.Parse(t.URL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad("scrape target %d: %q is not an http(s) URL", i+1, redact(t.URL))
			continue
		}
		if t.Host == "" {
			t.Host = u.Hostname()
		}
		if t.Site == "" {
			t.Site = opts.Site
		}
		if seen[t.URL] {
			bad("scrape target %d: %s is listed twice", i+1, u.Redacted())
		}
		seen[t.URL] = true
		c.targets = append(c.targets, scrapeTarget{ScrapeTarget: t, shown: u.Redacted(), prev: map[int]float64{}})
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("prometheus collector: %s", strings.Join(problems, "; "))
	}
	if opts.HostLabel == "" {
		opts.HostLabel = DefaultHostLabel
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
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
	c.opts, c.m, c.log = opts, m, opts.Logger.With("collector", "prometheus")
	return c, nil
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

// Run polls every Interval until ctx ends, then returns nil. A failed poll
// is logged and counted; the next one tries again.
func (c *Collector) Run(ctx context.Context) error {
	facts := make([]string, len(c.queries))
	for i, q := range c.queries {
		facts[i] = q.attr
	}
	urls := make([]string, len(c.targets))
	for i, t := range c.targets {
		urls[i] = t.shown
	}
	c.log.Info("prometheus collector starting", "url", redact(c.opts.URL), "facts", facts, "scrape_targets", urls,
		"interval", c.opts.Interval, "window", c.opts.Window)
	for {
		if err := c.Poll(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("prometheus poll incomplete; next poll retries", "err", err)
		}
		if c.opts.Wait(ctx, c.opts.Interval) != nil || ctx.Err() != nil {
			c.log.Info("prometheus collector stopped")
			return nil
		}
	}
}

// Poll reads every fact of every host once and sends one host observation
// per host that any fact was read for. It returns the failed queries and
// scrapes and the sink's refusal, joined; what was read is still sent.
func (c *Collector) Poll(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Clock.Now()

	type result struct {
		samples []sample
		err     error
	}
	qres := make([]result, len(c.queries))
	sres := make([]map[int]float64, len(c.targets))
	serr := make([]error, len(c.targets))
	sem := make(chan struct{}, c.opts.Concurrency)
	var wg sync.WaitGroup
	for i, q := range c.queries {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s, err := c.query(ctx, q.promQL, now)
			qres[i] = result{s, err}
		})
	}
	for i := range c.targets {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sres[i], serr[i] = c.scrapeTarget(ctx, &c.targets[i])
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	hosts := map[string]*facts{}
	at := func(host, site string) *facts {
		f := hosts[host]
		if f == nil {
			f = &facts{site: site}
			hosts[host] = f
		}
		return f
	}
	var errs []error
	failed := 0
	for i, r := range qres {
		attr := c.queries[i].attr
		switch {
		case errors.Is(r.err, errBadSample):
			c.m.errors.WithLabelValues("sample").Inc()
			c.log.Warn("skipping samples that are not numbers", "fact", attr, "err", r.err)
		case r.err != nil:
			c.m.errors.WithLabelValues("query").Inc()
			errs = append(errs, fmt.Errorf("query %s: %w", attr, r.err))
			failed++
			continue
		}
		for _, s := range r.samples {
			host, site := c.hostOf(s.labels)
			if host == "" {
				c.m.errors.WithLabelValues("sample").Inc()
				c.log.Warn("skipping a sample without a host label; aggregate the query by it", "fact", attr, "label", c.opts.HostLabel)
				continue
			}
			at(host, site).set(attr, s.value)
		}
	}
	for i, vals := range sres {
		t := &c.targets[i]
		if serr[i] != nil {
			c.m.errors.WithLabelValues("scrape").Inc()
			errs = append(errs, fmt.Errorf("scrape %s (%s): %w", t.Host, t.shown, serr[i]))
			failed++
			continue
		}
		if len(vals) == 0 {
			continue
		}
		f := at(t.Host, t.Site)
		for j, v := range vals {
			f.set(c.rules[j].Attr, v)
		}
	}

	names := slices.Sorted(maps.Keys(hosts))
	obs := make([]model.Observation, 0, len(names))
	for _, h := range names {
		f := hosts[h]
		o := model.Observation{
			Source: c.opts.Source, Kind: model.KindHost, ID: h, Site: f.site,
			Attrs: f.attrs, TimeGenerated: now, TimeReceived: now,
		}
		if err := o.Validate(now); err != nil {
			c.m.errors.WithLabelValues("record").Inc()
			c.log.Warn("skipping a host whose facts are not a valid observation", "host", h, "err", err)
			continue
		}
		obs = append(obs, o)
	}
	if len(obs) > 0 {
		if err := c.opts.Sink.AppendObservations(ctx, obs); err != nil {
			c.m.errors.WithLabelValues("sink").Inc()
			c.m.polls.WithLabelValues("failed").Inc()
			return errors.Join(append(errs, fmt.Errorf("send %d observations: %w", len(obs), err))...)
		}
	}
	c.m.hosts.Set(float64(len(obs)))
	switch total := len(c.queries) + len(c.targets); {
	case failed == 0:
		c.m.polls.WithLabelValues("ok").Inc()
		c.m.lastSuccess.Set(float64(c.opts.Clock.Now().UnixNano()) / 1e9)
	case failed < total:
		c.m.polls.WithLabelValues("partial").Inc()
	default:
		c.m.polls.WithLabelValues("failed").Inc()
	}
	return errors.Join(errs...)
}

// scrapeTarget scrapes one endpoint and applies the rules; it returns
// each rule's value by rule index (absent when nothing matched, and for a
// counter on its first scrape).
func (c *Collector) scrapeTarget(ctx context.Context, t *scrapeTarget) (map[int]float64, error) {
	fams, err := c.scrape(ctx, t.URL)
	if err != nil {
		return nil, err
	}
	out := make(map[int]float64, len(c.rules))
	for j := range c.rules {
		r := &c.rules[j]
		v, ok, bad := r.apply(fams)
		if bad > 0 {
			c.m.errors.WithLabelValues("sample").Add(float64(bad))
		}
		if !ok {
			continue
		}
		if r.Counter {
			prev, seen := t.prev[j]
			t.prev[j] = v
			if !seen {
				continue
			}
			if v >= prev {
				v -= prev
			} // else the counter was reset: all of v is new
		}
		if r.Negate {
			if v == 0 {
				v = 1
			} else {
				v = 0
			}
		}
		out[j] = v
	}
	return out, nil
}

// hostOf names a sample's host and site from its labels.
func (c *Collector) hostOf(labels map[string]string) (host, site string) {
	site = c.opts.Site
	if c.opts.SiteLabel != "" && labels[c.opts.SiteLabel] != "" {
		site = labels[c.opts.SiteLabel]
	}
	v := labels[c.opts.HostLabel]
	if h, ok := c.opts.Hosts[v]; ok {
		return h, site
	}
	if !c.opts.KeepPort {
		if h, _, err := net.SplitHostPort(v); err == nil {
			v = h
		}
	}
	return v, site
}

// ParseHosts reads "label-value=host" pairs separated by commas
// ("10.0.0.7:9100=host-007,10.0.0.8:9100=host-008"), for Options.Hosts.
func ParseHosts(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("host mapping %d (%q): want instance=host", i+1, item)
		}
		out[k] = v
	}
	return out, nil
}

// ParseTargets reads scrape targets separated by commas, each a URL
// optionally preceded by the host name and "="
// ("host-007=http://10.0.0.7:9100/metrics").
func ParseTargets(s string) ([]ScrapeTarget, error) {
	var out []ScrapeTarget
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var t ScrapeTarget
		if host, u, ok := strings.Cut(item, "="); ok && !strings.Contains(host, "/") && !strings.Contains(host, ":") {
			t.Host, t.URL = strings.TrimSpace(host), strings.TrimSpace(u)
		} else {
			t.URL = item
		}
		if t.URL == "" {
			return nil, fmt.Errorf("scrape target %d (%q): no URL after the host name", i+1, item)
		}
		out = append(out, t)
	}
	return out, nil
}

// redact masks the password of a URL, for logs and errors; a URL that
// does not parse is shown only when it cannot hold user information.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "<unparsable URL>"
		}
		return raw
	}
	return u.Redacted()
}
