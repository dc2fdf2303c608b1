package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Store is what the inventory needs from the state store: its layers and
// history, and the placement of VMs. internal/store implements it.
type Store interface {
	ApplyInventory(ctx context.Context, source string, replace bool, actor string, rels []model.InventoryRelation) (int, error)
	InventoryVersion(ctx context.Context) (int64, error)
	InventoryLayers(ctx context.Context, sources []string) (int64, map[string][]model.InventoryRelation, error)
	InventoryHistory(ctx context.Context, since time.Time) ([]model.InventoryChange, error)
	VMPlacements(ctx context.Context, ids []string) ([]model.VMStatus, error)
	ListVMs(ctx context.Context, site, host string) ([]model.VMStatus, error)
}

// Options configure a Manager. Store is required.
type Options struct {
	Store Store
	// Path is the inventory file (.yaml, .yml or .csv); empty means none.
	// Without a file, the file layer keeps what an earlier file put there;
	// point Path at an empty file to clear it.
	Path string
	// Token is the bearer token POST /v1/inventory requires; unset turns
	// pushes off (403).
	Token config.Secret
	// MaxBody caps a pushed body; default 16 MiB.
	MaxBody int64
	Clock   clock.Clock  // default clock.Real{}
	Logger  *slog.Logger // default discards
}

// Manager keeps the merged inventory of this replica in step with the
// store, loads the file when it changes, accepts pushes, and answers
// impact questions. It is safe for concurrent use.
type Manager struct {
	opts  Options
	log   *slog.Logger
	clock clock.Clock

	inv       atomic.Pointer[Inventory]
	placement atomic.Pointer[Placement]

	mu       sync.Mutex // serialises file checks
	fileSig  string
	fileErr  error
	checkedV int64
}

// New builds a Manager: it loads the file (a bad file fails, so a broken
// inventory stops start-up rather than running without owners) into the
// store's file layer and reads the merged inventory.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Store == nil {
		return nil, errors.New("new inventory: a store is required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 16 << 20
	}
	m := &Manager{opts: opts, log: opts.Logger, clock: opts.Clock}
	m.inv.Store(Merge(0, nil))
	if opts.Path != "" {
		if _, err := m.checkFile(ctx); err != nil {
			return nil, fmt.Errorf("load inventory: %w", err)
		}
	}
	if err := m.refresh(ctx, true); err != nil {
		return nil, fmt.Errorf("load inventory: %w", err)
	}
	return m, nil
}

// Inventory returns the merged inventory in force in this replica.
func (m *Manager) Inventory() *Inventory { return m.inv.Load() }

// fileSignature describes the file by size and modification time.
func fileSignature(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %d", st.Size(), st.ModTime().UnixNano()), nil
}

// checkFile loads the file into the file layer when its size or
// modification time changed. A bad file is refused: the error is returned
// (once per change of the file) and the layer keeps what it had.
func (m *Manager) checkFile(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sig, err := fileSignature(m.opts.Path)
	if err != nil {
		return false, fmt.Errorf("read inventory file: %w", err)
	}
	if sig == m.fileSig {
		return false, nil
	}
	data, err := os.ReadFile(m.opts.Path)
	if err != nil {
		return false, fmt.Errorf("read inventory file: %w", err)
	}
	rels, err := Parse(m.opts.Path, data)
	if err != nil {
		m.fileSig, m.fileErr = sig, err
		return false, err
	}
	n, err := m.opts.Store.ApplyInventory(ctx, string(SourceFile), true, "file "+m.opts.Path, rels)
	if err != nil {
		return false, err // not remembered: retried at the next check
	}
	m.fileSig, m.fileErr = sig, nil
	m.log.Info("inventory file loaded", "path", m.opts.Path, "relations", len(rels), "changed", n,
		"at", m.clock.Now().UTC().Format(time.RFC3339))
	return n > 0, nil
}

// refresh re-reads the merged inventory when the store's version moved
// (or always, with force).
func (m *Manager) refresh(ctx context.Context, force bool) error {
	v, err := m.opts.Store.InventoryVersion(ctx)
	if err != nil {
		return err
	}
	if !force && v == m.Inventory().Version {
		return nil
	}
	ver, layers, err := m.opts.Store.InventoryLayers(ctx, sourceNames())
	if err != nil {
		return err
	}
	bySource := make(map[Source][]model.InventoryRelation, len(layers))
	for s, rels := range layers {
		bySource[Source(s)] = rels
	}
	m.inv.Store(Merge(ver, bySource))
	return nil
}

// RefreshPlacement re-reads where the inventory's VMs run and whether they
// are down, for IncidentServices.
func (m *Manager) RefreshPlacement(ctx context.Context) error {
	vms, err := m.opts.Store.VMPlacements(ctx, m.Inventory().VMs())
	if err != nil {
		return fmt.Errorf("refresh placement: %w", err)
	}
	m.placement.Store(NewPlacement(vms))
	return nil
}

// Check loads the file if it changed and picks up changes other replicas
// or pushes made. A refused file is returned as an error; the inventory in
// force stays.
func (m *Manager) Check(ctx context.Context) error {
	var errs []error
	if m.opts.Path != "" {
		if _, err := m.checkFile(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.refresh(ctx, false); err != nil {
		errs = append(errs, fmt.Errorf("refresh inventory: %w", err))
	}
	return errors.Join(errs...)
}

// Run checks every interval (default 5s) until ctx ends, logging refusals,
// and refreshes the placement every placementEvery checks.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if err := m.RefreshPlacement(ctx); err != nil && ctx.Err() == nil {
		m.log.Warn("inventory placement", "err", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.Check(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("inventory refused; the previous inventory stays in force", "path", m.opts.Path, "err", err)
		}
		if n%placementEvery == 0 {
			if err := m.RefreshPlacement(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("inventory placement", "err", err)
			}
		}
	}
}

// placementEvery is how many checks pass between placement refreshes.
const placementEvery = 3

// Push applies an API update (relations from ParsePush) to the api layer,
// merging by name, and returns how many relations changed. actor says who
// pushed, for the history.
func (m *Manager) Push(ctx context.Context, rels []model.InventoryRelation, actor string) (int, error) {
	n, err := m.opts.Store.ApplyInventory(ctx, string(SourceAPI), false, actor, rels)
	if err != nil {
		return 0, err
	}
	if err := m.refresh(ctx, false); err != nil {
		return n, fmt.Errorf("refresh inventory after push: %w", err)
	}
	return n, nil
}

// IncidentServices is the rules engine's hook: the services an incident's
// VMs belong to and how badly each is hit, from the inventory and the
// placement last refreshed, without I/O (the engine calls it under its
// lock). The incident's own VMs count as down whatever the placement says.
func (m *Manager) IncidentServices(inc *model.Incident) []model.ServiceImpact {
	if len(inc.VMs) == 0 {
		return nil
	}
	rep := Impact(m.placement.Load(), m.Inventory(), Fault{VMs: inc.VMs})
	if len(rep.Services) == 0 {
		return nil
	}
	return rep.Services
}

// TargetKind says what an impact question names.
type TargetKind string

// Target kinds.
const (
	TargetHost TargetKind = "host"
	TargetSite TargetKind = "site"
	TargetVM   TargetKind = "vm"
)

// ErrUnknownTarget is returned by ImpactOf when the name is no host, site
// or VM the store or the inventory knows.
var ErrUnknownTarget = errors.New("no host, site or VM by that name")

// ImpactOf answers "what if it went down now" for a host, site or VM
// (tried in that order), reading the current placement from the store.
func (m *Manager) ImpactOf(ctx context.Context, name string) (TargetKind, Report, error) {
	st := m.opts.Store
	inv := m.Inventory()
	kind := TargetHost
	hit, err := st.ListVMs(ctx, "", name)
	if err != nil {
		return "", Report{}, err
	}
	if len(hit) == 0 {
		kind = TargetSite
		if hit, err = st.ListVMs(ctx, name, ""); err != nil {
			return "", Report{}, err
		}
	}
	if len(hit) == 0 {
		kind = TargetVM
		if hit, err = st.VMPlacements(ctx, []string{name}); err != nil {
			return "", Report{}, err
		}
		if _, ok := inv.ServiceOf(name); len(hit) == 0 && !ok {
			return "", Report{}, fmt.Errorf("impact of %s: %w", name, ErrUnknownTarget)
		}
		if len(hit) == 0 {
			hit = []model.VMStatus{{ID: name}}
		}
	}
	// A VM down already is not taken down by the fault; it still counts
	// as down among its service's instances.
	ids := make([]string, 0, len(hit))
	seen := map[string]bool{}
	for _, v := range hit {
		seen[v.ID] = true
		if !v.State.Down() {
			ids = append(ids, v.ID)
		}
	}
	// The other instances of the services hit, to count what still runs.
	var others []string
	for _, v := range hit {
		svc, ok := inv.ServiceOf(v.ID)
		if !ok || seen["\x00"+svc] {
			continue
		}
		seen["\x00"+svc] = true
		for _, o := range inv.Instances(svc) {
			if !seen[o] {
				seen[o] = true
				others = append(others, o)
			}
		}
	}
	placed, err := st.VMPlacements(ctx, others)
	if err != nil {
		return "", Report{}, err
	}
	p := NewPlacement(append(placed, hit...))
	return kind, Impact(p, inv, Fault{VMs: ids}), nil
}

// OwnerChannels is the Slack poster's hook: the channels of the teams
// owning the services an incident hits (Incident.Services), each once, in
// the order of the services (worst first). Teams without a channel are
// skipped.
func (m *Manager) OwnerChannels(inc *model.Incident) []string {
	return m.ownerField(inc, func(t Team) string { return t.SlackChannel })
}

// OwnerGroups is the Slack poster's hook for escalation mentions: the user
// groups of the teams owning the services an incident hits, each once,
// worst-hit service first.
func (m *Manager) OwnerGroups(inc *model.Incident) []string {
	return m.ownerField(inc, func(t Team) string { return t.SlackUsergroup })
}

// ownerField collects one non-empty field of the owning teams of an
// incident's services, each value once, in the services' order.
func (m *Manager) ownerField(inc *model.Incident, field func(Team) string) []string {
	inv := m.Inventory()
	var out []string
	for _, s := range inc.Services {
		team := s.Team
		if team == "" {
			team = inv.TeamOf(s.Service)
		}
		if team == "" {
			continue
		}
		if v := field(inv.Team(team)); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// JiraOwner is the ticket worker's hook: the Jira component and assignee
// of the team owning the worst-hit service of an incident that names them
// (Incident.Services is worst first); each is taken from the first such
// team that has it, "" when none does.
func (m *Manager) JiraOwner(inc *model.Incident) (component, assignee string) {
	inv := m.Inventory()
	for _, s := range inc.Services {
		team := s.Team
		if team == "" {
			team = inv.TeamOf(s.Service)
		}
		if team == "" {
			continue
		}
		t := inv.Team(team)
		if component == "" {
			component = t.JiraComponent
		}
		if assignee == "" {
			assignee = t.JiraAssignee
		}
	}
	return component, assignee
}

// VMImpact is what a vm rule's impact reads: for the service of vm (down
// or not, in site), the share of its instances down, whether it has no
// running instance left in site, and 1 (0 when vm is in no service). Other
// instances are judged by the placement last refreshed. It neither does
// I/O nor allocates: the rules engine calls it under its lock for every
// evaluation of rules that read impact.
func (m *Manager) VMImpact(vm, site string, down bool) (maxFractionDown float64, lastInSite bool, services int) {
	inv, p := m.Inventory(), m.placement.Load()
	svc, ok := inv.ServiceOf(vm)
	if !ok {
		return 0, false, 0
	}
	instances := inv.Instances(svc)
	nDown, upInSite := 0, 0
	for _, o := range instances {
		in, _ := p.Of(o)
		if o == vm {
			in.Down, in.Site = down, site
		}
		if in.Down {
			nDown++
		} else if site != "" && in.Site == site {
			upInSite++
		}
	}
	return float64(nDown) / float64(len(instances)), down && site != "" && upInSite == 0, 1
}

// HostImpact is what a host rule's impact reads: with every VM of host
// (in site) down, the largest share of instances down among the services
// of its VMs, whether one of them has no running instance left in site,
// and how many services are hit. Like VMImpact it neither does I/O nor
// allocates; its cost grows with the host's VMs times their services'
// instances.
func (m *Manager) HostImpact(host, site string) (maxFractionDown float64, lastInSite bool, services int) {
	inv, p := m.Inventory(), m.placement.Load()
	if p == nil {
		return 0, false, 0
	}
	for _, vm := range p.hosts[host] {
		svc, ok := inv.ServiceOf(vm)
		if !ok {
			continue
		}
		instances := inv.Instances(svc)
		first := ""
		nDown, upInSite, hitInSite := 0, 0, false
		for _, o := range instances {
			in, _ := p.Of(o)
			onHost := in.Host == host
			if onHost && first == "" {
				first = o
			}
			switch {
			case onHost || in.Down:
				nDown++
				hitInSite = hitInSite || (onHost && in.Site == site)
			case in.Site == site:
				upInSite++
			}
		}
		if first != vm {
			continue // counted with the service's first VM on this host
		}
		services++
		maxFractionDown = max(maxFractionDown, float64(nDown)/float64(len(instances)))
		lastInSite = lastInSite || (site != "" && hitInSite && upInSite == 0)
	}
	return maxFractionDown, lastInSite, services
}
