package sites

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// Book is what the handler reads and writes; the state store is one.
type Book interface {
	RegisterSite(ctx context.Context, site store.RegisteredSite) error
	UnregisterSite(ctx context.Context, site string) error
	RegisteredSites(ctx context.Context) ([]store.RegisteredSite, error)
	EndpointStatuses(ctx context.Context) (map[string]map[string]store.EndpointStatus, error)
}

var _ Book = (*store.Store)(nil)

// MaxRegistrationBody bounds a registration request.
const MaxRegistrationBody = 64 << 10

// HandlerOptions configures the HTTP handler. Token and Book are
// required.
type HandlerOptions struct {
	// Token is the registration token POST and DELETE require.
	Token config.Secret
	Book  Book
	// Kinds are the endpoint kinds accepted; default DefaultKinds.
	Kinds map[string]Kind
	// FailAfter is the manager's: how many failed polls in a row make an
	// endpoint failing in the listing. Default 3.
	FailAfter int
	// AllowLoopbackHTTP accepts plain http endpoints on 127.0.0.1 and ::1.
	// For tests only: everything else must be https.
	AllowLoopbackHTTP bool
	Clock             clock.Clock
	Logger            *slog.Logger
	Registerer        prometheus.Registerer
}

// Handler serves POST /v1/sites, GET /v1/sites and DELETE
// /v1/sites/{site}.
type Handler struct {
	opts    HandlerOptions
	digest  [sha256.Size]byte
	log     *slog.Logger
	refused *prometheus.CounterVec
}

// NewHandler checks opts and registers the handler's metrics.
func NewHandler(opts HandlerOptions) (*Handler, error) {
	switch {
	case len(opts.Token.Reveal()) < 16:
		return nil, errors.New("sites: the registration token must be at least 16 characters")
	case opts.Book == nil:
		return nil, errors.New("sites: a registry is required")
	}
	if opts.Kinds == nil {
		opts.Kinds = DefaultKinds()
	}
	if opts.FailAfter <= 0 {
		opts.FailAfter = DefaultFailAfter
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, digest: sha256.Sum256([]byte(opts.Token.Reveal())), log: opts.Logger.With("collector", "sites"),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_sites_registrations_refused_total",
			Help: "Site registrations refused, by reason (unauthorized, malformed, invalid, unavailable).",
		}, []string{"reason"})}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(h.refused); err != nil {
			return nil, fmt.Errorf("register sites metrics: %w", err)
		}
	}
	return h, nil
}

// Routes returns the handler's routes for the HTTP server's mux.
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /v1/sites":          http.HandlerFunc(h.register),
		"GET /v1/sites":           http.HandlerFunc(h.list),
		"DELETE /v1/sites/{site}": http.HandlerFunc(h.unregister),
	}
}

// authorized compares the presented token in constant time over
// fixed-length digests.
func (h *Handler) authorized(tok string) bool {
	if tok == "" {
		return false
	}
	d := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(d[:], h.digest[:]) == 1
}

func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

type problem struct {
	Error  string       `json:"error"`
	Errors []FieldError `json:"errors,omitempty"`
}

func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request) {
	h.refused.WithLabelValues("unauthorized").Inc()
	h.log.Warn("site registration refused: no valid registration token", "remote", r.RemoteAddr)
	w.Header().Set("WWW-Authenticate", `Bearer realm="vmtriage"`)
	writeJSON(w, http.StatusUnauthorized, problem{Error: "a valid registration token is required (Authorization: Bearer <token>, or a \"token\" field)"})
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRegistrationBody))
	if err != nil {
		h.refused.WithLabelValues("malformed").Inc()
		writeJSON(w, http.StatusRequestEntityTooLarge, problem{Error: fmt.Sprintf("body is larger than %d bytes", MaxRegistrationBody)})
		return
	}
	header := bearer(r)
	reg, derr := decodeRegistration(body)
	// Authenticate before saying anything about the body: an unknown
	// sender learns nothing of what a good registration looks like.
	tok := header
	if tok == "" {
		tok = reg.Token
	}
	if !h.authorized(tok) {
		h.unauthorized(w, r)
		return
	}
	if derr != nil {
		h.refused.WithLabelValues("malformed").Inc()
		writeJSON(w, http.StatusBadRequest, problem{Error: derr.Error() + "; nothing was registered"})
		return
	}
	site, err := validate(reg, h.opts.Kinds, h.opts.AllowLoopbackHTTP)
	if err != nil {
		var ve *ValidationError
		errors.As(err, &ve)
		h.refused.WithLabelValues("invalid").Inc()
		h.log.Info("site registration refused", "site", clip(reg.Site), "err", err)
		writeJSON(w, http.StatusBadRequest, problem{Error: fmt.Sprintf("%d problem(s) in the registration; nothing was registered", len(ve.Problems)), Errors: ve.Problems})
		return
	}
	site.RegisteredAt = h.opts.Clock.Now().UTC()
	if err := h.opts.Book.RegisterSite(r.Context(), site); err != nil {
		h.refused.WithLabelValues("unavailable").Inc()
		h.log.Error("register site", "site", site.Site, "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "the state store is unavailable; nothing was registered, retry later"})
		return
	}
	h.log.Info("site registered", "site", site.Site, "endpoints", len(site.Endpoints))
	writeJSON(w, http.StatusOK, site)
}

func (h *Handler) unregister(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(bearer(r)) {
		h.unauthorized(w, r)
		return
	}
	name := r.PathValue("site")
	err := h.opts.Book.UnregisterSite(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, problem{Error: fmt.Sprintf("site %q is not registered", clip(name))})
	case err != nil:
		h.log.Error("unregister site", "site", clip(name), "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "the state store is unavailable; retry later"})
	default:
		h.log.Info("site unregistered", "site", name)
		w.WriteHeader(http.StatusNoContent)
	}
}

// SiteView is a registered site as GET /v1/sites lists it.
type SiteView struct {
	Site         string    `json:"site"`
	RegisteredAt time.Time `json:"registered_at"`
	// State is up when an endpoint worked at its last poll, down when
	// every endpoint failed its last FailAfter polls, unknown otherwise.
	State     string         `json:"state"`
	Endpoints []EndpointView `json:"endpoints"`
}

// EndpointView is one endpoint with its last poll.
type EndpointView struct {
	store.SiteEndpoint
	LastPoll    *time.Time `json:"last_poll"`
	LastSuccess *time.Time `json:"last_success"`
	LastError   string     `json:"last_error,omitempty"`
	Failures    int        `json:"consecutive_failures"`
	// Status is ok, failing (FailAfter failures in a row), error (fewer),
	// or pending (not polled yet).
	Status string `json:"status"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	regs, err := h.opts.Book.RegisteredSites(r.Context())
	var statuses map[string]map[string]store.EndpointStatus
	if err == nil {
		statuses, err = h.opts.Book.EndpointStatuses(r.Context())
	}
	if err != nil {
		h.log.Error("list registered sites", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "the state store is unavailable; retry later"})
		return
	}
	out := struct {
		Sites []SiteView `json:"sites"`
	}{Sites: make([]SiteView, 0, len(regs))}
	for _, rs := range regs {
		out.Sites = append(out.Sites, view(rs, statuses[rs.Site], h.opts.FailAfter))
	}
	writeJSON(w, http.StatusOK, out)
}

func view(rs store.RegisteredSite, statuses map[string]store.EndpointStatus, failAfter int) SiteView {
	v := SiteView{Site: rs.Site, RegisteredAt: rs.RegisteredAt, Endpoints: make([]EndpointView, 0, len(rs.Endpoints))}
	classes := make([]string, 0, len(rs.Endpoints))
	for _, ep := range rs.Endpoints {
		st := statuses[ep.ID()]
		ev := EndpointView{SiteEndpoint: ep, Status: classify(st, failAfter), LastError: st.LastError, Failures: st.Failures}
		if !st.LastPoll.IsZero() {
			lp := st.LastPoll
			ev.LastPoll = &lp
		}
		if !st.LastSuccess.IsZero() {
			ls := st.LastSuccess
			ev.LastSuccess = &ls
		}
		classes = append(classes, ev.Status)
		v.Endpoints = append(v.Endpoints, ev)
	}
	v.State = string(siteState(classes))
	if v.State == "" {
		v.State = "unknown"
	}
	return v
}

// Endpoint classes.
const (
	statusPending = "pending"
	statusOK      = "ok"
	statusError   = "error"
	statusFailing = "failing"
)

// classify says how an endpoint stands: pending (never polled), ok (its
// last poll worked), failing (its last failAfter polls failed), or error
// (fewer).
func classify(st store.EndpointStatus, failAfter int) string {
	switch {
	case st.LastPoll.IsZero():
		return statusPending
	case st.Failures == 0:
		return statusOK
	case st.Failures >= failAfter:
		return statusFailing
	}
	return statusError
}

// siteState is a site's collectors' state from its endpoints' classes:
// down when every one is failing, up when any is ok, else unknown ("").
func siteState(classes []string) model.State {
	failing := 0
	for _, c := range classes {
		switch c {
		case statusOK:
			return model.StateUp
		case statusFailing:
			failing++
		}
	}
	if len(classes) > 0 && failing == len(classes) {
		return model.StateDown
	}
	return ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
