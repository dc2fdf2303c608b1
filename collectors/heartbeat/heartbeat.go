// Package heartbeat receives heartbeats on POST /v1/heartbeats: proof that
// a computer (a VM, or a host with kind "host") is alive, sent by whatever
// already runs there or near it (an Azure Monitor agent relay, a cron job,
// a site's collector), never by anything vmtriage installs.
//
// A heartbeat becomes an observation without a state, which the rules
// engine takes as proof of life: it keeps the VM or host from being
// reported by the stopped-reporting rules and changes nothing else (not its
// state, not the source it is judged against). Each sender is its own
// source, "heartbeat/<sender>", so a sender that goes quiet is one
// source-stopped-reporting incident rather than one per computer.
//
// Each sender has its own bearer token; a request without a matching one
// gets 401 and changes nothing.
package heartbeat

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
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Sink makes observations durable; when it returns nil they are queued
// and must never be lost. The state store's AppendObservations (the HTTP
// API's Ingester) is one.
type Sink interface {
	AppendObservations(ctx context.Context, obs []model.Observation) error
}

// Defaults applied by New.
const (
	DefaultSourcePrefix = "heartbeat"
	DefaultMaxBody      = 4 << 20
	DefaultMaxBatch     = 50_000
)

// Options configures the handler. Tokens and Sink are required.
type Options struct {
	// Tokens maps each sender's name to its bearer token.
	Tokens map[string]config.Secret
	// SourcePrefix names the sources: "<prefix>/<sender>"; default
	// "heartbeat".
	SourcePrefix string
	Sink         Sink
	// MaxBody bounds a request body in bytes; default 4 MiB.
	MaxBody int64
	// MaxBatch bounds the heartbeats of one request; default 50,000.
	MaxBatch int
	// Hosts accepts heartbeats with kind "host". The rules engine and the
	// store take a host record with neither state nor facts as proof of
	// life only, never as a collection period with facts, so a host
	// heartbeat cannot make a host look healthy in the period a VM on it
	// crashed. The service turns it on by default
	// (VMTRIAGE_HEARTBEAT_HOSTS); the zero value refuses them.
	Hosts      bool
	Clock      clock.Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Handler serves POST /v1/heartbeats.
type Handler struct {
	opts    Options
	senders []sender
	m       *metrics
	log     *slog.Logger
}

type sender struct {
	name   string
	digest [sha256.Size]byte
}

type metrics struct {
	received *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

// New checks opts and registers the handler's metrics.
func New(opts Options) (*Handler, error) {
	var problems []string
	if len(opts.Tokens) == 0 {
		problems = append(problems, "at least one sender token is required")
	}
	names := make([]string, 0, len(opts.Tokens))
	for name := range opts.Tokens {
		names = append(names, name)
	}
	sort.Strings(names)
	h := &Handler{}
	seen := map[[sha256.Size]byte]string{}
	for _, name := range names {
		tok := opts.Tokens[name]
		switch {
		case name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\r\n{}/:"):
			problems = append(problems, fmt.Sprintf("sender name %q must be 1 to 64 characters without spaces, braces, '/' or ':'", name))
		case len(tok.Reveal()) < 16:
			problems = append(problems, fmt.Sprintf("sender %s: token is shorter than 16 characters", name))
		}
		d := sha256.Sum256([]byte(tok.Reveal()))
		if other, dup := seen[d]; dup {
			problems = append(problems, fmt.Sprintf("senders %s and %s share a token; give each its own", other, name))
		}
		seen[d] = name
		h.senders = append(h.senders, sender{name: name, digest: d})
	}
	if opts.Sink == nil {
		problems = append(problems, "a sink is required")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("heartbeats: %s", strings.Join(problems, "; "))
	}
	if opts.SourcePrefix == "" {
		opts.SourcePrefix = DefaultSourcePrefix
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h.opts = opts
	h.log = opts.Logger.With("collector", "heartbeat")
	h.m = &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_heartbeats_received_total",
			Help: "Heartbeats accepted by POST /v1/heartbeats, by sender.",
		}, []string{"sender"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_heartbeats_refused_total",
			Help: "Heartbeat requests or records refused, by reason (unauthorized, malformed, invalid, too_large, unavailable).",
		}, []string{"reason"}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{h.m.received, h.m.refused} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register heartbeat metrics: %w", err)
			}
		}
	}
	h.log.Info("heartbeat receiver ready", "route", "POST /v1/heartbeats", "senders", names)
	return h, nil
}

// authenticate returns the sender whose token the request carries, or "".
// Every token is compared, in constant time over fixed-length digests, so
// neither the match nor its position leaks through timing.
func (h *Handler) authenticate(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return ""
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	found := ""
	for _, s := range h.senders {
		if subtle.ConstantTimeCompare(d[:], s.digest[:]) == 1 {
			found = s.name
		}
	}
	return found
}

// problem is the body of every error response, shaped like the HTTP API's.
type problem struct {
	Error  string              `json:"error"`
	Errors []model.RecordError `json:"errors,omitempty"`
	Total  int                 `json:"total_errors,omitempty"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, problem{Error: "use POST"})
		return
	}
	who := h.authenticate(r)
	if who == "" {
		h.m.refused.WithLabelValues("unauthorized").Inc()
		h.log.Warn("heartbeats refused: no valid bearer token", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="vmtriage"`)
		writeJSON(w, http.StatusUnauthorized, problem{Error: "a valid bearer token is required (Authorization: Bearer <token>)"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.m.refused.WithLabelValues("too_large").Inc()
			writeJSON(w, http.StatusRequestEntityTooLarge, problem{Error: fmt.Sprintf("body is larger than %d bytes; split it", h.opts.MaxBody)})
			return
		}
		writeJSON(w, http.StatusBadRequest, problem{Error: "reading body: " + err.Error()})
		return
	}
	now := h.opts.Clock.Now()
	obs, err := decode(body, h.opts.SourcePrefix+"/"+who, now, h.opts.MaxBatch, h.opts.Hosts)
	if err != nil {
		var be *model.BatchError
		if errors.As(err, &be) {
			h.m.refused.WithLabelValues("invalid").Add(float64(be.Total))
			h.log.Info("heartbeats refused", "sender", who, "bad_records", be.Total, "first", be.Records[0].Reason)
			writeJSON(w, http.StatusBadRequest, problem{Error: fmt.Sprintf("%d invalid heartbeat(s); nothing was applied", be.Total), Errors: be.Records, Total: be.Total})
			return
		}
		h.m.refused.WithLabelValues("malformed").Inc()
		h.log.Info("heartbeats refused", "sender", who, "err", err)
		writeJSON(w, http.StatusBadRequest, problem{Error: err.Error() + "; nothing was applied"})
		return
	}
	if err := h.opts.Sink.AppendObservations(r.Context(), obs); err != nil {
		h.m.refused.WithLabelValues("unavailable").Add(float64(len(obs)))
		h.log.Error("store heartbeats", "sender", who, "count", len(obs), "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, problem{Error: "the state store is unavailable; nothing was applied, retry later"})
		return
	}
	h.m.received.WithLabelValues(who).Add(float64(len(obs)))
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(obs)})
}

// beat is one heartbeat as senders write it. TimeGenerated also accepts
// Azure Monitor's column name, so Heartbeat rows can be forwarded as they
// are; other fields are ignored.
type beat struct {
	Computer         string `json:"computer"`
	TimeGenerated    string `json:"time_generated"`
	TimeGeneratedAlt string `json:"TimeGenerated"`
	Site             string `json:"site"`
	Kind             string `json:"kind"`
}

// ErrEmpty is returned for a body without heartbeats.
var ErrEmpty = errors.New("no heartbeats in body")

// Decode reads one heartbeat object or a JSON array of them, received at
// now from source, into observations (host heartbeats included). A batch with any bad heartbeat is
// refused whole with a *model.BatchError naming each; a body that is not
// JSON gets a plain error.
func Decode(body []byte, source string, now time.Time, maxBatch int) ([]model.Observation, error) {
	return decode(body, source, now, maxBatch, true)
}

func decode(body []byte, source string, now time.Time, maxBatch int, hosts bool) ([]model.Observation, error) {
	body = bytes.TrimSpace(body)
	var raws []json.RawMessage
	switch {
	case len(body) == 0:
		return nil, ErrEmpty
	case body[0] == '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, fmt.Errorf("body is not a JSON array of heartbeats: %w", describe(err))
		}
	case body[0] == '{':
		if !json.Valid(body) {
			var v any
			return nil, fmt.Errorf("body is not a JSON object: %w", describe(json.Unmarshal(body, &v)))
		}
		raws = []json.RawMessage{body}
	default:
		return nil, errors.New(`body must be a JSON object or array, e.g. {"computer":"vm-0042","time_generated":"2026-11-22T10:00:00Z"}`)
	}
	if len(raws) == 0 {
		return nil, ErrEmpty
	}
	if len(raws) > maxBatch {
		return nil, fmt.Errorf("%d heartbeats in one request, more than %d; split it", len(raws), maxBatch)
	}
	be := &model.BatchError{}
	out := make([]model.Observation, 0, len(raws))
	for i, raw := range raws {
		o, err := decodeBeat(raw, source, now, hosts)
		if err != nil {
			be.Total++
			if len(be.Records) < model.MaxRecordErrors {
				be.Records = append(be.Records, model.RecordError{Index: i, ID: o.ID, Reason: err.Error()})
			}
			continue
		}
		out = append(out, o)
	}
	if be.Total > 0 {
		return nil, be
	}
	return out, nil
}

func decodeBeat(raw []byte, source string, now time.Time, hosts bool) (model.Observation, error) {
	var b beat
	if err := json.Unmarshal(raw, &b); err != nil {
		return model.Observation{}, describe(err)
	}
	o := model.Observation{Source: source, Kind: model.KindVM, ID: b.Computer, Site: b.Site, TimeReceived: now}
	switch b.Kind {
	case "", "vm":
	case "host":
		o.Kind = model.KindHost
		if !hosts {
			return o, errors.New(`kind "host" heartbeats are not enabled on this server`)
		}
	default:
		return o, fmt.Errorf("kind %q is not vm or host", clip(b.Kind))
	}
	ts := b.TimeGenerated
	if ts == "" {
		ts = b.TimeGeneratedAlt
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return o, fmt.Errorf("time_generated %q is not RFC 3339 (e.g. 2026-11-22T10:00:00Z)", clip(ts))
		}
		o.TimeGenerated = t.UTC()
	}
	if o.ID == "" {
		return o, errors.New("computer is required")
	}
	// A heartbeat carries no state; check everything else as the contract
	// checks a VM report.
	check := o
	if check.Kind == model.KindVM {
		check.State = model.StateUnknown
	}
	if err := check.Validate(now); err != nil {
		var inv *model.InvalidError
		if errors.As(err, &inv) {
			// Speak the sender's field name: the contract's "id" is its
			// "computer".
			ps := make([]string, len(inv.Problems))
			for i, p := range inv.Problems {
				if rest, ok := strings.CutPrefix(p, "id "); ok {
					p = "computer " + rest
				}
				ps[i] = p
			}
			return o, &model.InvalidError{Problems: ps}
		}
		return o, err
	}
	return o, nil
}

// describe turns encoding/json's errors into words an operator can use.
func describe(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Errorf("field %s must be a %s, got %s", typ.Field, kindName(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Errorf("must be a JSON object, got %s", typ.Value)
	}
	return err
}

func kindName(k string) string {
	switch k {
	case "struct", "map":
		return "object"
	case "slice":
		return "array"
	}
	return k
}

func clip(s string) string {
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
