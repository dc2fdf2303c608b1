package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/httpapi"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// t0 is the fake clock's time when a test starts.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// maxBody is the body limit of the API under test.
const maxBody = 4096

type env struct {
	st  *store.Store
	reg *prometheus.Registry
	clk *clock.Fake
	srv *httptest.Server
}

// newEnv serves the API on a real store; change adjusts the options.
func newEnv(t *testing.T, change func(*httpapi.Options)) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	st := storetest.New(t, store.Options{Clock: clk})
	reg := prometheus.NewRegistry()
	opts := httpapi.Options{
		Ingester: st, Reader: st, Ready: st,
		NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		Gatherer: reg, Registerer: reg, MaxBody: maxBody, Clock: clk,
	}
	if change != nil {
		change(&opts)
	}
	srv := httptest.NewServer(httpapi.New(opts))
	t.Cleanup(srv.Close)
	return &env{st: st, reg: reg, clk: clk, srv: srv}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, method, path, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: res.StatusCode, header: res.Header, body: b}
}

func (e *env) get(t *testing.T, path string) response {
	t.Helper()
	return e.do(t, http.MethodGet, path, "", "")
}

func (e *env) post(t *testing.T, contentType, body string) response {
	t.Helper()
	return e.do(t, http.MethodPost, "/v1/observations", contentType, body)
}

// errorOf decodes an error body.
func errorOf(t *testing.T, r response) string {
	t.Helper()
	var p struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("error body is not JSON: %v\n%s", err, r.body)
	}
	return p.Error
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// obsLine renders one observation generated ago before t0.
func obsLine(source, kind, id, state string, ago time.Duration) string {
	return fmt.Sprintf(`{"source":%q,"kind":%q,"id":%q,"host":"host-7","site":"pod-a","state":%q,"time_generated":%q}`,
		source, kind, id, state, t0.Add(-ago).Format(time.RFC3339))
}

// queued drains the observation stream and returns what POST put there.
func (e *env) queued(t *testing.T) []model.Observation {
	t.Helper()
	ds, err := e.st.ReadObservations(context.Background(), "test", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []model.Observation
	for _, d := range ds {
		out = append(out, d.Observations...)
	}
	return out
}

// assertNothingQueued proves a refused request left the stream untouched.
func (e *env) assertNothingQueued(t *testing.T) {
	t.Helper()
	pending, lag, err := e.st.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pending != 0 || lag != 0 {
		t.Errorf("stream holds %d pending and %d new entries after a refusal; nothing may be applied", pending, lag)
	}
}

func TestPostObservationsAccepted(t *testing.T) {
	a := obsLine("libvirt", "vm", "vm-1", "crashed", time.Minute)
	b := obsLine("libvirt", "vm", "vm-2", "running", time.Minute)
	c := obsLine("prometheus", "host", "host-7", "up", 0)
	withStored := `{"source":"libvirt","kind":"vm","id":"vm-9","state":"running","time_generated":"2026-11-22T09:59:00Z","time_received":"2000-01-01T00:00:00Z","time_stored":"2000-01-01T00:00:00Z"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		wantIDs     []string
	}{
		{name: "one object", contentType: "application/json", body: a, wantIDs: []string{"vm-1"}},
		{name: "array", contentType: "application/json; charset=utf-8", body: "[" + a + "," + b + "," + c + "]", wantIDs: []string{"vm-1", "vm-2", "host-7"}},
		{name: "JSON lines", contentType: "application/x-ndjson", body: a + "\n" + b + "\n\n" + c + "\n", wantIDs: []string{"vm-1", "vm-2", "host-7"}},
		{name: "JSON lines with CRLF as text", contentType: "text/plain", body: a + "\r\n" + b + "\r\n", wantIDs: []string{"vm-1", "vm-2"}},
		{name: "jsonl", contentType: "application/jsonl", body: a, wantIDs: []string{"vm-1"}},
		{name: "no content type", body: a, wantIDs: []string{"vm-1"}},
		{name: "the receiver's stamps replace the sender's", contentType: "application/json", body: withStored, wantIDs: []string{"vm-9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.clk.Advance(3 * time.Second)
			r := e.post(t, tc.contentType, tc.body)
			if r.code != http.StatusAccepted {
				t.Fatalf("status %d, want 202: %s", r.code, r.body)
			}
			if got, want := string(r.body), fmt.Sprintf("{\n  \"accepted\": %d\n}\n", len(tc.wantIDs)); got != want {
				t.Errorf("body %q, want %q", got, want)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			obs := e.queued(t)
			var ids []string
			for _, o := range obs {
				ids = append(ids, o.ID)
				if !o.TimeReceived.Equal(e.clk.Now()) {
					t.Errorf("%s: time_received %v, want the receiver's clock %v", o.ID, o.TimeReceived, e.clk.Now())
				}
				if !o.TimeStored.IsZero() {
					t.Errorf("%s: time_stored %v before it was stored", o.ID, o.TimeStored)
				}
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) {
				t.Errorf("queued %v, want %v", ids, tc.wantIDs)
			}
		})
	}
}

func TestPostObservationsRefused(t *testing.T) {
	good := obsLine("libvirt", "vm", "vm-1", "crashed", time.Minute)
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		wantCode    int
		wantError   string // the whole "error" message
		golden      string // the whole body, when set
	}{
		{name: "html", contentType: "text/html", body: good, wantCode: http.StatusUnsupportedMediaType,
			wantError: `content type "text/html" is not accepted; send application/json or application/x-ndjson`},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: "a=b", wantCode: http.StatusUnsupportedMediaType,
			wantError: `content type "application/x-www-form-urlencoded" is not accepted; send application/json or application/x-ndjson`},
		{name: "unreadable content type", contentType: "application/json; ;;", body: good, wantCode: http.StatusUnsupportedMediaType,
			wantError: `content type "application/json; ;;" is not readable`},
		{name: "too large", contentType: "application/x-ndjson", body: strings.Repeat(good+"\n", maxBody/len(good)+1), wantCode: http.StatusRequestEntityTooLarge,
			wantError: "body is larger than 4096 bytes; split it into smaller batches"},
		{name: "empty", contentType: "application/json", body: "", wantCode: http.StatusBadRequest,
			wantError: "no observations in body; nothing was applied"},
		{name: "empty array", contentType: "application/json", body: "[]", wantCode: http.StatusBadRequest,
			wantError: "no observations in body; nothing was applied"},
		{name: "broken array", contentType: "application/json", body: "[" + good, wantCode: http.StatusBadRequest,
			wantError: "body is not a JSON array of objects: malformed JSON at byte 134: unexpected end of JSON input; nothing was applied"},
		{
			name: "JSON lines with bad records refused whole", contentType: "application/x-ndjson",
			body: good + "\n" +
				obsLine("libvirt", "vm", "vm-2", "exploded", time.Minute) + "\n" +
				"\n" +
				`{"source":"azure","kind":"vm","id":"vm-3","state":"running","time_generated":"2026-11-19T10:00:00Z"}` + "\n" +
				obsLine("libvirt", "vm", "vm-4", "running", 0) + "\n" +
				`{"source":"azure","kind":"vm","id":"vm-5","colour":"red",` + "\n",
			wantCode: http.StatusBadRequest, golden: "refused_lines.golden",
		},
		{
			name: "array with bad records refused whole", contentType: "application/json",
			body:     "[" + good + `,{"kind":"vm","id":"vm 2","state":"running","time_generated":"2026-11-22T10:00:00Z"},` + good + `,42]`,
			wantCode: http.StatusBadRequest, golden: "refused_array.golden",
		},
		{name: "GET is not allowed", method: http.MethodGet, wantCode: http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			r := e.do(t, method, "/v1/observations", tc.contentType, tc.body)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tc.wantCode, r.body)
			}
			if tc.wantError != "" {
				if got := errorOf(t, r); got != tc.wantError {
					t.Errorf("error:\n got %q\nwant %q", got, tc.wantError)
				}
			}
			if tc.golden != "" {
				golden(t, tc.golden, r.body)
			}
			e.assertNothingQueued(t)
		})
	}
}

// failingIngester stands for a store that cannot take the batch.
type failingIngester struct{ calls int }

func (f *failingIngester) AppendObservations(context.Context, []model.Observation) error {
	f.calls++
	return errors.New("dial tcp 10.0.0.5:6379: connection refused")
}

func TestPostObservationsStoreUnavailable(t *testing.T) {
	ing := &failingIngester{}
	e := newEnv(t, func(o *httpapi.Options) { o.Ingester = ing })
	r := e.post(t, "application/x-ndjson", obsLine("libvirt", "vm", "vm-1", "crashed", 0)+"\n"+obsLine("azure", "vm", "vm-2", "running", 0))
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", r.code, r.body)
	}
	if ra := r.header.Get("Retry-After"); ra != "5" {
		t.Errorf("Retry-After %q, want 5", ra)
	}
	if got, want := errorOf(t, r), "the state store is unavailable; nothing was applied, retry later"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if strings.Contains(string(r.body), "10.0.0.5") {
		t.Errorf("the store's error leaks to the client: %s", r.body)
	}
	if ing.calls != 1 {
		t.Errorf("ingester called %d times, want 1", ing.calls)
	}
	assertCounters(t, e.reg, []string{
		`vmtriage_observations_refused_total{reason="unavailable",source="azure"} 1`,
		`vmtriage_observations_refused_total{reason="unavailable",source="libvirt"} 1`,
	}, "vmtriage_observations_refused_total", "vmtriage_observations_accepted_total")
}

func TestGetVM(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	obs := []model.Observation{
		{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-7", Site: "pod-a", State: model.StateRunning, TimeGenerated: t0.Add(-10 * time.Minute), TimeReceived: t0.Add(-10*time.Minute + time.Second)},
		{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-7", Site: "pod-a", State: model.StateCrashed,
			Attrs: map[string]any{"crash_reason": "panicked"}, TimeGenerated: t0.Add(-time.Minute), TimeReceived: t0.Add(-time.Minute + 2*time.Second)},
	}
	if err := e.st.Apply(ctx, obs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		path      string
		wantCode  int
		golden    string
		wantError string
	}{
		{name: "known", path: "/v1/vms/vm-1", wantCode: http.StatusOK, golden: "vm.golden"},
		{name: "unknown", path: "/v1/vms/vm-404", wantCode: http.StatusNotFound, wantError: `vm "vm-404" not found`},
		{name: "unknown, with characters to escape", path: "/v1/vms/%3Cb%3E", wantCode: http.StatusNotFound, golden: "vm_not_found_escaped.golden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get(t, tc.path)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tc.wantCode, r.body)
			}
			if tc.golden != "" {
				golden(t, tc.golden, r.body)
			}
			if tc.wantError != "" {
				if got := errorOf(t, r); got != tc.wantError {
					t.Errorf("error %q, want %q", got, tc.wantError)
				}
			}
		})
	}
}

func TestGetHost(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	// Three collection periods of host-7, each with facts and the state
	// the rules derived, and a VM and a service seen on it.
	var obs []model.Observation
	for i, ecc := range []float64{0, 0, 2} {
		at := t0.Add(time.Duration(i-3)*time.Minute + 10*time.Second)
		obs = append(obs, model.Observation{Source: "prometheus", Kind: model.KindHost, ID: "host-7", Site: "pod-a",
			Attrs: map[string]any{"ecc_uncorrected": ecc, "nic_up": true}, TimeGenerated: at, TimeReceived: at.Add(time.Second)})
	}
	obs = append(obs,
		model.Observation{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-7", Site: "pod-a", State: model.StateRunning, TimeGenerated: t0.Add(-time.Minute)},
		model.Observation{Source: "libvirt", Kind: model.KindService, ID: "libvirtd", Host: "host-7", State: model.StateUp, TimeGenerated: t0.Add(-time.Minute)},
	)
	if err := e.st.Apply(ctx, obs); err != nil {
		t.Fatal(err)
	}
	for i, p := range []model.HostPeriod{
		{Start: t0.Add(-3 * time.Minute), State: model.HostHealthy},
		{Start: t0.Add(-2 * time.Minute), State: model.HostHealthy},
		{Start: t0.Add(-1 * time.Minute), State: model.HostFailed, Reasons: []string{"ecc_uncorrected"}},
	} {
		if err := e.st.SaveHostPeriod(ctx, "host-7", p); err != nil {
			t.Fatalf("period %d: %v", i, err)
		}
	}
	tests := []struct {
		name        string
		path        string
		wantCode    int
		wantPeriods int
		golden      string
		wantError   string
	}{
		{name: "two periods", path: "/v1/hosts/host-7?periods=2", wantCode: http.StatusOK, wantPeriods: 2, golden: "host_periods_2.golden"},
		{name: "default is ten, three exist", path: "/v1/hosts/host-7", wantCode: http.StatusOK, wantPeriods: 3},
		{name: "none", path: "/v1/hosts/host-7?periods=0", wantCode: http.StatusOK, wantPeriods: 0},
		{name: "the most", path: "/v1/hosts/host-7?periods=100", wantCode: http.StatusOK, wantPeriods: 3},
		{name: "not a number", path: "/v1/hosts/host-7?periods=all", wantCode: http.StatusBadRequest, wantError: "periods must be a number from 0 to 100"},
		{name: "negative", path: "/v1/hosts/host-7?periods=-1", wantCode: http.StatusBadRequest, wantError: "periods must be a number from 0 to 100"},
		{name: "too many", path: "/v1/hosts/host-7?periods=101", wantCode: http.StatusBadRequest, wantError: "periods must be a number from 0 to 100"},
		{name: "unknown host", path: "/v1/hosts/host-404", wantCode: http.StatusNotFound, wantError: `host "host-404" not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get(t, tc.path)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tc.wantCode, r.body)
			}
			if tc.wantError != "" {
				if got := errorOf(t, r); got != tc.wantError {
					t.Errorf("error %q, want %q", got, tc.wantError)
				}
				return
			}
			if tc.golden != "" {
				golden(t, tc.golden, r.body)
			}
			var h model.HostStatus
			if err := json.Unmarshal(r.body, &h); err != nil {
				t.Fatal(err)
			}
			if len(h.Periods) != tc.wantPeriods {
				t.Fatalf("%d periods, want %d", len(h.Periods), tc.wantPeriods)
			}
			for i := 1; i < len(h.Periods); i++ {
				if !h.Periods[i].Start.Before(h.Periods[i-1].Start) {
					t.Errorf("periods not newest first: %v then %v", h.Periods[i-1].Start, h.Periods[i].Start)
				}
			}
		})
	}
}

func TestGetIncidents(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, inc := range []model.Incident{
		{ID: "inc-1", Fingerprint: "fp1", Rule: "vm-guest-crash", Status: model.StatusResolved, Severity: model.SeverityMedium,
			Cause: "guest-crash", Trigger: model.TriggerVM, Action: model.ActionRestartVM, Approval: model.ApprovalNotRequired,
			Kind: model.KindVM, Subject: "vm-1", Host: "host-1", Site: "pod-a", VMs: []string{"vm-1"},
			StartedAt: t0.Add(-3 * time.Hour), ResolvedAt: t0.Add(-2 * time.Hour), Level: 1},
		{ID: "inc-2", Fingerprint: "fp2", Rule: "vm-crash-on-failing-host", Status: model.StatusFiring, Severity: model.SeverityCritical,
			Cause: "host-hardware-fault", Trigger: model.TriggerPlatform, Action: model.ActionMigrateHost, Approval: model.ApprovalPending,
			Kind: model.KindHost, Subject: "host-7", Host: "host-7", Site: "pod-a", VMs: []string{"vm-42", "vm-43"},
			StartedAt: t0.Add(-2 * time.Hour), Level: 1, Ticket: "OPS-123", Runbooks: []string{"https://kb.example/host-hardware-fault"}},
		{ID: "inc-3", Fingerprint: "fp3", Rule: "vm-guest-crash", Status: model.StatusPending, Severity: model.SeverityMedium,
			Cause: "guest-crash", Trigger: model.TriggerVM, Action: model.ActionRestartVM, Approval: model.ApprovalNotRequired,
			Kind: model.KindVM, Subject: "vm-9", Host: "host-9", Site: "pod-b", VMs: []string{"vm-9"},
			StartedAt: t0.Add(-time.Hour)},
	} {
		if err := e.st.SaveIncident(ctx, &inc); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		query     string
		wantIDs   []string
		wantError string
	}{
		{name: "all, newest first", query: "", wantIDs: []string{"inc-3", "inc-2", "inc-1"}},
		{name: "firing", query: "?status=firing", wantIDs: []string{"inc-2"}},
		{name: "pending", query: "?status=pending", wantIDs: []string{"inc-3"}},
		{name: "resolved", query: "?status=resolved", wantIDs: []string{"inc-1"}},
		{name: "site", query: "?site=pod-a", wantIDs: []string{"inc-2", "inc-1"}},
		{name: "severity", query: "?severity=medium", wantIDs: []string{"inc-3", "inc-1"}},
		{name: "host", query: "?host=host-7", wantIDs: []string{"inc-2"}},
		{name: "vm on a host incident", query: "?vm=vm-43", wantIDs: []string{"inc-2"}},
		{name: "limit", query: "?limit=2", wantIDs: []string{"inc-3", "inc-2"}},
		{name: "together", query: "?site=pod-a&severity=medium&status=resolved&vm=vm-1&host=host-1&limit=5", wantIDs: []string{"inc-1"}},
		{name: "nothing matches: an empty list, not null", query: "?site=pod-z", wantIDs: []string{}},
		{name: "bad status", query: "?status=open", wantError: `status "open" is not pending, firing or resolved`},
		{name: "bad severity", query: "?severity=urgent", wantError: `severity "urgent" is not critical, high, medium or low`},
		{name: "limit not a number", query: "?limit=ten", wantError: "limit must be a number from 1 to 10000"},
		{name: "limit zero", query: "?limit=0", wantError: "limit must be a number from 1 to 10000"},
		{name: "limit too big", query: "?limit=10001", wantError: "limit must be a number from 1 to 10000"},
		{name: "misspelt filter", query: "?state=firing", wantError: `unknown parameter "state"; use status, site, severity, host, vm, limit`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get(t, "/v1/incidents"+tc.query)
			if tc.wantError != "" {
				if r.code != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", r.code, r.body)
				}
				if got := errorOf(t, r); got != tc.wantError {
					t.Errorf("error %q, want %q", got, tc.wantError)
				}
				return
			}
			if r.code != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", r.code, r.body)
			}
			var incs []model.Incident
			if err := json.Unmarshal(r.body, &incs); err != nil {
				t.Fatal(err)
			}
			if incs == nil {
				t.Fatalf("body %s is not a list", r.body)
			}
			ids := []string{}
			for _, inc := range incs {
				ids = append(ids, inc.ID)
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) {
				t.Errorf("ids %v, want %v", ids, tc.wantIDs)
			}
		})
	}
	t.Run("body", func(t *testing.T) {
		golden(t, "incidents_firing.golden", e.get(t, "/v1/incidents?status=firing").body)
	})
}

// brokenReader stands for a store that fails every read.
type brokenReader struct{}

var errBroken = errors.New("read tcp: i/o timeout")

func (brokenReader) VM(context.Context, string) (model.VMStatus, error) {
	return model.VMStatus{}, errBroken
}
func (brokenReader) Host(context.Context, string, int) (model.HostStatus, error) {
	return model.HostStatus{}, errBroken
}
func (brokenReader) Incidents(context.Context, model.IncidentFilter) ([]model.Incident, error) {
	return nil, errBroken
}

func TestReadsWhenTheStoreFails(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) { o.Reader = brokenReader{} })
	for _, path := range []string{"/v1/vms/vm-1", "/v1/hosts/host-1", "/v1/incidents"} {
		t.Run(path, func(t *testing.T) {
			r := e.get(t, path)
			if r.code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", r.code, r.body)
			}
			if got, want := errorOf(t, r), "the state store is unavailable; retry later"; got != want {
				t.Errorf("error %q, want %q", got, want)
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	// A store on a port where no Redis listens.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { down.Close() })
	unreachable := store.New(store.Options{Client: down})

	tests := []struct {
		name     string
		ready    httpapi.Pinger
		path     string
		wantCode int
		wantBody string
	}{
		{name: "alive", path: "/healthz", wantCode: http.StatusOK, wantBody: `{"status":"ok"}`},
		{name: "alive without redis", ready: unreachable, path: "/healthz", wantCode: http.StatusOK, wantBody: `{"status":"ok"}`},
		{name: "ready", path: "/readyz", wantCode: http.StatusOK, wantBody: `{"status":"ready"}`},
		{name: "not ready without redis", ready: unreachable, path: "/readyz", wantCode: http.StatusServiceUnavailable, wantBody: `{"status":"redis unreachable"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *httpapi.Options) {
				if tc.ready != nil {
					o.Ready = tc.ready
				}
			})
			r := e.get(t, tc.path)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tc.wantCode, r.body)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, r.body); err != nil {
				t.Fatal(err)
			}
			if compact.String() != tc.wantBody {
				t.Errorf("body %s, want %s", compact.String(), tc.wantBody)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	steps := []struct {
		contentType, body string
		wantCode          int
	}{
		{"application/x-ndjson", obsLine("libvirt", "vm", "vm-1", "running", 0) + "\n" + obsLine("libvirt", "vm", "vm-2", "running", 0), http.StatusAccepted},
		{"application/json", obsLine("azure", "vm", "vm-3", "running", 0), http.StatusAccepted},
		// Two bad records (one from libvirt, one without a source) and a
		// good azure one: the batch is refused, the bad ones are counted.
		{"application/x-ndjson", obsLine("libvirt", "vm", "vm-4", "exploded", 0) + "\n{}\n" + obsLine("azure", "vm", "vm-5", "running", 0), http.StatusBadRequest},
		{"application/json", "[", http.StatusBadRequest},
		{"text/html", "<p>", http.StatusUnsupportedMediaType},
		{"application/json", strings.Repeat(" ", maxBody+1), http.StatusRequestEntityTooLarge},
	}
	for i, s := range steps {
		if r := e.post(t, s.contentType, s.body); r.code != s.wantCode {
			t.Fatalf("step %d: status %d, want %d: %s", i, r.code, s.wantCode, r.body)
		}
	}
	e.get(t, "/v1/vms/vm-404")

	assertCounters(t, e.reg, []string{
		`vmtriage_http_requests_total{code="202",route="POST /v1/observations"} 2`,
		`vmtriage_http_requests_total{code="400",route="POST /v1/observations"} 2`,
		`vmtriage_http_requests_total{code="404",route="GET /v1/vms/{id}"} 1`,
		`vmtriage_http_requests_total{code="413",route="POST /v1/observations"} 1`,
		`vmtriage_http_requests_total{code="415",route="POST /v1/observations"} 1`,
		`vmtriage_observations_accepted_total{source="azure"} 1`,
		`vmtriage_observations_accepted_total{source="libvirt"} 2`,
		`vmtriage_observations_refused_total{reason="content_type",source="unknown"} 1`,
		`vmtriage_observations_refused_total{reason="invalid",source="libvirt"} 1`,
		`vmtriage_observations_refused_total{reason="invalid",source="unknown"} 1`,
		`vmtriage_observations_refused_total{reason="malformed",source="unknown"} 1`,
		`vmtriage_observations_refused_total{reason="too_large",source="unknown"} 1`,
	}, "vmtriage_observations_accepted_total", "vmtriage_observations_refused_total", "vmtriage_http_requests_total")

	// And the same through the endpoint Prometheus scrapes.
	r := e.get(t, "/metrics")
	if r.code != http.StatusOK {
		t.Fatalf("/metrics status %d", r.code)
	}
	for _, line := range []string{
		`vmtriage_observations_accepted_total{source="libvirt"} 2`,
		`vmtriage_observations_refused_total{reason="invalid",source="libvirt"} 1`,
	} {
		if !strings.Contains(string(r.body), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

func TestExtraHandlers(t *testing.T) {
	e := newEnv(t, func(o *httpapi.Options) {
		o.Extra = map[string]http.Handler{"GET /hello": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hi")
		})}
	})
	if r := e.get(t, "/hello"); r.code != http.StatusOK || string(r.body) != "hi" {
		t.Errorf("extra handler: %d %q", r.code, r.body)
	}
	if r := e.get(t, "/nowhere"); r.code != http.StatusNotFound {
		t.Errorf("unknown path: status %d", r.code)
	}
}

// assertCounters compares every series of the named counters in g with
// want, each rendered as `name{label="value",...} count`.
func assertCounters(t *testing.T, g prometheus.Gatherer, want []string, names ...string) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			got = append(got, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(labels, ","), m.GetCounter().GetValue()))
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("counters:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}
