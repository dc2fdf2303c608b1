package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/vmtriage/vmtriage/internal/app"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// TestServeScrapesExporters turns the Prometheus collector on in its
// scrape mode against an exporter the test serves, and checks that the
// host's facts reach the store through the pipeline.
func TestServeScrapesExporters(t *testing.T) {
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("# TYPE node_hwmon_temp_celsius gauge\n" +
			`node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp1"} 83` + "\n"))
	}))
	defer exporter.Close()

	s := bootService(t, bootOptions{Env: map[string]string{
		"VMTRIAGE_PROMETHEUS_SCRAPE_TARGETS": "host-100=" + exporter.URL + "/metrics",
		"VMTRIAGE_PROMETHEUS_SITE":           "pod-z",
	}})
	var host struct {
		Site    string `json:"site"`
		Periods []struct {
			State string         `json:"state"`
			Facts map[string]any `json:"facts"`
		} `json:"periods"`
	}
	eventually(t, 15*time.Second, "host-100's scraped facts in GET /v1/hosts/host-100", func() (bool, string) {
		code, body := s.get(t, "/v1/hosts/host-100")
		if code != http.StatusOK {
			return false, string(body)
		}
		if err := json.Unmarshal(body, &host); err != nil {
			return false, err.Error()
		}
		return len(host.Periods) > 0 && host.Periods[0].Facts["temp_c"] == 83.0, string(body)
	})
	if host.Site != "pod-z" {
		t.Errorf("host-100 site = %q, want pod-z", host.Site)
	}
}

// TestServeRefusesBadCollectorSettings: a collector setting that cannot
// work stops start-up with the variable named, before anything listens.
func TestServeRefusesBadCollectorSettings(t *testing.T) {
	storetest.Client(t) // the service needs Redis before it reads the collectors
	dir := t.TempDir()
	queries := filepath.Join(dir, "queries.yaml")
	if err := os.WriteFile(queries, []byte("temp_c: max(node_hwmon_temp_celsius)\ntemperature: up\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown prometheus fact", map[string]string{"VMTRIAGE_PROMETHEUS_URL": "http://127.0.0.1:9", "VMTRIAGE_PROMETHEUS_QUERIES": queries},
			`VMTRIAGE_PROMETHEUS_QUERIES: ` + queries + `: unknown fact "temperature"`},
		{"missing prometheus queries file", map[string]string{"VMTRIAGE_PROMETHEUS_URL": "http://127.0.0.1:9", "VMTRIAGE_PROMETHEUS_QUERIES": filepath.Join(dir, "nope.yaml")},
			`VMTRIAGE_PROMETHEUS_QUERIES: open `},
		{"libvirt uri", map[string]string{"VMTRIAGE_LIBVIRT_URIS": "host-1=qemu+ssh://root@host-1/system"},
			`VMTRIAGE_LIBVIRT_URIS: `},
		{"short heartbeat token", map[string]string{"VMTRIAGE_HEARTBEAT_TOKENS": "site-a:short"},
			`VMTRIAGE_HEARTBEAT_TOKENS: `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"VMTRIAGE_REDIS_URL": testRedisURL(), "VMTRIAGE_HTTP_ADDR": "127.0.0.1:0"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := config.Load(context.Background(), envconfig.MapLookuper(env))
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
