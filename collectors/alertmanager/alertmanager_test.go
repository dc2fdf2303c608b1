package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
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

const testToken = config.Secret("am-token-0123456789abcdef")

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

func newHandler(t *testing.T, token config.Secret) (*Handler, *sink, *bytes.Buffer) {
	t.Helper()
	m, err := LoadMapping(filepath.Join("testdata", "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	logs := &bytes.Buffer{}
	h, err := New(Options{Mapping: m, Token: token, Sink: s, Clock: clock.NewFake(t0), Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), testToken.Reveal()) {
			t.Errorf("the token appears in the logs:\n%s", logs)
		}
	})
	return h, s, logs
}

func post(h http.Handler, auth string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/alertmanager", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func render(obs []model.Observation) string {
	var b strings.Builder
	for _, o := range obs {
		attrs, _ := json.Marshal(o.Attrs)
		fmt.Fprintf(&b, "%s %s %s host=%q site=%q state=%q event=%q attrs=%s gen=%s\n", o.Source, o.Kind, o.ID, o.Host, o.Site,
			o.State, o.Event, attrs, o.TimeGenerated.Format(time.RFC3339Nano))
	}
	return b.String()
}

// TestPayloads posts recorded-shape webhooks and compares the answer and
// the observations with golden files.
func TestPayloads(t *testing.T) {
	for _, name := range []string{"firing", "resolved"} {
		t.Run(name, func(t *testing.T) {
			h, s, _ := newHandler(t, "")
			body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			rec := post(h, "", body)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("code = %d: %s", rec.Code, rec.Body)
			}
			golden(t, name, fmt.Sprintf("HTTP %d\n%s-- observations\n%s", rec.Code, rec.Body, render(s.obs)))
		})
	}
}

func TestBadPayloads(t *testing.T) {
	alert := `{"status":"firing","labels":{"alertname":"VMCrashed","vm":"vm-1"},"startsAt":"2026-11-22T09:59:00Z"}`
	tests := []struct {
		name, body, want string
	}{
		{"not json", `alerts=1`, "body is not a JSON object"},
		{"truncated", `{"version":"4","alerts":[`, "malformed JSON"},
		{"version 3", `{"version":"3","alerts":[` + alert + `]}`, `version "3" is not supported`},
		{"no version", `{"alerts":[` + alert + `]}`, `version "" is not supported`},
		{"version as number", `{"version":4,"alerts":[]}`, "version must be a string, got number"},
		{"no alerts", `{"version":"4"}`, "alerts is required"},
		{"alerts not an array", `{"version":"4","alerts":{}}`, "alerts must be an array, got object"},
		{"alert not an object", `{"version":"4","alerts":[` + alert + `,"x"]}`, "alerts[1] must be an object, got string"},
		{"bad status", `{"version":"4","alerts":[{"status":"pending","labels":{"alertname":"A"},"startsAt":"2026-11-22T09:59:00Z"}]}`, `alerts[0].status "pending" is not firing or resolved`},
		{"no alertname", `{"version":"4","alerts":[{"status":"firing","labels":{"vm":"x"},"startsAt":"2026-11-22T09:59:00Z"}]}`, "alerts[0].labels.alertname is required"},
		{"labels of numbers", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":1}}]}`, "alerts[0].labels must map names to strings, got a number value"},
		{"bad startsAt", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"soon"}]}`, `alerts[0].startsAt "soon" is not an RFC 3339 time`},
		{"bad endsAt", `{"version":"4","alerts":[{"status":"resolved","labels":{"alertname":"A"},"startsAt":"2026-11-22T09:59:00Z","endsAt":"2026-13-01T00:00:00Z"}]}`, `alerts[0].endsAt "2026-13-01T00:00:00Z" is not an RFC 3339 time`},
		{"no startsAt", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`, "alerts[0].startsAt is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s, _ := newHandler(t, "")
			rec := post(h, "", []byte(tt.body))
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("code = %d, want 400: %s", rec.Code, rec.Body)
			}
			var p problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || !strings.Contains(p.Error, tt.want) {
				t.Fatalf("error = %q, want it to contain %q", p.Error, tt.want)
			}
			if len(s.obs) != 0 {
				t.Errorf("a refused payload changed something: %s", render(s.obs))
			}
		})
	}
}

func TestToken(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "resolved.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		auth string
		code int
	}{
		{"missing", "", 401},
		{"wrong", "Bearer am-token-0123456789abcdee", 401},
		{"basic", "Basic YTpi", 401},
		{"right", "Bearer " + testToken.Reveal(), 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s, _ := newHandler(t, testToken)
			rec := post(h, tt.auth, body)
			if rec.Code != tt.code {
				t.Fatalf("code = %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code == 401 && len(s.obs) != 0 {
				t.Errorf("an unauthorized webhook changed something")
			}
		})
	}
}

func TestStoreDownIs503(t *testing.T) {
	h, s, _ := newHandler(t, "")
	s.fail = true
	body, _ := os.ReadFile(filepath.Join("testdata", "firing.json"))
	if rec := post(h, "", body); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("code = %d, want 503 so that Alertmanager retries", rec.Code)
	}
}

func TestMappingErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown key", "vm_label: [vm]\n", "line 1: field vm_label not found"},
		{"no kind", "alerts:\n  - alertname: A\n    firing: {state: down}\n", "line 2: alerts[0] (A): kind: is required"},
		{"bad kind", "alerts:\n  - alertname: A\n    kind: rack\n", `kind: "rack" is not vm, host or service`},
		{"vm without state", "alerts:\n  - alertname: A\n    kind: vm\n    firing: {state: crashed}\n", "alerts[0] (A): resolved.state: is required for kind vm"},
		{"state wrong for kind", "alerts:\n  - alertname: A\n    kind: service\n    firing: {state: crashed}\n    resolved: {state: up}\n", `firing: state "crashed" is not valid for kind service`},
		{"fact of the wrong type", "alerts:\n  - alertname: A\n    kind: host\n    firing: {attrs: {ecc_uncorrected: lots}}\n", "firing: attrs.ecc_uncorrected must be a number, got string"},
		{"twice", "alerts:\n  - {alertname: A, kind: host}\n  - {alertname: A, kind: host}\n", "line 3: alerts[1] (A): alertname: is mapped twice"},
		{"service on a vm", "alerts:\n  - {alertname: A, kind: vm, service: x, firing: {state: crashed}, resolved: {state: running}}\n", "service: is only for kind service"},
		{"empty labels", "vm_labels: []\n", "vm_labels, host_labels and site_labels must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMapping([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if m, err := ParseMapping(nil); err != nil || len(m.VMLabels) != 1 {
		t.Errorf("an empty mapping file: %+v, %v; want the defaults", m, err)
	}
}

// FuzzDecodePayload: any body is refused with an error or maps into
// observations the contract accepts; nothing panics.
func FuzzDecodePayload(f *testing.F) {
	for _, name := range []string{"firing.json", "resolved.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"VMCrashed","vm":"a b"},"startsAt":"2026-11-22T09:59:00Z"}]}`))
	f.Add([]byte(`{"version":"4","alerts":null}`))
	m, err := LoadMapping(filepath.Join("testdata", "mapping.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	h, err := New(Options{Mapping: m, Sink: &sink{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePayload(body)
		if err != nil {
			return
		}
		obs, skipped := h.Observations(p, t0)
		if len(obs)+len(skipped) != len(p.Alerts) {
			t.Fatalf("%d alerts gave %d observations and %d skipped", len(p.Alerts), len(obs), len(skipped))
		}
		for _, o := range obs {
			if err := o.Validate(t0); err != nil {
				t.Fatalf("an invalid observation was produced: %v", err)
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
