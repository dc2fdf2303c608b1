package heartbeat

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const (
	tokenA = config.Secret("token-site-a-0123456789")
	tokenB = config.Secret("token-relay-b-9876543210")
)

type sink struct {
	mu   sync.Mutex
	obs  []model.Observation
	fail bool
}

func (s *sink) AppendObservations(_ context.Context, obs []model.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("redis is down")
	}
	s.obs = append(s.obs, obs...)
	return nil
}

type fixture struct {
	h    *Handler
	sink *sink
	reg  *prometheus.Registry
	logs *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{sink: &sink{}, reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	h, err := New(Options{
		Tokens: map[string]config.Secret{"site-a": tokenA, "relay-b": tokenB},
		Sink:   f.sink, Clock: clock.NewFake(t0), Registerer: f.reg,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	t.Cleanup(func() {
		for _, s := range []config.Secret{tokenA, tokenB} {
			if strings.Contains(f.logs.String(), s.Reveal()) {
				t.Errorf("a token appears in the logs:\n%s", f.logs)
			}
		}
	})
	return f
}

func (f *fixture) post(auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/heartbeats", strings.NewReader(body))
	req.RemoteAddr = "192.0.2.7:5555"
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func TestAuth(t *testing.T) {
	body := `{"computer":"vm-0042","time_generated":"2026-11-22T09:59:58Z"}`
	tests := []struct {
		name       string
		auth       string
		code       int
		wantSource string
	}{
		{"no header", "", 401, ""},
		{"basic auth", "Basic c2l0ZS1hOnRva2Vu", 401, ""},
		{"empty bearer", "Bearer ", 401, ""},
		{"wrong token", "Bearer token-site-a-0123456788", 401, ""},
		{"a prefix of a token", "Bearer token-site-a", 401, ""},
		{"sender a", "Bearer " + tokenA.Reveal(), 202, "heartbeat/site-a"},
		{"sender b, scheme in lower case", "bearer " + tokenB.Reveal(), 202, "heartbeat/relay-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.post(tt.auth, body)
			if rec.Code != tt.code {
				t.Fatalf("code = %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code == 401 {
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if len(f.sink.obs) != 0 {
					t.Errorf("an unauthenticated request changed something: %+v", f.sink.obs)
				}
				if got := counter(f.reg, "vmtriage_heartbeats_refused_total", "unauthorized"); got != 1 {
					t.Errorf("unauthorized refusals = %v, want 1", got)
				}
				return
			}
			if len(f.sink.obs) != 1 || f.sink.obs[0].Source != tt.wantSource {
				t.Fatalf("sent %+v, want one observation from %s", f.sink.obs, tt.wantSource)
			}
		})
	}
}

// TestDecode posts bodies and compares the answers (and what reached the
// sink) with golden files.
func TestDecode(t *testing.T) {
	tests := []struct {
		name, body string
		code       int
	}{
		{"one", `{"computer":"vm-0042","time_generated":"2026-11-22T09:59:58Z"}`, 202},
		{"host-not-enabled", `{"computer":"host-007","time_generated":"2026-11-22T09:59:58Z","kind":"host"}`, 400},
		{"many", `[{"computer":"vm-0042","time_generated":"2026-11-22T09:59:58Z","site":"pod-a"},
		           {"computer":"host-007","time_generated":"2026-11-22T09:59:59.5+01:00","kind":"host"},
		           {"computer":"vm-0043","time_generated":"2026-11-22T09:59:57Z","kind":"vm"}]`, 202},
		{"azure-monitor-row", `{"Computer":"vm-0042","TimeGenerated":"2026-11-22T09:59:58.123Z","Category":"Direct Agent","OSType":"Linux"}`, 202},
		{"bad-records", `[{"computer":"vm-1","time_generated":"2026-11-22T09:59:58Z"},
		                  {"time_generated":"2026-11-22T09:59:58Z"},
		                  {"computer":"vm 2","time_generated":"yesterday"},
		                  {"computer":"vm-3","time_generated":"2026-11-19T09:00:00Z","kind":"service"},
		                  {"computer":"vm-4","time_generated":"2026-11-19T09:00:00Z"},
		                  {"computer":"vm-5"},
		                  {"computer":5,"time_generated":"2026-11-22T09:59:58Z"},
		                  "vm-6"]`, 400},
		{"not-json", `computer=vm-1`, 400},
		{"truncated", `{"computer":"vm-1",`, 400},
		{"empty-array", `[]`, 400},
		{"empty", ``, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.h.opts.Hosts = tt.name != "host-not-enabled"
			rec := f.post("Bearer "+tokenA.Reveal(), tt.body)
			if rec.Code != tt.code {
				t.Errorf("code = %d, want %d", rec.Code, tt.code)
			}
			var sent strings.Builder
			for _, o := range f.sink.obs {
				fmt.Fprintf(&sent, "%s %s %s site=%q state=%q gen=%s recv=%s\n", o.Source, o.Kind, o.ID, o.Site, o.State,
					o.TimeGenerated.Format(time.RFC3339Nano), o.TimeReceived.Format(time.RFC3339))
			}
			golden(t, "decode-"+tt.name, fmt.Sprintf("HTTP %d\n%s-- sent\n%s", rec.Code, rec.Body, sent.String()))
		})
	}
}

func TestStoreDownIs503(t *testing.T) {
	f := newFixture(t)
	f.sink.fail = true
	rec := f.post("Bearer "+tokenA.Reveal(), `{"computer":"vm-1","time_generated":"2026-11-22T09:59:58Z"}`)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("code = %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestBodyLimits(t *testing.T) {
	f := newFixture(t)
	f.h.opts.MaxBody = 64
	if rec := f.post("Bearer "+tokenA.Reveal(), `[`+strings.Repeat(`{"computer":"vm-1"},`, 10)+`]`); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: code %d, want 413", rec.Code)
	}
	f.h.opts.MaxBody = DefaultMaxBody
	f.h.opts.MaxBatch = 2
	rec := f.post("Bearer "+tokenA.Reveal(), `[{"computer":"a"},{"computer":"b"},{"computer":"c"}]`)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "more than 2") {
		t.Errorf("oversized batch: %d %s", rec.Code, rec.Body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/heartbeats", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestNewRefusesBadTokens(t *testing.T) {
	tests := []struct {
		name   string
		tokens map[string]config.Secret
		want   string
	}{
		{"none", nil, "at least one sender token is required"},
		{"short", map[string]config.Secret{"a": "short"}, "sender a: token is shorter than 16 characters"},
		{"shared", map[string]config.Secret{"a": tokenA, "b": tokenA}, "senders a and b share a token"},
		{"bad name", map[string]config.Secret{"a/b": tokenA}, `sender name "a/b" must be`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{Tokens: tt.tokens, Sink: &sink{}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), tokenA.Reveal()) {
				t.Errorf("the error shows a token: %v", err)
			}
		})
	}
}

// FuzzDecode: any body is either refused with an error or gives
// heartbeats that the contract accepts once given a state.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"computer":"vm-0042","time_generated":"2026-11-22T09:59:58Z"}`))
	f.Add([]byte(`[{"computer":"h","kind":"host","TimeGenerated":"2026-11-22T09:59:58Z","site":"a"},{"computer":"x"}]`))
	f.Add([]byte(`[1,null,"x",{}]`))
	f.Add([]byte(`{"computer":"\u00e9\ud800","time_generated":"2026-11-22T09:59:58+14:00"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		obs, err := Decode(body, "heartbeat/fuzz", t0, 1000)
		if err != nil {
			if obs != nil {
				t.Fatal("an error with observations")
			}
			return
		}
		if len(obs) == 0 {
			t.Fatal("no error and no heartbeats")
		}
		for _, o := range obs {
			if o.State != "" {
				t.Fatalf("a heartbeat with a state: %+v", o)
			}
			if o.Kind == model.KindVM {
				o.State = model.StateUnknown
			}
			if err := o.Validate(t0); err != nil {
				t.Fatalf("accepted an invalid heartbeat %+v: %v", o, err)
			}
		}
	})
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// counter reads a counter of reg whose only label has the value label.
func counter(reg *prometheus.Registry, name, label string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
