// Package alertmanager receives Prometheus Alertmanager webhooks (payload
// version 4) on POST /v1/alertmanager and turns the alerts into
// observations, so that existing Prometheus alert rules can feed vmtriage:
// a host's EDAC alert becomes its ecc_uncorrected fact, a libvirtd-down
// alert a service observation, a VM alert a VM state.
//
// What an alert means is configured, never guessed: a Mapping names the
// labels that carry the VM, host and site, and says per alertname which
// kind of thing it is about and what it reports while firing and once
// resolved. Alerts without a mapping, or without the label their mapping
// needs, are skipped and counted. A payload that is not a version 4
// webhook, or has a malformed alert, is refused whole with 400 naming the
// field; Alertmanager does not retry a 4xx, so nothing half-applies.
package alertmanager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Sink makes observations durable; when it returns nil they are queued.
// The state store's AppendObservations (the HTTP API's Ingester) is one.
type Sink interface {
	AppendObservations(ctx context.Context, obs []model.Observation) error
}

// Defaults applied by New.
const (
	DefaultSource   = "alertmanager"
	DefaultMaxBody  = 4 << 20
	DefaultReassert = 5 * time.Minute
)

// Options configures the handler. Sink is required.
type Options struct {
	Mapping Mapping
	// Token, when set, must arrive as "Authorization: Bearer <token>"
	// (Alertmanager's http_config.authorization.credentials).
	Token config.Secret
	// Source names the observations' source; default "alertmanager".
	Source string
	Sink   Sink
	// MaxBody bounds a payload in bytes; default 4 MiB.
	MaxBody int64
	// Reassert: a firing alert whose startsAt is older than this is a
	// repeat notification, and reports its fact as of now rather than as
	// of when it started; default 5m.
	Reassert   time.Duration
	Clock      clock.Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Handler serves POST /v1/alertmanager.
type Handler struct {
	opts   Options
	token  [sha256.Size]byte
	byName map[string]*AlertMapping
	m      *metrics
	log    *slog.Logger
}

type metrics struct {
	alerts  *prometheus.CounterVec
	refused *prometheus.CounterVec
}

// New checks opts and registers the handler's metrics. A zero Mapping is
// the default one (no alerts mapped).
func New(opts Options) (*Handler, error) {
	if opts.Sink == nil {
		return nil, errors.New("alertmanager: a sink is required")
	}
	if opts.Mapping.VMLabels == nil && opts.Mapping.HostLabels == nil && opts.Mapping.SiteLabels == nil {
		def := DefaultMapping()
		opts.Mapping.VMLabels, opts.Mapping.HostLabels, opts.Mapping.SiteLabels = def.VMLabels, def.HostLabels, def.SiteLabels
	}
	if err := opts.Mapping.check(func(int) int { return 0 }); err != nil {
		return nil, fmt.Errorf("alertmanager mapping: %w", err)
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Reassert <= 0 {
		opts.Reassert = DefaultReassert
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, byName: map[string]*AlertMapping{}, log: opts.Logger.With("collector", "alertmanager")}
	if opts.Token.Set() {
		h.token = sha256.Sum256([]byte(opts.Token.Reveal()))
	}
	for i := range opts.Mapping.Alerts {
		a := &h.opts.Mapping.Alerts[i]
		h.byName[a.Alertname] = a
	}
	h.m = &metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_alertmanager_alerts_total",
			Help: "Alerts received from Alertmanager, by result (accepted, or skipped: unmapped, no_subject).",
		}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_alertmanager_refused_total",
			Help: "Alertmanager webhooks refused, by reason (unauthorized, malformed, too_large, unavailable).",
		}, []string{"reason"}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{h.m.alerts, h.m.refused} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register alertmanager metrics: %w", err)
			}
		}
	}
	h.log.Info("alertmanager receiver ready", "route", "POST /v1/alertmanager", "mapped_alerts", len(h.byName),
		"vm_labels", opts.Mapping.VMLabels, "host_labels", opts.Mapping.HostLabels, "token_required", opts.Token.Set())
	return h, nil
}

// Payload is Alertmanager's webhook body, version 4.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a webhook.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// DecodePayload reads a webhook body and checks what vmtriage relies on;
// errors name the field ("alerts[2].status ...").
func DecodePayload(body []byte) (*Payload, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, errors.New("body is not a JSON object (an Alertmanager webhook, version 4)")
	}
	var top struct {
		Payload
		Alerts json.RawMessage `json:"alerts"`
	}
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, describe("", err)
	}
	p := top.Payload
	if p.Version != "4" {
		return nil, fmt.Errorf("version %q is not supported; vmtriage reads Alertmanager webhook version \"4\"", clip(p.Version))
	}
	var raws []json.RawMessage
	if len(top.Alerts) == 0 || string(top.Alerts) == "null" {
		return nil, errors.New("alerts is required")
	}
	if err := json.Unmarshal(top.Alerts, &raws); err != nil {
		return nil, describe("alerts", err)
	}
	p.Alerts = make([]Alert, len(raws))
	for i, raw := range raws {
		field := fmt.Sprintf("alerts[%d]", i)
		a := &p.Alerts[i]
		var wire struct {
			Alert
			StartsAt string `json:"startsAt"`
			EndsAt   string `json:"endsAt"`
		}
		if err := json.Unmarshal(raw, &wire); err != nil {
			return nil, describe(field, err)
		}
		*a = wire.Alert
		for _, ts := range []struct {
			name string
			v    string
			t    *time.Time
		}{{"startsAt", wire.StartsAt, &a.StartsAt}, {"endsAt", wire.EndsAt, &a.EndsAt}} {
			if ts.v == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, ts.v)
			if err != nil {
				return nil, fmt.Errorf("%s.%s %q is not an RFC 3339 time", field, ts.name, clip(ts.v))
			}
			*ts.t = t
		}
		switch {
		case a.Status != "firing" && a.Status != "resolved":
			return nil, fmt.Errorf("%s.status %q is not firing or resolved", field, clip(a.Status))
		case a.Labels["alertname"] == "":
			return nil, fmt.Errorf("%s.labels.alertname is required", field)
		case a.StartsAt.IsZero():
			return nil, fmt.Errorf("%s.startsAt is required", field)
		}
	}
	return &p, nil
}

// describe names the field behind an encoding/json error.
func describe(prefix string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	join := func(f string) string {
		switch {
		case prefix == "":
			return f
		case f == "":
			return prefix
		}
		return prefix + "." + f
	}
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		// The embedded structs of the wire types are not the sender's field names.
		f := strings.TrimPrefix(strings.TrimPrefix(typ.Field, "Alert."), "Payload.")
		switch f {
		case "labels", "annotations", "groupLabels", "commonLabels", "commonAnnotations":
			return fmt.Errorf("%s must map names to strings, got a %s value", join(f), typ.Value)
		}
		what := "an object"
		switch typ.Type.Kind().String() {
		case "string":
			what = "a string"
		case "slice":
			what = "an array"
		case "int":
			what = "a number"
		}
		return fmt.Errorf("%s must be %s, got %s", join(f), what, typ.Value)
	}
	return fmt.Errorf("%s: %w", join(""), err)
}

// Skipped is an alert that gave no observation, and why.
type Skipped struct {
	Index     int    `json:"index"`
	Alertname string `json:"alertname"`
	Reason    string `json:"reason"`
}

// Observations maps a payload's alerts, received at now; alerts it cannot
// use are returned as skipped.
func (h *Handler) Observations(p *Payload, now time.Time) ([]model.Observation, []Skipped) {
	var obs []model.Observation
	var skipped []Skipped
	mp := &h.opts.Mapping
	for i := range p.Alerts {
		a := &p.Alerts[i]
		name := a.Labels["alertname"]
		skip := func(reason string) { skipped = append(skipped, Skipped{Index: i, Alertname: name, Reason: reason}) }
		am := h.byName[name]
		if am == nil {
			skip("no mapping for this alertname")
			continue
		}
		host := hostLabel(a.Labels, mp.HostLabels)
		o := model.Observation{Source: h.opts.Source, Kind: am.Kind, Host: host, Site: label(a.Labels, mp.SiteLabels), TimeReceived: now}
		switch am.Kind {
		case model.KindVM:
			o.ID = label(a.Labels, mp.VMLabels)
			if o.ID == "" {
				skip("no VM label (" + strings.Join(mp.VMLabels, ", ") + ")")
				continue
			}
		case model.KindHost:
			o.ID, o.Host = host, ""
			if o.ID == "" {
				skip("no host label (" + strings.Join(mp.HostLabels, ", ") + ")")
				continue
			}
		case model.KindService:
			o.ID = am.Service
			if o.ID == "" {
				o.ID = name
			}
			if host == "" {
				skip("no host label (" + strings.Join(mp.HostLabels, ", ") + ") for the service")
				continue
			}
		}
		eff := am.Resolved
		if a.Status == "firing" {
			eff = am.Firing
			o.Event = name
		}
		if eff.Event != "" {
			o.Event = eff.Event
		}
		o.State = eff.State
		if len(eff.Attrs) > 0 {
			o.Attrs = make(map[string]any, len(eff.Attrs))
			for k, v := range eff.Attrs {
				o.Attrs[k] = v
			}
		}
		o.TimeGenerated = h.generated(a, now)
		if err := o.Validate(now); err != nil {
			skip("labels make an invalid observation: " + err.Error())
			continue
		}
		obs = append(obs, o)
	}
	return obs, skipped
}

// generated dates an alert's observation: when it started firing, or when
// it ended; a repeat notification of a long-firing alert, or a time too
// old or in the future to be accepted, is dated now.
func (h *Handler) generated(a *Alert, now time.Time) time.Time {
	t := a.StartsAt
	if a.Status == "resolved" {
		t = a.EndsAt
	}
	switch {
	case t.IsZero(), t.After(now.Add(model.MaxSkew)):
		return now
	case a.Status == "firing" && now.Sub(t) > h.opts.Reassert:
		return now
	case now.Sub(t) > model.MaxAge-time.Hour:
		return now
	}
	return t.UTC()
}

func label(labels map[string]string, names []string) string {
	for _, n := range names {
		if v := labels[n]; v != "" {
			return v
		}
	}
	return ""
}

// hostLabel is label for hosts, dropping the port of an instance label.
func hostLabel(labels map[string]string, names []string) string {
	for _, n := range names {
		v := labels[n]
		if v == "" {
			continue
		}
		if n == "instance" {
			if h, _, err := net.SplitHostPort(v); err == nil {
				v = h
			}
		}
		return v
	}
	return ""
}

func clip(s string) string {
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}

type problem struct {
	Error string `json:"error"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, problem{Error: "use POST"})
		return
	}
	if h.opts.Token.Set() && !h.authorized(r) {
		h.m.refused.WithLabelValues("unauthorized").Inc()
		h.log.Warn("alertmanager webhook refused: no valid bearer token", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="vmtriage"`)
		writeJSON(w, http.StatusUnauthorized, problem{Error: "a valid bearer token is required (http_config.authorization in Alertmanager)"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.m.refused.WithLabelValues("too_large").Inc()
			writeJSON(w, http.StatusRequestEntityTooLarge, problem{Error: fmt.Sprintf("body is larger than %d bytes", h.opts.MaxBody)})
			return
		}
		writeJSON(w, http.StatusBadRequest, problem{Error: "reading body: " + err.Error()})
		return
	}
	p, err := DecodePayload(body)
	if err != nil {
		h.m.refused.WithLabelValues("malformed").Inc()
		h.log.Info("alertmanager webhook refused", "remote", r.RemoteAddr, "err", err)
		writeJSON(w, http.StatusBadRequest, problem{Error: err.Error() + "; nothing was applied"})
		return
	}
	now := h.opts.Clock.Now()
	obs, skipped := h.Observations(p, now)
	if len(obs) > 0 {
		if err := h.opts.Sink.AppendObservations(r.Context(), obs); err != nil {
			h.m.refused.WithLabelValues("unavailable").Inc()
			h.log.Error("store alertmanager observations", "count", len(obs), "err", err)
			w.Header().Set("Retry-After", "5")
			// 5xx: Alertmanager retries the notification.
			writeJSON(w, http.StatusServiceUnavailable, problem{Error: "the state store is unavailable; nothing was applied, retry later"})
			return
		}
	}
	h.m.alerts.WithLabelValues("accepted").Add(float64(len(obs)))
	for _, s := range skipped {
		h.m.alerts.WithLabelValues("skipped").Inc()
		h.log.Debug("alert skipped", "alertname", s.Alertname, "reason", s.Reason, "group", p.GroupKey)
	}
	if skipped == nil {
		skipped = []Skipped{}
	}
	writeJSON(w, http.StatusAccepted, struct {
		Accepted int       `json:"accepted"`
		Skipped  []Skipped `json:"skipped"`
	}{len(obs), skipped})
}

func (h *Handler) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(d[:], h.token[:]) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
