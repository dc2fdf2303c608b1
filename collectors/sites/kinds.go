package sites

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/vmtriage/vmtriage/collectors/prometheus"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// Endpoint kinds.
const (
	KindObservations = "observations"
	KindPrometheus   = "prometheus"
)

// MaxPollBody bounds what one observations poll reads.
const MaxPollBody = 16 << 20

// DefaultKinds are the endpoint kinds vmtriage polls:
//
//   - observations: GET on an https URL answering contract observations
//     (a JSON array or JSON lines), as POST /v1/observations takes them;
//   - prometheus: a Prometheus server's HTTP API, read for host hardware
//     facts with collectors/prometheus and its node_exporter defaults.
func DefaultKinds() map[string]Kind {
	return map[string]Kind{
		KindObservations: {Field: "url", Schemes: []string{"https"}, New: NewObservationsPoller},
		KindPrometheus:   {Field: "url", Schemes: []string{"https"}, New: newPrometheusPoller},
	}
}

// newPrometheusPoller reads a site's Prometheus with collectors/prometheus,
// under a source of its own ("prometheus/<site>") so that a site's
// Prometheus going quiet is that source's stopped-reporting incident. Its
// counters' increases are taken over the poll interval.
func newPrometheusPoller(site string, ep store.SiteEndpoint, d Deps) (Poller, error) {
	c, err := prometheus.New(prometheus.Options{
		URL: ep.URL, Site: site, Source: "prometheus/" + site, Sink: d.Sink, Interval: d.Interval,
		HTTPClient: d.HTTPClient, Clock: d.Clock, Logger: d.Logger,
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ObservationsPoller reads contract observations from a site's endpoint.
type ObservationsPoller struct {
	site   string
	url    string
	shown  string
	sink   Sink
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
}

// NewObservationsPoller is the factory of the observations kind.
func NewObservationsPoller(site string, ep store.SiteEndpoint, d Deps) (Poller, error) {
	u, err := url.Parse(ep.URL)
	if err != nil {
		return nil, fmt.Errorf("observations endpoint: %w", err)
	}
	if d.Sink == nil || d.HTTPClient == nil || d.Clock == nil {
		return nil, errors.New("observations endpoint: sink, HTTP client and clock are required")
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ObservationsPoller{site: site, url: ep.URL, shown: u.Redacted(), sink: d.Sink, client: d.HTTPClient,
		now: d.Clock.Now, log: log}, nil
}

// Poll GETs the endpoint and sends its observations, stamped as received
// now. Records without a site get the registered one; a record naming
// another site, or any invalid record, fails the whole poll and nothing is
// sent (as POST /v1/observations refuses a bad batch whole).
func (p *ObservationsPoller) Poll(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", p.shown, err)
	}
	req.Header.Set("Accept", "application/x-ndjson, application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", p.shown, scrubURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPollBody+1))
	if err != nil {
		return fmt.Errorf("GET %s: read body: %w", p.shown, scrubURL(err))
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: status %d", p.shown, resp.StatusCode)
	}
	if len(body) > MaxPollBody {
		return fmt.Errorf("GET %s: body is larger than %d bytes", p.shown, MaxPollBody)
	}
	now := p.now()
	obs, err := model.DecodeObservations(body, now)
	if errors.Is(err, model.ErrEmpty) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("GET %s: %w; nothing was applied", p.shown, err)
	}
	for i := range obs {
		o := &obs[i]
		switch {
		case o.Site == "":
			o.Site = p.site
		case o.Site != p.site:
			return fmt.Errorf("GET %s: record %d (%s %s) names site %q, not the registered %q; nothing was applied",
				p.shown, i, o.Kind, clip(o.ID), clip(o.Site), p.site)
		}
		o.TimeReceived = now
		o.TimeStored = time.Time{}
	}
	if err := p.sink.AppendObservations(ctx, obs); err != nil {
		return fmt.Errorf("store %d observations from %s: %w", len(obs), p.shown, err)
	}
	return nil
}

// scrubURL drops the URL net/http puts in its errors; the caller names the
// endpoint itself, redacted.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
