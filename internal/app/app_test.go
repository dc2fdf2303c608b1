package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// obsLine renders one observation as a JSON line.
func obsLine(tb testing.TB, o map[string]any) string {
	tb.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b) + "\n"
}

// TestServeEndToEnd boots the whole service and walks the contract's first
// slice over HTTP: a VM crashes while its host is healthy in the same
// collection period → one guest-crash incident, pending for the rule's
// "for" and then firing → the VM runs again → the incident resolves after
// the resolve delay. Time moves only on the fake clock.
func TestServeEndToEnd(t *testing.T) {
	s := bootService(t, bootOptions{})
	t0 := s.clock.Now()
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }

	if code, body := s.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("GET /readyz = %d %s, want 200", code, body)
	}
	if code, body := s.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz = %d %s, want 200", code, body)
	}

	// The host's healthy facts and the crash, in one collection period and
	// one JSON-lines request.
	body := obsLine(t, map[string]any{
		"source": "prometheus", "kind": "host", "id": "host-007", "site": "pod-a", "state": "up",
		"attrs": map[string]any{"ecc_uncorrected": 0, "mce": 0, "disk_errors": 0, "nic_up": true,
			"psu_ok": true, "temp_c": 41, "storage_reachable": true, "network_reachable": true},
		"time_generated": at(0),
	}) + obsLine(t, map[string]any{
		"source": "libvirt", "kind": "vm", "id": "vm-0042", "host": "host-007", "site": "pod-a",
		"state": "crashed", "attrs": map[string]any{"crash_reason": "panicked"}, "time_generated": at(0),
	})
	if code, resp := s.post(t, "/v1/observations", "application/x-ndjson", []byte(body)); code != http.StatusAccepted {
		t.Fatalf("POST /v1/observations = %d %s, want 202", code, resp)
	}
	s.waitApplied(t)

	// Pending until the rule's 30 s "for" has passed.
	incs := s.incidents(t, "")
	if len(incs) != 1 {
		t.Fatalf("after the crash: %d incidents, want 1: %v", len(incs), incs)
	}
	if got := incs[0]["status"]; got != "pending" {
		t.Fatalf("right after the crash: status %v, want pending", got)
	}
	s.clock.Advance(29 * time.Second)
	s.tick(t)
	if got := s.incidents(t, "")[0]["status"]; got != "pending" {
		t.Fatalf("29s after the crash: status %v, want pending (rule for: 30s)", got)
	}
	s.clock.Advance(time.Second)
	s.tick(t)

	firing := s.incidents(t, "?status=firing")
	if len(firing) != 1 {
		t.Fatalf("30s after the crash: %d firing incidents, want 1: %v", len(firing), firing)
	}
	inc := firing[0]
	for _, tc := range []struct {
		field string
		want  any
	}{
		{"rule", "vm-guest-crash"},
		{"status", "firing"},
		{"severity", "medium"},
		{"cause", "guest-crash"},
		{"trigger", "vm"},
		{"action", "restart-vm"},
		{"approval", "not-required"},
		{"host", "host-007"},
		{"site", "pod-a"},
		{"started_at", at(0)},
		{"resolved_at", nil},
		{"acked_by", nil},
		{"ticket", nil},
		{"level", float64(1)},
	} {
		got, ok := inc[tc.field]
		if !ok {
			t.Errorf("incident has no %q field: %v", tc.field, inc)
			continue
		}
		if got != tc.want {
			t.Errorf("incident %s = %#v, want %#v", tc.field, got, tc.want)
		}
	}
	if id, _ := inc["id"].(string); !strings.HasPrefix(id, "inc-") {
		t.Errorf("incident id %q does not start with inc-", id)
	}
	if fp, _ := inc["fingerprint"].(string); fp == "" {
		t.Errorf("incident has an empty fingerprint")
	}
	if vms := fmt.Sprint(inc["vms"]); vms != "[vm-0042]" {
		t.Errorf("incident vms = %s, want [vm-0042]", vms)
	}
	if rb, ok := inc["runbooks"].([]any); !ok || len(rb) == 0 {
		t.Errorf("incident runbooks = %#v, want at least one", inc["runbooks"])
	}

	// The VM's state is visible too.
	code, vmBody := s.get(t, "/v1/vms/vm-0042")
	if code != http.StatusOK || !strings.Contains(string(vmBody), `"crashed"`) {
		t.Errorf("GET /v1/vms/vm-0042 = %d %s, want 200 with state crashed", code, vmBody)
	}

	// The VM runs again: the incident stays firing for the resolve delay
	// (5m by default), then resolves as of the moment it cleared.
	s.clock.Advance(10 * time.Second)
	recovered := s.clock.Now()
	body = obsLine(t, map[string]any{
		"source": "libvirt", "kind": "vm", "id": "vm-0042", "host": "host-007", "site": "pod-a",
		"state": "running", "time_generated": recovered.Format(time.RFC3339Nano),
	})
	if code, resp := s.post(t, "/v1/observations", "application/json", []byte(body)); code != http.StatusAccepted {
		t.Fatalf("POST running = %d %s, want 202", code, resp)
	}
	s.waitApplied(t)
	s.clock.Advance(4*time.Minute + 59*time.Second)
	s.tick(t)
	if got := s.incidents(t, "")[0]["status"]; got != "firing" {
		t.Fatalf("4m59s after recovery: status %v, want firing (resolve delay 5m)", got)
	}
	s.clock.Advance(time.Second)
	s.tick(t)
	resolved := s.incidents(t, "?status=resolved")
	if len(resolved) != 1 {
		t.Fatalf("5m after recovery: %d resolved incidents, want 1; all: %v", len(resolved), s.incidents(t, ""))
	}
	if got, want := resolved[0]["resolved_at"], recovered.Format(time.RFC3339Nano); got != want {
		t.Errorf("resolved_at = %v, want %v (when the VM ran again)", got, want)
	}
	if got := resolved[0]["id"]; got != inc["id"] {
		t.Errorf("resolved incident %v, want the same incident %v", got, inc["id"])
	}
	if open := s.incidents(t, "?status=firing"); len(open) != 0 {
		t.Errorf("firing incidents after resolution: %v", open)
	}

	// The ingest counters saw the three observations.
	code, metrics := s.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, tc := range []struct {
		name, labels string
		want         float64
	}{
		{"vmtriage_observations_accepted_total", `source="libvirt"`, 2},
		{"vmtriage_observations_accepted_total", `source="prometheus"`, 1},
		{"vmtriage_observations_applied_total", `source="libvirt"`, 2},
		{"vmtriage_observations_applied_total", `source="prometheus"`, 1},
		{"vmtriage_ingest_latency_seconds_count", `source="libvirt",stage="stored"`, 2},
	} {
		got, ok := metricValue(metrics, tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("metric %s{%s} = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
}

// TestServeRefusesBadBatch checks through the booted service that a batch
// with one bad record is refused whole, names the line, is counted, and
// changes nothing.
func TestServeRefusesBadBatch(t *testing.T) {
	s := bootService(t, bootOptions{})
	now := s.clock.Now().Format(time.RFC3339)
	body := obsLine(t, map[string]any{"source": "libvirt", "kind": "vm", "id": "vm-1", "state": "crashed", "time_generated": now}) +
		obsLine(t, map[string]any{"source": "libvirt", "kind": "vm", "id": "vm-2", "state": "exploded", "time_generated": now})
	code, resp := s.post(t, "/v1/observations", "application/x-ndjson", []byte(body))
	if code != http.StatusBadRequest {
		t.Fatalf("POST bad batch = %d %s, want 400", code, resp)
	}
	var problem struct {
		Errors []struct {
			Line   int    `json:"line"`
			Reason string `json:"reason"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(resp, &problem); err != nil {
		t.Fatalf("decode 400 body %s: %v", resp, err)
	}
	if len(problem.Errors) != 1 || problem.Errors[0].Line != 2 || !strings.Contains(problem.Errors[0].Reason, "exploded") {
		t.Errorf("400 body = %s, want one error on line 2 naming the state", resp)
	}
	if code, _ := s.get(t, "/v1/vms/vm-1"); code != http.StatusNotFound {
		t.Errorf("GET /v1/vms/vm-1 after a refused batch = %d, want 404 (nothing applied)", code)
	}
	_, metrics := s.get(t, "/metrics")
	if got, _ := metricValue(metrics, "vmtriage_observations_refused_total", `reason="invalid",source="libvirt"`); got != 1 {
		t.Errorf("refused counter for the bad libvirt record = %v, want 1", got)
	}
}
