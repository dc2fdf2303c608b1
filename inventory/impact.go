package inventory

import (
	"sort"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Instance is where one VM runs and whether it is down, as the state store
// last knew it.
type Instance struct {
	Host, Site string
	Down       bool
}

// Placement maps VMs to their hosts and sites. It is immutable once built.
type Placement struct {
	vms   map[string]Instance
	hosts map[string][]string
	sites map[string][]string
}

// NewPlacement indexes VM states from the store (ListVMs, VMPlacements).
func NewPlacement(vms []model.VMStatus) *Placement {
	p := &Placement{
		vms:   make(map[string]Instance, len(vms)),
		hosts: map[string][]string{},
		sites: map[string][]string{},
	}
	for _, v := range vms {
		p.vms[v.ID] = Instance{Host: v.Host, Site: v.Site, Down: v.State.Down()}
		if v.Host != "" {
			p.hosts[v.Host] = append(p.hosts[v.Host], v.ID)
		}
		if v.Site != "" {
			p.sites[v.Site] = append(p.sites[v.Site], v.ID)
		}
	}
	return p
}

// Of returns where a VM runs.
func (p *Placement) Of(vm string) (Instance, bool) {
	if p == nil {
		return Instance{}, false
	}
	in, ok := p.vms[vm]
	return in, ok
}

// Fault is what goes down: VMs, and every VM of the hosts and sites.
type Fault struct {
	VMs, Hosts, Sites []string
}

// TeamImpact is a team whose services a fault hits.
type TeamImpact struct {
	Team Team `json:"team"`
	// Services lists the team's services hit, worst first.
	Services []string `json:"services"`
}

// Report is the impact of a fault.
type Report struct {
	// VMs counts the VMs the fault takes down.
	VMs int `json:"vms"`
	// Unowned lists hit VMs the inventory assigns to no service, sorted.
	Unowned []string `json:"unowned"`
	// Services are the services hit, worst first: by share of instances
	// down, then by sites lost, then by name.
	Services []model.ServiceImpact `json:"services"`
	// Teams own the services hit, sorted by name; services without a
	// team are in no entry.
	Teams []TeamImpact `json:"teams"`
}

// MaxFractionDown is the largest share of instances down among the
// services hit (0 when none).
func (r *Report) MaxFractionDown() float64 {
	m := 0.0
	for _, s := range r.Services {
		m = max(m, s.Fraction())
	}
	return m
}

// LastInSite reports whether some service lost its last running instance
// in some site.
func (r *Report) LastInSite() bool {
	for _, s := range r.Services {
		if len(s.LastInSites) > 0 {
			return true
		}
	}
	return false
}

// Impact computes what a fault does to the services of inv, given where
// their instances run. An instance counts as down if the fault hits it or
// the placement says it is down already; the fault takes a service's last
// instance in a site when at least one instance there was running before
// (the ones the fault hits count as running before it) and none is after.
// Instances the placement does not know are counted, as running, in no
// site. The cost is proportional to the VMs hit and the instances of the
// services they belong to, not to the fleet.
func Impact(p *Placement, inv *Inventory, f Fault) Report {
	hit := make(map[string]struct{}, len(f.VMs))
	for _, vm := range f.VMs {
		hit[vm] = struct{}{}
	}
	if p != nil {
		for _, h := range f.Hosts {
			for _, vm := range p.hosts[h] {
				hit[vm] = struct{}{}
			}
		}
		for _, s := range f.Sites {
			for _, vm := range p.sites[s] {
				hit[vm] = struct{}{}
			}
		}
	}
	rep := Report{VMs: len(hit), Unowned: []string{}, Services: []model.ServiceImpact{}, Teams: []TeamImpact{}}
	services := map[string]struct{}{}
	for vm := range hit {
		svc, ok := inv.ServiceOf(vm)
		if !ok {
			rep.Unowned = append(rep.Unowned, vm)
			continue
		}
		services[svc] = struct{}{}
	}
	sort.Strings(rep.Unowned)
	type siteCount struct{ before, after, hit int }
	for svc := range services {
		si := model.ServiceImpact{Service: svc, Team: inv.TeamOf(svc)}
		var sites map[string]*siteCount
		for _, vm := range inv.Instances(svc) {
			si.Instances++
			in, _ := p.Of(vm)
			_, isHit := hit[vm]
			if isHit {
				si.Hit++
			}
			if isHit || in.Down {
				si.Down++
			}
			if in.Site == "" {
				continue
			}
			if sites == nil {
				sites = map[string]*siteCount{}
			}
			c := sites[in.Site]
			if c == nil {
				c = &siteCount{}
				sites[in.Site] = c
			}
			if isHit {
				c.hit++
			}
			if isHit || !in.Down {
				c.before++
			}
			if !isHit && !in.Down {
				c.after++
			}
		}
		for site, c := range sites {
			if c.hit > 0 && c.before > 0 && c.after == 0 {
				si.LastInSites = append(si.LastInSites, site)
			}
		}
		sort.Strings(si.LastInSites)
		rep.Services = append(rep.Services, si)
	}
	sort.Slice(rep.Services, func(i, j int) bool {
		a, b := rep.Services[i], rep.Services[j]
		if fa, fb := a.Fraction(), b.Fraction(); fa != fb {
			return fa > fb
		}
		if len(a.LastInSites) != len(b.LastInSites) {
			return len(a.LastInSites) > len(b.LastInSites)
		}
		return a.Service < b.Service
	})
	byTeam := map[string]int{}
	for _, s := range rep.Services {
		if s.Team == "" {
			continue
		}
		i, ok := byTeam[s.Team]
		if !ok {
			i = len(rep.Teams)
			byTeam[s.Team] = i
			rep.Teams = append(rep.Teams, TeamImpact{Team: inv.Team(s.Team)})
		}
		rep.Teams[i].Services = append(rep.Teams[i].Services, s.Service)
	}
	sort.Slice(rep.Teams, func(i, j int) bool { return rep.Teams[i].Team.Name < rep.Teams[j].Team.Name })
	return rep
}
