package slack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
)

// SeenStore remembers which requests were already handled, so that a
// request Slack retries (X-Slack-Retry-Num) or someone replays inside the
// signature window does not run its command twice. RedisSeen shares the
// memory between replicas; MemorySeen keeps it in one process.
type SeenStore interface {
	// FirstSeen records key for ttl and reports whether it was new.
	FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Reasons a request is refused, the label values of
// vmtriage_slack_requests_refused_total.
const (
	RefusedMissingHeaders = "missing_headers"
	RefusedBadTimestamp   = "bad_timestamp"
	RefusedExpired        = "expired"
	RefusedBadSignature   = "bad_signature"
	RefusedTooLarge       = "too_large"
	RefusedReplay         = "replay"
)

// Defaults of VerifyOptions.
const (
	// DefaultMaxSlackBody bounds a request body; Slack's payloads are a
	// few kilobytes.
	DefaultMaxSlackBody = 1 << 20
	// DefaultSeenTTL outlives both the 5-minute signature window (in
	// either direction) and Slack's last retry, 5 minutes after the first
	// attempt.
	DefaultSeenTTL = 15 * time.Minute
)

// VerifyOptions configures a Verifier.
type VerifyOptions struct {
	// SigningSecret is the Slack app's signing secret (required).
	SigningSecret config.Secret
	// Seen deduplicates requests; default a MemorySeen, which only knows
	// this process (the application passes a RedisSeen).
	Seen SeenStore
	// SeenTTL is how long a request is remembered; default DefaultSeenTTL.
	SeenTTL time.Duration
	// MaxBody bounds the request body; default DefaultMaxSlackBody.
	MaxBody int64
	// Registerer takes the verifier's counters; nil registers nothing.
	Registerer prometheus.Registerer
	Clock      clock.Clock  // for the default MemorySeen; default clock.Real{}
	Logger     *slog.Logger // default discards
}

// Verifier is HTTP middleware that lets through only requests signed with
// the app's signing secret, inside Slack's 5-minute window, and not seen
// before. It checks the signature before anything parses the body.
type Verifier struct {
	secret  string
	seen    SeenStore
	ttl     time.Duration
	maxBody int64
	log     *slog.Logger
	refused *prometheus.CounterVec
	retries prometheus.Counter
}

// NewVerifier returns a Verifier.
func NewVerifier(opts VerifyOptions) (*Verifier, error) {
	if !opts.SigningSecret.Set() {
		return nil, errors.New("new slack verifier: a signing secret is required (VMTRIAGE_SLACK_SIGNING_SECRET)")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Seen == nil {
		opts.Seen = NewMemorySeen(opts.Clock)
	}
	if opts.SeenTTL <= 0 {
		opts.SeenTTL = DefaultSeenTTL
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxSlackBody
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{
		secret: opts.SigningSecret.Reveal(), seen: opts.Seen, ttl: opts.SeenTTL, maxBody: opts.MaxBody, log: opts.Logger,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmtriage_slack_requests_refused_total",
			Help: "Requests to /slack/* refused with 401 or 413, by reason (missing_headers, bad_timestamp, expired, bad_signature, too_large, replay).",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmtriage_slack_retries_deduplicated_total",
			Help: "Slack retries (X-Slack-Retry-Num) of a request already handled, acknowledged without running it again.",
		}),
	}
	if opts.Registerer != nil {
		var err error
		if v.refused, err = register(opts.Registerer, v.refused); err != nil {
			return nil, err
		}
		if v.retries, err = register(opts.Registerer, v.retries); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// register registers c, or returns the collector already registered under
// its name, so two verifiers on one registry share their counters.
func register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("register slack metrics: %w", err)
	}
	return c, nil
}

// Wrap returns next behind the verifier. A request that is unsigned,
// wrongly signed, outside the window or a replay gets 401 (413 when too
// large) and is counted by reason; a retry of a request already handled
// gets an empty 200 and "X-Slack-No-Retry: 1", so Slack stops retrying
// without the command running twice. next receives the body unread.
func (v *Verifier) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, reason := v.verify(r)
		if reason != "" {
			v.refuse(w, r, reason)
			return
		}
		sum := sha256.Sum256(body)
		first, err := v.seen.FirstSeen(r.Context(), hex.EncodeToString(sum[:]), v.ttl)
		switch {
		case err != nil:
			// Failing open: a store outage must not lock everyone out of
			// the bot; the worst case is one command run twice.
			v.log.Warn("could not record a slack request for deduplication", "path", r.URL.Path, "err", err)
		case !first && r.Header.Get("X-Slack-Retry-Num") != "":
			v.retries.Inc()
			v.log.Info("slack retry of a request already handled; not running it again",
				"path", r.URL.Path, "retry_num", r.Header.Get("X-Slack-Retry-Num"), "retry_reason", r.Header.Get("X-Slack-Retry-Reason"))
			w.Header().Set("X-Slack-No-Retry", "1")
			w.WriteHeader(http.StatusOK)
			return
		case !first:
			// Slack never sends the same body twice without saying it is a
			// retry: this is someone replaying a captured request.
			v.refuse(w, r, RefusedReplay)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// verify checks r's signature and returns its body, or the reason it is
// refused.
func (v *Verifier) verify(r *http.Request) ([]byte, string) {
	sv, err := goslack.NewSecretsVerifier(r.Header, v.secret)
	if err != nil {
		return nil, verifyReason(err)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, v.maxBody+1))
	if err != nil {
		return nil, RefusedBadSignature
	}
	if int64(len(body)) > v.maxBody {
		return nil, RefusedTooLarge
	}
	if _, err := sv.Write(body); err != nil {
		return nil, RefusedBadSignature
	}
	if err := sv.Ensure(); err != nil {
		return nil, RefusedBadSignature
	}
	return body, ""
}

func verifyReason(err error) string {
	var numErr *strconv.NumError
	switch {
	case errors.Is(err, goslack.ErrMissingHeaders):
		return RefusedMissingHeaders
	case errors.Is(err, goslack.ErrExpiredTimestamp):
		return RefusedExpired
	case errors.As(err, &numErr):
		return RefusedBadTimestamp
	}
	// Invalid signature, a signature that is not hex or has the wrong size.
	return RefusedBadSignature
}

func (v *Verifier) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	v.refused.WithLabelValues(reason).Inc()
	// Neither the signature nor the body is logged: both are the
	// caller's, and the body may hold a response_url.
	v.log.Info("slack request refused", "path", r.URL.Path, "reason", reason, "remote", r.RemoteAddr)
	code := http.StatusUnauthorized
	if reason == RefusedTooLarge {
		code = http.StatusRequestEntityTooLarge
	}
	http.Error(w, "slack request refused: "+reason, code)
}

// RedisSeen is a SeenStore in Redis, shared by every replica: a key per
// request, set with SET NX and a TTL. Keys use the store's hash-tag
// prefix, "{prefix}:slackseen:<sha256 of the body>".
type RedisSeen struct {
	Client redis.Cmdable
	// Prefix is the store's key prefix (without braces); default "vt".
	Prefix string
}

var _ SeenStore = RedisSeen{}

// FirstSeen sets the key if it is absent and reports whether it did.
func (s RedisSeen) FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	prefix := s.Prefix
	if prefix == "" {
		prefix = "vt"
	}
	ok, err := s.Client.SetNX(ctx, "{"+prefix+"}:slackseen:"+key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("record slack request: %w", err)
	}
	return ok, nil
}

// MemorySeen is a SeenStore in this process's memory. It is right for a
// single replica (the demo, a test); with several replicas behind a load
// balancer a retry may reach another replica, so use RedisSeen there.
type MemorySeen struct {
	clock clock.Clock
	mu    sync.Mutex
	until map[string]time.Time
	// nextSweep is when expired keys are next dropped.
	nextSweep time.Time
}

var _ SeenStore = (*MemorySeen)(nil)

// NewMemorySeen returns an empty MemorySeen telling time by c.
func NewMemorySeen(c clock.Clock) *MemorySeen {
	if c == nil {
		c = clock.Real{}
	}
	return &MemorySeen{clock: c, until: map[string]time.Time{}}
}

// FirstSeen records key until now+ttl and reports whether it was absent
// or expired.
func (s *MemorySeen) FirstSeen(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, ok := s.until[key]; ok && now.Before(until) {
		return false, nil
	}
	s.until[key] = now.Add(ttl)
	// Sweep once a minute, so memory follows the request rate times the
	// TTL rather than uptime, at a cost that does not grow per request.
	if !now.Before(s.nextSweep) {
		for k, until := range s.until {
			if !now.Before(until) {
				delete(s.until, k)
			}
		}
		s.nextSweep = now.Add(time.Minute)
	}
	return true, nil
}
