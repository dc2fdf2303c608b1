package slack

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// testSigningSecret is what the tests sign with; AssertNoSecrets looks
// for it everywhere.
const testSigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// signSlack signs body as Slack does: v0=hex(HMAC-SHA256(secret,
// "v0:<ts>:<body>")).
func signSlack(secret string, ts int64, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, "v0:"+strconv.FormatInt(ts, 10)+":"+body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// signedRequest builds a request to path signed with secret at ts, with a
// fresh trigger_id in the form so that each call is a new request.
func signedRequest(path, secret string, ts time.Time, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set("X-Slack-Signature", signSlack(secret, ts.Unix(), body))
	return r
}

func uniqueTrigger() string {
	var b [6]byte
	rand.Read(b[:])
	return "13345224609." + hex.EncodeToString(b[:])
}

// echoHandler stands for the command handlers: it counts calls and
// echoes the body it was given, proving the body was restored.
type echoHandler struct {
	mu    sync.Mutex
	calls int
}

func (h *echoHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.calls++
	h.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	w.Write(b)
}

func (h *echoHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

func TestVerifierSignatures(t *testing.T) {
	// The signature window is checked by slack-go against the wall clock
	// (as Slack's own timestamps are), so timestamps here are relative to
	// time.Now(); the tests assert on outcomes, never on elapsed time.
	now := time.Now()
	body := "command=%2Ftriage&text=status+vm-0042&user_id=U0ALICE&trigger_id=" + uniqueTrigger()
	tests := []struct {
		name   string
		mutate func(r *http.Request)
		req    func() *http.Request
		code   int
		reason string
	}{
		{name: "valid", req: func() *http.Request { return signedRequest("/slack/commands", testSigningSecret, now, body) }, code: http.StatusOK},
		{name: "valid at the edge of the window", req: func() *http.Request {
			return signedRequest("/slack/commands", testSigningSecret, now.Add(-4*time.Minute), body+"&x=edge")
		}, code: http.StatusOK},
		{name: "wrong secret", req: func() *http.Request {
			return signedRequest("/slack/commands", "not-the-secret-at-all", now, body)
		}, code: http.StatusUnauthorized, reason: RefusedBadSignature},
		{name: "expired timestamp", req: func() *http.Request {
			return signedRequest("/slack/commands", testSigningSecret, now.Add(-6*time.Minute), body)
		}, code: http.StatusUnauthorized, reason: RefusedExpired},
		{name: "timestamp from the future", req: func() *http.Request {
			return signedRequest("/slack/commands", testSigningSecret, now.Add(6*time.Minute), body)
		}, code: http.StatusUnauthorized, reason: RefusedExpired},
		{name: "missing signature", req: func() *http.Request {
			r := signedRequest("/slack/commands", testSigningSecret, now, body)
			r.Header.Del("X-Slack-Signature")
			return r
		}, code: http.StatusUnauthorized, reason: RefusedMissingHeaders},
		{name: "missing timestamp", req: func() *http.Request {
			r := signedRequest("/slack/commands", testSigningSecret, now, body)
			r.Header.Del("X-Slack-Request-Timestamp")
			return r
		}, code: http.StatusUnauthorized, reason: RefusedMissingHeaders},
		{name: "timestamp not a number", req: func() *http.Request {
			r := signedRequest("/slack/commands", testSigningSecret, now, body)
			r.Header.Set("X-Slack-Request-Timestamp", "yesterday")
			return r
		}, code: http.StatusUnauthorized, reason: RefusedBadTimestamp},
		{name: "signature not hex", req: func() *http.Request {
			r := signedRequest("/slack/commands", testSigningSecret, now, body)
			r.Header.Set("X-Slack-Signature", "v0=zzzz")
			return r
		}, code: http.StatusUnauthorized, reason: RefusedBadSignature},
		{name: "signature without version", req: func() *http.Request {
			r := signedRequest("/slack/commands", testSigningSecret, now, body)
			r.Header.Set("X-Slack-Signature", strings.TrimPrefix(r.Header.Get("X-Slack-Signature"), "v0="))
			return r
		}, code: http.StatusUnauthorized, reason: RefusedBadSignature},
		{name: "body tampered", req: func() *http.Request {
			r := signedRequest("/slack/commands", testSigningSecret, now, body)
			tampered := strings.Replace(body, "status", "silence", 1)
			r.Body = io.NopCloser(strings.NewReader(tampered))
			return r
		}, code: http.StatusUnauthorized, reason: RefusedBadSignature},
		{name: "timestamp changed", req: func() *http.Request {
			r := signedRequest("/slack/commands", testSigningSecret, now, body)
			r.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(now.Unix()-1, 10))
			return r
		}, code: http.StatusUnauthorized, reason: RefusedBadSignature},
		{name: "body too large", req: func() *http.Request {
			return signedRequest("/slack/commands", testSigningSecret, now, body+"&pad="+strings.Repeat("a", 2048))
		}, code: http.StatusRequestEntityTooLarge, reason: RefusedTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, rec := bottest.Logger()
			reg := prometheus.NewRegistry()
			v, err := NewVerifier(VerifyOptions{SigningSecret: testSigningSecret, MaxBody: 1024, Registerer: reg, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			next := &echoHandler{}
			req := tt.req()
			sent := ""
			if tt.code == http.StatusOK {
				b, _ := io.ReadAll(req.Body)
				sent = string(b)
				req.Body = io.NopCloser(strings.NewReader(sent))
			}
			w := httptest.NewRecorder()
			v.Wrap(next).ServeHTTP(w, req)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tt.code, w.Body.String())
			}
			if tt.code == http.StatusOK {
				if next.count() != 1 {
					t.Fatalf("next called %d times, want 1", next.count())
				}
				if w.Body.String() != sent {
					t.Errorf("next read %q, want the body as sent %q", w.Body.String(), sent)
				}
				return
			}
			if next.count() != 0 {
				t.Errorf("a refused request reached the handler")
			}
			if got := counterValue(v.refused.WithLabelValues(tt.reason)); got != 1 {
				t.Errorf("refused{reason=%q} = %v, want 1", tt.reason, got)
			}
			if n := collectCount(v.refused); n != 1 {
				t.Errorf("%d reasons counted, want only %q", n, tt.reason)
			}
			if !strings.Contains(rec.String(), `"reason":"`+tt.reason+`"`) {
				t.Errorf("log does not name the reason %q:\n%s", tt.reason, rec.String())
			}
			bottest.AssertNoSecrets(t, []string{testSigningSecret}, map[string]string{
				"log": rec.String(), "response": w.Body.String(),
			})
		})
	}
}

func TestVerifierDeduplicates(t *testing.T) {
	tests := []struct {
		name string
		// second is the header set of the second delivery of the same body.
		retryNum string
		code     int
		runs     int
		retries  float64
		replays  float64
	}{
		{name: "slack retry is acknowledged without running again", retryNum: "1", code: http.StatusOK, runs: 1, retries: 1},
		{name: "replay without retry header is refused", code: http.StatusUnauthorized, runs: 1, replays: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			v, err := NewVerifier(VerifyOptions{SigningSecret: testSigningSecret, Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			next := &echoHandler{}
			h := v.Wrap(next)
			body := "text=ack+inc-42&user_id=U0ALICE&trigger_id=" + uniqueTrigger()
			now := time.Now()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, signedRequest("/slack/commands", testSigningSecret, now, body))
			if w.Code != http.StatusOK {
				t.Fatalf("first delivery: status %d", w.Code)
			}
			// Slack signs a retry afresh, with a later timestamp.
			again := signedRequest("/slack/commands", testSigningSecret, now.Add(time.Minute), body)
			if tt.retryNum != "" {
				again.Header.Set("X-Slack-Retry-Num", tt.retryNum)
				again.Header.Set("X-Slack-Retry-Reason", "http_timeout")
			}
			w = httptest.NewRecorder()
			h.ServeHTTP(w, again)
			if w.Code != tt.code {
				t.Fatalf("second delivery: status %d, want %d", w.Code, tt.code)
			}
			if next.count() != tt.runs {
				t.Errorf("handler ran %d times, want %d", next.count(), tt.runs)
			}
			if tt.code == http.StatusOK && (w.Body.Len() != 0 || w.Header().Get("X-Slack-No-Retry") != "1") {
				t.Errorf("retry answer: body %q, X-Slack-No-Retry %q; want empty and 1", w.Body.String(), w.Header().Get("X-Slack-No-Retry"))
			}
			if got := counterValue(v.retries); got != tt.retries {
				t.Errorf("retries deduplicated = %v, want %v", got, tt.retries)
			}
			if got := counterValue(v.refused.WithLabelValues(RefusedReplay)); got != tt.replays {
				t.Errorf("replays refused = %v, want %v", got, tt.replays)
			}
		})
	}
}

// TestVerifierDeduplicatesAcrossReplicas runs two verifiers, as two
// replicas, on one Redis: a retry that reaches the other replica still
// does not run the command again.
func TestVerifierDeduplicatesAcrossReplicas(t *testing.T) {
	rdb := storetest.Client(t)
	prefix := "test-" + uniqueTrigger()
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, "{"+prefix+"}:*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	seen := RedisSeen{Client: rdb, Prefix: prefix}
	reg := prometheus.NewRegistry()
	next := &echoHandler{}
	var (
		replicas  []http.Handler
		verifiers []*Verifier
	)
	for range 2 {
		v, err := NewVerifier(VerifyOptions{SigningSecret: testSigningSecret, Seen: seen, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		verifiers = append(verifiers, v)
		replicas = append(replicas, v.Wrap(next))
	}
	body := "text=ack+inc-42&user_id=U0ALICE&trigger_id=" + uniqueTrigger()
	now := time.Now()
	w := httptest.NewRecorder()
	replicas[0].ServeHTTP(w, signedRequest("/slack/commands", testSigningSecret, now, body))
	retry := signedRequest("/slack/commands", testSigningSecret, now.Add(time.Minute), body)
	retry.Header.Set("X-Slack-Retry-Num", "1")
	w2 := httptest.NewRecorder()
	replicas[1].ServeHTTP(w2, retry)
	if w.Code != http.StatusOK || w2.Code != http.StatusOK {
		t.Fatalf("statuses %d and %d, want 200 and 200", w.Code, w2.Code)
	}
	if next.count() != 1 {
		t.Errorf("command ran %d times across replicas, want 1", next.count())
	}
	// Both verifiers registered on one registry share one counter.
	if got := counterValue(verifiers[0].retries); got != 1 {
		t.Errorf("retries deduplicated = %v, want 1 (counted by the second replica, seen by the first)", got)
	}
	ttl, err := rdb.TTL(context.Background(), "{"+prefix+"}:slackseen:"+sha256Hex(body)).Result()
	if err != nil || ttl <= 0 || ttl > DefaultSeenTTL {
		t.Errorf("seen key TTL = %v (err %v), want within (0, %v]", ttl, err, DefaultSeenTTL)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestMemorySeenExpires(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	s := NewMemorySeen(clk)
	ctx := context.Background()
	steps := []struct {
		name    string
		advance time.Duration
		key     string
		want    bool
	}{
		{name: "first", key: "a", want: true},
		{name: "again at once", key: "a", want: false},
		{name: "other key", key: "b", want: true},
		{name: "just before expiry", advance: 10*time.Minute - time.Second, key: "a", want: false},
		{name: "at expiry", advance: time.Second, key: "a", want: true},
		{name: "recorded again", key: "a", want: false},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		got, err := s.FirstSeen(ctx, st.key, 10*time.Minute)
		if err != nil || got != st.want {
			t.Errorf("%s: FirstSeen(%q) = %v, %v; want %v", st.name, st.key, got, err, st.want)
		}
	}
}

func TestNewVerifierNeedsSecret(t *testing.T) {
	_, err := NewVerifier(VerifyOptions{SigningSecret: config.Secret("")})
	if err == nil || !strings.Contains(err.Error(), "VMTRIAGE_SLACK_SIGNING_SECRET") {
		t.Errorf("err = %v, want one naming VMTRIAGE_SLACK_SIGNING_SECRET", err)
	}
}

// counterValue reads a counter (prometheus/testutil would need a module
// that is not in go.mod).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// collectCount counts the series c has.
func collectCount(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

// alwaysNew is a SeenStore that has seen nothing, so a benchmark can send
// one request many times.
type alwaysNew struct{}

func (alwaysNew) FirstSeen(context.Context, string, time.Duration) (bool, error) { return true, nil }

func BenchmarkVerifierWrap(b *testing.B) {
	v, err := NewVerifier(VerifyOptions{SigningSecret: testSigningSecret, Seen: alwaysNew{}})
	if err != nil {
		b.Fatal(err)
	}
	h := v.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	body := "command=%2Ftriage&text=status+vm-0042&user_id=U0ALICE&channel_id=C0OPS&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT0%2F1%2Fabc&trigger_id=" + uniqueTrigger()
	ts := time.Now()
	header := signedRequest("/slack/commands", testSigningSecret, ts, body).Header
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(body))
		r.Header = header
		h.ServeHTTP(w, r)
	}
	if w.Code != http.StatusOK {
		b.Fatalf("status %d", w.Code)
	}
}

func BenchmarkSeen(b *testing.B) {
	for _, tc := range []struct {
		name string
		seen func(b *testing.B) SeenStore
	}{
		{"memory", func(*testing.B) SeenStore { return NewMemorySeen(clock.Real{}) }},
		{"redis", func(b *testing.B) SeenStore {
			rdb := storetest.Client(b)
			prefix := "bench-" + uniqueTrigger()
			b.Cleanup(func() {
				keys, _ := rdb.Keys(context.Background(), "{"+prefix+"}:*").Result()
				for len(keys) > 0 {
					n := min(len(keys), 1000)
					rdb.Del(context.Background(), keys[:n]...)
					keys = keys[n:]
				}
			})
			return RedisSeen{Client: rdb, Prefix: prefix}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.seen(b)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				if _, err := s.FirstSeen(ctx, sha256Hex(strconv.Itoa(i)), time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestMemorySeenForgetsExpiredKeys(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	s := NewMemorySeen(clk)
	ctx := context.Background()
	for i := range 100 {
		s.FirstSeen(ctx, strconv.Itoa(i), 5*time.Minute)
	}
	clk.Advance(6 * time.Minute)
	s.FirstSeen(ctx, "late", 5*time.Minute)
	s.mu.Lock()
	n := len(s.until)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("%d keys kept after they all expired, want only the new one", n)
	}
}
