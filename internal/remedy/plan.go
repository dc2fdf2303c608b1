package remedy

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Candidate is a host a VM could move to, as the latest observations
// describe it.
type Candidate struct {
	ID    string
	Site  string
	State model.HostState
	// CPUFree and MemFreeMB are the free capacity (cpu_free, mem_free_mb);
	// HasCapacity is false when the host reported neither.
	CPUFree     float64
	MemFreeMB   float64
	HasCapacity bool
	// Silenced is true while a silence for maintenance covers the host;
	// Planned is true when the host is itself the subject of a plan.
	Silenced bool
	Planned  bool
	// Groups counts the instances of each service group already running
	// on the host (service name → VMs), for anti-affinity; nil when the
	// inventory names none.
	Groups map[string]int
}

// VMSize is a VM to move and what it needs on its new host.
type VMSize struct {
	ID        string
	VCPUs     float64
	MemMB     float64
	SizeKnown bool
	// Group is the service the VM is an instance of ("" when the
	// inventory names none): the plan spreads a group's instances.
	Group string
}

// Move is one VM of a plan and where it goes.
type Move struct {
	VM     string
	Target string
	// Note says why the move breaks anti-affinity, when it must: every
	// host it fits on already holds an instance of its service.
	Note string
}

// Unplaced is a VM that fits nowhere, and why.
type Unplaced struct {
	VM  string
	Why string
}

// Plan is where the VMs of a failing host go.
type Plan struct {
	Host     string
	Site     string
	Moves    []Move
	Unplaced []Unplaced
}

// PlanMigration plans moving vms off host (in site) onto candidates: only
// hosts of the same site that are healthy, not silenced, not themselves
// the subject of a plan, not host itself, and that reported their free
// capacity qualify. Bigger VMs are placed first, each on the qualifying
// host with the most free memory left after it (then most free CPU, then
// name), so load spreads and big VMs are not squeezed out by small ones.
// Anti-affinity comes first: among the hosts a VM fits on, the one holding
// the fewest instances of the VM's service group (counting the ones this
// plan already put there) wins, so one host failing later does not take
// a whole service down. When every host it fits on already holds one,
// the VM still moves and its Move.Note says so.
// A VM that fits on no qualifying host is listed as unplaced, with the
// reason. The result depends only on the input.
func PlanMigration(host, site string, vms []VMSize, candidates []Candidate) Plan {
	p := Plan{Host: host, Site: site}
	type room struct {
		id       string
		cpu, mem float64
		groups   map[string]int
		owned    bool // groups is this plan's copy
	}
	var rooms []*room
	var rejected []string
	for _, c := range candidates {
		why := ""
		switch {
		case c.ID == host:
			continue
		case c.Site != site:
			continue
		case c.State != model.HostHealthy:
			why = string(c.State)
			if why == "" {
				why = "unknown"
			}
		case c.Silenced:
			why = "silenced"
		case c.Planned:
			why = "itself being evacuated"
		case !c.HasCapacity:
			why = "no capacity reported"
		}
		if why != "" {
			rejected = append(rejected, c.ID+" "+why)
			continue
		}
		rooms = append(rooms, &room{id: c.ID, cpu: c.CPUFree, mem: c.MemFreeMB, groups: c.Groups})
	}
	slices.SortFunc(rooms, func(a, b *room) int { return cmp.Compare(a.id, b.id) })

	order := slices.Clone(vms)
	slices.SortStableFunc(order, func(a, b VMSize) int {
		if c := cmp.Compare(b.MemMB, a.MemMB); c != 0 {
			return c
		}
		if c := cmp.Compare(b.VCPUs, a.VCPUs); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	for _, vm := range order {
		var best *room
		bestN := 0
		for _, r := range rooms {
			if r.cpu < vm.VCPUs || r.mem < vm.MemMB {
				continue
			}
			n := 0
			if vm.Group != "" {
				n = r.groups[vm.Group]
			}
			if best == nil || n < bestN || (n == bestN && (r.mem > best.mem ||
				(r.mem == best.mem && r.cpu > best.cpu))) {
				best, bestN = r, n
			}
		}
		if best == nil {
			p.Unplaced = append(p.Unplaced, Unplaced{VM: vm.ID, Why: nowhere(site, vm, len(rooms), rejected)})
			continue
		}
		best.cpu -= vm.VCPUs
		best.mem -= vm.MemMB
		mv := Move{VM: vm.ID, Target: best.id}
		if vm.Group != "" {
			if bestN > 0 {
				mv.Note = fmt.Sprintf("shares %s with %d other instance(s) of %s: every host it fits on already holds one", best.id, bestN, vm.Group)
			}
			// Copy on first write: Groups belongs to the caller.
			if best.groups == nil || !best.owned {
				g := make(map[string]int, len(best.groups)+1)
				for k, v := range best.groups {
					g[k] = v
				}
				best.groups, best.owned = g, true
			}
			best.groups[vm.Group]++
		}
		p.Moves = append(p.Moves, mv)
	}
	slices.SortFunc(p.Moves, func(a, b Move) int { return cmp.Compare(a.VM, b.VM) })
	slices.SortFunc(p.Unplaced, func(a, b Unplaced) int { return cmp.Compare(a.VM, b.VM) })
	return p
}

func nowhere(site string, vm VMSize, eligible int, rejected []string) string {
	if eligible == 0 {
		if len(rejected) == 0 {
			return fmt.Sprintf("fits nowhere: no other host in site %s", site)
		}
		return fmt.Sprintf("fits nowhere: no eligible host in site %s (%s)", site, joinShort(rejected, 4))
	}
	return fmt.Sprintf("fits nowhere: no eligible host in site %s has %g vCPUs and %g MiB free", site, vm.VCPUs, vm.MemMB)
}

// Steps turns the plan into a remedy's steps: maintenance of the host
// first, so nothing new lands on it, then one move per VM, then the VMs
// that fit nowhere as skipped steps.
func (p Plan) Steps() []model.RemedyStep {
	steps := []model.RemedyStep{{Do: model.StepHostMaintenance, Host: p.Host, State: model.StepPending}}
	for _, m := range p.Moves {
		steps = append(steps, model.RemedyStep{Do: model.StepMigrateVM, VM: m.VM, Host: p.Host, Target: m.Target, State: model.StepPending, Detail: m.Note})
	}
	for _, u := range p.Unplaced {
		steps = append(steps, model.RemedyStep{Do: model.StepMigrateVM, VM: u.VM, Host: p.Host, State: model.StepSkipped, Detail: u.Why})
	}
	return steps
}

func joinShort(items []string, n int) string {
	out := ""
	for i, s := range items {
		if i == n {
			return out + fmt.Sprintf(", and %d more", len(items)-n)
		}
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
