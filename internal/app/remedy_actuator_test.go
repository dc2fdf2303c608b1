package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/vmtriage/vmtriage/internal/app"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// fakeCloud answers every request with 404 (an empty cloud): the
// actuators call nothing at start-up, and the Azure collector that
// VMTRIAGE_AZURE_SUBSCRIPTIONS also turns on only logs its failures.
func fakeCloud(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.NotFound(w, nil)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func azureEnv(url string) map[string]string {
	return map[string]string{
		"VMTRIAGE_REMEDY_ACTUATOR":      "azure",
		"VMTRIAGE_AZURE_SUBSCRIPTIONS":  "sub-1",
		"VMTRIAGE_AZURE_TENANT_ID":      "tenant",
		"VMTRIAGE_AZURE_CLIENT_ID":      "client",
		"VMTRIAGE_AZURE_CLIENT_SECRET":  "actuator-secret-0123456789",
		"VMTRIAGE_AZURE_ENDPOINT":       url,
		"VMTRIAGE_AZURE_LOGIN_ENDPOINT": url,
		"VMTRIAGE_AZURE_QUIET_BASELINE": "true",
	}
}

// TestServeStartsWithEachActuator: every VMTRIAGE_REMEDY_ACTUATOR value
// with its variables gives a service that comes up ready.
func TestServeStartsWithEachActuator(t *testing.T) {
	url := fakeCloud(t)
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"dryrun", map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "dryrun"}},
		{"nova", map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "nova", "VMTRIAGE_NOVA_URL": url + "/v2.1", "VMTRIAGE_NOVA_TOKEN": "nova-token-0123456789"}},
		{"azure", azureEnv(url)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := bootService(t, bootOptions{Env: tc.env})
			if code, body := s.get(t, "/readyz"); code != http.StatusOK {
				t.Fatalf("GET /readyz = %d %s, want 200", code, body)
			}
		})
	}
}

// TestActuatorVariablesRequired: a missing variable is refused by name,
// by config.Load and, for a Config built in code, by Serve before it
// listens; the secrets are not echoed.
func TestActuatorVariablesRequired(t *testing.T) {
	storetest.Client(t)
	url := fakeCloud(t)
	base := func(extra map[string]string) map[string]string {
		env := map[string]string{"VMTRIAGE_REDIS_URL": testRedisURL(), "VMTRIAGE_HTTP_ADDR": "127.0.0.1:0"}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	loadTests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"nova without token", map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "nova", "VMTRIAGE_NOVA_URL": url}, "VMTRIAGE_NOVA_TOKEN"},
		{"nova without url", map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "nova", "VMTRIAGE_NOVA_TOKEN": "nova-token-0123456789"}, "VMTRIAGE_NOVA_URL"},
		{"azure without subscriptions", map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "azure"}, "VMTRIAGE_AZURE_SUBSCRIPTIONS"},
	}
	for _, tc := range loadTests {
		t.Run("load/"+tc.name, func(t *testing.T) {
			_, err := config.Load(context.Background(), envconfig.MapLookuper(base(tc.env)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("config.Load = %v, want an error naming %s", err, tc.want)
			}
		})
	}

	serveTests := []struct {
		name  string
		env   map[string]string
		blank func(*config.Config)
		want  string
	}{
		{"nova token", map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "nova", "VMTRIAGE_NOVA_URL": url, "VMTRIAGE_NOVA_TOKEN": "nova-token-0123456789"},
			func(c *config.Config) { c.NovaToken = "" }, "VMTRIAGE_NOVA_TOKEN"},
		{"nova url", map[string]string{"VMTRIAGE_REMEDY_ACTUATOR": "nova", "VMTRIAGE_NOVA_URL": url, "VMTRIAGE_NOVA_TOKEN": "nova-token-0123456789"},
			func(c *config.Config) { c.NovaURL = "" }, "VMTRIAGE_NOVA_URL"},
		{"azure subscriptions", azureEnv(url), func(c *config.Config) { c.AzureSubscriptions = nil }, "VMTRIAGE_AZURE_SUBSCRIPTIONS"},
	}
	for _, tc := range serveTests {
		t.Run("serve/"+tc.name, func(t *testing.T) {
			cfg, err := config.Load(context.Background(), envconfig.MapLookuper(base(tc.env)))
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			tc.blank(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			listening := false
			err = app.Serve(ctx, app.Options{Config: cfg, Prefix: "test-app-actuator-" + randomHex(6),
				Ready: func(string, *app.Service) { listening = true }})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Serve = %v, want an error naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "0123456789") {
				t.Errorf("Serve's error echoes a secret: %v", err)
			}
			if listening {
				t.Error("Serve listened before refusing its actuator")
			}
		})
	}
}
