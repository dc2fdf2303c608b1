package remedy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const novaToken = "gAAAAAB-secret-keystone-token"

// fakeNova is a compute API that checks every request's shape (token,
// microversion, JSON body) and records the calls.
type fakeNova struct {
	t        *testing.T
	mu       sync.Mutex
	calls    []string
	servers  []novaServer
	disabled bool
	refuse   int // status for server actions, 0 = accept
}

func (f *fakeNova) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("X-Auth-Token") != novaToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Header.Get("OpenStack-API-Version") != "compute 2.53" {
		w.WriteHeader(http.StatusNotAcceptable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if len(body) > 0 {
		if r.Header.Get("Content-Type") != "application/json" || !json.Valid(body) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	call := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		call += "?" + r.URL.RawQuery
	}
	if len(body) > 0 {
		call += " " + string(body)
	}
	f.calls = append(f.calls, call)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v2.1/servers/detail":
		// Nova's filter is a regular expression; the fake supports the
		// anchored exact names the client sends.
		name := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(r.URL.Query().Get("name"), "^"), "$"), `\`, "")
		var out []novaServer
		for _, s := range f.servers {
			if s.Name == name {
				out = append(out, s)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"servers": out})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v2.1/servers/") && strings.HasSuffix(r.URL.Path, "/action"):
		if f.refuse != 0 {
			w.WriteHeader(f.refuse)
			_, _ = w.Write([]byte(`{"conflictingRequest": {"message": "Cannot 'os-migrateLive' instance while it is in task_state migrating", "code": 409}}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodGet && r.URL.Path == "/v2.1/os-services":
		status := "enabled"
		if f.disabled {
			status = "disabled"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"services": []map[string]string{
			{"id": "8e1b4f2a-svc", "host": r.URL.Query().Get("host"), "binary": "nova-compute", "status": status}}})
	case r.Method == http.MethodPut && r.URL.Path == "/v2.1/os-services/8e1b4f2a-svc":
		_ = json.NewEncoder(w).Encode(map[string]any{"service": map[string]string{"status": "disabled"}})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestNovaActuator(t *testing.T) {
	servers := []novaServer{
		{ID: "uuid-42", Name: "vm-0042", Status: "ACTIVE"},
		{ID: "uuid-43", Name: "vm-0043", Status: "SHUTOFF"},
		{ID: "uuid-d1", Name: "dup", Status: "ACTIVE"}, {ID: "uuid-d2", Name: "dup", Status: "ACTIVE"},
	}
	tests := []struct {
		name     string
		disabled bool
		refuse   int
		do       func(n *Nova) error
		calls    []string
		wantErr  string
	}{
		{name: "restart a running server is a hard reboot", do: func(n *Nova) error { return n.RestartVM(context.Background(), Target{VM: "vm-0042"}) },
			calls: []string{"GET /v2.1/servers/detail?all_tenants=1&name=%5Evm-0042%24", `POST /v2.1/servers/uuid-42/action {"reboot":{"type":"HARD"}}`}},
		{name: "restart a stopped server starts it", do: func(n *Nova) error { return n.RestartVM(context.Background(), Target{VM: "vm-0043"}) },
			calls: []string{"GET /v2.1/servers/detail?all_tenants=1&name=%5Evm-0043%24", `POST /v2.1/servers/uuid-43/action {"os-start":null}`}},
		{name: "migrate is a live migration to the host", do: func(n *Nova) error {
			return n.MigrateVM(context.Background(), Target{VM: "vm-0042", Host: "h1"}, "h2")
		}, calls: []string{"GET /v2.1/servers/detail?all_tenants=1&name=%5Evm-0042%24",
			`POST /v2.1/servers/uuid-42/action {"os-migrateLive":{"block_migration":"auto","host":"h2"}}`}},
		{name: "maintenance disables nova-compute with a reason", do: func(n *Nova) error { return n.HostMaintenance(context.Background(), "h1") },
			calls: []string{"GET /v2.1/os-services?binary=nova-compute&host=h1",
				`PUT /v2.1/os-services/8e1b4f2a-svc {"disabled_reason":"vmtriage: evacuating a failing host","status":"disabled"}`}},
		{name: "maintenance of a disabled host changes nothing", disabled: true, do: func(n *Nova) error { return n.HostMaintenance(context.Background(), "h1") },
			calls: []string{"GET /v2.1/os-services?binary=nova-compute&host=h1"}},
		{name: "an unknown server", do: func(n *Nova) error { return n.RestartVM(context.Background(), Target{VM: "vm-9"}) },
			calls: []string{"GET /v2.1/servers/detail?all_tenants=1&name=%5Evm-9%24"}, wantErr: "nova has no server of that name"},
		{name: "an ambiguous name is not guessed", do: func(n *Nova) error { return n.RestartVM(context.Background(), Target{VM: "dup"}) },
			calls: []string{"GET /v2.1/servers/detail?all_tenants=1&name=%5Edup%24"}, wantErr: "2 servers of that name"},
		{name: "nova's refusal is reported with its message", refuse: http.StatusConflict, do: func(n *Nova) error {
			return n.MigrateVM(context.Background(), Target{VM: "vm-0042"}, "h2")
		}, calls: []string{"GET /v2.1/servers/detail?all_tenants=1&name=%5Evm-0042%24",
			`POST /v2.1/servers/uuid-42/action {"os-migrateLive":{"block_migration":"auto","host":"h2"}}`},
			wantErr: "nova answered 409: Cannot 'os-migrateLive' instance while it is in task_state migrating"},
		{name: "service restarts are not a compute action", do: func(n *Nova) error { return n.RestartService(context.Background(), "h1", "libvirtd") },
			wantErr: "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeNova{t: t, servers: servers, disabled: tc.disabled, refuse: tc.refuse}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			n, err := NewNova(NovaOptions{URL: srv.URL + "/v2.1/", Token: func(context.Context) (string, error) { return novaToken, nil }})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.do(n)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), novaToken) {
				t.Errorf("the token leaked into an error: %v", err)
			}
			if strings.Join(fake.calls, "\n") != strings.Join(tc.calls, "\n") {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(fake.calls, "\n"), strings.Join(tc.calls, "\n"))
			}
		})
	}
}

func TestNovaOptions(t *testing.T) {
	tok := func(context.Context) (string, error) { return "t", nil }
	for _, u := range []string{"", "ftp://x", "nova:8774"} {
		if _, err := NewNova(NovaOptions{URL: u, Token: tok}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	if _, err := NewNova(NovaOptions{URL: "https://nova.example/v2.1"}); err == nil {
		t.Error("no token source accepted")
	}
	n, _ := NewNova(NovaOptions{URL: "http://127.0.0.1:1/v2.1", Token: func(context.Context) (string, error) { return "", errors.New("keystone down") }})
	if err := n.HostMaintenance(context.Background(), "h1"); err == nil || !strings.Contains(err.Error(), "get a token: keystone down") {
		t.Errorf("token failure: %v", err)
	}
}
