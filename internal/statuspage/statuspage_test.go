package statuspage

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/outage"
	"github.com/vmtriage/vmtriage/internal/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

const hostile = `<script>alert("x")</script>`

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fakeFleet is a small fleet with hostile names.
type fakeFleet struct {
	vms  []model.VMStatus
	incs []model.Incident
	outs map[string][]store.Outage
}

func (f *fakeFleet) ListVMs(_ context.Context, site, host string) ([]model.VMStatus, error) {
	var out []model.VMStatus
	for _, v := range f.vms {
		if (site == "" || v.Site == site) && (host == "" || v.Host == host) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (f *fakeFleet) VM(_ context.Context, id string) (model.VMStatus, error) {
	for _, v := range f.vms {
		if v.ID == id {
			return v, nil
		}
	}
	return model.VMStatus{}, fmt.Errorf("vm %s: %w", id, store.ErrNotFound)
}

func (f *fakeFleet) Host(_ context.Context, id string, _ int) (model.HostStatus, error) {
	return model.HostStatus{ID: id, State: model.HostFailed, Periods: []model.HostPeriod{
		{Start: t0, State: model.HostFailed, Reasons: []string{"ecc_uncorrected=3 " + hostile}}}}, nil
}

// HostStates gives host-01 degraded, the hostile host failed, and every
// other host healthy.
func (f *fakeFleet) HostStates(_ context.Context, ids []string) (map[string]model.HostStatus, error) {
	out := map[string]model.HostStatus{}
	for _, id := range ids {
		st := model.HostHealthy
		switch id {
		case "host-01":
			st = model.HostDegraded
		case "host-" + hostile:
			st = model.HostFailed
		}
		out[id] = model.HostStatus{ID: id, State: st, Since: t0.Add(-10 * time.Minute)}
	}
	return out, nil
}

func (f *fakeFleet) Sites(context.Context) ([]string, error) { return []string{"pod-a", hostile}, nil }

func (f *fakeFleet) Incidents(_ context.Context, flt model.IncidentFilter) ([]model.Incident, error) {
	var out []model.Incident
	for _, inc := range f.incs {
		if flt.Match(&inc) {
			out = append(out, inc)
		}
	}
	return out, nil
}

func (f *fakeFleet) Outages(_ context.Context, vm string) ([]store.Outage, error) {
	return append([]store.Outage(nil), f.outs[vm]...), nil
}

func (f *fakeFleet) RemedyForIncident(_ context.Context, incident string) (model.Remedy, error) {
	if incident != "inc-1" {
		return model.Remedy{}, fmt.Errorf("remedy of %s: %w", incident, store.ErrNotFound)
	}
	return model.Remedy{ID: "rem-1", Incident: "inc-1", Action: model.ActionMigrateHost}, nil
}

func (f *fakeFleet) RemedyAudit(context.Context, string) ([]model.AuditEntry, error) {
	return []model.AuditEntry{
		{At: t0.Add(time.Minute), Who: "vmtriage", What: "requested migrate 1 VM(s) off host-" + hostile},
		{At: t0.Add(2 * time.Minute), Who: "U0LEAD1", What: "approved"},
		{At: t0.Add(5 * time.Minute), Who: "vmtriage", What: "done", Result: "1 moved"},
	}, nil
}

type fakeReports struct{ rep outage.Report }

func (f *fakeReports) Report(_ context.Context, from, to time.Time, site string) (outage.Report, error) {
	if site == "nowhere" {
		return outage.Report{}, &outage.ParamError{Param: "site", Msg: "no site is named \"nowhere\""}
	}
	return f.rep, nil
}

func testFleet(n int) *fakeFleet {
	f := &fakeFleet{outs: map[string][]store.Outage{}}
	f.vms = append(f.vms, model.VMStatus{ID: hostile, Host: "host-" + hostile, Site: hostile, State: model.StateCrashed,
		Event: "VirtualMachineCrashed", Source: "azure", Since: t0, Attrs: map[string]any{"crash_reason": hostile}})
	for i := range n {
		st := model.StateRunning
		if i%7 == 3 {
			st = model.StateShutoff
		}
		f.vms = append(f.vms, model.VMStatus{ID: fmt.Sprintf("vm-%04d", i), Host: fmt.Sprintf("host-%02d", i%20),
			Site: "pod-a", State: st, Source: "libvirt", Since: t0.Add(-time.Hour)})
	}
	f.incs = []model.Incident{{ID: "inc-1", Kind: model.KindVM, Subject: hostile, VMs: []string{hostile}, Status: model.StatusFiring,
		Severity: model.SeverityCritical, Cause: "host-hardware-fault", Trigger: model.TriggerPlatform, Site: hostile,
		Summary: hostile + " crashed on a failing host", StartedAt: t0, FiringAt: t0.Add(30 * time.Second),
		Ticket: "OPS-1", TicketURL: "javascript:alert(1)"}}
	f.outs[hostile] = []store.Outage{{VM: hostile, Host: "host-" + hostile, Site: hostile, Start: t0, Attribution: "platform-unplanned",
		Cause: "host-hardware-fault", Causes: []store.OutageCause{{Incident: "inc-1", Attribution: "platform-unplanned", Silenced: true}}}}
	return f
}

func testReport() outage.Report {
	return outage.Compute(outage.Input{From: t0.Add(-24 * time.Hour), To: t0.Add(time.Hour), Now: t0.Add(time.Hour), VMs: 41,
		Outages: []store.Outage{{VM: hostile, Host: "host-" + hostile, Site: hostile, Start: t0, Attribution: "platform-unplanned",
			Cause: hostile}},
		Incidents: testFleet(0).incs})
}

func newPage(t *testing.T, token string, n int) *httptest.Server {
	t.Helper()
	f := testFleet(n)
	p, err := New(Options{Fleet: f, Actions: f, Reports: &fakeReports{testReport()}, Token: config.Secret(token),
		Clock: clock.NewFake(t0.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pat, h := range p.Routes() {
		mux.Handle(pat, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n%s", name, got)
	}
}

// TestPagesGolden renders every page with hostile names and keeps the HTML
// in golden files; no raw <script> may come through.
func TestPagesGolden(t *testing.T) {
	srv := newPage(t, "", 12)
	for _, tc := range []struct{ name, path string }{
		{"fleet.html", "/"},
		{"fleet_down.html", "/?state=shutoff&site=pod-a"},
		{"vm.html", "/vms/" + url.PathEscape(hostile)},
		{"faults.html", "/faults?period=24h"},
		{"notfound.html", "/vms/" + "%3Cb%3Enope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, srv.Client(), srv.URL+tc.path)
			if tc.name == "notfound.html" {
				if code != http.StatusNotFound {
					t.Errorf("status %d, want 404", code)
				}
			} else if code != http.StatusOK {
				t.Fatalf("GET %s = %d: %s", tc.path, code, body)
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, "<b>nope") || strings.Contains(body, "javascript:") {
				t.Errorf("GET %s let markup through unescaped:\n%s", tc.path, body)
			}
			golden(t, tc.name, []byte(body))
		})
	}
}

// TestFleetPaging: 10,000 VMs are paged on the server, down VMs first.
func TestFleetPaging(t *testing.T) {
	srv := newPage(t, "", 10_000)
	_, body := get(t, srv.Client(), srv.URL+"/")
	if n := strings.Count(body, `<tr><td><a href="/vms/`); n != PageSize {
		t.Errorf("first page lists %d VMs, want %d", n, PageSize)
	}
	if !strings.Contains(body, "page 1 of 101") || !strings.Contains(body, `href="/?page=2"`) {
		t.Errorf("first page does not say page 1 of 101 with a next link")
	}
	if !strings.Contains(body, `class="down">shutoff`) || strings.Contains(body, `class="ok">running`) {
		t.Errorf("first page should list only down VMs (1,430 of them), none running")
	}
	_, last := get(t, srv.Client(), srv.URL+"/?page=101")
	if n := strings.Count(last, `<tr><td><a href="/vms/`); n != 1 {
		t.Errorf("last page lists %d VMs, want 1", n)
	}
	for _, q := range []string{"/?state=burning", "/?page=0", "/?page=x", "/faults?period=1y", "/faults?site=nowhere", "/chart.png?period=2d"} {
		if code, body := get(t, srv.Client(), srv.URL+q); code != http.StatusBadRequest {
			t.Errorf("GET %s = %d %s, want 400", q, code, body)
		}
	}
	code, png := get(t, srv.Client(), srv.URL+"/chart.png?period=7d")
	if code != http.StatusOK || !strings.HasPrefix(png, "\x89PNG") {
		t.Errorf("GET /chart.png = %d, not a PNG", code)
	}
}

func TestReadToken(t *testing.T) {
	srv := newPage(t, "s3cret", 3)
	c := srv.Client()
	if code, _ := get(t, c, srv.URL+"/"); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", code)
	}
	if code, body := get(t, c, srv.URL+"/?token=wrong"); code != http.StatusUnauthorized || strings.Contains(body, "s3cret") {
		t.Errorf("wrong token: %d %s, want 401 without the token", code, body)
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(srv.URL + "/faults?period=24h&token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/faults?period=24h" || len(resp.Cookies()) != 1 {
		t.Fatalf("right token: %d to %q with %d cookies, want 303 to the URL without it and a cookie", resp.StatusCode, loc, len(resp.Cookies()))
	}
	req, _ := http.NewRequest("GET", srv.URL+loc, nil)
	req.AddCookie(resp.Cookies()[0])
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with the cookie: %d, want 200", resp.StatusCode)
	}
}
