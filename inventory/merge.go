package inventory

import (
	"sort"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Source names a layer of the inventory: where relations came from.
type Source string

// Sources, highest precedence first (see the package doc for why).
const (
	SourceAPI     Source = "api"
	SourceFile    Source = "file"
	SourceAzure   Source = "azure-tags"
	SourceLibvirt Source = "libvirt-metadata"
)

// Precedence lists the sources, highest first: for each relation the first
// source that states it wins.
var Precedence = []Source{SourceAPI, SourceFile, SourceAzure, SourceLibvirt}

func sourceNames() []string {
	out := make([]string, len(Precedence))
	for i, s := range Precedence {
		out[i] = string(s)
	}
	return out
}

// Inventory is the merged view of every layer at one version. It is
// immutable once built, so readers share it without locks.
type Inventory struct {
	// Version is the store's relation-change counter it was read at.
	Version  int64
	vms      map[string]valueFrom
	services map[string]valueFrom // service -> team
	teams    map[string]*teamFrom
	// instances lists each service's VMs, sorted.
	instances map[string][]string
}

// valueFrom is a value and the source it came from.
type valueFrom struct {
	Value  string
	Source Source
}

type teamFrom struct {
	Team
	Sources map[string]Source
}

// Merge merges layers field by field: for each kind, name and field, the
// value of the highest-precedence source that states it. Layers of sources
// not in Precedence are ignored.
func Merge(version int64, layers map[Source][]model.InventoryRelation) *Inventory {
	inv := &Inventory{
		Version:   version,
		vms:       map[string]valueFrom{},
		services:  map[string]valueFrom{},
		teams:     map[string]*teamFrom{},
		instances: map[string][]string{},
	}
	for _, src := range Precedence {
		for _, r := range layers[src] {
			if r.Value == "" {
				continue
			}
			switch r.Kind {
			case KindVM:
				if _, ok := inv.vms[r.Name]; !ok && r.Field == FieldService {
					inv.vms[r.Name] = valueFrom{r.Value, src}
				}
			case KindService:
				if _, ok := inv.services[r.Name]; !ok && r.Field == FieldTeam {
					inv.services[r.Name] = valueFrom{r.Value, src}
				}
			case KindTeam:
				t := inv.teams[r.Name]
				if t == nil {
					t = &teamFrom{Team: Team{Name: r.Name}, Sources: map[string]Source{}}
					inv.teams[r.Name] = t
				}
				if _, ok := t.Sources[r.Field]; ok {
					continue
				}
				switch r.Field {
				case FieldSlackChannel:
					t.SlackChannel = r.Value
				case FieldSlackUsergroup:
					t.SlackUsergroup = r.Value
				case FieldJiraComponent:
					t.JiraComponent = r.Value
				case FieldJiraAssignee:
					t.JiraAssignee = r.Value
				default:
					continue
				}
				t.Sources[r.Field] = src
			}
		}
	}
	for vm, s := range inv.vms {
		inv.instances[s.Value] = append(inv.instances[s.Value], vm)
	}
	for _, list := range inv.instances {
		sort.Strings(list)
	}
	return inv
}

// ServiceOf returns the service a VM is an instance of.
func (inv *Inventory) ServiceOf(vm string) (string, bool) {
	s, ok := inv.vms[vm]
	return s.Value, ok
}

// TeamOf returns the team owning a service ("" when none is named).
func (inv *Inventory) TeamOf(service string) string { return inv.services[service].Value }

// Team returns a team's contacts; a team named by a service but with no
// contacts is returned with only its name.
func (inv *Inventory) Team(name string) Team {
	if t := inv.teams[name]; t != nil {
		return t.Team
	}
	return Team{Name: name}
}

// Instances returns the VMs of a service, sorted. The slice is shared:
// do not modify it.
func (inv *Inventory) Instances(service string) []string { return inv.instances[service] }

// VMs returns every VM the inventory assigns to a service, sorted.
func (inv *Inventory) VMs() []string {
	out := make([]string, 0, len(inv.vms))
	for vm := range inv.vms {
		out = append(out, vm)
	}
	sort.Strings(out)
	return out
}

// View is the merged inventory as GET /v1/inventory shows it: every
// relation with the source it came from.
type View struct {
	Version  int64         `json:"version"`
	Services []ServiceView `json:"services"`
	Teams    []TeamView    `json:"teams"`
	VMs      []VMView      `json:"vms"`
}

// ServiceView is a service, its team and how many instances it has.
type ServiceView struct {
	Name       string `json:"name"`
	Team       string `json:"team,omitempty"`
	TeamSource Source `json:"team_source,omitempty"`
	Instances  int    `json:"instances"`
}

// TeamView is a team's contacts with the source of each.
type TeamView struct {
	Team
	Sources map[string]Source `json:"sources"`
}

// VMView is a VM's service and its source.
type VMView struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Source  Source `json:"source"`
}

// View lists the merged relations, sorted by name.
func (inv *Inventory) View() View {
	v := View{Version: inv.Version, Services: []ServiceView{}, Teams: []TeamView{}, VMs: make([]VMView, 0, len(inv.vms))}
	names := map[string]bool{}
	for s := range inv.services {
		names[s] = true
	}
	for s := range inv.instances {
		names[s] = true
	}
	teams := map[string]bool{}
	for t := range inv.teams {
		teams[t] = true
	}
	for s := range names {
		sv := ServiceView{Name: s, Instances: len(inv.instances[s])}
		if t, ok := inv.services[s]; ok {
			sv.Team, sv.TeamSource = t.Value, t.Source
			teams[t.Value] = true
		}
		v.Services = append(v.Services, sv)
	}
	for t := range teams {
		tv := TeamView{Team: Team{Name: t}, Sources: map[string]Source{}}
		if tf := inv.teams[t]; tf != nil {
			tv.Team, tv.Sources = tf.Team, tf.Sources
		}
		v.Teams = append(v.Teams, tv)
	}
	for id, s := range inv.vms {
		v.VMs = append(v.VMs, VMView{ID: id, Service: s.Value, Source: s.Source})
	}
	sort.Slice(v.Services, func(i, j int) bool { return v.Services[i].Name < v.Services[j].Name })
	sort.Slice(v.Teams, func(i, j int) bool { return v.Teams[i].Name < v.Teams[j].Name })
	sort.Slice(v.VMs, func(i, j int) bool { return v.VMs[i].ID < v.VMs[j].ID })
	return v
}
