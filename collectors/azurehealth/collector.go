package azurehealth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	DefaultEndpoint      = "https://management.azure.com"
	DefaultLoginEndpoint = "https://login.microsoftonline.com"
	DefaultAPIVersion    = "2025-05-01"
	DefaultInterval      = time.Minute
	DefaultKeepAlive     = 5 * time.Minute
	DefaultRefreshBefore = 5 * time.Minute
	DefaultMaxAttempts   = 4
	DefaultSource        = "azure"
)

// maxPages stops a listing whose nextLink never ends.
const maxPages = 10_000

// maxPageBytes bounds one page; Azure's pages are far smaller.
const maxPageBytes = 64 << 20

// Options configures a Collector. Subscriptions, TenantID, ClientID,
// ClientSecret and Sink are required.
type Options struct {
	// Subscriptions are the subscription ids whose VMs are polled.
	Subscriptions []string
	// TenantID, ClientID and ClientSecret are the service principal's.
	TenantID     string
	ClientID     string
	ClientSecret config.Secret
	// Endpoint is the Azure Resource Manager URL; default
	// https://management.azure.com (tests point it at an httptest server).
	Endpoint string
	// LoginEndpoint is the Entra ID authority; default
	// https://login.microsoftonline.com. The token URL is
	// LoginEndpoint/TenantID/oauth2/v2.0/token.
	LoginEndpoint string
	// Scope is the token scope; default Endpoint + "/.default".
	Scope string
	// APIVersion of Microsoft.ResourceHealth; default 2025-05-01.
	APIVersion string
	// Interval between polls; default 1m.
	Interval time.Duration
	// KeepAlive is how often every VM still listed gets a heartbeat, so that
	// a VM whose record never changes does not look silent; default 5m. It
	// must stay below the rules' stopped_reporting (10m by default).
	// Negative disables heartbeats.
	KeepAlive time.Duration
	// RefreshBefore is how long before its expiry a token is replaced;
	// default 5m.
	RefreshBefore time.Duration
	// MaxAttempts per page (throttled or failed pages are retried); default 4.
	MaxAttempts int
	// QuietBaseline keeps the first poll to the collector: nothing is sent
	// until something changes. By default the first poll is sent whole.
	QuietBaseline bool
	// Source names the observations' source; default "azure".
	Source string
	Sink   Sink
	// HTTPClient makes every call; default a client with a 30s timeout.
	HTTPClient *http.Client
	Clock      clock.Clock
	// Wait sleeps between attempts and polls; default a timer. It returns
	// ctx's error when ctx ends first. Tests make it advance a fake clock.
	Wait       func(ctx context.Context, d time.Duration) error
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Inventory, when set, receives every VM's service read from its
	// ServiceTag tag, as the whole "azure-tags" layer; nil reads no tags.
	Inventory InventorySink
	// ServiceTag is the tag naming a VM's service (matched without regard
	// to case, as Azure does); default "service".
	ServiceTag string
	// TagsEvery reads the tags on every TagsEvery-th poll, starting with
	// the first; default 10.
	TagsEvery int
}

// Collector polls Azure Resource Health. Poll and Run must not be called
// concurrently with each other.
type Collector struct {
	opts     Options
	endpoint *url.URL
	tokens   *tokenSource
	m        *metrics
	log      *slog.Logger

	mu            sync.Mutex
	polls         int // polls started, for TagsEvery
	vms           map[string]*vmState
	baselined     map[string]bool
	lastKeepAlive time.Time
}

// vmState is what the collector remembers of a VM between polls.
type vmState struct {
	sub        string
	name, site string
	digest     string
	gen        time.Time // time generated last sent
	reported   time.Time // reportedTime last read
	listed     time.Time // when a poll last listed it
}

// New checks opts, fills in defaults and registers the collector's metrics.
func New(opts Options) (*Collector, error) {
	var problems []string
	if len(opts.Subscriptions) == 0 {
		problems = append(problems, "at least one subscription is required")
	}
	for _, s := range opts.Subscriptions {
		if s == "" || strings.ContainsAny(s, "/?#% ") {
			problems = append(problems, fmt.Sprintf("subscription %q is not a subscription id", s))
		}
	}
	if opts.TenantID == "" || strings.ContainsAny(opts.TenantID, "/?#% ") {
		problems = append(problems, "tenant id is required")
	}
	if opts.ClientID == "" {
		problems = append(problems, "client id is required")
	}
	if !opts.ClientSecret.Set() {
		problems = append(problems, "client secret is required")
	}
	if opts.Sink == nil {
		problems = append(problems, "a sink is required")
	}
	if opts.Endpoint == "" {
		opts.Endpoint = DefaultEndpoint
	}
	opts.Endpoint = strings.TrimRight(opts.Endpoint, "/")
	ep, err := url.Parse(opts.Endpoint)
	if err != nil || ep.Host == "" || (ep.Scheme != "https" && ep.Scheme != "http") {
		problems = append(problems, fmt.Sprintf("endpoint %q is not an http(s) URL", opts.Endpoint))
	}
	if opts.LoginEndpoint == "" {
		opts.LoginEndpoint = DefaultLoginEndpoint
	}
	opts.LoginEndpoint = strings.TrimRight(opts.LoginEndpoint, "/")
	if u, err := url.Parse(opts.LoginEndpoint); err != nil || u.Host == "" {
		problems = append(problems, fmt.Sprintf("login endpoint %q is not a URL", opts.LoginEndpoint))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("azure resource health collector: %s", strings.Join(problems, "; "))
	}
	if opts.Scope == "" {
		opts.Scope = opts.Endpoint + "/.default"
	}
	if opts.APIVersion == "" {
		opts.APIVersion = DefaultAPIVersion
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.RefreshBefore <= 0 {
		opts.RefreshBefore = DefaultRefreshBefore
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if opts.ServiceTag == "" {
		opts.ServiceTag = DefaultServiceTag
	}
	if opts.TagsEvery <= 0 {
		opts.TagsEvery = DefaultTagsEvery
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
	return &Collector{
		opts:     opts,
		endpoint: ep,
		tokens: &tokenSource{
			tokenURL: opts.LoginEndpoint + "/" + url.PathEscape(opts.TenantID) + "/oauth2/v2.0/token",
			clientID: opts.ClientID, secret: opts.ClientSecret, scope: opts.Scope,
			refreshBefore: opts.RefreshBefore, client: opts.HTTPClient, clock: opts.Clock,
		},
		m:         m,
		log:       opts.Logger.With("collector", "azurehealth"),
		vms:       map[string]*vmState{},
		baselined: map[string]bool{},
	}, nil
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
	c.log.Info("azure resource health collector starting", "endpoint", c.opts.Endpoint,
		"subscriptions", c.opts.Subscriptions, "tenant", c.opts.TenantID, "client_id", c.opts.ClientID,
		"api_version", c.opts.APIVersion, "interval", c.opts.Interval, "keepalive", c.opts.KeepAlive)
	for {
		if err := c.Poll(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("azure resource health poll failed; next poll retries", "err", err)
		}
		if c.opts.Wait(ctx, c.opts.Interval) != nil || ctx.Err() != nil {
			c.log.Info("azure resource health collector stopped")
			return nil
		}
	}
}

// Poll lists every subscription once and sends what changed (everything,
// the first time), plus the heartbeats that are due. It returns an error
// when a subscription could not be listed completely or the sink refused
// the batch; what was read is still used.
func (c *Collector) Poll(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Clock.Now()
	var (
		obs      []model.Observation
		commits  []func()
		errs     []error
		complete []string
		changed  = map[string]bool{}
		kinds    = map[string]int{}
	)
	for _, sub := range c.opts.Subscriptions {
		recs, err := c.list(ctx, sub)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("list subscription %s: %w", sub, err))
		} else {
			complete = append(complete, sub)
		}
		baseline := !c.baselined[sub]
		for i := range recs {
			r := &recs[i]
			st := c.vms[r.key]
			if st != nil && st.digest == r.digest {
				st.listed, st.reported = now, r.reported
				continue
			}
			if changed[r.key] {
				continue // listed twice in one poll: the first wins
			}
			changed[r.key] = true
			gen := c.pickGen(r, st, now)
			next := &vmState{sub: sub, name: r.name, site: r.location, digest: r.digest, gen: gen, reported: r.reported, listed: now}
			key := r.key
			if st == nil && baseline && c.opts.QuietBaseline {
				c.vms[key] = next
				continue
			}
			o := model.Observation{
				Source: c.opts.Source, Kind: model.KindVM, ID: r.name, Site: r.location,
				State: r.state, Event: r.event, Attrs: r.attrs, TimeGenerated: gen, TimeReceived: now,
			}
			if err := o.Validate(now); err != nil {
				c.badRecord(sub, r.resource, err)
				continue
			}
			obs = append(obs, o)
			if st == nil && baseline {
				kinds["baseline"]++
			} else {
				kinds["change"]++
			}
			commits = append(commits, func() { c.vms[key] = next })
		}
	}
	if c.opts.KeepAlive > 0 && now.Sub(c.lastKeepAlive) >= c.opts.KeepAlive {
		// A VM gets a heartbeat when this poll listed it, or, if its
		// subscription could not be listed completely, when some poll did
		// since the last heartbeats: a failed page must not make its VMs
		// look silent, but a VM gone from a complete listing gets none.
		since := c.lastKeepAlive
		whole := map[string]bool{}
		for _, sub := range complete {
			whole[sub] = true
		}
		for key, st := range c.vms {
			if changed[key] || st.listed.IsZero() {
				continue
			}
			if whole[st.sub] && !st.listed.Equal(now) || !whole[st.sub] && st.listed.Before(since) {
				continue
			}
			obs = append(obs, c.heartbeat(st, now))
			kinds["heartbeat"]++
		}
		commits = append(commits, func() { c.lastKeepAlive = now })
	}
	if len(obs) > 0 {
		if err := c.opts.Sink.AppendObservations(ctx, obs); err != nil {
			c.m.errors.WithLabelValues("sink").Inc()
			c.m.polls.WithLabelValues("failed").Inc()
			return errors.Join(append(errs, fmt.Errorf("send %d observations: %w", len(obs), err))...)
		}
	}
	for _, commit := range commits {
		commit()
	}
	for _, sub := range complete {
		c.baselined[sub] = true
	}
	for k, n := range kinds {
		c.m.sent.WithLabelValues(k).Add(float64(n))
	}
	c.m.vms.Set(float64(len(c.vms)))
	switch {
	case len(errs) == 0:
		c.m.polls.WithLabelValues("ok").Inc()
		c.m.lastSuccess.Set(float64(c.opts.Clock.Now().UnixNano()) / 1e9)
	case len(complete) > 0 || len(obs) > 0:
		c.m.polls.WithLabelValues("partial").Inc()
	default:
		c.m.polls.WithLabelValues("failed").Inc()
	}
	// Tags are read apart from the health records: their failure is
	// counted under kind "tags" and returned, not in the poll's result.
	if c.opts.Inventory != nil && c.polls%c.opts.TagsEvery == 0 {
		if err := c.pollTags(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	c.polls++
	return errors.Join(errs...)
}

// pickGen chooses the time generated of a changed record: when the new
// state began (occuredTime), else when Azure reported it, else now —
// whichever is first to be later than what was sent before for the VM (so
// the store, which orders by time generated, takes it) and young enough to
// be accepted.
func (c *Collector) pickGen(r *record, st *vmState, now time.Time) time.Time {
	floor := now.Add(-model.MaxAge + time.Hour)
	ceil := now.Add(model.MaxSkew)
	for _, t := range []time.Time{r.occured, r.reported, now} {
		if !t.IsZero() && t.After(floor) && !t.After(ceil) && (st == nil || t.After(st.gen)) {
			return t
		}
	}
	// The previous record was dated ahead of now (a source clock ahead):
	// step just past it.
	return st.gen.Add(time.Microsecond)
}

// heartbeat is a VM observation without a state: proof that the VM is
// still listed, dated when Azure last reported it.
func (c *Collector) heartbeat(st *vmState, now time.Time) model.Observation {
	gen := st.reported
	if gen.IsZero() || gen.Before(now.Add(-model.MaxAge+time.Hour)) || gen.After(now.Add(model.MaxSkew)) {
		gen = now
	}
	return model.Observation{Source: c.opts.Source, Kind: model.KindVM, ID: st.name, Site: st.site, TimeGenerated: gen, TimeReceived: now}
}

func (c *Collector) badRecord(sub, resource string, err error) {
	c.m.errors.WithLabelValues("record").Inc()
	c.log.Warn("skipping unreadable Resource Health record", "subscription", sub, "resource", resource, "err", err)
}

// list reads every page of one subscription's listing. On an error it
// returns the records read before it with the error.
func (c *Collector) list(ctx context.Context, sub string) ([]record, error) {
	q := url.Values{"api-version": {c.opts.APIVersion}, "$expand": {"recommendedactions"}}
	next := c.opts.Endpoint + "/subscriptions/" + url.PathEscape(sub) +
		"/providers/Microsoft.ResourceHealth/availabilityStatuses?" + q.Encode()
	var recs []record
	err := c.eachPage(ctx, next, func(n int, p page) {
		for i, raw := range p.Value {
			r, err := parseRecord(raw)
			switch {
			case errors.Is(err, errNotVM):
				continue
			case err != nil:
				c.badRecord(sub, fmt.Sprintf("page %d record %d %s", n, i, r.resource), err)
				continue
			}
			recs = append(recs, r)
		}
	})
	return recs, err
}

// eachPage fetches the listing that starts at next page by page, following
// nextLink, and hands each page (numbered from 1) to fn. It stops at the
// first page that cannot be read, or whose nextLink leaves the endpoint or
// loops, and returns why.
func (c *Collector) eachPage(ctx context.Context, next string, fn func(n int, p page)) error {
	seen := map[string]bool{}
	for n := 1; next != ""; n++ {
		if n > maxPages || seen[next] {
			return fmt.Errorf("listing does not end (page %d repeats or exceeds %d pages)", n, maxPages)
		}
		seen[next] = true
		p, err := c.fetchPage(ctx, next)
		if err != nil {
			return fmt.Errorf("page %d: %w", n, err)
		}
		fn(n, p)
		if p.NextLink != "" {
			if err := c.checkNextLink(p.NextLink); err != nil {
				return fmt.Errorf("page %d: %w", n, err)
			}
		}
		next = p.NextLink
	}
	return nil
}

// checkNextLink refuses a nextLink that leaves the management endpoint:
// the bearer token must not be sent anywhere else.
func (c *Collector) checkNextLink(link string) error {
	u, err := url.Parse(link)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("nextLink %q is not an absolute URL", clip(link, 200))
	}
	if !strings.EqualFold(u.Scheme, c.endpoint.Scheme) || !strings.EqualFold(u.Host, c.endpoint.Host) {
		return fmt.Errorf("nextLink points to %s://%s, not the management endpoint %s; not following it", u.Scheme, u.Host, c.opts.Endpoint)
	}
	return nil
}

// fetchPage gets one page, retrying throttled and failed attempts (and a
// refused token once) up to MaxAttempts.
func (c *Collector) fetchPage(ctx context.Context, u string) (page, error) {
	reauthed := false
	var last error
	for attempt := 1; ; attempt++ {
		p, err := c.getPage(ctx, u)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return page{}, ctx.Err()
		}
		last = err
		var he *httpError
		if !errors.As(err, &he) {
			return page{}, err
		}
		switch {
		case he.status == http.StatusUnauthorized && he.api && !reauthed:
			reauthed = true
			c.tokens.Invalidate()
		case he.Temporary():
		default:
			c.m.errors.WithLabelValues(errKind(he)).Inc()
			return page{}, err
		}
		c.m.errors.WithLabelValues(errKind(he)).Inc()
		if attempt >= c.opts.MaxAttempts {
			return page{}, fmt.Errorf("giving up after %d attempts: %w", attempt, last)
		}
		wait := he.retryAfter
		if wait <= 0 {
			wait = backoff(attempt)
		}
		c.log.Info("retrying Resource Health page", "status", he.status, "attempt", attempt, "wait", wait, "err", err)
		if err := c.opts.Wait(ctx, wait); err != nil {
			return page{}, err
		}
	}
}

func errKind(he *httpError) string {
	switch {
	case !he.api:
		return "token"
	case he.status == http.StatusTooManyRequests:
		return "throttled"
	}
	return "http"
}

func (c *Collector) getPage(ctx context.Context, u string) (page, error) {
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return page{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	op := "GET " + redactQuery(u)
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return page{}, &httpError{op: op, api: true, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes))
	if err != nil {
		return page{}, &httpError{op: op, api: true, err: fmt.Errorf("read body: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return page{}, &httpError{op: op, api: true, status: resp.StatusCode,
			retryAfter: retryAfter(resp.Header, c.opts.Clock.Now()), err: armError(body)}
	}
	p, err := decodePage(body)
	if err != nil {
		// A 200 with a truncated body is a transport hiccup: worth a retry.
		return page{}, &httpError{op: op, api: true, err: err}
	}
	return p, nil
}

// armError reads Azure Resource Manager's error body
// ({"error":{"code":...,"message":...}}) into a short error.
func armError(body []byte) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return fmt.Errorf("%s: %s", firstLine(e.Error.Code), firstLine(e.Error.Message))
	}
	return errors.New("no error details")
}

// redactQuery drops the query (a $skipToken is long and says nothing) from
// a URL for logs.
func redactQuery(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// Known returns the names of the VMs the collector has seen, sorted; for
// tests and status pages.
func (c *Collector) Known() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.vms))
	for _, st := range c.vms {
		out = append(out, st.name)
	}
	slices.Sort(out)
	return out
}
