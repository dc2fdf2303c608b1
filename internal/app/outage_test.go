package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/vmtriage/vmtriage/bot"
)

// TestOutageBooksEndToEnd boots the service and walks a crash through the
// books: a VM crashes on a healthy host → guest-crash incident → the VM runs
// again 40 s later → the incident resolves → the availability report, the
// CSV, /triage report and the status page all show 40 s of guest downtime.
func TestOutageBooksEndToEnd(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "inventory.csv")
	if err := os.WriteFile(inv, []byte("vm,service,team\nvm-0042,payments,team-pay\nvm-0043,payments,team-pay\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := bootService(t, bootOptions{Env: map[string]string{"VMTRIAGE_OUTAGE_SWEEP": "1s", "VMTRIAGE_INVENTORY_PATH": inv}})
	t0 := s.clock.Now()
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }

	body := obsLine(t, map[string]any{
		"source": "prometheus", "kind": "host", "id": "host-007", "site": "pod-a", "state": "up",
		"attrs": map[string]any{"ecc_uncorrected": 0, "mce": 0, "disk_errors": 0, "nic_up": true,
			"psu_ok": true, "temp_c": 41, "storage_reachable": true, "network_reachable": true},
		"time_generated": at(0),
	}) + obsLine(t, map[string]any{
		"source": "libvirt", "kind": "vm", "id": "vm-0042", "host": "host-007", "site": "pod-a",
		"state": "crashed", "time_generated": at(0),
	}) + obsLine(t, map[string]any{
		"source": "libvirt", "kind": "vm", "id": "vm-0043", "host": "host-007", "site": "pod-a",
		"state": "running", "time_generated": at(0),
	})
	if code, resp := s.post(t, "/v1/observations", "application/x-ndjson", []byte(body)); code != http.StatusAccepted {
		t.Fatalf("POST /v1/observations = %d %s", code, resp)
	}
	s.waitApplied(t)
	s.clock.Advance(30 * time.Second)
	s.tick(t)
	if firing := s.incidents(t, "?status=firing"); len(firing) != 1 || firing[0]["cause"] != "guest-crash" {
		t.Fatalf("firing incidents = %v, want one guest-crash", firing)
	}
	s.clock.Advance(10 * time.Second)
	body = obsLine(t, map[string]any{"source": "libvirt", "kind": "vm", "id": "vm-0042", "host": "host-007", "site": "pod-a",
		"state": "running", "time_generated": at(40 * time.Second)})
	if code, resp := s.post(t, "/v1/observations", "application/json", []byte(body)); code != http.StatusAccepted {
		t.Fatalf("POST running = %d %s", code, resp)
	}
	s.waitApplied(t)
	s.clock.Advance(5 * time.Minute)
	s.tick(t)
	if resolved := s.incidents(t, "?status=resolved"); len(resolved) != 1 {
		t.Fatalf("resolved incidents = %v, want one", resolved)
	}

	query := "?from=" + t0.Add(-time.Hour).Format(time.RFC3339) + "&to=" + t0.Add(time.Hour).Format(time.RFC3339)
	var rep struct {
		Fleet struct {
			VMs             int                `json:"vms"`
			DowntimeMinutes float64            `json:"downtime_minutes"`
			Outages         int                `json:"outages"`
			Open            int                `json:"open"`
			MTTRMinutes     float64            `json:"mttr_minutes"`
			ByAttribution   map[string]float64 `json:"downtime_by_attribution"`
		} `json:"fleet"`
		Breaches []struct {
			VM string `json:"vm"`
		} `json:"sla_breaches"`
		Incidents struct {
			Count    int `json:"count"`
			Resolved int `json:"resolved"`
		} `json:"incidents_total"`
		Services []struct {
			Service         string  `json:"service"`
			DowntimeMinutes float64 `json:"downtime_minutes"`
			Outages         int     `json:"outages"`
			VMs             int     `json:"vms"`
		} `json:"services"`
	}
	eventually(t, 10*time.Second, "the report shows the closed outage", func() (bool, string) {
		code, b := s.get(t, "/v1/reports/availability"+query)
		if code != http.StatusOK {
			return false, fmt.Sprintf("status %d: %s", code, b)
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			return false, err.Error()
		}
		return rep.Fleet.Outages == 1 && rep.Fleet.Open == 0, string(b)
	})
	want := 40.0 / 60
	if d := rep.Fleet.DowntimeMinutes; d < want-1e-9 || d > want+1e-9 {
		t.Errorf("downtime = %v min, want %v (crash to running)", d, want)
	}
	if g := rep.Fleet.ByAttribution["guest"]; g != rep.Fleet.DowntimeMinutes {
		t.Errorf("guest downtime = %v, want all of it (%v): %v", g, rep.Fleet.DowntimeMinutes, rep.Fleet.ByAttribution)
	}
	if rep.Fleet.VMs != 2 || rep.Fleet.MTTRMinutes != rep.Fleet.DowntimeMinutes {
		t.Errorf("fleet = %+v, want 2 VMs and MTTR = the one outage", rep.Fleet)
	}
	if len(rep.Breaches) != 1 || rep.Breaches[0].VM != "vm-0042" {
		t.Errorf("SLA breaches = %+v, want vm-0042 (40 s of 2 h is under 99.95%%)", rep.Breaches)
	}
	if len(rep.Services) != 1 || rep.Services[0].Service != "payments" || rep.Services[0].Outages != 1 ||
		rep.Services[0].VMs != 1 || rep.Services[0].DowntimeMinutes != rep.Fleet.DowntimeMinutes {
		t.Errorf("services = %+v, want payments with vm-0042's one outage", rep.Services)
	}
	if rep.Incidents.Count != 1 || rep.Incidents.Resolved != 1 {
		t.Errorf("incident analytics = %+v, want one resolved", rep.Incidents)
	}

	code, csv := s.get(t, "/v1/reports/availability.csv"+query)
	if code != http.StatusOK || !strings.Contains(string(csv), "\nvm,vm-0042,host-007,pod-a,1,") {
		t.Errorf("CSV = %d:\n%s\nwant a vm-0042 row", code, csv)
	}
	if code, b := s.get(t, "/v1/reports/availability?from=nope"); code != http.StatusBadRequest || !strings.Contains(string(b), "from:") {
		t.Errorf("bad from = %d %s, want 400 naming from", code, b)
	}

	reply := s.svc.Router.HandleText(context.Background(), "report 24h pod-a", bot.Command{User: "U1", Channel: "C1"})
	if !strings.Contains(reply.Title, "site pod-a") || !strings.Contains(fmt.Sprint(reply.Sections), "{guest 0.7}") {
		t.Errorf("/triage report = %q %v, want pod-a with 0.7 guest minutes", reply.Title, reply.Sections)
	}
	rendered, err := json.MarshalIndent(reply, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report-24h-pod-a.golden", string(rendered)+"\n")

	code, page := s.get(t, "/")
	if code != http.StatusOK || !strings.Contains(string(page), "2 VMs") || !strings.Contains(string(page), `href="/vms/vm-0042"`) {
		t.Errorf("GET / = %d:\n%s\nwant the two VMs", code, page)
	}
	code, page = s.get(t, "/vms/vm-0042")
	if code != http.StatusOK || !strings.Contains(string(page), "outage ended after 40s") || !strings.Contains(string(page), "guest-crash") {
		t.Errorf("GET /vms/vm-0042 = %d:\n%s\nwant the 40 s guest-crash outage", code, page)
	}
}

// fakeUploads is slacktest with the three calls of slack-go's file upload
// (files.getUploadURLExternal, the upload itself, files.completeUploadExternal),
// which slacktest lacks, recording what arrives.
type fakeUploads struct {
	srv *slacktest.Server

	mu       sync.Mutex
	files    map[string][]byte // file id -> uploaded bytes
	channels []string          // channel of each completed upload
	titles   []string
}

func newFakeUploads(t *testing.T) *fakeUploads {
	f := &fakeUploads{files: map[string][]byte{}}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/files.getUploadURLExternal", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			if r.Form.Get("filename") == "" || r.Form.Get("length") == "0" {
				http.Error(w, "filename and length required", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"ok":true,"upload_url":%q,"file_id":"F1"}`, f.srv.GetAPIURL()+"upload/F1")
		})
		c.Handle("/upload/F1", func(w http.ResponseWriter, r *http.Request) {
			file, _, err := r.FormFile("file")
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			b, _ := io.ReadAll(file)
			f.mu.Lock()
			f.files["F1"] = b
			f.mu.Unlock()
			w.WriteHeader(http.StatusOK)
		})
		c.Handle("/files.completeUploadExternal", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			var files []struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			}
			_ = json.Unmarshal([]byte(r.Form.Get("files")), &files)
			f.mu.Lock()
			f.channels = append(f.channels, r.Form.Get("channel_id"))
			for _, x := range files {
				f.titles = append(f.titles, x.Title)
			}
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"ok":true,"files":[{"id":"F1","title":"chart"}]}`)
		})
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

// TestReportUploadsChart: with Slack configured, /triage report uploads
// the downtime chart (a PNG) to the channel it was typed in.
func TestReportUploadsChart(t *testing.T) {
	f := newFakeUploads(t)
	s := bootService(t, bootOptions{Env: map[string]string{
		"VMTRIAGE_SLACK_BOT_TOKEN": "xoxb-test", "VMTRIAGE_SLACK_CHANNEL": "C0OPS",
		"VMTRIAGE_SLACK_SIGNING_SECRET": "s3cret-signing", "VMTRIAGE_SLACK_API_URL": f.srv.GetAPIURL(),
		"VMTRIAGE_PUBLIC_URL": "https://vmtriage.example",
	}})
	reply := s.svc.Router.HandleText(context.Background(), "report 30d", bot.Command{User: "U1", Channel: "C0REPORT"})
	if strings.Contains(fmt.Sprint(reply.Sections), "could not be uploaded") {
		t.Fatalf("the upload failed: %v", reply.Sections)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.channels) != 1 || f.channels[0] != "C0REPORT" {
		t.Errorf("uploads completed to %v, want one to C0REPORT", f.channels)
	}
	if b := f.files["F1"]; !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("uploaded %d bytes, not a PNG", len(b))
	}
	if len(f.titles) != 1 || !strings.Contains(f.titles[0], "last 30d") {
		t.Errorf("titles = %v, want the period in it", f.titles)
	}
	if len(reply.Actions) != 1 || reply.Actions[0].URL != "https://vmtriage.example/faults?period=30d" {
		t.Errorf("actions = %+v, want a link to the fault statistics", reply.Actions)
	}
	for _, bad := range []string{"report 1y", "report 7d nowhere"} {
		r := s.svc.Router.HandleText(context.Background(), bad, bot.Command{User: "U1", Channel: "C0REPORT"})
		if r.Tone != bot.ToneWarning {
			t.Errorf("%s = %q, want a user error", bad, r.Title)
		}
	}
}
