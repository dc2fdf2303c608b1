package app_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/vmtriage/vmtriage/internal/app"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

const sitesToken = "sites-registration-token-0123456789"

// siteEndpoint is a site's observations endpoint, over TLS, answering what
// the test sets.
type siteEndpoint struct {
	mu     sync.Mutex
	status int
	body   string
	srv    *httptest.Server
}

func newSiteEndpoint(t *testing.T) *siteEndpoint {
	e := &siteEndpoint{status: http.StatusOK}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		w.WriteHeader(e.status)
		io.WriteString(w, e.body)
	}))
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

func (e *siteEndpoint) set(status int, body string) {
	e.mu.Lock()
	e.status, e.body = status, body
	e.mu.Unlock()
}

// caFile writes the endpoint's certificate where VMTRIAGE_SITES_CA_FILE
// can point, as a site's private CA would be.
func (e *siteEndpoint) caFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "site-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *service) do(tb testing.TB, method, path, token, body string) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, s.url(path), strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// siteStatus returns the site's state and its first endpoint's status and
// failure count from GET /v1/sites.
func (s *service) siteStatus(tb testing.TB, site string) (state, status string, failures int) {
	tb.Helper()
	code, body := s.get(tb, "/v1/sites")
	if code != http.StatusOK {
		tb.Fatalf("GET /v1/sites: %d %s", code, body)
	}
	var out struct {
		Sites []struct {
			Site      string `json:"site"`
			State     string `json:"state"`
			Endpoints []struct {
				Status   string `json:"status"`
				Failures int    `json:"consecutive_failures"`
			} `json:"endpoints"`
		} `json:"sites"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		tb.Fatalf("GET /v1/sites: %v in %s", err, body)
	}
	for _, st := range out.Sites {
		if st.Site == site && len(st.Endpoints) > 0 {
			return st.State, st.Endpoints[0].Status, st.Endpoints[0].Failures
		}
	}
	return "", "", 0
}

// openRule reports whether an open incident of rule exists, and its site.
func (s *service) openRule(tb testing.TB, rule string) (bool, string) {
	tb.Helper()
	for _, inc := range s.incidents(tb, "") {
		if inc["rule"] == rule && inc["status"] != "resolved" {
			site, _ := inc["site"].(string)
			return true, site
		}
	}
	return false, ""
}

// TestRegisteredSiteEndToEnd: a site registers an endpoint serving
// observations; the running service polls it without a restart and
// applies what it serves; when the endpoint keeps failing the site is one
// incident, which resolves when it answers again.
func TestRegisteredSiteEndToEnd(t *testing.T) {
	ep := newSiteEndpoint(t)
	s := bootService(t, bootOptions{Env: map[string]string{
		"VMTRIAGE_SITES_TOKEN":      sitesToken,
		"VMTRIAGE_SITES_CA_FILE":    ep.caFile(t),
		"VMTRIAGE_SITES_INTERVAL":   "1s",
		"VMTRIAGE_SITES_FAIL_AFTER": "2",
	}})
	gen := s.clock.Now().Format(time.RFC3339)
	ep.set(http.StatusOK, `{"source":"pod-a-libvirt","kind":"vm","id":"vm-s1","host":"host-s1","state":"running","time_generated":"`+gen+`"}`+"\n"+
		`{"source":"pod-a-libvirt","kind":"vm","id":"vm-s2","host":"host-s1","state":"paused","time_generated":"`+gen+`"}`+"\n")

	reg := fmt.Sprintf(`{"site":"pod-a","endpoints":[{"kind":"observations","url":%q}]}`, ep.srv.URL+"/v1/observations")
	if code, body := s.do(t, http.MethodPost, "/v1/sites", "", reg); code != http.StatusUnauthorized {
		t.Fatalf("registration without the token: %d %s", code, body)
	}
	plain := `{"site":"pod-a","endpoints":[{"kind":"observations","url":"http://collector.pod-a.example/v1/observations"}]}`
	if code, body := s.do(t, http.MethodPost, "/v1/sites", sitesToken, plain); code != http.StatusBadRequest ||
		!strings.Contains(string(body), "endpoints[0].url") {
		t.Fatalf("plain http registration: %d %s, want 400 naming endpoints[0].url", code, body)
	}
	if code, body := s.do(t, http.MethodPost, "/v1/sites", sitesToken, reg); code != http.StatusOK {
		t.Fatalf("registration: %d %s", code, body)
	}

	// Polled within a registry interval, and applied with the site filled in.
	eventually(t, 20*time.Second, "vm-s2 from the registered site", func() (bool, string) {
		code, body := s.get(t, "/v1/vms/vm-s2")
		return code == http.StatusOK && strings.Contains(string(body), `"state": "paused"`) &&
			strings.Contains(string(body), `"site": "pod-a"`), fmt.Sprintf("%d %s", code, body)
	})
	if state, status, _ := s.siteStatus(t, "pod-a"); state != "up" || status != "ok" {
		t.Fatalf("GET /v1/sites: site %s, endpoint %s; want up, ok", state, status)
	}

	// The endpoint fails FailAfter polls in a row: one incident for the site.
	ep.set(http.StatusServiceUnavailable, "maintenance")
	for want := 1; want <= 2; want++ {
		s.clock.Advance(time.Minute)
		eventually(t, 20*time.Second, fmt.Sprintf("failed poll %d", want), func() (bool, string) {
			_, status, n := s.siteStatus(t, "pod-a")
			return n == want, fmt.Sprintf("%s, %d failures", status, n)
		})
	}
	if state, status, _ := s.siteStatus(t, "pod-a"); state != "down" || status != "failing" {
		t.Fatalf("GET /v1/sites: site %s, endpoint %s; want down, failing", state, status)
	}
	eventually(t, 20*time.Second, "the site-collectors-down incident", func() (bool, string) {
		open, site := s.openRule(t, "site-collectors-down")
		return open && site == "pod-a", fmt.Sprintf("open %v, site %q", open, site)
	})
	if n := len(s.incidents(t, "?status=firing")); n != 1 {
		t.Fatalf("%d firing incidents, want only the site's", n)
	}

	// It answers again: the incident resolves after its resolve delay.
	ep.set(http.StatusOK, "")
	s.clock.Advance(time.Minute)
	eventually(t, 20*time.Second, "the site back up", func() (bool, string) {
		state, status, _ := s.siteStatus(t, "pod-a")
		return state == "up", state + " " + status
	})
	s.waitApplied(t)
	s.clock.Advance(6 * time.Minute)
	s.tick(t)
	if open, _ := s.openRule(t, "site-collectors-down"); open {
		t.Fatal("site-collectors-down still open after the site answered for 6 minutes")
	}
}

// TestHostHeartbeatEndToEnd: host heartbeats are accepted by default and
// are proof of life only: one arriving in the period a VM crashed does not
// make its host look healthy, so the crash is not judged a guest crash.
func TestHostHeartbeatEndToEnd(t *testing.T) {
	const token = "pod-a-heartbeat-token-0123456789"
	s := bootService(t, bootOptions{Env: map[string]string{"VMTRIAGE_HEARTBEAT_TOKENS": "pod-a:" + token}})
	gen := s.clock.Now().Format(time.RFC3339)
	crash := `{"source":"libvirt","kind":"vm","id":"vm-h1","host":"host-h1","site":"pod-a","state":"crashed","time_generated":"` + gen + `"}`
	if code, body := s.post(t, "/v1/observations", "application/json", []byte(crash)); code != http.StatusAccepted {
		t.Fatalf("POST /v1/observations: %d %s", code, body)
	}
	beat := `{"computer":"host-h1","kind":"host","site":"pod-a","time_generated":"` + gen + `"}`
	if code, body := s.do(t, http.MethodPost, "/v1/heartbeats", token, beat); code != http.StatusAccepted {
		t.Fatalf("host heartbeat: %d %s, want 202 (host heartbeats on by default)", code, body)
	}
	s.waitApplied(t)
	s.clock.Advance(31 * time.Second)
	s.tick(t)
	if open, _ := s.openRule(t, "vm-guest-crash"); open {
		t.Fatal("a host heartbeat made the crash a guest crash")
	}
	s.clock.Advance(2 * time.Minute)
	s.tick(t)
	if open, _ := s.openRule(t, "vm-crash-host-unknown"); !open {
		t.Fatalf("want vm-crash-host-unknown open; incidents %v", s.incidents(t, ""))
	}
	code, body := s.get(t, "/v1/hosts/host-h1")
	if code != http.StatusOK || strings.Contains(string(body), `"source": "heartbeat`) {
		t.Fatalf("GET /v1/hosts/host-h1: %d %s", code, body)
	}
}

// TestServeRefusesBadSitesCA: a CA file that cannot be read, or holds no
// certificate, stops start-up with a message naming the variable.
func TestServeRefusesBadSitesCA(t *testing.T) {
	storetest.Client(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, want string
	}{
		{"missing", filepath.Join(dir, "nope.pem"), "VMTRIAGE_SITES_CA_FILE: open "},
		{"not PEM", notPEM, "VMTRIAGE_SITES_CA_FILE: " + notPEM + " holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{
				"VMTRIAGE_REDIS_URL": testRedisURL(), "VMTRIAGE_HTTP_ADDR": "127.0.0.1:0",
				"VMTRIAGE_SITES_TOKEN": sitesToken, "VMTRIAGE_SITES_CA_FILE": tc.file,
			}))
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			listening := false
			err = app.Serve(ctx, app.Options{Config: cfg, Prefix: "test-app-refuse-" + randomHex(6),
				Ready: func(string, *app.Service) { listening = true }})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Serve = %v, want an error containing %q", err, tc.want)
			}
			if listening {
				t.Error("Serve listened before refusing its configuration")
			}
		})
	}
}
