package outage

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// MaxPeriod is the longest period a report may cover.
const MaxPeriod = 400 * 24 * time.Hour

// DefaultPeriod is the period of a report when from is not given.
const DefaultPeriod = 7 * 24 * time.Hour

// Source is what a Reporter reads.
type Source interface {
	OutagesBetween(ctx context.Context, from, to time.Time) ([]store.Outage, error)
	CountVMs(ctx context.Context, site string) (int, error)
	HostVMCounts(ctx context.Context, hosts []string) (map[string]int, error)
	Sites(ctx context.Context) ([]string, error)
	Incidents(ctx context.Context, f model.IncidentFilter) ([]model.Incident, error)
}

var _ Source = (*store.Store)(nil)

// Reporter computes availability reports from the store.
type Reporter struct {
	Source Source
	// SLATarget is the availability target in percent (DefaultSLATarget
	// when zero).
	SLATarget float64
	// Services, if set, names each VM's service for the report's downtime
	// by service.
	Services Services
	Clock    clock.Clock
}

// Now is the reporter's clock reading.
func (r *Reporter) Now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// ParamError is a bad report parameter; its text names the parameter and
// may be shown to whoever asked.
type ParamError struct {
	Param, Msg string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// Report computes the availability report over [from, to) for site (empty:
// the fleet). An unknown site is a *ParamError.
func (r *Reporter) Report(ctx context.Context, from, to time.Time, site string) (Report, error) {
	sites, err := r.Source.Sites(ctx)
	if err != nil {
		return Report{}, err
	}
	if site != "" && !slices.Contains(sites, site) {
		return Report{}, &ParamError{"site", "no site is named " + quote(site)}
	}
	ivs, err := r.Source.OutagesBetween(ctx, from, to)
	if err != nil {
		return Report{}, err
	}
	in := Input{From: from, To: to, Now: r.Now(), Site: site, Outages: ivs, SLATarget: r.SLATarget,
		SiteVMs: map[string]int{}, Services: r.Services}
	if in.VMs, err = r.Source.CountVMs(ctx, site); err != nil {
		return Report{}, err
	}
	for _, s := range sites {
		if site == "" || s == site {
			if in.SiteVMs[s], err = r.Source.CountVMs(ctx, s); err != nil {
				return Report{}, err
			}
		}
	}
	var hosts []string
	seen := map[string]bool{}
	for i := range ivs {
		// Intervals come by VM, so a host mostly repeats the one before:
		// skip the map then (300,000 lookups in a 30-day fleet report).
		if i > 0 && ivs[i].Host == ivs[i-1].Host {
			continue
		}
		if h := ivs[i].Host; h != "" && !seen[h] && (site == "" || ivs[i].Site == site) {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	if in.HostVMs, err = r.Source.HostVMCounts(ctx, hosts); err != nil {
		return Report{}, err
	}
	if in.Incidents, err = r.Source.Incidents(ctx, model.IncidentFilter{Site: site, Limit: store.MaxIncidents}); err != nil {
		return Report{}, err
	}
	return Compute(in), nil
}

// ParseWindow reads from and to (RFC 3339 or a date, UTC) with defaults
// to = now and from = to − DefaultPeriod. Errors are *ParamError.
func ParseWindow(fromText, toText string, now time.Time) (time.Time, time.Time, error) {
	to := now
	if toText != "" {
		t, err := parseTime(toText)
		if err != nil {
			return time.Time{}, time.Time{}, &ParamError{"to", err.Error()}
		}
		to = t
	}
	from := to.Add(-DefaultPeriod)
	if fromText != "" {
		t, err := parseTime(fromText)
		if err != nil {
			return time.Time{}, time.Time{}, &ParamError{"from", err.Error()}
		}
		from = t
	}
	switch {
	case !from.Before(to):
		return time.Time{}, time.Time{}, &ParamError{"from", "must be before to"}
	case to.Sub(from) > MaxPeriod:
		return time.Time{}, time.Time{}, &ParamError{"from", fmt.Sprintf("the period may be at most %d days", int(MaxPeriod.Hours()/24))}
	case !from.Before(now):
		return time.Time{}, time.Time{}, &ParamError{"from", "is in the future"}
	}
	return from, to, nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s is not a time; use RFC 3339 (2026-11-22T10:00:00Z) or a date (2026-11-22)", quote(s))
}

// quote quotes user text for an error message, cut to 64 characters.
func quote(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "…"
	}
	return strconv.Quote(strings.ToValidUTF8(s, "?"))
}

// Routes returns the report endpoints, as method patterns for
// httpapi.Options.Extra: GET /v1/reports/availability (JSON) and GET
// /v1/reports/availability.csv.
func (r *Reporter) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /v1/reports/availability":     http.HandlerFunc(r.serveJSON),
		"GET /v1/reports/availability.csv": http.HandlerFunc(r.serveCSV),
	}
}

// request reads the query and computes the report, answering the error
// itself (400 naming the parameter, else 500) when there is one.
func (r *Reporter) request(w http.ResponseWriter, req *http.Request) (Report, bool) {
	q := req.URL.Query()
	for name := range q {
		if name != "from" && name != "to" && name != "site" {
			writeError(w, http.StatusBadRequest, &ParamError{name, "unknown parameter; use from, to and site"})
			return Report{}, false
		}
	}
	from, to, err := ParseWindow(q.Get("from"), q.Get("to"), r.Now())
	if err == nil {
		var rep Report
		if rep, err = r.Report(req.Context(), from, to, q.Get("site")); err == nil {
			return rep, true
		}
	}
	if pe, ok := err.(*ParamError); ok {
		writeError(w, http.StatusBadRequest, pe)
	} else {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("the report could not be computed; see the service log"))
	}
	return Report{}, false
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (r *Reporter) serveJSON(w http.ResponseWriter, req *http.Request) {
	rep, ok := r.request(w, req)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}

func (r *Reporter) serveCSV(w http.ResponseWriter, req *http.Request) {
	rep, ok := r.request(w, req)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="availability.csv"`)
	_ = WriteCSV(w, &rep)
}

// CSVHeader is the first row of WriteCSV.
var CSVHeader = []string{"level", "name", "host", "site", "vms", "uptime_percent", "downtime_minutes",
	"platform_planned_minutes", "platform_unplanned_minutes", "user_minutes", "guest_minutes", "unknown_minutes",
	"outages", "open", "mttr_minutes", "sla_breach", "platform_sla_breach"}

// WriteCSV writes the report for spreadsheets: one row for the fleet (or
// the site asked for), one per site, then one per host and per VM with
// downtime. Cells that a spreadsheet would run as a formula are defused.
func WriteCSV(w interface{ Write([]byte) (int, error) }, rep *Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(CSVHeader)
	platformBreach := map[string]bool{}
	for _, b := range rep.PlatformBreaches {
		platformBreach[b.VM] = true
	}
	row := func(level string, a *Availability) {
		breach, pbreach := "", ""
		if level == "vm" {
			breach = strconv.FormatBool(a.UptimePercent < rep.SLATarget)
			pbreach = strconv.FormatBool(platformBreach[a.Name])
		}
		m := &a.ByAttribution
		_ = cw.Write([]string{level, cell(a.Name), cell(a.Host), cell(a.Site), strconv.Itoa(a.VMs), pct(a.UptimePercent), num(a.DowntimeMinutes),
			num(m.PlatformPlanned), num(m.PlatformUnplanned), num(m.User), num(m.Guest), num(m.Unknown),
			strconv.Itoa(a.Outages), strconv.Itoa(a.Open), num(a.MTTRMinutes), breach, pbreach})
	}
	level := "fleet"
	if rep.Site != "" {
		level = "scope"
	}
	row(level, &rep.Fleet)
	for i := range rep.Sites {
		row("site", &rep.Sites[i])
	}
	for i := range rep.Hosts {
		row("host", &rep.Hosts[i])
	}
	for i := range rep.VMs {
		row("vm", &rep.VMs[i])
	}
	cw.Flush()
	return cw.Error()
}

// cell defuses text a spreadsheet would evaluate (=, +, -, @ first).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }
func pct(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }
