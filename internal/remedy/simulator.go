package remedy

import (
	"context"
	"fmt"
	"sync"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Simulator acts on the demo's simulated fleet. The fleet itself is
// immutable (its observations are a pure function of the period), so the
// simulator keeps what was done and rewrites the fleet's observations
// through Apply: a restarted VM reports running from the next period on
// (until its fault is over anyway), a migrated VM reports running on its
// new host, a restarted service reports up.
type Simulator struct {
	mu    sync.Mutex
	where map[string]Target // the fleet's VMs by id
	fixed map[string]bool   // VMs and host/service keys restarted, until they report healthy themselves
	moved map[string]string // VM -> new host
	sites map[string]string // host -> site
	maint map[string]bool   // hosts in maintenance
	touch []string          // VMs acted on since the last Apply
}

var _ Actuator = (*Simulator)(nil)

// NewSimulator returns an actuator for a simulated fleet (the demo's
// collectors/simulate fleet) whose VMs are placed as vms says and whose
// hosts are in the sites hostSites says.
func NewSimulator(vms []Target, hostSites map[string]string) *Simulator {
	s := &Simulator{where: map[string]Target{}, fixed: map[string]bool{}, moved: map[string]string{},
		sites: map[string]string{}, maint: map[string]bool{}}
	for _, v := range vms {
		s.where[v.VM] = v
	}
	for h, site := range hostSites {
		s.sites[h] = site
	}
	return s
}

// RestartVM makes the VM report running from the next period on.
func (s *Simulator) RestartVM(_ context.Context, t Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.where[t.VM]; !ok {
		return fmt.Errorf("restart %s: no such VM in the simulated fleet", t.VM)
	}
	s.fixed[t.VM] = true
	s.touch = append(s.touch, t.VM)
	return nil
}

// RestartService makes the service report up from the next period on.
func (s *Simulator) RestartService(_ context.Context, host, service string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sites[host]; !ok {
		return fmt.Errorf("restart %s on %s: no such host in the simulated fleet", service, host)
	}
	s.fixed[host+"/"+service] = true
	return nil
}

// MigrateVM moves the VM: from the next period on it reports running on
// the target host.
func (s *Simulator) MigrateVM(_ context.Context, t Target, to string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.where[t.VM]; !ok {
		return fmt.Errorf("migrate %s: no such VM in the simulated fleet", t.VM)
	}
	if _, ok := s.sites[to]; !ok {
		return fmt.Errorf("migrate %s: no host %s in the simulated fleet", t.VM, to)
	}
	if s.maint[to] {
		return fmt.Errorf("migrate %s: %s is in maintenance", t.VM, to)
	}
	s.moved[t.VM] = to
	s.fixed[t.VM] = true
	s.touch = append(s.touch, t.VM)
	return nil
}

// HostMaintenance closes the host: no VM may be migrated onto it.
func (s *Simulator) HostMaintenance(_ context.Context, host string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sites[host]; !ok {
		return fmt.Errorf("maintenance of %s: no such host in the simulated fleet", host)
	}
	s.maint[host] = true
	return nil
}

// Apply rewrites one period's observations of the fleet with what the
// simulator did, and adds a report for every VM acted on that the period
// does not mention (a fleet reporting only changes), so the next
// observations show the outcome. It changes obs in place and returns it.
func (s *Simulator) Apply(obs []model.Observation) []model.Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(obs) == 0 {
		return obs
	}
	seen := map[string]bool{}
	for i := range obs {
		o := &obs[i]
		switch o.Kind {
		case model.KindVM:
			seen[o.ID] = true
			s.rewrite(o)
		case model.KindService:
			k := o.Host + "/" + o.ID
			if s.fixed[k] {
				if o.State == model.StateUp {
					delete(s.fixed, k) // healthy on its own again
				} else {
					o.State = model.StateUp
				}
			}
		}
	}
	at := obs[0].TimeGenerated
	for _, id := range s.touch {
		if seen[id] {
			continue
		}
		seen[id] = true
		v := s.where[id]
		o := model.Observation{Source: obs[0].Source, Kind: model.KindVM, ID: id, Host: v.Host, Site: v.Site,
			State: model.StateRunning, TimeGenerated: at}
		s.rewrite(&o)
		obs = append(obs, o)
	}
	s.touch = s.touch[:0]
	return obs
}

// rewrite applies the moves and restarts to one VM observation.
func (s *Simulator) rewrite(o *model.Observation) {
	if to, ok := s.moved[o.ID]; ok {
		o.Host, o.Site = to, s.sites[to]
	}
	if !s.fixed[o.ID] {
		return
	}
	if o.State == model.StateRunning {
		delete(s.fixed, o.ID) // its fault is over: report as the fleet says
		return
	}
	o.State, o.Event, o.Attrs = model.StateRunning, "", nil
}
