package outage

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// DefaultSLATarget is the availability target in percent when none is
// configured.
const DefaultSLATarget = 99.95

// DefaultWorst is how many worst VMs and hosts a report lists.
const DefaultWorst = 10

// Input is everything an availability report is computed from.
type Input struct {
	// From and To bound the period; To is capped at Now (the future has
	// no downtime yet, nor uptime).
	From, To, Now time.Time
	// Site limits the report to one site; empty is the whole fleet.
	Site string
	// Outages are the intervals overlapping the period (any site; those of
	// other sites are skipped).
	Outages []store.Outage
	// VMs is how many VMs are in scope (the site's or the fleet's).
	VMs int
	// SiteVMs and HostVMs count the VMs of each site and host, for their
	// uptime; a missing count is taken from the VMs seen in Outages.
	SiteVMs map[string]int
	HostVMs map[string]int
	// Incidents are the incidents to analyse (started in the period; any
	// site, others are skipped).
	Incidents []model.Incident
	// SLATarget is the availability target in percent (DefaultSLATarget
	// when zero).
	SLATarget float64
	// Worst is how many worst VMs and hosts to list (DefaultWorst when 0).
	Worst int
	// Services, if set, names each VM's service for the downtime by
	// service; nil leaves Report.Services empty.
	Services Services
}

// Services names the service a VM is an instance of ("" when none), as the
// inventory in force says at report time: intervals do not keep services,
// and an incident's services are those of all its VMs, not of each one.
type Services interface {
	ServiceOf(vm string) string
}

// ServiceDowntime is the downtime of one service's VMs over the period.
type ServiceDowntime struct {
	Service         string  `json:"service"`
	DowntimeMinutes float64 `json:"downtime_minutes"`
	ByAttribution   Minutes `json:"downtime_by_attribution"`
	// Outages counts the intervals of its VMs, Open those still going on;
	// VMs counts its VMs with downtime.
	Outages int `json:"outages"`
	Open    int `json:"open"`
	VMs     int `json:"vms"`
}

// Minutes is downtime in minutes by attribution.
type Minutes struct {
	PlatformPlanned   float64 `json:"platform-planned"`
	PlatformUnplanned float64 `json:"platform-unplanned"`
	User              float64 `json:"user"`
	Guest             float64 `json:"guest"`
	Unknown           float64 `json:"unknown"`
}

// Get returns the minutes of one attribution.
func (m *Minutes) Get(a Attribution) float64 {
	switch a {
	case PlatformPlanned:
		return m.PlatformPlanned
	case PlatformUnplanned:
		return m.PlatformUnplanned
	case User:
		return m.User
	case Guest:
		return m.Guest
	}
	return m.Unknown
}

// Total is the sum over attributions.
func (m *Minutes) Total() float64 {
	return m.PlatformPlanned + m.PlatformUnplanned + m.User + m.Guest + m.Unknown
}

// Availability is the availability of a VM, host, site or the fleet.
type Availability struct {
	Name string `json:"name"`
	// Host and Site are set for a VM (Site also for a host).
	Host string `json:"host,omitempty"`
	Site string `json:"site,omitempty"`
	// VMs counts the VMs whose time makes up the whole (1 for a VM).
	VMs             int     `json:"vms"`
	UptimePercent   float64 `json:"uptime_percent"`
	DowntimeMinutes float64 `json:"downtime_minutes"`
	ByAttribution   Minutes `json:"downtime_by_attribution"`
	Outages         int     `json:"outages"`
	// MTTRMinutes is the mean duration of the outages that ended in the
	// period (whole outages, also the part before the period); 0 if none.
	MTTRMinutes float64 `json:"mttr_minutes"`
	// Open counts outages still going on.
	Open int `json:"open"`
}

// Day is one UTC day's downtime by attribution.
type Day struct {
	Date    string  `json:"date"`
	Minutes Minutes `json:"minutes"`
}

// Breach is a VM under the SLA target.
type Breach struct {
	VM            string  `json:"vm"`
	Host          string  `json:"host,omitempty"`
	Site          string  `json:"site,omitempty"`
	UptimePercent float64 `json:"uptime_percent"`
	// PlatformUptimePercent counts only the platform's downtime (planned
	// and unplanned): below the target, the VM's user may claim credits.
	PlatformUptimePercent float64 `json:"platform_uptime_percent"`
}

// IncidentGroup is ticket analytics for one kind and severity.
type IncidentGroup struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Count    int    `json:"count"`
	Acked    int    `json:"acked"`
	Resolved int    `json:"resolved"`
	Tickets  int    `json:"tickets"`
	// MTTAMinutes is the mean time from firing to acknowledgement of those
	// acknowledged; MTTRMinutes from start to resolution of those resolved.
	MTTAMinutes float64 `json:"mtta_minutes"`
	MTTRMinutes float64 `json:"mttr_minutes"`
}

// Report is an availability report over a period.
type Report struct {
	From      time.Time      `json:"from"`
	To        time.Time      `json:"to"`
	Site      string         `json:"site,omitempty"`
	SLATarget float64        `json:"sla_target"`
	Fleet     Availability   `json:"fleet"`
	Sites     []Availability `json:"sites"`
	// WorstVMs and WorstHosts are those with the most downtime.
	WorstVMs   []Availability `json:"worst_vms"`
	WorstHosts []Availability `json:"worst_hosts"`
	// Breaches are the VMs under the SLA target; PlatformBreaches those
	// under it by the platform's downtime alone.
	Breaches         []Breach `json:"sla_breaches"`
	PlatformBreaches []Breach `json:"platform_sla_breaches"`
	Days             []Day    `json:"days"`
	// Causes is downtime by the cause of the attributing incident, most
	// downtime first ("" is downtime no incident explained).
	Causes []CauseMinutes `json:"causes"`
	// Incidents is ticket analytics by kind and severity; IncidentsTotal
	// sums them.
	Incidents      []IncidentGroup `json:"incidents"`
	IncidentsTotal IncidentGroup   `json:"incidents_total"`
	// Services is downtime by service (Input.Services), most downtime
	// first; VMs of no service are left out.
	Services []ServiceDowntime `json:"services,omitempty"`
	// VMs and Hosts are every VM and host with downtime, by name; they
	// feed the CSV and are left out of the JSON (Worst* cover it).
	VMs   []Availability `json:"-"`
	Hosts []Availability `json:"-"`
}

// CauseMinutes is the downtime booked to one cause.
type CauseMinutes struct {
	Cause       string  `json:"cause"`
	Attribution string  `json:"attribution"`
	Minutes     float64 `json:"minutes"`
	Outages     int     `json:"outages"`
}

// acc adds up downtime.
type acc struct {
	name, host, site string
	vms              int
	by               [5]time.Duration
	outages, open    int
	repaired         int
	repairSum        time.Duration
	// seen counts the VMs of a host or site met in the intervals; onHost
	// and onSite are where a VM's latest interval was booked.
	seen           int
	onHost, onSite *acc
	// service is a VM's service (nil for none), looked up once (named).
	service *acc
	named   bool
}

func (a *acc) down() time.Duration {
	var d time.Duration
	for _, x := range a.by {
		d += x
	}
	return d
}

// add books one interval whose attribution has rank (Attribution.Rank,
// worked out once per interval by the caller).
func (a *acc) add(o *store.Outage, rank int, clipped time.Duration, end time.Time, from time.Time) {
	a.by[rank] += clipped
	a.outages++
	if o.Open() || o.End.After(end) {
		if o.Open() {
			a.open++
		}
		return
	}
	if !o.End.Before(from) {
		a.repaired++
		a.repairSum += o.End.Sub(o.Start)
	}
}

func (a *acc) availability(period time.Duration) Availability {
	out := Availability{Name: a.name, Host: a.host, Site: a.site, VMs: a.vms, Outages: a.outages, Open: a.open}
	for i, at := range Attributions {
		m := a.by[i].Minutes()
		switch at {
		case PlatformPlanned:
			out.ByAttribution.PlatformPlanned = m
		case PlatformUnplanned:
			out.ByAttribution.PlatformUnplanned = m
		case User:
			out.ByAttribution.User = m
		case Guest:
			out.ByAttribution.Guest = m
		default:
			out.ByAttribution.Unknown = m
		}
	}
	out.DowntimeMinutes = a.down().Minutes()
	out.UptimePercent = uptime(a.down(), a.vms, period)
	if a.repaired > 0 {
		out.MTTRMinutes = (a.repairSum / time.Duration(a.repaired)).Minutes()
	}
	return out
}

// uptime is the percentage of vms × period not lost to down; 100 when there
// is nothing to measure.
func uptime(down time.Duration, vms int, period time.Duration) float64 {
	if vms <= 0 || period <= 0 {
		return 100
	}
	total := float64(vms) * float64(period)
	return math.Max(0, 100*(1-float64(down)/total))
}

// Compute builds the report. It is pure: everything comes from in.
func Compute(in Input) Report {
	target := in.SLATarget
	if target == 0 {
		target = DefaultSLATarget
	}
	worst := in.Worst
	if worst == 0 {
		worst = DefaultWorst
	}
	end := in.To
	if !in.Now.IsZero() && in.Now.Before(end) {
		end = in.Now
	}
	period := end.Sub(in.From)
	rep := Report{From: in.From, To: end, Site: in.Site, SLATarget: target}

	fleet := &acc{name: "fleet", vms: in.VMs}
	if in.Site != "" {
		fleet.name = in.Site
	}
	vms := make(map[string]*acc, len(in.Outages)/2)
	var vmOrder []*acc // first seen first, so sorted input stays sorted
	hosts := make(map[string]*acc)
	sites := make(map[string]*acc)
	var services map[string]*acc
	if in.Services != nil {
		services = make(map[string]*acc)
	}
	days := newDays(in.From, end)
	type causeKey struct{ cause, attribution string }
	causes := map[causeKey]*CauseMinutes{}
	// The store lists intervals by VM, so consecutive intervals mostly
	// share their VM, host, site and cause: remember the last of each
	// rather than hash the names again (this loop may see 300,000).
	var last *acc
	var lastCause *CauseMinutes
	for i := range in.Outages {
		o := &in.Outages[i]
		if in.Site != "" && o.Site != in.Site {
			continue
		}
		s, e := o.Start, o.End
		if o.Open() || e.After(end) {
			e = end
		}
		if s.Before(in.From) {
			s = in.From
		}
		if !e.After(s) {
			continue
		}
		clipped := e.Sub(s)
		rank := Attribution(o.Attribution).Rank()
		fleet.add(o, rank, clipped, end, in.From)
		v := last
		if v == nil || v.name != o.VM {
			if v = vms[o.VM]; v == nil {
				v = &acc{name: o.VM, host: o.Host, site: o.Site, vms: 1}
				vms[o.VM] = v
				vmOrder = append(vmOrder, v)
			}
			last = v
		}
		v.add(o, rank, clipped, end, in.From)
		if o.Host != "" {
			// A VM counts once on each host it had an outage on (a VM that
			// went back and forth counts again; rare enough).
			if v.onHost == nil || v.onHost.name != o.Host {
				h := hosts[o.Host]
				if h == nil {
					h = &acc{name: o.Host, site: o.Site, vms: in.HostVMs[o.Host]}
					hosts[o.Host] = h
				}
				h.seen++
				v.onHost = h
			}
			v.onHost.add(o, rank, clipped, end, in.From)
		}
		if v.onSite == nil || v.onSite.name != o.Site {
			site := sites[o.Site]
			if site == nil {
				site = &acc{name: o.Site, vms: in.SiteVMs[o.Site]}
				sites[o.Site] = site
			}
			site.seen++
			v.onSite = site
		}
		v.onSite.add(o, rank, clipped, end, in.From)
		if services != nil {
			if !v.named {
				v.named = true
				if name := in.Services.ServiceOf(o.VM); name != "" {
					if v.service = services[name]; v.service == nil {
						v.service = &acc{name: name}
						services[name] = v.service
					}
					v.service.vms++
				}
			}
			if v.service != nil {
				v.service.add(o, rank, clipped, end, in.From)
			}
		}
		days.add(rank, s, e)
		c := lastCause
		if c == nil || c.Cause != o.Cause || c.Attribution != o.Attribution {
			ck := causeKey{o.Cause, o.Attribution}
			if c = causes[ck]; c == nil {
				c = &CauseMinutes{Cause: o.Cause, Attribution: o.Attribution}
				causes[ck] = c
			}
			lastCause = c
		}
		c.Minutes += clipped.Minutes()
		c.Outages++
	}
	if fleet.vms < len(vms) {
		fleet.vms = len(vms)
	}
	rep.Fleet = fleet.availability(period)
	for _, h := range hosts {
		h.vms = max(h.vms, h.seen)
		rep.Hosts = append(rep.Hosts, h.availability(period))
	}
	for _, s := range sites {
		s.vms = max(s.vms, s.seen)
		rep.Sites = append(rep.Sites, s.availability(period))
	}
	for site, n := range in.SiteVMs {
		if _, ok := sites[site]; !ok && (in.Site == "" || site == in.Site) {
			rep.Sites = append(rep.Sites, (&acc{name: site, vms: n}).availability(period))
		}
	}
	slices.SortFunc(rep.Sites, func(a, b Availability) int { return cmp.Compare(a.Name, b.Name) })
	rep.VMs = make([]Availability, 0, len(vms))
	for _, v := range vmOrder {
		a := v.availability(period)
		rep.VMs = append(rep.VMs, a)
		if a.UptimePercent < target {
			platform := uptime(v.by[PlatformPlanned.Rank()]+v.by[PlatformUnplanned.Rank()], 1, period)
			b := Breach{VM: a.Name, Host: a.Host, Site: a.Site, UptimePercent: a.UptimePercent, PlatformUptimePercent: platform}
			rep.Breaches = append(rep.Breaches, b)
			if platform < target {
				rep.PlatformBreaches = append(rep.PlatformBreaches, b)
			}
		}
	}
	byName := func(a, b Availability) int { return cmp.Compare(a.Name, b.Name) }
	if !slices.IsSortedFunc(rep.VMs, byName) { // the store lists intervals by VM
		slices.SortFunc(rep.VMs, byName)
	}
	slices.SortFunc(rep.Hosts, byName)
	// Breaches were collected in VM order; sorting by uptime keeps that
	// order for ties.
	rep.Breaches = sortBreaches(rep.Breaches, func(b *Breach) float64 { return b.UptimePercent })
	rep.PlatformBreaches = sortBreaches(rep.PlatformBreaches, func(b *Breach) float64 { return b.PlatformUptimePercent })
	rep.WorstVMs = worstOf(rep.VMs, worst)
	rep.WorstHosts = worstOf(rep.Hosts, worst)
	rep.Days = days.list()
	rep.Causes = make([]CauseMinutes, 0, len(causes))
	for _, c := range causes {
		rep.Causes = append(rep.Causes, *c)
	}
	slices.SortFunc(rep.Causes, func(a, b CauseMinutes) int {
		return cmp.Or(cmp.Compare(b.Minutes, a.Minutes), cmp.Compare(a.Cause, b.Cause), cmp.Compare(a.Attribution, b.Attribution))
	})
	rep.Services = serviceList(services, period)
	rep.Incidents, rep.IncidentsTotal = incidentStats(in.Incidents, in.Site, in.From, end)
	if rep.Sites == nil {
		rep.Sites = []Availability{}
	}
	if rep.Breaches == nil {
		rep.Breaches = []Breach{}
	}
	if rep.PlatformBreaches == nil {
		rep.PlatformBreaches = []Breach{}
	}
	return rep
}

// serviceList lists the services' downtime, most first, ties by name.
func serviceList(services map[string]*acc, period time.Duration) []ServiceDowntime {
	if len(services) == 0 {
		return nil
	}
	out := make([]ServiceDowntime, 0, len(services))
	for _, s := range services {
		a := s.availability(period)
		out = append(out, ServiceDowntime{Service: a.Name, DowntimeMinutes: a.DowntimeMinutes,
			ByAttribution: a.ByAttribution, Outages: a.Outages, Open: a.Open, VMs: a.VMs})
	}
	slices.SortFunc(out, func(a, b ServiceDowntime) int {
		return cmp.Or(cmp.Compare(b.DowntimeMinutes, a.DowntimeMinutes), cmp.Compare(a.Service, b.Service))
	})
	return out
}

// sortBreaches orders breaches by key, ties in their given order. It sorts
// small keys rather than the breaches themselves: a bad month can put most
// of 100,000 VMs under the target.
func sortBreaches(bs []Breach, key func(*Breach) float64) []Breach {
	type k struct {
		v float64
		i int
	}
	keys := make([]k, len(bs))
	for i := range bs {
		keys[i] = k{key(&bs[i]), i}
	}
	slices.SortFunc(keys, func(a, b k) int { return cmp.Or(cmp.Compare(a.v, b.v), cmp.Compare(a.i, b.i)) })
	out := make([]Breach, len(bs))
	for j, x := range keys {
		out[j] = bs[x.i]
	}
	return out
}

// worstOf returns up to n entries with the most downtime, ties by name. It
// selects rather than sorts: n is small and all may hold 100,000 VMs.
func worstOf(all []Availability, n int) []Availability {
	worse := func(a, b *Availability) bool {
		return a.DowntimeMinutes > b.DowntimeMinutes || a.DowntimeMinutes == b.DowntimeMinutes && a.Name < b.Name
	}
	out := make([]Availability, 0, n+1)
	for i := range all {
		if len(out) == n && !worse(&all[i], &out[n-1]) {
			continue
		}
		j := len(out)
		for j > 0 && worse(&all[i], &out[j-1]) {
			j--
		}
		out = slices.Insert(out, j, all[i])
		if len(out) > n {
			out = out[:n]
		}
	}
	return out
}

// days splits downtime over UTC days.
type days struct {
	first time.Time
	by    [][5]time.Duration
}

func newDays(from, to time.Time) *days {
	first := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	n := 0
	if to.After(first) {
		n = int((to.Sub(first) + 24*time.Hour - 1) / (24 * time.Hour))
	}
	return &days{first: first, by: make([][5]time.Duration, n)}
}

func (d *days) add(r int, s, e time.Time) {
	for s.Before(e) {
		i := int(s.Sub(d.first) / (24 * time.Hour))
		if i < 0 || i >= len(d.by) {
			return
		}
		dayEnd := d.first.Add(time.Duration(i+1) * 24 * time.Hour)
		part := e
		if dayEnd.Before(part) {
			part = dayEnd
		}
		d.by[i][r] += part.Sub(s)
		s = part
	}
}

func (d *days) list() []Day {
	out := make([]Day, len(d.by))
	for i, by := range d.by {
		out[i].Date = d.first.Add(time.Duration(i) * 24 * time.Hour).Format(time.DateOnly)
		out[i].Minutes = Minutes{
			PlatformPlanned: by[0].Minutes(), PlatformUnplanned: by[1].Minutes(),
			User: by[2].Minutes(), Guest: by[3].Minutes(), Unknown: by[4].Minutes(),
		}
	}
	return out
}

// incidentStats groups incidents started in [from, to) by kind and
// severity, with time to acknowledge and to resolve.
func incidentStats(incs []model.Incident, site string, from, to time.Time) ([]IncidentGroup, IncidentGroup) {
	type key struct{ kind, sev string }
	type sums struct {
		g          IncidentGroup
		ack, fixed time.Duration
	}
	groups := map[key]*sums{}
	var total sums
	for i := range incs {
		inc := &incs[i]
		if site != "" && inc.Site != site {
			continue
		}
		if inc.StartedAt.Before(from) || !inc.StartedAt.Before(to) || inc.FiringAt.IsZero() && inc.Status == model.StatusPending {
			continue
		}
		k := key{string(inc.Kind), string(inc.Severity)}
		g := groups[k]
		if g == nil {
			g = &sums{g: IncidentGroup{Kind: k.kind, Severity: k.sev}}
			groups[k] = g
		}
		for _, s := range []*sums{g, &total} {
			s.g.Count++
			if inc.Ticket != "" {
				s.g.Tickets++
			}
			if !inc.AckedAt.IsZero() {
				since := inc.FiringAt
				if since.IsZero() {
					since = inc.StartedAt
				}
				s.g.Acked++
				s.ack += max(0, inc.AckedAt.Sub(since))
			}
			if inc.Status == model.StatusResolved && !inc.ResolvedAt.IsZero() {
				s.g.Resolved++
				s.fixed += max(0, inc.ResolvedAt.Sub(inc.StartedAt))
			}
		}
	}
	finish := func(s *sums) IncidentGroup {
		if s.g.Acked > 0 {
			s.g.MTTAMinutes = (s.ack / time.Duration(s.g.Acked)).Minutes()
		}
		if s.g.Resolved > 0 {
			s.g.MTTRMinutes = (s.fixed / time.Duration(s.g.Resolved)).Minutes()
		}
		return s.g
	}
	out := make([]IncidentGroup, 0, len(groups))
	for _, g := range groups {
		out = append(out, finish(g))
	}
	slices.SortFunc(out, func(a, b IncidentGroup) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(model.Severity(a.Severity).Rank(), model.Severity(b.Severity).Rank()))
	})
	total.g.Kind, total.g.Severity = "all", "all"
	return out, finish(&total)
}
