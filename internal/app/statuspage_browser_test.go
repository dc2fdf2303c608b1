package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromiumPath is Debian's chromium package.
const chromiumPath = "/usr/bin/chromium"

// chromium runs headless Chromium with args against url and returns its
// standard output.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the status page browser test needs Debian's chromium at %s: apt-get install -y chromium (%v)", chromiumPath, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,1800", "--hide-scrollbars"}
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// TestStatusPageInChromium boots vmtriage with a simulated fleet of 240
// VMs in two sites (one with a hostile name), crashes a few on a failing
// host and one on a healthy host, recovers one, and loads the three views
// in headless Chromium: the DOM must hold the counts and the VMs, the
// hostile name as text (never as a script), the VM's outage and
// incident, and the fault statistics with the chart. A screenshot of each
// view is saved in $VMTRIAGE_TEST_ARTIFACTS (default: the system's temp
// directory, vmtriage-statuspage) to look at.
func TestStatusPageInChromium(t *testing.T) {
	s := bootService(t, bootOptions{Env: map[string]string{"VMTRIAGE_OUTAGE_SWEEP": "1s", "VMTRIAGE_STATUS_TOKEN": "read-0123456789"}})
	t0 := s.clock.Now()
	at := t0.Format(time.RFC3339Nano)
	var lines strings.Builder
	for h := range 8 {
		host, site := fmt.Sprintf("host-%03d", h), "pod-a"
		if h >= 4 {
			site = "pod-b"
		}
		ecc := 0
		if h == 7 {
			ecc = 4
		}
		lines.WriteString(obsLine(t, map[string]any{"source": "prometheus", "kind": "host", "id": host, "site": site, "state": "up",
			"attrs": map[string]any{"ecc_uncorrected": ecc, "mce": 0, "disk_errors": 0, "nic_up": true, "psu_ok": true, "temp_c": 40,
				"storage_reachable": true, "network_reachable": true}, "time_generated": at}))
		for v := range 30 {
			id := fmt.Sprintf("vm-%03d%02d", h, v)
			if h == 0 && v == 0 {
				id = `<script>alert("vm")</script>`
			}
			state := "running"
			if h == 7 && v < 3 || h == 0 && v <= 1 {
				state = "crashed"
			}
			lines.WriteString(obsLine(t, map[string]any{"source": "libvirt", "kind": "vm", "id": id, "host": host, "site": site,
				"state": state, "time_generated": at}))
		}
	}
	if code, resp := s.post(t, "/v1/observations", "application/x-ndjson", []byte(lines.String())); code != http.StatusAccepted {
		t.Fatalf("POST /v1/observations = %d %s", code, resp)
	}
	s.waitApplied(t)
	s.clock.Advance(time.Minute)
	s.tick(t)
	// One VM runs again; its outage closes after a minute of guest downtime.
	back := s.clock.Now().Format(time.RFC3339Nano)
	if code, resp := s.post(t, "/v1/observations", "application/json", []byte(obsLine(t, map[string]any{"source": "libvirt", "kind": "vm",
		"id": "vm-00001", "host": "host-000", "site": "pod-a", "state": "running", "time_generated": back}))); code != http.StatusAccepted {
		t.Fatalf("POST running = %d %s", code, resp)
	}
	s.waitApplied(t)
	s.clock.Advance(6 * time.Minute)
	s.tick(t)
	eventually(t, 10*time.Second, "the books hold the crashes", func() (bool, string) {
		_, b := s.get(t, "/v1/reports/availability?from="+t0.Add(-time.Hour).Format(time.RFC3339))
		return strings.Contains(string(b), `"outages": 5,`) && strings.Contains(string(b), `"open": 4`), string(b)
	})

	dir := os.Getenv("VMTRIAGE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "vmtriage-statuspage")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	token := "token=read-0123456789"
	for _, tc := range []struct {
		name, path string
		want       []string
		notWant    []string
	}{
		{"fleet", "/?" + token, []string{
			`<p id="summary">240 VMs, <span class="down">4 down</span>`,
			`data-state="running">running<b>236</b>`, `data-state="crashed">crashed<b>4</b>`,
			`page 1 of 3`, `href="/vms/vm-00702"`,
			`&lt;script&gt;alert("vm")&lt;/script&gt;`,
		}, []string{`<script>alert`}},
		{"fleet-filtered", "/?site=pod-b&state=crashed&" + token, []string{
			`<p id="summary">120 VMs in site pod-b`, `3 matching; page 1 of 1`, `href="/vms/vm-00700"`, `href="/vms/vm-00702"`,
		}, []string{`href="/vms/vm-00001"`}},
		{"vm", "/vms/vm-00001?" + token, []string{
			`<h1>VM vm-00001</h1>`, `outage ended after 1m0s`, `guest-crash`, `class="ok">running`,
		}, nil},
		{"faults", "/faults?period=24h&" + token, []string{
			`<img id="chart" src="/chart.png?period=24h"`, `host-hardware-fault`, `guest-crash`,
			`platform-unplanned`, `Platform SLA breaches (3)`, `href="/vms/vm-00700"`,
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The token redirects once to the same page without it; Chromium
			// follows with the cookie, as a person's browser would.
			u := s.url(tc.path)
			dom := chromium(t, "--dump-dom", u)
			for _, w := range tc.want {
				if !strings.Contains(dom, w) {
					t.Errorf("DOM of %s lacks %q", tc.path, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(dom, w) {
					t.Errorf("DOM of %s holds %q", tc.path, w)
				}
			}
			if t.Failed() {
				t.Logf("DOM:\n%s", dom)
			}
			shot := filepath.Join(dir, tc.name+".png")
			chromium(t, "--screenshot="+shot, u)
			if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
				t.Errorf("screenshot %s: %v", shot, err)
			} else {
				t.Logf("screenshot of %s: %s", tc.path, shot)
			}
		})
	}
	// Without the token, Chromium gets the refusal, not the fleet.
	if dom := chromium(t, "--dump-dom", s.url("/")); strings.Contains(dom, "vm-00001") || !strings.Contains(dom, "read token") {
		t.Errorf("without the token the page shows:\n%s", dom)
	}
}
