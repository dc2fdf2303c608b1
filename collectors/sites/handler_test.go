package sites

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

const testToken = "site-registration-token-0123456789"

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// serve builds the handler on a real store and returns a mux with its
// routes, the store and the log it writes.
func serve(t *testing.T) (http.Handler, *store.Store, *bytes.Buffer) {
	t.Helper()
	st := storetest.New(t, store.Options{Clock: clock.NewFake(t0)})
	var logs bytes.Buffer
	h, err := NewHandler(HandlerOptions{Token: config.Secret(testToken), Book: st, Clock: clock.NewFake(t0),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, r := range h.Routes() {
		mux.Handle(p, r)
	}
	return mux, st, &logs
}

func do(t *testing.T, h http.Handler, method, path, auth, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const goodBody = `{"site":"pod-a","endpoints":[{"kind":"observations","url":"https://c.pod-a.example/v1/observations"},{"kind":"prometheus","url":"https://p.pod-a.example"}]}`

func TestRegisterAuth(t *testing.T) {
	tests := []struct {
		name, auth, body string
		code             int
	}{
		{"no token", "", goodBody, http.StatusUnauthorized},
		{"wrong token", "Bearer not-the-token-at-all-000000", goodBody, http.StatusUnauthorized},
		{"not a bearer", "Basic " + testToken, goodBody, http.StatusUnauthorized},
		{"token in the header", "Bearer " + testToken, goodBody, http.StatusOK},
		{"token in the body", "", strings.Replace(goodBody, `{"site"`, `{"token":"`+testToken+`","site"`, 1), http.StatusOK},
		{"wrong token in the body", "", strings.Replace(goodBody, `{"site"`, `{"token":"nope","site"`, 1), http.StatusUnauthorized},
		// A stranger learns nothing about the body's shape.
		{"bad body without a token", "", `{"nonsense":1}`, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, st, logs := serve(t)
			rec := do(t, h, http.MethodPost, "/v1/sites", tt.auth, tt.body)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			regs, err := st.RegisteredSites(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if registered := len(regs) == 1; registered != (tt.code == http.StatusOK) {
				t.Fatalf("registered %v after status %d", regs, rec.Code)
			}
			if strings.Contains(rec.Body.String()+logs.String(), testToken) {
				t.Fatal("the registration token appears in the answer or the log")
			}
			if tt.code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestRegisterRefusesBadInput(t *testing.T) {
	auth := "Bearer " + testToken
	tests := []struct {
		name, body string
		fields     []string
		error      string
	}{
		{name: "malformed", body: `{"site":`, error: "malformed JSON"},
		{name: "plain http", body: `{"site":"pod-a","endpoints":[{"kind":"prometheus","url":"http://p.example"}]}`,
			fields: []string{"endpoints[0].url"}},
		{name: "bad site and kind", body: `{"site":"a b","endpoints":[{"kind":"ssh","url":"https://x.example"}]}`,
			fields: []string{"site", "endpoints[0].kind"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, st, _ := serve(t)
			rec := do(t, h, http.MethodPost, "/v1/sites", auth, tt.body)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
			}
			var p problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.Error, "nothing was registered") || !strings.Contains(p.Error, tt.error) {
				t.Errorf("error %q", p.Error)
			}
			var fields []string
			for _, e := range p.Errors {
				fields = append(fields, e.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields %v, want %v", fields, tt.fields)
			}
			if regs, _ := st.RegisteredSites(context.Background()); len(regs) != 0 {
				t.Fatalf("registered %v", regs)
			}
		})
	}
}

func TestListAndUnregister(t *testing.T) {
	ctx := context.Background()
	h, st, _ := serve(t)
	auth := "Bearer " + testToken
	if rec := do(t, h, http.MethodPost, "/v1/sites", auth, goodBody); rec.Code != http.StatusOK {
		t.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, http.MethodPost, "/v1/sites", auth, `{"site":"pod-b","endpoints":[{"kind":"prometheus","url":"https://p.pod-b.example"}]}`); rec.Code != http.StatusOK {
		t.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	obsID := "observations https://c.pod-a.example/v1/observations"
	promID := "prometheus https://p.pod-a.example"
	for _, s := range []store.EndpointStatus{
		{Site: "pod-a", Endpoint: obsID, LastPoll: t0, LastSuccess: t0},
		{Site: "pod-a", Endpoint: promID, LastPoll: t0, LastSuccess: t0.Add(-time.Hour), LastError: "status 503", Failures: 1},
		{Site: "pod-b", Endpoint: "prometheus https://p.pod-b.example", LastPoll: t0, LastError: "x509: certificate expired", Failures: 3},
	} {
		if err := st.SaveEndpointStatus(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	rec := do(t, h, http.MethodGet, "/v1/sites", "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Sites []SiteView `json:"sites"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	type row struct{ site, state, endpoints string }
	var got []row
	for _, s := range out.Sites {
		var eps []string
		for _, e := range s.Endpoints {
			eps = append(eps, e.Kind+"="+e.Status)
		}
		got = append(got, row{s.Site, s.State, strings.Join(eps, ",")})
	}
	want := []row{{"pod-a", "up", "observations=ok,prometheus=error"}, {"pod-b", "down", "prometheus=failing"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("listed %+v, want %+v", got, want)
	}
	if e := out.Sites[1].Endpoints[0]; e.LastError != "x509: certificate expired" || e.LastPoll == nil || e.LastSuccess != nil {
		t.Errorf("pod-b endpoint %+v", e)
	}

	if rec := do(t, h, http.MethodDelete, "/v1/sites/pod-b", "", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("unauthenticated delete: %d", rec.Code)
	}
	if rec := do(t, h, http.MethodDelete, "/v1/sites/pod-b", auth, ""); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, http.MethodDelete, "/v1/sites/pod-b", auth, ""); rec.Code != http.StatusNotFound {
		t.Fatalf("delete again: %d %s", rec.Code, rec.Body)
	}
	if regs, _ := st.RegisteredSites(ctx); len(regs) != 1 || regs[0].Site != "pod-a" {
		t.Fatalf("after delete: %+v", regs)
	}
}

func TestNewHandlerChecksOptions(t *testing.T) {
	st := storetest.New(t, store.Options{})
	tests := []struct {
		name string
		opts HandlerOptions
		want string
	}{
		{"short token", HandlerOptions{Token: "short", Book: st}, "at least 16 characters"},
		{"no registry", HandlerOptions{Token: testToken}, "a registry is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHandler(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewHandler: %v, want …%s…", err, tt.want)
			}
		})
	}
}
