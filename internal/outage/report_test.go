package outage

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func iv(vm, host, site string, start, end int, a Attribution) store.Outage {
	o := store.Outage{VM: vm, Host: host, Site: site, Start: at(start), Attribution: string(a)}
	if end >= 0 {
		o.End = at(end)
	}
	return o
}

const day = 24 * 60 // minutes

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestComputeAvailability(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		in                     Input
		uptime, down, mttr     float64
		outages, open          int
		by                     Minutes
		breaches, platBreaches []string
	}{
		{name: "no outages: 100%", in: Input{From: at(0), To: at(day), VMs: 10},
			uptime: 100},
		{name: "one VM down 1h of a day among 10",
			in:     Input{From: at(0), To: at(day), VMs: 10, Outages: []store.Outage{iv("vm-1", "h1", "a", 60, 120, Guest)}},
			uptime: 100 * (1 - 60.0/(10*day)), down: 60, mttr: 60, outages: 1, by: Minutes{Guest: 60},
			breaches: []string{"vm-1"}},
		{name: "clipped to the period; MTTR counts the whole outage",
			in:     Input{From: at(0), To: at(day), VMs: 1, Outages: []store.Outage{iv("vm-1", "h1", "a", -30, 30, PlatformUnplanned)}},
			uptime: 100 * (1 - 30.0/day), down: 30, mttr: 60, outages: 1, by: Minutes{PlatformUnplanned: 30},
			breaches: []string{"vm-1"}, platBreaches: []string{"vm-1"}},
		{name: "open outage counts up to now, not to the end",
			in: Input{From: at(0), To: at(day), Now: at(100), VMs: 2,
				Outages: []store.Outage{iv("vm-1", "h1", "a", 40, -1, Unknown)}},
			uptime: 100 * (1 - 60.0/(2*100)), down: 60, outages: 1, open: 1, by: Minutes{Unknown: 60},
			breaches: []string{"vm-1"}},
		{name: "platform breach only when the platform's share breaches",
			in: Input{From: at(0), To: at(30 * day), VMs: 3, Outages: []store.Outage{
				iv("vm-1", "h1", "a", 0, 10, PlatformPlanned),
				iv("vm-1", "h1", "a", 100, 110, PlatformUnplanned), // 20 min platform > 21.6 min? no
				iv("vm-2", "h1", "a", 0, 30, PlatformUnplanned),    // 30 min: breaches 99.95 (21.6 min)
				iv("vm-3", "h2", "a", 0, 50, User),                 // breach, but the user's
			}},
			uptime: 100 * (1 - 100.0/(3*30*day)), down: 100, mttr: 25, outages: 4,
			by:       Minutes{PlatformPlanned: 10, PlatformUnplanned: 40, User: 50},
			breaches: []string{"vm-3", "vm-2"}, platBreaches: []string{"vm-2"}},
		{name: "other sites are left out",
			in: Input{From: at(0), To: at(day), VMs: 1, Site: "a",
				Outages: []store.Outage{iv("vm-1", "h1", "a", 0, 10, Guest), iv("vm-9", "h9", "b", 0, 600, Guest)}},
			uptime: 100 * (1 - 10.0/day), down: 10, mttr: 10, outages: 1, by: Minutes{Guest: 10},
			breaches: []string{"vm-1"}},
		{name: "custom SLA target",
			in: Input{From: at(0), To: at(day), VMs: 1, SLATarget: 99,
				Outages: []store.Outage{iv("vm-1", "h1", "a", 0, 10, Guest)}},
			uptime: 100 * (1 - 10.0/day), down: 10, mttr: 10, outages: 1, by: Minutes{Guest: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Compute(tc.in)
			f := rep.Fleet
			if !near(f.UptimePercent, tc.uptime) || !near(f.DowntimeMinutes, tc.down) || !near(f.MTTRMinutes, tc.mttr) ||
				f.Outages != tc.outages || f.Open != tc.open || f.ByAttribution != tc.by {
				t.Errorf("fleet = %+v\nwant uptime %v down %v mttr %v outages %d open %d by %+v",
					f, tc.uptime, tc.down, tc.mttr, tc.outages, tc.open, tc.by)
			}
			var got, gotP []string
			for _, b := range rep.Breaches {
				got = append(got, b.VM)
			}
			for _, b := range rep.PlatformBreaches {
				gotP = append(gotP, b.VM)
			}
			if strings.Join(got, ",") != strings.Join(tc.breaches, ",") {
				t.Errorf("breaches = %v, want %v", got, tc.breaches)
			}
			if strings.Join(gotP, ",") != strings.Join(tc.platBreaches, ",") {
				t.Errorf("platform breaches = %v, want %v", gotP, tc.platBreaches)
			}
		})
	}
}

func TestComputeHostsDaysIncidents(t *testing.T) {
	rep := Compute(Input{
		From: at(0), To: at(2 * day), VMs: 4, HostVMs: map[string]int{"h1": 2}, SiteVMs: map[string]int{"a": 4, "b": 0},
		Outages: []store.Outage{
			iv("vm-1", "h1", "a", 14*60-60, 14*60+60, Guest), // spans midnight (t0 is 10:00)
			iv("vm-2", "h1", "a", 0, 30, User),
			iv("vm-3", "h2", "a", 10, 20, PlatformUnplanned),
		},
		Incidents: []model.Incident{
			{Kind: model.KindVM, Severity: model.SeverityMedium, Status: model.StatusResolved, StartedAt: at(0),
				FiringAt: at(1), AckedAt: at(5), ResolvedAt: at(30), Ticket: "OPS-1"},
			{Kind: model.KindVM, Severity: model.SeverityMedium, Status: model.StatusFiring, StartedAt: at(10), FiringAt: at(10)},
			{Kind: model.KindHost, Severity: model.SeverityCritical, Status: model.StatusResolved, StartedAt: at(10),
				FiringAt: at(10), AckedAt: at(12), ResolvedAt: at(70)},
			{Kind: model.KindVM, Severity: model.SeverityLow, Status: model.StatusPending, StartedAt: at(10)},   // never fired
			{Kind: model.KindVM, Severity: model.SeverityLow, Status: model.StatusResolved, StartedAt: at(-10)}, // before
		},
	})
	if len(rep.WorstHosts) != 2 || rep.WorstHosts[0].Name != "h1" || !near(rep.WorstHosts[0].DowntimeMinutes, 150) ||
		rep.WorstHosts[0].VMs != 2 || !near(rep.WorstHosts[0].UptimePercent, 100*(1-150.0/(2*2*day))) {
		t.Errorf("worst hosts = %+v, want h1 (150 min over 2 VMs) first", rep.WorstHosts)
	}
	if len(rep.Causes) != 3 || rep.Causes[0].Attribution != "guest" || !near(rep.Causes[0].Minutes, 120) {
		t.Errorf("causes = %+v, want guest's 120 min first", rep.Causes)
	}
	if rep.WorstVMs[0].Name != "vm-1" {
		t.Errorf("worst VM = %s, want vm-1", rep.WorstVMs[0].Name)
	}
	if len(rep.Days) != 3 || !near(rep.Days[0].Minutes.Guest, 60) || !near(rep.Days[1].Minutes.Guest, 60) ||
		!near(rep.Days[0].Minutes.User, 30) || !near(rep.Days[0].Minutes.PlatformUnplanned, 10) {
		t.Errorf("days = %+v, want the midnight outage split 60/60", rep.Days)
	}
	if len(rep.Sites) != 2 || rep.Sites[0].Name != "a" || rep.Sites[1].Name != "b" || rep.Sites[1].UptimePercent != 100 {
		t.Errorf("sites = %+v, want a (with downtime) and b (100%%)", rep.Sites)
	}
	tot := rep.IncidentsTotal
	if tot.Count != 3 || tot.Acked != 2 || tot.Resolved != 2 || tot.Tickets != 1 || !near(tot.MTTAMinutes, 3) || !near(tot.MTTRMinutes, 45) {
		t.Errorf("incidents total = %+v, want 3 counted, MTTA 3 min, MTTR 45 min, 1 ticket", tot)
	}
	if len(rep.Incidents) != 2 || rep.Incidents[0].Kind != "host" || rep.Incidents[1].Count != 2 {
		t.Errorf("incident groups = %+v, want host/critical then vm/medium ×2", rep.Incidents)
	}
}

// fakeSource serves a fixed fleet.
type fakeSource struct {
	outages []store.Outage
	sites   map[string]int
	hosts   map[string]int
	incs    []model.Incident
}

func (f *fakeSource) OutagesBetween(_ context.Context, from, to time.Time) ([]store.Outage, error) {
	var out []store.Outage
	for _, o := range f.outages {
		if o.Start.Before(to) && (o.Open() || !o.End.Before(from)) {
			out = append(out, o)
		}
	}
	return out, nil
}

func (f *fakeSource) CountVMs(_ context.Context, site string) (int, error) {
	if site != "" {
		return f.sites[site], nil
	}
	n := 0
	for _, c := range f.sites {
		n += c
	}
	return n, nil
}

func (f *fakeSource) HostVMCounts(_ context.Context, hosts []string) (map[string]int, error) {
	out := map[string]int{}
	for _, h := range hosts {
		out[h] = f.hosts[h]
	}
	return out, nil
}

func (f *fakeSource) Sites(context.Context) ([]string, error) {
	var out []string
	for s := range f.sites {
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeSource) Incidents(context.Context, model.IncidentFilter) ([]model.Incident, error) {
	return f.incs, nil
}

func testReporter() *Reporter {
	return &Reporter{
		Source: &fakeSource{
			outages: []store.Outage{
				iv("vm-1", "host-1", "pod-a", 60, 120, Guest),
				iv("=cmd|' /C calc'!A0", "host-1", "pod-a", 100, 130, PlatformUnplanned),
				iv("vm-3", "host-2", "pod-b", 200, -1, PlatformPlanned),
			},
			sites: map[string]int{"pod-a": 20, "pod-b": 10},
			hosts: map[string]int{"host-1": 10, "host-2": 10},
		},
		Clock: clock.NewFake(at(day)),
	}
}

func TestAvailabilityCSVGolden(t *testing.T) {
	rec := httptest.NewRecorder()
	h := testReporter().Routes()["GET /v1/reports/availability.csv"]
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/reports/availability.csv?from=2026-11-22T10:00:00Z&to=2026-11-23T10:00:00Z", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("status %d, type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	golden(t, "availability.csv.golden", rec.Body.Bytes())
}

func TestAvailabilityJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	h := testReporter().Routes()["GET /v1/reports/availability"]
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/reports/availability?from=2026-11-22T10:00:00Z&site=pod-a", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var rep Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Site != "pod-a" || rep.Fleet.VMs != 20 || !near(rep.Fleet.DowntimeMinutes, 90) || len(rep.PlatformBreaches) != 1 {
		t.Errorf("report = %+v, want pod-a, 20 VMs, 90 min down, one platform breach", rep.Fleet)
	}
}

func TestAvailabilityBadParams(t *testing.T) {
	r := testReporter()
	for _, tc := range []struct{ query, param string }{
		{"from=yesterday", "from"},
		{"to=2026-13-01", "to"},
		{"from=2026-11-23T00:00:00Z&to=2026-11-22T00:00:00Z", "from"},
		{"from=2024-01-01", "from"},
		{"site=pod-z", "site"},
		{"sight=pod-a", "sight"},
		{"from=2027-01-01&to=2027-01-02", "from"},
	} {
		for pattern, h := range r.Routes() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/x?"+tc.query, nil))
			var body map[string]string
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != http.StatusBadRequest || !strings.HasPrefix(body["error"], tc.param+": ") {
				t.Errorf("%s ?%s = %d %s, want 400 naming %s", pattern, tc.query, rec.Code, rec.Body, tc.param)
			}
		}
	}
}

// serviceMap is a fixed VM → service relation for tests.
type serviceMap map[string]string

func (m serviceMap) ServiceOf(vm string) string { return m[vm] }

func TestComputeServices(t *testing.T) {
	svc := serviceMap{"vm-1": "payments", "vm-2": "payments", "vm-3": "search"}
	for _, tc := range []struct {
		name     string
		services Services
		site     string
		outages  []store.Outage
		want     []ServiceDowntime
	}{
		{name: "no relation given: no breakdown", outages: []store.Outage{iv("vm-1", "h1", "a", 0, 60, Guest)}},
		{name: "no outages: no breakdown", services: svc},
		{name: "VMs of no service are left out", services: svc,
			outages: []store.Outage{iv("vm-9", "h1", "a", 0, 60, Guest)}},
		{name: "a service's VMs add up; most downtime first", services: svc,
			outages: []store.Outage{
				iv("vm-1", "h1", "a", 0, 30, PlatformUnplanned),
				iv("vm-1", "h2", "a", 100, 110, User),
				iv("vm-2", "h1", "a", 0, 30, PlatformUnplanned),
				iv("vm-3", "h3", "a", 200, 220, Guest),
				iv("vm-9", "h3", "a", 0, 500, Guest),
			},
			want: []ServiceDowntime{
				{Service: "payments", DowntimeMinutes: 70, ByAttribution: Minutes{PlatformUnplanned: 60, User: 10}, Outages: 3, VMs: 2},
				{Service: "search", DowntimeMinutes: 20, ByAttribution: Minutes{Guest: 20}, Outages: 1, VMs: 1},
			}},
		{name: "clipped to the period, open outages counted", services: svc,
			outages: []store.Outage{iv("vm-3", "h3", "a", -60, 15, Guest), iv("vm-1", "h1", "a", day-5, -1, Unknown)},
			want: []ServiceDowntime{
				{Service: "search", DowntimeMinutes: 15, ByAttribution: Minutes{Guest: 15}, Outages: 1, VMs: 1},
				{Service: "payments", DowntimeMinutes: 5, ByAttribution: Minutes{Unknown: 5}, Outages: 1, Open: 1, VMs: 1},
			}},
		{name: "ties by name; other sites skipped", services: svc, site: "a",
			outages: []store.Outage{
				iv("vm-3", "h3", "a", 0, 10, Guest),
				iv("vm-1", "h1", "a", 0, 10, Guest),
				iv("vm-2", "h9", "b", 0, 100, Guest),
			},
			want: []ServiceDowntime{
				{Service: "payments", DowntimeMinutes: 10, ByAttribution: Minutes{Guest: 10}, Outages: 1, VMs: 1},
				{Service: "search", DowntimeMinutes: 10, ByAttribution: Minutes{Guest: 10}, Outages: 1, VMs: 1},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Compute(Input{From: at(0), To: at(day), Site: tc.site, VMs: 10, Outages: tc.outages, Services: tc.services})
			if len(rep.Services) != len(tc.want) {
				t.Fatalf("services = %+v, want %+v", rep.Services, tc.want)
			}
			for i, w := range tc.want {
				g := rep.Services[i]
				if g.Service != w.Service || !near(g.DowntimeMinutes, w.DowntimeMinutes) || g.ByAttribution != w.ByAttribution ||
					g.Outages != w.Outages || g.Open != w.Open || g.VMs != w.VMs {
					t.Errorf("services[%d] = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}
