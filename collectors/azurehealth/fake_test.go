package azurehealth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
)

const (
	testTenant = "tenant-1"
	testClient = "client-1"
	testSecret = config.Secret("s3cr3t-Value-never-logged")
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fault is one scripted failure served instead of a page.
type fault struct {
	status     int
	retryAfter string
	body       string
}

// fakeAzure serves the token endpoint and availabilityStatuses listings
// from recorded-shape pages, with scripted failures per page.
type fakeAzure struct {
	t   testing.TB
	srv *httptest.Server

	mu          sync.Mutex
	pages       map[string]string  // "sub/token" ("" for the first page) → body
	faults      map[string][]fault // same key → failures served first, in order
	tokenFaults []fault
	expiresIn   int
	issued      int      // tokens issued
	valid       string   // the token the API accepts ("" = the latest issued)
	calls       []string // "sub/token status" per listing request
}

func newFakeAzure(t testing.TB) *fakeAzure {
	f := &fakeAzure{t: t, pages: map[string]string{}, faults: map[string][]fault{}, expiresIn: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.token)
	mux.HandleFunc("GET /subscriptions/{sub}/providers/Microsoft.ResourceHealth/availabilityStatuses", f.list)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAzure) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if len(f.tokenFaults) > 0 {
		ft := f.tokenFaults[0]
		f.tokenFaults = f.tokenFaults[1:]
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		w.WriteHeader(ft.status)
		fmt.Fprint(w, ft.body)
		return
	}
	if r.PathValue("tenant") != testTenant || r.Form.Get("grant_type") != "client_credentials" ||
		r.Form.Get("client_id") != testClient || r.Form.Get("client_secret") != testSecret.Reveal() ||
		r.Form.Get("scope") != f.srv.URL+"/.default" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
		return
	}
	f.issued++
	fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":%d,"ext_expires_in":%d,"access_token":"tok-%d"}`, f.expiresIn, f.expiresIn, f.issued)
}

func (f *fakeAzure) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.PathValue("sub") + "/" + r.URL.Query().Get("$skipToken")
	want := f.valid
	if want == "" {
		want = fmt.Sprintf("tok-%d", f.issued)
	}
	if r.Header.Get("Authorization") != "Bearer "+want || r.URL.Query().Get("api-version") != DefaultAPIVersion ||
		r.URL.Query().Get("$expand") != "recommendedactions" {
		f.calls = append(f.calls, key+" 401")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}}`)
		return
	}
	if fs := f.faults[key]; len(fs) > 0 {
		ft := fs[0]
		f.faults[key] = fs[1:]
		f.calls = append(f.calls, fmt.Sprintf("%s %d", key, ft.status))
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		w.WriteHeader(ft.status)
		fmt.Fprint(w, ft.body)
		return
	}
	body, ok := f.pages[key]
	if !ok {
		f.calls = append(f.calls, key+" 404")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"SubscriptionNotFound","message":"The subscription could not be found."}}`)
		return
	}
	f.calls = append(f.calls, key+" 200")
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, strings.ReplaceAll(body, "{{base}}", f.srv.URL))
}

func (f *fakeAzure) setPage(key, body string) {
	f.mu.Lock()
	f.pages[key] = body
	f.mu.Unlock()
}

func (f *fakeAzure) addFaults(key string, fs ...fault) {
	f.mu.Lock()
	f.faults[key] = append(f.faults[key], fs...)
	f.mu.Unlock()
}

func (f *fakeAzure) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sink records what the collector sends; it fails while failing is set.
type sink struct {
	mu      sync.Mutex
	batches [][]model.Observation
	failing bool
}

func (s *sink) AppendObservations(_ context.Context, obs []model.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return fmt.Errorf("redis is down")
	}
	s.batches = append(s.batches, append([]model.Observation(nil), obs...))
	return nil
}

func (s *sink) take() []model.Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []model.Observation
	for _, b := range s.batches {
		out = append(out, b...)
	}
	s.batches = nil
	return out
}

// harness is a collector against a fakeAzure with a fake clock whose
// waits advance the clock and are recorded.
type harness struct {
	az    *fakeAzure
	c     *Collector
	clk   *clock.Fake
	sink  *sink
	reg   *prometheus.Registry
	logs  *bytes.Buffer
	mu    sync.Mutex
	waits []time.Duration
}

func newHarness(t testing.TB, tweak func(*Options)) *harness {
	t.Helper()
	h := &harness{az: newFakeAzure(t), clk: clock.NewFake(t0), sink: &sink{}, reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	opts := Options{
		Subscriptions: []string{"sub-a"},
		TenantID:      testTenant, ClientID: testClient, ClientSecret: testSecret,
		Endpoint: h.az.srv.URL, LoginEndpoint: h.az.srv.URL,
		Sink: h.sink, Clock: h.clk, Registerer: h.reg,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Wait: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.waits = append(h.waits, d)
			h.mu.Unlock()
			h.clk.Advance(d)
			return ctx.Err()
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	t.Cleanup(func() {
		if strings.Contains(h.logs.String(), testSecret.Reveal()) {
			t.Errorf("the client secret appears in the logs:\n%s", h.logs)
		}
	})
	return h
}

func (h *harness) takeWaits() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.waits
	h.waits = nil
	return w
}

func (h *harness) counter(name string, labels ...string) float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// summary renders observations one per line for comparison.
func summary(obs []model.Observation) string {
	obs = slices.Clone(obs)
	slices.SortStableFunc(obs, func(a, b model.Observation) int { return strings.Compare(a.ID, b.ID) })
	var b strings.Builder
	for _, o := range obs {
		attrs, _ := json.Marshal(o.Attrs)
		if o.State == "" {
			attrs = nil
		}
		fmt.Fprintf(&b, "%s %s %s site=%s state=%s event=%s gen=%s %s\n", o.Source, o.Kind, o.ID, o.Site, o.State, o.Event,
			o.TimeGenerated.Format(time.RFC3339), attrs)
	}
	return b.String()
}
