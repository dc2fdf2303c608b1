package remedy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// Store is what the remedy path needs of the state store.
type Store interface {
	NextRemedyID(ctx context.Context) (string, error)
	SaveRemedy(ctx context.Context, r *model.Remedy, audit ...model.AuditEntry) error
	Remedy(ctx context.Context, id string) (model.Remedy, error)
	RemedyForIncident(ctx context.Context, incident string) (model.Remedy, error)
	RemedyAudit(ctx context.Context, id string) ([]model.AuditEntry, error)
	DueRemedies(ctx context.Context, now time.Time, limit int) ([]string, error)
	ExpiredRemedies(ctx context.Context, now time.Time, limit int) ([]string, error)
	LockSubject(ctx context.Context, subject, owner string, ttl time.Duration) (bool, error)
	UnlockSubject(ctx context.Context, subject, owner string) error

	Incident(ctx context.Context, id string) (model.Incident, error)
	SaveIncident(ctx context.Context, inc *model.Incident) error
	OpenIncidents(ctx context.Context) ([]model.Incident, error)
	ReadIncidentEvents(ctx context.Context, group, consumer string, count int, block time.Duration) ([]store.IncidentEvent, error)
	ClaimIncidentEvents(ctx context.Context, group, consumer string, minIdle time.Duration, count int) ([]store.IncidentEvent, error)
	AckIncidentEvents(ctx context.Context, group string, ids ...string) error

	VM(ctx context.Context, id string) (model.VMStatus, error)
	ListVMs(ctx context.Context, site, host string) ([]model.VMStatus, error)
	Host(ctx context.Context, id string, periods int) (model.HostStatus, error)
	SiteHosts(ctx context.Context, site string) ([]string, error)
	Silences(ctx context.Context) ([]model.Silence, error)
}

// Membership says whether a user is in a named group of users (a Slack
// user group), for approver lists that name groups.
type Membership interface {
	IsMember(ctx context.Context, user, group string) (bool, error)
}

// Recovery says whether the platform is recovering a VM itself, and which
// incident says so; the rules engine implements it.
type Recovery interface {
	PlatformRecovery(vm string) (incidentID string, ok bool)
}

// Services names the service a VM is an instance of ("" when none is
// known); the inventory implements it. The migration plan uses it to keep
// a service's instances on different hosts.
type Services interface {
	ServiceOf(vm string) string
}

// Requester is who asks for the remedies that incidents' rules propose.
const Requester = "vmtriage"

// Defaults of Options.
const (
	DefaultApprovalTimeout = 30 * time.Minute
	// IncidentGroup is the consumer group the Manager reads incidents in.
	IncidentGroup = "remedies"
)

// Options configure a Manager. Store is required.
type Options struct {
	Store Store
	// Approvers may approve and deny: user IDs, groups Membership knows,
	// or "*" for everyone. Empty: nobody may.
	Approvers  []string
	Membership Membership
	// Recovery, if set, refuses remedies on VMs the platform is recovering.
	Recovery Recovery
	// Services, if set, gives migration plans anti-affinity: instances of
	// one service are spread over target hosts.
	Services Services
	// ApprovalTimeout is how long a remedy waits for approval (default 30m).
	ApprovalTimeout time.Duration
	// TwoApprovers requires two distinct approvers for migrate-host.
	TwoApprovers bool
	// Consumer names this replica in the incidents consumer group.
	Consumer string
	// DefaultVCPUs and DefaultMemMB are assumed for a VM whose size no
	// observation gave (attrs vcpus, memory_mb); defaults 1 and 2048.
	DefaultVCPUs, DefaultMemMB float64
	Clock                      clock.Clock
	Logger                     *slog.Logger
}

// Manager creates remedies for firing incidents and takes approvals,
// denials and expiries. It is safe for concurrent use, and any number of
// replicas may run one against the same store.
type Manager struct {
	o     Options
	clock clock.Clock
	log   *slog.Logger
}

// NewManager returns a Manager.
func NewManager(o Options) (*Manager, error) {
	if o.Store == nil {
		return nil, errors.New("new remedy manager: Options.Store is required")
	}
	if o.ApprovalTimeout <= 0 {
		o.ApprovalTimeout = DefaultApprovalTimeout
	}
	if o.Consumer == "" {
		o.Consumer = "remedies"
	}
	if o.DefaultVCPUs <= 0 {
		o.DefaultVCPUs = 1
	}
	if o.DefaultMemMB <= 0 {
		o.DefaultMemMB = 2048
	}
	m := &Manager{o: o, clock: o.Clock, log: o.Logger}
	if m.clock == nil {
		m.clock = clock.Real{}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// RefusedError is a request a person made that the remedy rules refuse;
// its text is meant for them.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }

func refused(format string, args ...any) error {
	return &RefusedError{Msg: fmt.Sprintf(format, args...)}
}

// Remediable reports whether an incident's action changes the fleet and so
// gets a remedy record.
func Remediable(a model.Action) bool {
	return a == model.ActionRestartVM || a == model.ActionRestartService || a == model.ActionMigrateHost
}

// Request creates the remedy an incident's rule proposes, once: a second
// call (another replica, a replayed change) returns the existing one. An
// incident whose approval the rule does not require gets an approved remedy,
// which the executor runs at once; the others wait for approval until the
// approval timeout.
func (m *Manager) Request(ctx context.Context, inc model.Incident) (model.Remedy, error) {
	if r, err := m.o.Store.RemedyForIncident(ctx, inc.ID); err == nil {
		return r, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return model.Remedy{}, err
	}
	now := m.clock.Now()
	r := model.Remedy{
		Incident: inc.ID, Action: inc.Action, Subject: subjectOf(inc), Host: inc.Host, Site: inc.Site,
		RequestedBy: Requester, CreatedAt: now,
	}
	steps, err := m.steps(ctx, inc)
	if err != nil {
		return model.Remedy{}, err
	}
	r.Steps = steps
	audit := model.AuditEntry{Who: Requester, What: "requested " + describe(r)}
	if inc.Approval == model.ApprovalPending {
		r.State = model.RemedyAwaiting
		r.ApprovalsNeeded = 1
		if m.o.TwoApprovers && inc.Action == model.ActionMigrateHost {
			r.ApprovalsNeeded = 2
		}
		r.ExpiresAt = now.Add(m.o.ApprovalTimeout)
		audit.Result = fmt.Sprintf("awaiting %d approval(s) until %s", r.ApprovalsNeeded, r.ExpiresAt.UTC().Format(time.RFC3339))
	} else {
		r.State = model.RemedyApproved
		audit.Result = "runs without approval"
	}
	if r.ID, err = m.o.Store.NextRemedyID(ctx); err != nil {
		return model.Remedy{}, err
	}
	if err := m.o.Store.SaveRemedy(ctx, &r, audit); err != nil {
		if errors.Is(err, store.ErrRemedyExists) {
			return m.o.Store.RemedyForIncident(ctx, inc.ID)
		}
		return model.Remedy{}, err
	}
	m.log.Info("remedy requested", "remedy", r.ID, "incident", inc.ID, "action", r.Action, "state", r.State)
	SyncIncident(ctx, m.o.Store, r, m.log)
	return r, nil
}

func subjectOf(inc model.Incident) string {
	switch inc.Action {
	case model.ActionMigrateHost:
		if inc.Host != "" {
			return inc.Host
		}
	case model.ActionRestartVM:
		if inc.Kind != model.KindVM && len(inc.VMs) == 1 {
			return inc.VMs[0]
		}
	}
	if inc.Subject != "" {
		return inc.Subject
	}
	if len(inc.VMs) == 1 {
		return inc.VMs[0]
	}
	return inc.Host
}

// steps is the plan of an incident's remedy.
func (m *Manager) steps(ctx context.Context, inc model.Incident) ([]model.RemedyStep, error) {
	switch inc.Action {
	case model.ActionRestartVM:
		vm := subjectOf(inc)
		return []model.RemedyStep{{Do: model.StepRestartVM, VM: vm, Host: inc.Host, State: model.StepPending}}, nil
	case model.ActionRestartService:
		host, svc, ok := strings.Cut(subjectOf(inc), "/")
		if !ok {
			host, svc = inc.Host, subjectOf(inc)
		}
		return []model.RemedyStep{{Do: model.StepRestartService, Host: host, Service: svc, State: model.StepPending}}, nil
	case model.ActionMigrateHost:
		p, err := m.PlanHost(ctx, subjectOf(inc), inc.Site, inc.ID)
		if err != nil {
			return nil, err
		}
		return p.Steps(), nil
	}
	return nil, fmt.Errorf("request remedy for %s: action %q changes nothing", inc.ID, inc.Action)
}

// PlanHost plans moving every VM off host from the latest observations:
// the VMs last seen on it, and the other hosts of its site with their
// state, free capacity and silences. Hosts that are the subject of another
// open incident proposing migrate-host are never targets. self is the
// incident the plan is for.
func (m *Manager) PlanHost(ctx context.Context, host, site, self string) (Plan, error) {
	st := m.o.Store
	h, err := st.Host(ctx, host, 1)
	if err != nil {
		return Plan{}, fmt.Errorf("plan migration off %s: %w", host, err)
	}
	if site == "" {
		site = h.Site
	}
	vms, err := st.ListVMs(ctx, "", host)
	if err != nil {
		return Plan{}, fmt.Errorf("plan migration off %s: %w", host, err)
	}
	sizes := make([]VMSize, 0, len(vms))
	for _, v := range vms {
		s := VMSize{ID: v.ID, VCPUs: m.o.DefaultVCPUs, MemMB: m.o.DefaultMemMB}
		if c, ok := v.Attrs["vcpus"].(float64); ok && c > 0 {
			s.VCPUs, s.SizeKnown = c, true
		}
		if mem, ok := v.Attrs["memory_mb"].(float64); ok && mem > 0 {
			s.MemMB = mem
		}
		if m.o.Services != nil {
			s.Group = m.o.Services.ServiceOf(v.ID)
		}
		sizes = append(sizes, s)
	}
	groups, err := m.siteGroups(ctx, site, host)
	if err != nil {
		return Plan{}, fmt.Errorf("plan migration off %s: %w", host, err)
	}
	planned := map[string]bool{}
	open, err := st.OpenIncidents(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("plan migration off %s: %w", host, err)
	}
	for _, inc := range open {
		if inc.ID != self && inc.Action == model.ActionMigrateHost && inc.Host != "" {
			planned[inc.Host] = true
		}
	}
	sils, err := st.Silences(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("plan migration off %s: %w", host, err)
	}
	now := m.clock.Now()
	ids, err := st.SiteHosts(ctx, site)
	if err != nil {
		return Plan{}, fmt.Errorf("plan migration off %s: %w", host, err)
	}
	var cands []Candidate
	for _, id := range ids {
		if id == host {
			continue
		}
		hs, err := st.Host(ctx, id, 1)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return Plan{}, fmt.Errorf("plan migration off %s: %w", host, err)
		}
		c := Candidate{ID: id, Site: hs.Site, State: hs.State, Planned: planned[id], Groups: groups[id]}
		if c.Site == "" {
			c.Site = site
		}
		cpu, okC := hs.Facts[model.AttrCPUFree].(float64)
		mem, okM := hs.Facts[model.AttrMemFreeMB].(float64)
		c.CPUFree, c.MemFreeMB, c.HasCapacity = cpu, mem, okC && okM
		for i := range sils {
			s := &sils[i]
			if s.Active(now) && s.VM == "" && s.Rule == "" && (s.Host == id || (s.Host == "" && s.Site == c.Site)) {
				c.Silenced = true
			}
		}
		cands = append(cands, c)
	}
	return PlanMigration(host, site, sizes, cands), nil
}

// siteGroups counts, per host of site other than host, the instances of
// each service last seen on it; nil without Services.
func (m *Manager) siteGroups(ctx context.Context, site, host string) (map[string]map[string]int, error) {
	if m.o.Services == nil {
		return nil, nil
	}
	vms, err := m.o.Store.ListVMs(ctx, site, "")
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int{}
	for _, v := range vms {
		if v.Host == "" || v.Host == host {
			continue
		}
		svc := m.o.Services.ServiceOf(v.ID)
		if svc == "" {
			continue
		}
		if out[v.Host] == nil {
			out[v.Host] = map[string]int{}
		}
		out[v.Host][svc]++
	}
	return out, nil
}

// MaxReasonLen is the longest denial reason, in characters: it is shown
// in the incident's thread and kept in the audit trail.
const MaxReasonLen = 500

// Decision kinds.
const (
	Approve = "approve"
	Deny    = "deny"
)

// Decide applies one person's approval or denial to r at now and returns
// the remedy as it should be saved with its audit entry, or a
// *RefusedError saying why not. isApprover says whether user is on the
// approvers' list; recovering, if not empty, names the platform recovery
// in progress on the remedy's VMs. It is pure: the state machine, tested
// as a table.
func Decide(r model.Remedy, kind, user, reason string, isApprover bool, recovering string, now time.Time) (model.Remedy, model.AuditEntry, error) {
	entry := model.AuditEntry{At: now, Who: user}
	if !isApprover {
		return r, entry, refused("you are not on the approvers' list (VMTRIAGE_APPROVERS)")
	}
	switch r.State {
	case model.RemedyAwaiting:
	case model.RemedyExpired:
		return r, entry, refused("%s expired at %s without approval; nothing was done", r.ID, r.ExpiresAt.UTC().Format("15:04 MST"))
	default:
		return r, entry, refused("%s is already %s", r.ID, r.State)
	}
	if !now.Before(r.ExpiresAt) {
		return r, entry, refused("%s expired at %s without approval; nothing was done", r.ID, r.ExpiresAt.UTC().Format("15:04 MST"))
	}
	r.Approvals = slices.Clone(r.Approvals)
	switch kind {
	case Deny:
		reason = strings.TrimSpace(reason)
		if reason == "" {
			return r, entry, refused("a denial needs a reason: /triage deny %s <reason>", r.Incident)
		}
		if n := utf8.RuneCountInString(reason); n > MaxReasonLen {
			return r, entry, refused("the reason is %d characters long; keep it under %d", n, MaxReasonLen)
		}
		r.State = model.RemedyDenied
		r.Denial = &model.Decision{User: user, At: now, Reason: reason}
		r.ExpiresAt = time.Time{}
		entry.What, entry.Result = "denied", reason
		return r, entry, nil
	case Approve:
		if recovering != "" {
			return r, entry, refused("the platform is recovering this itself (%s); a manual %s now would fight it", recovering, r.Action)
		}
		for _, a := range r.Approvals {
			if a.User == user {
				return r, entry, refused("you already approved %s; it needs %d approvals from distinct approvers", r.ID, r.ApprovalsNeeded)
			}
		}
		r.Approvals = append(r.Approvals, model.Decision{User: user, At: now})
		entry.What = fmt.Sprintf("approved (%d of %d)", len(r.Approvals), r.ApprovalsNeeded)
		if len(r.Approvals) < r.ApprovalsNeeded {
			entry.Result = "awaiting another approver"
			return r, entry, nil
		}
		// The requester may approve, but not be the only one when two
		// are needed: distinct approvers already ensure it; this guards a
		// record whose ApprovalsNeeded was raised after the fact.
		if r.ApprovalsNeeded >= 2 {
			others := 0
			for _, a := range r.Approvals {
				if a.User != r.RequestedBy {
					others++
				}
			}
			if others == 0 {
				r.Approvals = r.Approvals[:len(r.Approvals)-1]
				return r, entry, refused("the requester cannot be the only approver of %s", r.ID)
			}
		}
		r.State = model.RemedyApproved
		r.ExpiresAt = time.Time{}
		entry.Result = "approved: queued to run"
		return r, entry, nil
	}
	return r, entry, fmt.Errorf("decide on %s: unknown decision %q", r.ID, kind)
}

// Decide records user's approval or denial of the remedy of incident (or
// of the remedy id) after checking that user is an approver, that the
// remedy still awaits approval and has not expired, that a denial has a
// reason, and that the platform is not recovering the VMs itself. Two
// people deciding at once, or one person clicking twice, is settled by the
// store's compare-and-set: the second sees the first's decision.
func (m *Manager) Decide(ctx context.Context, ref, kind, user, reason string) (model.Remedy, error) {
	isApprover, err := m.isApprover(ctx, user)
	if err != nil {
		return model.Remedy{}, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		r, err := m.Find(ctx, ref)
		if err != nil {
			return model.Remedy{}, err
		}
		recovering := ""
		if kind == Approve && r.State == model.RemedyAwaiting {
			recovering = m.recovering(r)
			if inc, err := m.o.Store.Incident(ctx, r.Incident); err == nil && !inc.Open() {
				if err := m.withdraw(ctx, r.Incident); err != nil {
					return r, err
				}
				return r, refused("%s is %s: its VMs are back, so %s will not run; it is withdrawn", r.Incident, inc.Status, r.ID)
			}
		}
		next, entry, err := Decide(r, kind, user, reason, isApprover, recovering, m.clock.Now())
		if err != nil {
			var re *RefusedError
			if errors.As(err, &re) && isApprover {
				// Refusals of approvers are audited too; others are
				// told by the router, which audits them.
				_ = m.audit(ctx, r, model.AuditEntry{Who: user, What: kind + " refused", Result: re.Msg})
			}
			return r, err
		}
		err = m.o.Store.SaveRemedy(ctx, &next, entry)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return model.Remedy{}, err
		}
		m.log.Info("remedy "+kind, "remedy", next.ID, "incident", next.Incident, "user", user, "state", next.State)
		SyncIncident(ctx, m.o.Store, next, m.log)
		return next, nil
	}
	return model.Remedy{}, fmt.Errorf("%s %s: it kept changing", kind, ref)
}

// audit appends an entry without changing the remedy (a refusal): it saves
// the unchanged remedy with the entry, so the trail stays in one list.
func (m *Manager) audit(ctx context.Context, r model.Remedy, e model.AuditEntry) error {
	return m.o.Store.SaveRemedy(ctx, &r, e)
}

// Find returns the remedy named by ref: a remedy id (rem-3) or the id of
// its incident. Not found is a *RefusedError.
func (m *Manager) Find(ctx context.Context, ref string) (model.Remedy, error) {
	var r model.Remedy
	var err error
	if strings.HasPrefix(ref, "rem-") {
		r, err = m.o.Store.Remedy(ctx, ref)
	} else {
		r, err = m.o.Store.RemedyForIncident(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return r, refused("%s has no remedy to approve or deny", ref)
	}
	return r, err
}

func (m *Manager) recovering(r model.Remedy) string {
	if m.o.Recovery == nil {
		return ""
	}
	vms := []string{}
	for _, s := range r.Steps {
		if s.VM != "" {
			vms = append(vms, s.VM)
		}
	}
	for _, vm := range vms {
		if id, ok := m.o.Recovery.PlatformRecovery(vm); ok {
			return fmt.Sprintf("%s, see %s", vm, id)
		}
	}
	return ""
}

func (m *Manager) isApprover(ctx context.Context, user string) (bool, error) {
	if user == "" {
		return false, nil
	}
	if slices.Contains(m.o.Approvers, user) || slices.Contains(m.o.Approvers, "*") {
		return true, nil
	}
	if m.o.Membership == nil {
		return false, nil
	}
	for _, g := range m.o.Approvers {
		in, err := m.o.Membership.IsMember(ctx, user, g)
		if err != nil {
			return false, fmt.Errorf("check whether %s is in %s: %w", user, g, err)
		}
		if in {
			return true, nil
		}
	}
	return false, nil
}

// ExpireDue marks every remedy whose approval window ended as expired
// (nothing is done) and says so on its incident. It returns how many it
// expired.
func (m *Manager) ExpireDue(ctx context.Context) (int, error) {
	now := m.clock.Now()
	ids, err := m.o.Store.ExpiredRemedies(ctx, now, 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		r, err := m.o.Store.Remedy(ctx, id)
		if err != nil {
			return n, err
		}
		if r.State != model.RemedyAwaiting || now.Before(r.ExpiresAt) {
			continue
		}
		r.State = model.RemedyExpired
		err = m.o.Store.SaveRemedy(ctx, &r, model.AuditEntry{Who: Requester, What: "expired",
			Result: fmt.Sprintf("no approval within %s; nothing was done", m.o.ApprovalTimeout)})
		if errors.Is(err, store.ErrConflict) {
			continue // approved or denied in the meantime, or another replica expired it
		}
		if err != nil {
			return n, err
		}
		n++
		m.log.Info("remedy expired", "remedy", r.ID, "incident", r.Incident)
		SyncIncident(ctx, m.o.Store, r, m.log)
	}
	return n, nil
}

// HandleIncident requests a remedy for a firing incident whose action
// changes the fleet, and withdraws the remedy still awaiting approval of
// an incident that resolved (its VMs are back: nothing to do); other
// incidents are ignored.
func (m *Manager) HandleIncident(ctx context.Context, inc model.Incident) error {
	if inc.ID != "" && inc.Status == model.StatusResolved && Remediable(inc.Action) {
		return m.withdraw(ctx, inc.ID)
	}
	if inc.ID == "" || inc.Status != model.StatusFiring || !Remediable(inc.Action) {
		return nil
	}
	// The event may be old (a first start reads the stream from its
	// beginning, a dead replica's events are claimed late): act on the
	// incident as it is now, never on a snapshot of the past.
	cur, err := m.o.Store.Incident(ctx, inc.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	inc = cur
	if inc.Status != model.StatusFiring || inc.Silenced || inc.InhibitedBy != "" || inc.PlatformRecovery {
		return nil
	}
	_, err = m.Request(ctx, inc)
	return err
}

// withdraw ends the awaiting remedy of a resolved incident as expired,
// saying why.
func (m *Manager) withdraw(ctx context.Context, incident string) error {
	for attempt := 0; attempt < 5; attempt++ {
		r, err := m.o.Store.RemedyForIncident(ctx, incident)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.State != model.RemedyAwaiting {
			return nil
		}
		r.State = model.RemedyExpired
		r.Result = "withdrawn: the incident resolved before approval; nothing was done"
		err = m.o.Store.SaveRemedy(ctx, &r, model.AuditEntry{Who: Requester, What: "withdrawn",
			Result: "the incident resolved before approval; nothing was done"})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		m.log.Info("remedy withdrawn: incident resolved", "remedy", r.ID, "incident", incident)
		SyncIncident(ctx, m.o.Store, r, m.log)
		return nil
	}
	return fmt.Errorf("withdraw remedy of %s: it kept changing", incident)
}

// Run follows the incidents stream in its own consumer group, requesting
// remedies for incidents as they fire, and expires unapproved remedies,
// until ctx ends. poll bounds how long one read waits (default 1s).
func (m *Manager) Run(ctx context.Context, poll time.Duration) error {
	if poll <= 0 {
		poll = time.Second
	}
	for ctx.Err() == nil {
		if err := m.Step(ctx, poll); err != nil && ctx.Err() == nil {
			m.log.Warn("remedy manager step failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(poll):
			}
		}
	}
	return nil
}

// Step handles what is waiting once: incident changes (reading up to
// block for one), stuck changes of a dead replica, and expiries.
func (m *Manager) Step(ctx context.Context, block time.Duration) error {
	st := m.o.Store
	evs, err := st.ClaimIncidentEvents(ctx, IncidentGroup, m.o.Consumer, time.Minute, 50)
	if err != nil {
		return err
	}
	fresh, err := st.ReadIncidentEvents(ctx, IncidentGroup, m.o.Consumer, 50, block)
	if err != nil {
		return err
	}
	evs = append(evs, fresh...)
	var errs []error
	for _, ev := range evs {
		if !ev.Deleted {
			if err := m.HandleIncident(ctx, ev.Incident); err != nil {
				errs = append(errs, fmt.Errorf("remedy for %s: %w", ev.Incident.ID, err))
				continue // left pending: claimed again later
			}
		}
		if err := st.AckIncidentEvents(ctx, IncidentGroup, ev.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := m.ExpireDue(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Describe says what a remedy does, in words ("migrate 4 VMs off host-007").
func describe(r model.Remedy) string {
	switch r.Action {
	case model.ActionMigrateHost:
		n := 0
		for _, s := range r.Steps {
			if s.Do == model.StepMigrateVM {
				n++
			}
		}
		return fmt.Sprintf("migrate %d VM(s) off %s", n, r.Subject)
	case model.ActionRestartVM:
		return "restart " + r.Subject
	case model.ActionRestartService:
		return "restart " + r.Subject
	}
	return string(r.Action) + " " + r.Subject
}
