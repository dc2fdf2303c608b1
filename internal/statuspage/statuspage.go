// Package statuspage serves vmtriage's read-only status page: the fleet at
// a glance (counts by state, filtered and paged on the server so that it
// stays usable with 10,000 VMs and more), the detail of one VM (timeline,
// incidents, outage intervals), and platform fault statistics (downtime by
// cause and by day, with the chart). Pages are rendered with html/template,
// so every name and text from outside is escaped; there is no JavaScript
// and no build step. An optional read token guards every page.
package statuspage

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/outage"
	"github.com/vmtriage/vmtriage/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// PageSize is how many VMs one page of the fleet view lists.
const PageSize = 100

// CookieName holds the read token once given.
const CookieName = "vmtriage_status"

// Fleet is what the pages read of the state store.
type Fleet interface {
	ListVMs(ctx context.Context, site, host string) ([]model.VMStatus, error)
	VM(ctx context.Context, id string) (model.VMStatus, error)
	Host(ctx context.Context, id string, periods int) (model.HostStatus, error)
	Sites(ctx context.Context) ([]string, error)
	Incidents(ctx context.Context, f model.IncidentFilter) ([]model.Incident, error)
	Outages(ctx context.Context, vm string) ([]store.Outage, error)
	// HostStates gives the derived state of many hosts at once, for the
	// fleet view's degraded and failed hosts.
	HostStates(ctx context.Context, ids []string) (map[string]model.HostStatus, error)
}

var _ Fleet = (*store.Store)(nil)

// Actions reads what was done about incidents (remedies and their audit
// trail), for the VM page's timeline.
type Actions interface {
	RemedyForIncident(ctx context.Context, incident string) (model.Remedy, error)
	RemedyAudit(ctx context.Context, id string) ([]model.AuditEntry, error)
}

// Reports computes availability reports.
type Reports interface {
	Report(ctx context.Context, from, to time.Time, site string) (outage.Report, error)
}

// Options configure the page. Fleet and Reports are required.
type Options struct {
	Fleet   Fleet
	Reports Reports
	// Actions, if set, adds remedies (requested, approved, steps, result)
	// to the VM page's timeline.
	Actions Actions
	// Token, if set, must be presented once (?token=) or as the cookie.
	Token  config.Secret
	Clock  clock.Clock
	Logger *slog.Logger
}

// Page serves the status page.
type Page struct {
	opts Options
	log  *slog.Logger
	tmpl *template.Template
}

// New parses the templates.
func New(opts Options) (*Page, error) {
	if opts.Fleet == nil || opts.Reports == nil {
		return nil, errors.New("status page: a fleet and reports are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"ts":      func(t time.Time) string { return fmtTime(t) },
		"minutes": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"pct":     func(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) },
		"down":    func(s model.State) bool { return s.Down() },
		"path":    url.PathEscape,
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("status page templates: %w", err)
	}
	return &Page{opts: opts, log: log, tmpl: tmpl}, nil
}

// Routes returns the pages as method patterns for httpapi.Options.Extra.
func (p *Page) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /{$}":        p.guard(p.fleet),
		"GET /vms/{id}":   p.guard(p.vm),
		"GET /faults":     p.guard(p.faults),
		"GET /chart.png":  p.guard(p.chart),
		"GET /status.css": http.HandlerFunc(p.css),
	}
}

// guard checks the read token: a ?token= that matches sets the cookie and
// redirects to the same URL without it (so it does not stay in history and
// logs); otherwise the cookie must match.
func (p *Page) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'")
		if !p.opts.Token.Set() {
			h(w, r)
			return
		}
		want := []byte(p.opts.Token.Reveal())
		if tok := r.URL.Query().Get("token"); tok != "" {
			if subtle.ConstantTimeCompare([]byte(tok), want) != 1 {
				http.Error(w, "wrong token", http.StatusUnauthorized)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: CookieName, Value: tok, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			u := *r.URL
			q := u.Query()
			q.Del("token")
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		c, err := r.Cookie(CookieName)
		if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), want) != 1 {
			http.Error(w, "this status page needs its read token: open it once with ?token=…", http.StatusUnauthorized)
			return
		}
		h(w, r)
	})
}

func (p *Page) render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		p.log.Error("render status page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; see the service log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = buf.WriteTo(w)
}

func (p *Page) fail(w http.ResponseWriter, what string, err error) {
	p.log.Error("status page", "what", what, "err", err)
	http.Error(w, "vmtriage could not read "+what+"; see the service log", http.StatusInternalServerError)
}

func (p *Page) badRequest(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(msg + "\n"))
}

// StateCount is one state's number of VMs.
type StateCount struct {
	State model.State
	Count int
	// Link filters the fleet view by the state.
	Link string
}

type fleetData struct {
	Now                   string
	Total, Matching, Down int
	States                []StateCount
	Sites                 []string
	Site, Host, State     string
	AllStates             []model.State
	VMs                   []model.VMStatus
	Page, Pages           int
	Prev, Next            string
	Open                  int
	OpenBySeverity        []StateCount
	// Hosts counts the hosts of the VMs listed by derived state, and
	// BadHosts lists those failed or degraded (failed first, at most
	// MaxBadHosts), so a failing host shows at a glance.
	Hosts       int
	HostStates  []StateCount
	BadHosts    []HostRow
	MoreBadHost int
}

// HostRow is a failed or degraded host in the fleet view.
type HostRow struct {
	ID        string
	State     model.HostState
	Since     time.Time
	VMs, Down int
	// Link filters the fleet view by the host.
	Link string
}

// MaxBadHosts is how many failed or degraded hosts the fleet view lists.
const MaxBadHosts = 20

var allHostStates = []model.HostState{model.HostFailed, model.HostDegraded, model.HostHealthy, model.HostUnknown}

var allStates = []model.State{model.StateRunning, model.StateCrashed, model.StateShutoff, model.StatePaused,
	model.StateUnavailable, model.StateUnknown}

func (p *Page) fleet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	site, host, state := q.Get("site"), q.Get("host"), q.Get("state")
	if state != "" && !slices.Contains(allStates, model.State(state)) {
		p.badRequest(w, "state: must be one of running, crashed, shutoff, paused, unavailable, unknown")
		return
	}
	page := 1
	if s := q.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			p.badRequest(w, "page: must be a whole number from 1")
			return
		}
		page = n
	}
	ctx := r.Context()
	vms, err := p.opts.Fleet.ListVMs(ctx, site, host)
	if err != nil {
		p.fail(w, "the fleet", err)
		return
	}
	sites, err := p.opts.Fleet.Sites(ctx)
	if err != nil {
		p.fail(w, "the sites", err)
		return
	}
	d := fleetData{Now: fmtTime(p.opts.Clock.Now()), Total: len(vms), Sites: sites, Site: site, Host: host, State: state,
		AllStates: allStates}
	counts := map[model.State]int{}
	matching := vms[:0:0]
	for _, vm := range vms {
		st := vm.State
		if st == "" {
			st = model.StateUnknown
		}
		counts[st]++
		if vm.State.Down() {
			d.Down++
		}
		if state == "" || st == model.State(state) {
			matching = append(matching, vm)
		}
	}
	// Down VMs first, then by id: the page's first screen is what needs eyes.
	sort.SliceStable(matching, func(i, j int) bool { return matching[i].State.Down() && !matching[j].State.Down() })
	for _, s := range allStates {
		if counts[s] > 0 {
			d.States = append(d.States, StateCount{State: s, Count: counts[s], Link: fleetLink(site, host, string(s), 1)})
		}
	}
	d.Matching = len(matching)
	d.Pages = max(1, (len(matching)+PageSize-1)/PageSize)
	if page > d.Pages {
		page = d.Pages
	}
	d.Page = page
	lo := (page - 1) * PageSize
	d.VMs = matching[lo:min(lo+PageSize, len(matching))]
	if page > 1 {
		d.Prev = fleetLink(site, host, state, page-1)
	}
	if page < d.Pages {
		d.Next = fleetLink(site, host, state, page+1)
	}
	open, err := p.opts.Fleet.Incidents(ctx, model.IncidentFilter{Site: site, Host: host, Status: model.StatusFiring})
	if err != nil {
		p.fail(w, "the incidents", err)
		return
	}
	d.Open = len(open)
	bySev := map[model.Severity]int{}
	for _, inc := range open {
		bySev[inc.Severity]++
	}
	for _, s := range []model.Severity{model.SeverityCritical, model.SeverityHigh, model.SeverityMedium, model.SeverityLow} {
		if bySev[s] > 0 {
			d.OpenBySeverity = append(d.OpenBySeverity, StateCount{State: model.State(s), Count: bySev[s]})
		}
	}
	if err := p.hostSummary(r, &d, vms, site); err != nil {
		p.fail(w, "the hosts", err)
		return
	}
	p.render(w, "fleet.html", d)
}

// hostSummary fills the host counts and the failed and degraded hosts of
// the VMs listed.
func (p *Page) hostSummary(r *http.Request, d *fleetData, vms []model.VMStatus, site string) error {
	vmsOn, downOn := map[string]int{}, map[string]int{}
	for _, vm := range vms {
		if vm.Host == "" {
			continue
		}
		vmsOn[vm.Host]++
		if vm.State.Down() {
			downOn[vm.Host]++
		}
	}
	ids := slices.Sorted(maps.Keys(vmsOn))
	states, err := p.opts.Fleet.HostStates(r.Context(), ids)
	if err != nil {
		return err
	}
	d.Hosts = len(ids)
	counts := map[model.HostState]int{}
	var bad []HostRow
	for _, id := range ids {
		h, ok := states[id]
		st := h.State
		if !ok || st == "" {
			st = model.HostUnknown
		}
		counts[st]++
		if st == model.HostFailed || st == model.HostDegraded {
			bad = append(bad, HostRow{ID: id, State: st, Since: h.Since, VMs: vmsOn[id], Down: downOn[id],
				Link: fleetLink(site, id, "", 1)})
		}
	}
	for _, st := range allHostStates {
		if counts[st] > 0 {
			d.HostStates = append(d.HostStates, StateCount{State: model.State(st), Count: counts[st]})
		}
	}
	// Failed before degraded, then the longest in that state.
	slices.SortStableFunc(bad, func(a, b HostRow) int {
		return cmp.Or(cmp.Compare(slices.Index(allHostStates, a.State), slices.Index(allHostStates, b.State)), a.Since.Compare(b.Since))
	})
	if len(bad) > MaxBadHosts {
		d.MoreBadHost = len(bad) - MaxBadHosts
		bad = bad[:MaxBadHosts]
	}
	d.BadHosts = bad
	return nil
}

func fleetLink(site, host, state string, page int) string {
	v := url.Values{}
	for k, x := range map[string]string{"site": site, "host": host, "state": state} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// Event is one line of a VM's timeline.
type Event struct {
	At   time.Time
	What string
	// Incident links the line to an incident, if any.
	Incident string
}

type kv struct{ Key, Value string }

type vmData struct {
	VM        model.VMStatus
	Now       string
	Attrs     []kv
	HostState string
	Periods   []model.HostPeriod
	Incidents []model.Incident
	Outages   []store.Outage
	Timeline  []Event
}

func (p *Page) vm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx := r.Context()
	vm, err := p.opts.Fleet.VM(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		w.WriteHeader(http.StatusNotFound)
		p.render(w, "notfound.html", id)
		return
	}
	if err != nil {
		p.fail(w, "the VM", err)
		return
	}
	d := vmData{VM: vm, Now: fmtTime(p.opts.Clock.Now())}
	for _, k := range sortedKeys(vm.Attrs) {
		d.Attrs = append(d.Attrs, kv{Key: k, Value: fmt.Sprint(vm.Attrs[k])})
	}
	if vm.Host != "" {
		h, err := p.opts.Fleet.Host(ctx, vm.Host, 10)
		if err == nil {
			d.HostState, d.Periods = string(h.State), h.Periods
		} else if !errors.Is(err, store.ErrNotFound) {
			p.fail(w, "the VM's host", err)
			return
		}
	}
	if d.Incidents, err = p.opts.Fleet.Incidents(ctx, model.IncidentFilter{VM: id, Limit: 50}); err != nil {
		p.fail(w, "the VM's incidents", err)
		return
	}
	if d.Outages, err = p.opts.Fleet.Outages(ctx, id); err != nil {
		p.fail(w, "the VM's outages", err)
		return
	}
	slices.Reverse(d.Outages) // newest first
	d.Timeline = timeline(vm, d.Incidents, d.Outages, d.Periods)
	if p.opts.Actions != nil {
		acts, err := p.actions(ctx, d.Incidents)
		if err != nil {
			p.fail(w, "the VM's remedies", err)
			return
		}
		d.Timeline = append(d.Timeline, acts...)
		sort.SliceStable(d.Timeline, func(i, j int) bool { return d.Timeline[i].At.After(d.Timeline[j].At) })
	}
	p.render(w, "vm.html", d)
}

// timeline merges what is known of a VM, newest first: its current state,
// its incidents' steps (start, firing, acknowledgement, resolution), its
// outages and its host's derived state per period.
func timeline(vm model.VMStatus, incs []model.Incident, outs []store.Outage, periods []model.HostPeriod) []Event {
	var ev []Event
	if !vm.Since.IsZero() {
		ev = append(ev, Event{At: vm.Since, What: "state " + string(vm.State) + " (" + vm.Source + ")"})
	}
	for _, inc := range incs {
		ev = append(ev, Event{At: inc.StartedAt, What: inc.ID + " started: " + inc.Summary, Incident: inc.ID})
		if !inc.FiringAt.IsZero() {
			ev = append(ev, Event{At: inc.FiringAt, What: inc.ID + " firing (" + string(inc.Severity) + ")", Incident: inc.ID})
		}
		if !inc.AckedAt.IsZero() {
			ev = append(ev, Event{At: inc.AckedAt, What: inc.ID + " acknowledged by " + inc.AckedBy, Incident: inc.ID})
		}
		if !inc.ResolvedAt.IsZero() {
			ev = append(ev, Event{At: inc.ResolvedAt, What: inc.ID + " resolved", Incident: inc.ID})
		}
	}
	for _, o := range outs {
		ev = append(ev, Event{At: o.Start, What: "outage began (" + o.Attribution + ")"})
		if !o.End.IsZero() {
			ev = append(ev, Event{At: o.End, What: "outage ended after " + o.End.Sub(o.Start).Round(time.Second).String()})
		}
	}
	for _, per := range periods {
		what := "host " + string(per.State)
		if len(per.Reasons) > 0 {
			what += ": " + strings.Join(per.Reasons, ", ")
		}
		ev = append(ev, Event{At: per.Start, What: what})
	}
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].At.After(ev[j].At) })
	return ev
}

// actions turns the audit trails of the incidents' remedies into timeline
// lines.
func (p *Page) actions(ctx context.Context, incs []model.Incident) ([]Event, error) {
	var out []Event
	for _, inc := range incs {
		rem, err := p.opts.Actions.RemedyForIncident(ctx, inc.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		audit, err := p.opts.Actions.RemedyAudit(ctx, rem.ID)
		if err != nil {
			return nil, err
		}
		for _, a := range audit {
			what := "action " + rem.ID + " (" + string(rem.Action) + "): " + a.What
			if a.Who != "" {
				what += " — " + a.Who
			}
			if a.Result != "" {
				what += ": " + a.Result
			}
			out = append(out, Event{At: a.At, What: what, Incident: inc.ID})
		}
	}
	return out, nil
}

// Periods the fault statistics offer.
var periods = map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

type faultsData struct {
	Report       outage.Report
	Period, Site string
	Sites        []string
	Chart        string
	Attributions []outage.Attribution
}

func (p *Page) report(w http.ResponseWriter, r *http.Request) (outage.Report, string, string, bool) {
	q := r.URL.Query()
	period := q.Get("period")
	if period == "" {
		period = "7d"
	}
	d, ok := periods[period]
	if !ok {
		p.badRequest(w, "period: must be 24h, 7d or 30d")
		return outage.Report{}, "", "", false
	}
	now := p.opts.Clock.Now()
	rep, err := p.opts.Reports.Report(r.Context(), now.Add(-d), now, q.Get("site"))
	var pe *outage.ParamError
	if errors.As(err, &pe) {
		p.badRequest(w, pe.Error())
		return outage.Report{}, "", "", false
	}
	if err != nil {
		p.fail(w, "the outage books", err)
		return outage.Report{}, "", "", false
	}
	return rep, period, q.Get("site"), true
}

func (p *Page) faults(w http.ResponseWriter, r *http.Request) {
	rep, period, site, ok := p.report(w, r)
	if !ok {
		return
	}
	sites, err := p.opts.Fleet.Sites(r.Context())
	if err != nil {
		p.fail(w, "the sites", err)
		return
	}
	v := url.Values{"period": {period}}
	if site != "" {
		v.Set("site", site)
	}
	p.render(w, "faults.html", faultsData{Report: rep, Period: period, Site: site, Sites: sites,
		Chart: "/chart.png?" + v.Encode(), Attributions: outage.Attributions})
}

func (p *Page) chart(w http.ResponseWriter, r *http.Request) {
	rep, _, _, ok := p.report(w, r)
	if !ok {
		return
	}
	var buf bytes.Buffer
	if err := outage.WriteChart(&buf, rep.Days); err != nil {
		p.fail(w, "the chart", err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}

func (p *Page) css(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write([]byte(css))
	for _, a := range outage.Attributions {
		_, _ = fmt.Fprintf(w, "\n.a-%s{background:%s}", a, outage.ChartColor(a))
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const css = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#fff;padding:8px 16px}header a{color:#fff;margin-right:16px}
main{padding:16px}table{border-collapse:collapse;background:#fff;margin:8px 0}
td,th{border:1px solid #e5e7eb;padding:4px 8px;text-align:left}th{background:#f3f4f6}
.down{color:#b91c1c;font-weight:600}.ok{color:#047857}.warn{color:#b45309;font-weight:600}.cards{display:flex;gap:8px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e5e7eb;padding:8px 12px;min-width:90px}.card b{display:block;font-size:20px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px}form{margin:8px 0}`
