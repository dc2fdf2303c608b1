// Package httpapi serves vmtriage's HTTP API: observations in, fleet state
// and incidents out, health, readiness and Prometheus metrics. Handlers talk
// to the rest of the service only through the small interfaces below.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Ingester accepts a validated batch durably; when it returns nil the
// batch is acknowledged to the client and must never be lost.
type Ingester interface {
	AppendObservations(ctx context.Context, obs []model.Observation) error
}

// Reader answers the GET endpoints.
type Reader interface {
	VM(ctx context.Context, id string) (model.VMStatus, error)
	Host(ctx context.Context, id string, periods int) (model.HostStatus, error)
	Incidents(ctx context.Context, f model.IncidentFilter) ([]model.Incident, error)
}

// Pinger reports whether the state store is reachable (readiness).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options configures the API.
type Options struct {
	Ingester Ingester
	Reader   Reader
	Ready    Pinger
	// NotFound recognises the reader's not-found error.
	NotFound func(error) bool
	// Gatherer serves /metrics; Registerer takes the API's own metrics.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	MaxBody    int64
	Clock      clock.Clock
	Logger     *slog.Logger
	// Extra mounts more handlers (Slack, status page) on the same mux.
	Extra map[string]http.Handler
}

// API is the HTTP handler.
type API struct {
	opts    Options
	mux     *http.ServeMux
	metrics *metrics
}

type metrics struct {
	accepted *prometheus.CounterVec
	refused  *prometheus.CounterVec
	requests *prometheus.CounterVec
}

// New builds the API's handler.
func New(opts Options) *API {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 16 << 20
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.NotFound == nil {
		opts.NotFound = func(error) bool { return false }
	}
	m := &metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_observations_accepted_total", Help: "Observations accepted by POST /v1/observations, by source.",
		}, []string{"source"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_observations_refused_total",
			Help: "Observations refused, by source (\"unknown\" when unreadable) and reason: invalid (per bad record), " +
				"unavailable (per record the store could not take), and per request malformed, too_large, content_type.",
		}, []string{"source", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(m.accepted, m.refused, m.requests)
	}
	a := &API{opts: opts, mux: http.NewServeMux(), metrics: m}
	a.route("POST /v1/observations", a.postObservations)
	a.route("GET /v1/vms/{id}", a.getVM)
	a.route("GET /v1/hosts/{id}", a.getHost)
	a.route("GET /v1/incidents", a.getIncidents)
	a.route("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.route("GET /readyz", a.getReady)
	if opts.Gatherer != nil {
		a.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	for pattern, h := range opts.Extra {
		a.mux.Handle(pattern, h)
	}
	return a
}

func (a *API) route(pattern string, h http.HandlerFunc) {
	a.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(rw, r)
		a.metrics.requests.WithLabelValues(pattern, strconv.Itoa(rw.code)).Inc()
	}))
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// problem is the body of every error response.
type problem struct {
	Error  string              `json:"error"`
	Errors []model.RecordError `json:"errors,omitempty"`
	Total  int                 `json:"total_errors,omitempty"`
}

func (a *API) postObservations(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			a.metrics.refused.WithLabelValues("unknown", "content_type").Inc()
			writeJSON(w, http.StatusUnsupportedMediaType, problem{Error: fmt.Sprintf("content type %q is not readable", ct)})
			return
		case mt != "application/json" && mt != "application/x-ndjson" && mt != "application/jsonl" && mt != "application/json-lines" && mt != "text/plain":
			a.metrics.refused.WithLabelValues("unknown", "content_type").Inc()
			writeJSON(w, http.StatusUnsupportedMediaType, problem{Error: fmt.Sprintf("content type %q is not accepted; send application/json or application/x-ndjson", mt)})
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.metrics.refused.WithLabelValues("unknown", "too_large").Inc()
			writeJSON(w, http.StatusRequestEntityTooLarge, problem{Error: fmt.Sprintf("body is larger than %d bytes; split it into smaller batches", a.opts.MaxBody)})
			return
		}
		writeJSON(w, http.StatusBadRequest, problem{Error: "reading body: " + err.Error()})
		return
	}
	now := a.opts.Clock.Now()
	obs, err := model.DecodeObservations(body, now)
	if err != nil {
		var be *model.BatchError
		if errors.As(err, &be) {
			for src, n := range be.BySource {
				if src == "" {
					src = "unknown"
				}
				a.metrics.refused.WithLabelValues(src, "invalid").Add(float64(n))
			}
			writeJSON(w, http.StatusBadRequest, problem{
				Error:  fmt.Sprintf("%d invalid record(s); nothing was applied", be.Total),
				Errors: be.Records, Total: be.Total,
			})
			return
		}
		a.metrics.refused.WithLabelValues("unknown", "malformed").Inc()
		writeJSON(w, http.StatusBadRequest, problem{Error: err.Error() + "; nothing was applied"})
		return
	}
	for i := range obs {
		obs[i].TimeReceived = now
		obs[i].TimeStored = time.Time{}
	}
	if err := a.opts.Ingester.AppendObservations(r.Context(), obs); err != nil {
		a.opts.Logger.Error("store observations", "err", err, "count", len(obs))
		for i := range obs {
			a.metrics.refused.WithLabelValues(obs[i].Source, "unavailable").Inc()
		}
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "the state store is unavailable; nothing was applied, retry later"})
		return
	}
	for i := range obs {
		a.metrics.accepted.WithLabelValues(obs[i].Source).Inc()
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(obs)})
}

func (a *API) getVM(w http.ResponseWriter, r *http.Request) {
	vm, err := a.opts.Reader.VM(r.Context(), r.PathValue("id"))
	a.answer(w, r, "vm", vm, err)
}

func (a *API) getHost(w http.ResponseWriter, r *http.Request) {
	periods := 10
	if v := r.URL.Query().Get("periods"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			writeJSON(w, http.StatusBadRequest, problem{Error: "periods must be a number from 0 to 100"})
			return
		}
		periods = n
	}
	h, err := a.opts.Reader.Host(r.Context(), r.PathValue("id"), periods)
	a.answer(w, r, "host", h, err)
}

// incidentParams are the query parameters GET /v1/incidents understands.
var incidentParams = []string{"status", "site", "severity", "host", "vm", "limit"}

func (a *API) getIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// A misspelt filter would otherwise list everything, which reads as
	// an answer to the question asked.
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(incidentParams, name) {
			writeJSON(w, http.StatusBadRequest, problem{Error: fmt.Sprintf("unknown parameter %q; use %s", name, strings.Join(incidentParams, ", "))})
			return
		}
	}
	f := model.IncidentFilter{
		Status: model.Status(q.Get("status")), Site: q.Get("site"),
		Severity: model.Severity(q.Get("severity")), Host: q.Get("host"), VM: q.Get("vm"),
	}
	switch f.Status {
	case "", model.StatusPending, model.StatusFiring, model.StatusResolved:
	default:
		writeJSON(w, http.StatusBadRequest, problem{Error: fmt.Sprintf("status %q is not pending, firing or resolved", f.Status)})
		return
	}
	if f.Severity != "" && !f.Severity.Valid() {
		writeJSON(w, http.StatusBadRequest, problem{Error: fmt.Sprintf("severity %q is not critical, high, medium or low", f.Severity)})
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeJSON(w, http.StatusBadRequest, problem{Error: "limit must be a number from 1 to 10000"})
			return
		}
		f.Limit = n
	}
	incs, err := a.opts.Reader.Incidents(r.Context(), f)
	if incs == nil {
		incs = []model.Incident{}
	}
	a.answer(w, r, "incidents", incs, err)
}

func (a *API) answer(w http.ResponseWriter, r *http.Request, what string, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case a.opts.NotFound(err):
		writeJSON(w, http.StatusNotFound, problem{Error: fmt.Sprintf("%s %q not found", what, r.PathValue("id"))})
	default:
		a.opts.Logger.Error("read "+what, "err", err, "path", r.URL.Path)
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "the state store is unavailable; retry later"})
	}
}

func (a *API) getReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.opts.Ready.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "redis unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
