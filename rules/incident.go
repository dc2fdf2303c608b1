package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// Kinds of incident subject beyond the observation kinds.
const (
	KindSource model.Kind = "source"
	KindSite   model.Kind = "site"
)

// incKey finds an incident by rule and group labels without building a
// string, so the lookup does not allocate.
type incKey struct {
	rule string
	l    labels
}

// incState is an incident and what the engine needs to drive it.
type incState struct {
	rule   *Rule
	labels labels // group labels
	full   labels // all labels of the latest subject to join
	fp     string
	// members are the subjects (VM ids, host ids...) whose condition
	// holds now; the incident is active while there is any.
	members     map[string]struct{}
	prevMembers map[string]struct{}
	// inhibitedVMs are the VMs of incidents this one mutes.
	inhibitedVMs map[string]struct{}
	inc          model.Incident
	activeSince  time.Time
	clearedAt    time.Time
	hostState    string
	event        string
	lastSeen     time.Time
	reason       string
	// loaded is true for an incident read from the store at start-up whose
	// subjects have not been evaluated yet.
	loaded       bool
	escScheduled bool
	cancelEsc    bool
	// withdrawn is set when a stored pending incident stopped holding
	// before it fired: the next flush deletes it from the store.
	withdrawn bool
	// beforeReopen is the resolved incident as it was (and is stored)
	// before a recurrence reopened it, while the recurrence waits out its
	// rule's "for". The reopening is saved only once it fires; if it
	// clears first, the incident goes back to this, and nobody was told.
	beforeReopen *model.Incident
	// logged is the status last logged, so each transition is logged once.
	logged model.Status
}

// fingerprint is a stable hash of the rule and its group labels.
func fingerprint(rule string, l labels) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00vm=%s\x00host=%s\x00site=%s\x00source=%s\x00service=%s", rule, l.vm, l.host, l.site, l.source, l.service)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// incFor returns the incident state of a rule and group, creating it (or
// adopting one loaded from the store with the same fingerprint).
func (e *Engine) incFor(r *Rule, group labels) *incState {
	key := incKey{rule: r.Name, l: group}
	if st := e.byKey[key]; st != nil {
		return st
	}
	fp := fingerprint(r.Name, group)
	st := e.byFP[fp]
	if st == nil {
		st = &incState{fp: fp, members: map[string]struct{}{}}
		e.byFP[fp] = st
	}
	st.rule = r
	st.labels = group
	if st.members == nil {
		st.members = map[string]struct{}{}
	}
	e.byKey[key] = st
	return st
}

// touchMember refreshes what an already-member subject tells the incident
// (e.g. the last-seen time of a stopped VM), without allocating.
func (e *Engine) touchMember(st *incState) {
	if len(st.members) != 1 {
		// Members of a group differ (each VM its own crash period and
		// event); following whichever was evaluated last would rewrite the
		// incident on every evaluation.
		return
	}
	if st.hostState != e.cur.hostState || st.event != e.cur.event || st.full != e.cur.labels {
		st.hostState, st.event, st.full = e.cur.hostState, e.cur.event, e.cur.labels
		e.markDirty(st)
	}
}

func (e *Engine) addMember(st *incState, member string) {
	if _, ok := st.members[member]; ok {
		return
	}
	st.members[member] = struct{}{}
	st.full = e.cur.labels
	st.hostState, st.event, st.lastSeen, st.reason = e.cur.hostState, e.cur.event, e.cur.lastSeen, e.cur.reason
	e.markDirty(st)
	if len(st.members) == 1 {
		e.activated(st)
	}
}

func (e *Engine) removeMember(st *incState, member string) {
	if _, ok := st.members[member]; !ok {
		return
	}
	delete(st.members, member)
	e.markDirty(st)
	if len(st.members) == 0 {
		e.cleared(st)
	}
}

func approvalFor(r *Rule) model.Approval {
	if r.Action.Approval && r.Action.Type != model.ActionNone && r.Action.Type != model.ActionNotify {
		return model.ApprovalPending
	}
	return model.ApprovalNotRequired
}

// activated runs when an incident's condition starts to hold: a clearing
// incident stays open (anti-flap), a recently resolved one reopens, and
// otherwise a new incident starts.
func (e *Engine) activated(st *incState) {
	st.clearedAt = time.Time{}
	st.loaded = false
	inc := &st.inc
	window := e.set.Settings.ReopenWindow
	switch {
	case st.withdrawn:
		// Withdrawn but not yet deleted (in this batch, or the store
		// failed): it is pending again, its "for" counted afresh.
		st.withdrawn = false
		inc.Status, inc.ResolvedAt = model.StatusPending, time.Time{}
		st.activeSince = e.now
		e.open[st] = struct{}{}
		e.changedOpen = true
		e.markDirty(st)
		e.m.transitions.WithLabelValues(string(model.StatusPending)).Inc()
		e.maybeFire(st)
	case inc.ID != "" && inc.Open():
		if st.prevMembers != nil {
			// Re-joined during a reload's sweep: nothing changed.
			return
		}
	case inc.ID != "" && inc.Status == model.StatusResolved && e.now.Sub(inc.ResolvedAt) <= window:
		prev := *inc
		st.beforeReopen = &prev
		inc.Reopened++
		inc.ResolvedAt = time.Time{}
		inc.AckedBy, inc.AckedAt = "", time.Time{}
		inc.Level, inc.Targets = 0, nil
		inc.Approval = approvalFor(st.rule)
		inc.Status = model.StatusPending
		st.activeSince = e.now
		e.open[st] = struct{}{}
		e.changedOpen = true
		e.m.transitions.WithLabelValues("reopened").Inc()
		e.maybeFire(st)
	default:
		if inc.ID != "" {
			delete(e.byID, inc.ID)
		}
		r := st.rule
		st.beforeReopen = nil
		st.inc = model.Incident{
			Fingerprint: st.fp,
			Rule:        r.Name,
			Status:      model.StatusPending,
			StartedAt:   e.cur.started,
			Approval:    approvalFor(r),
		}
		st.activeSince = e.now
		st.inhibitedVMs = nil
		e.open[st] = struct{}{}
		e.changedOpen = true
		e.m.transitions.WithLabelValues(string(model.StatusPending)).Inc()
		e.maybeFire(st)
	}
}

// maybeFire moves a pending incident to firing once its condition has held
// for the rule's "for".
func (e *Engine) maybeFire(st *incState) {
	if st.inc.Status != model.StatusPending || len(st.members) == 0 {
		return
	}
	if e.now.Sub(st.activeSince) < st.rule.For {
		return
	}
	st.inc.Status = model.StatusFiring
	st.inc.FiringAt = e.now
	st.beforeReopen = nil
	e.changedOpen = true
	e.markDirty(st)
	e.m.transitions.WithLabelValues(string(model.StatusFiring)).Inc()
}

// cleared runs when no subject satisfies the condition any more. A pending
// incident never told anyone, so it is withdrawn at once (see resolve); a
// firing one waits for the resolve delay so that a flapping condition does
// not resolve and reopen it every period.
func (e *Engine) cleared(st *incState) {
	if !st.inc.Open() {
		return
	}
	st.clearedAt = e.now
	if st.inc.Status == model.StatusPending || e.resolveDelay(st) == 0 {
		e.resolve(st)
	}
}

func (e *Engine) resolveDelay(st *incState) time.Duration {
	if st.rule.HasResolveDelay {
		return st.rule.ResolveDelay
	}
	return e.set.Settings.ResolveDelay
}

// resolve ends an open incident. A pending one is withdrawn instead, if it
// can be: see withdraw.
func (e *Engine) resolve(st *incState) {
	if st.inc.Status == model.StatusPending && e.withdraw(st) {
		return
	}
	st.inc.Status = model.StatusResolved
	st.inc.ResolvedAt = st.clearedAt
	if st.inc.ResolvedAt.IsZero() {
		st.inc.ResolvedAt = e.now
	}
	delete(e.open, st)
	if st.escScheduled {
		st.cancelEsc = true
	}
	e.changedOpen = true
	e.markDirty(st)
	e.m.transitions.WithLabelValues(string(model.StatusResolved)).Inc()
}

// withdraw ends a pending incident whose condition stopped holding (or
// was taken over by another rule, e.g. a crash first judged against an
// unknown host that the host's fault then claims) before its "for" ran
// out. Nothing fired, so it never was an incident and must not be listed
// as one, not even as resolved: a new one is deleted from the store at the
// next flush, and a recurrence that reopened a resolved incident puts it
// back as it was. It reports false for a pending incident that fired in an
// earlier life whose state before the reopening is unknown (loaded at
// start-up): that one resolves like a firing one.
func (e *Engine) withdraw(st *incState) bool {
	switch {
	case st.beforeReopen != nil:
		// Never saved while reopened (see flush): the store still has it
		// as it was, so there is nothing to write.
		st.inc = *st.beforeReopen
		st.beforeReopen = nil
		delete(e.open, st)
		delete(e.dirty, st)
		e.changedOpen = true
		e.m.transitions.WithLabelValues("withdrawn").Inc()
		return true
	case st.inc.FiringAt.IsZero():
		// The final snapshot consumers of the incident stream see.
		st.inc.Status = model.StatusResolved
		st.inc.ResolvedAt = st.clearedAt
		if st.inc.ResolvedAt.IsZero() {
			st.inc.ResolvedAt = e.now
		}
		st.withdrawn = st.inc.ID != ""
	default:
		return false
	}
	delete(e.open, st)
	if st.escScheduled {
		st.cancelEsc = true
	}
	e.changedOpen = true
	e.markDirty(st)
	e.m.transitions.WithLabelValues("withdrawn").Inc()
	return true
}

func (e *Engine) markDirty(st *incState) { e.dirty[st] = struct{}{} }

// advanceLifecycle applies the time-based transitions at e.now.
func (e *Engine) advanceLifecycle() {
	grace := max(e.set.Settings.StoppedReporting, 2*e.set.Settings.Period)
	for st := range e.open {
		switch {
		case len(st.members) > 0:
			e.maybeFire(st)
		case st.loaded && st.clearedAt.IsZero() && (e.set.Rule(st.rule.Name) == nil || e.now.Sub(e.startedAt) >= grace):
			// Loaded at start-up and no subject confirmed it since: the
			// index has been rebuilt, so its condition no longer holds.
			st.clearedAt = e.now
			if e.set.Rule(st.rule.Name) == nil || st.inc.Status == model.StatusPending {
				e.resolve(st)
			}
		case !st.clearedAt.IsZero() && e.now.Sub(st.clearedAt) >= e.resolveDelay(st):
			e.resolve(st)
		}
	}
}

// refreshSilences re-applies silences to every open incident (silences
// start and end with time) and forgets silences that ended a day ago.
func (e *Engine) refreshSilences() {
	keep := e.silences[:0]
	for _, s := range e.silences {
		if e.now.Sub(s.EndsAt) < 24*time.Hour {
			keep = append(keep, s)
		}
	}
	e.silences = keep
	for st := range e.open {
		e.applySilences(st)
	}
}

func (e *Engine) applySilences(st *incState) {
	if st.inc.ID == "" && !st.inc.Open() {
		return
	}
	silenced := false
	for i := range e.silences {
		s := &e.silences[i]
		if s.Active(e.now) && s.Matches(&st.inc) {
			silenced = true
			break
		}
	}
	if silenced != st.inc.Silenced {
		st.inc.Silenced = silenced
		e.markDirty(st)
	}
}

// claimEscalations takes the due escalations from the store and raises
// their incidents one level. The claim is atomic in the store, so with
// several replicas each due level goes to one of them; the level raised is
// the stored one plus one, since another replica may have raised the
// previous level.
func (e *Engine) claimEscalations(ctx context.Context) error {
	ids, err := e.store.ClaimDueEscalations(ctx, e.now, 1000)
	if err != nil {
		e.m.storeErrors.Inc()
		return err
	}
	var errs []error
	for _, id := range ids {
		st := e.byID[id]
		if st == nil {
			if err := e.escalateStored(ctx, id); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		st.escScheduled = false
		e.refresh(ctx, st)
		if !e.escalatable(st) {
			continue
		}
		e.raiseLevel(st)
	}
	return errors.Join(errs...)
}

// refresh takes into the engine's copy what other writers (another
// replica, the ticket or approval path) stored since the engine last saved
// it. A failed read leaves the copy as it is: a later save merges anyway.
func (e *Engine) refresh(ctx context.Context, st *incState) {
	cur, err := e.store.Incident(ctx, st.inc.ID)
	if err != nil {
		e.log.Warn("read incident before escalating it", "incident", st.inc.ID, "err", err)
		return
	}
	if cur.Version > st.inc.Version {
		mergeStored(&st.inc, &cur)
	}
}

// mergeStored takes from a newer stored copy the fields that writers other
// than this engine own: the ticket (and Jira's refusal of it), the approval decision, the
// acknowledgement, and the escalation level another replica raised. The
// version becomes the stored one, so that the next save applies.
func mergeStored(inc, cur *model.Incident) {
	inc.Ticket, inc.TicketURL, inc.TicketError = cur.Ticket, cur.TicketURL, cur.TicketError
	inc.Remedy = cur.Remedy
	if cur.Approval != model.ApprovalPending && cur.Approval != "" {
		inc.Approval = cur.Approval
	}
	if inc.AckedBy == "" && cur.AckedBy != "" {
		inc.AckedBy, inc.AckedAt = cur.AckedBy, cur.AckedAt
	}
	// A reopened incident starts again at level 0, so only a level of the
	// same open life counts.
	if inc.Open() && cur.Open() && cur.Level > inc.Level {
		inc.Level, inc.Targets = cur.Level, cur.Targets
	}
	inc.Version = cur.Version
}

// escalatable says whether an incident should keep escalating: firing,
// not acknowledged, not silenced, not muted, and with levels left.
func (e *Engine) escalatable(st *incState) bool {
	return canEscalate(st.rule.policy, &st.inc)
}

func canEscalate(p *Policy, inc *model.Incident) bool {
	return p != nil && inc.Status == model.StatusFiring && inc.AckedBy == "" &&
		!inc.Silenced && inc.InhibitedBy == "" && inc.Level < len(p.Levels)
}

func (e *Engine) raiseLevel(st *incState) {
	raise(st.rule.policy, &st.inc)
	e.markDirty(st)
	e.m.escalations.Inc()
}

// raise moves an incident to its policy's next level and its targets.
func raise(p *Policy, inc *model.Incident) {
	inc.Level++
	lvl := p.Levels[inc.Level-1]
	inc.Targets = make([]string, len(lvl.Targets))
	for i, t := range lvl.Targets {
		inc.Targets[i] = t.String()
	}
}

// escalateStored raises an incident this engine does not hold (another
// replica created it) straight in the store: the escalation was claimed
// here, so no other replica will raise it. It reads, raises, saves with the
// version check (retrying after a conflict) and schedules the next level.
// An incident that is gone, no longer escalatable, or whose rule this
// engine does not know is left alone; a failed read or save puts the
// escalation back, due at once, for the next tick of any replica.
func (e *Engine) escalateStored(ctx context.Context, id string) error {
	for attempt := 0; attempt < 3; attempt++ {
		inc, err := e.store.Incident(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return e.putBack(ctx, id, fmt.Errorf("escalate incident %s: %w", id, err))
		}
		r := e.set.Rule(inc.Rule)
		if r == nil || !canEscalate(r.policy, &inc) {
			return nil
		}
		raise(r.policy, &inc)
		err = e.store.SaveIncident(ctx, &inc)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return e.putBack(ctx, id, fmt.Errorf("escalate incident %s: %w", id, err))
		}
		e.m.escalations.Inc()
		e.log.Info("incident escalated", "incident", id, "level", inc.Level)
		if inc.Level < len(r.policy.Levels) {
			due := e.now.Add(r.policy.Levels[inc.Level].Wait)
			if err := e.store.ScheduleEscalation(ctx, id, due); err != nil {
				e.m.storeErrors.Inc()
				return fmt.Errorf("schedule escalation of %s: %w", id, err)
			}
		}
		return nil
	}
	return e.putBack(ctx, id, fmt.Errorf("escalate incident %s: it kept changing", id))
}

// putBack reschedules a claimed escalation that could not be applied.
func (e *Engine) putBack(ctx context.Context, id string, cause error) error {
	e.m.storeErrors.Inc()
	if err := e.store.ScheduleEscalation(ctx, id, e.now); err != nil {
		return errors.Join(cause, fmt.Errorf("put back escalation of %s: %w", id, err))
	}
	return cause
}

// prune forgets resolved incidents once they are past the reopen window.
func (e *Engine) prune() {
	window := e.set.Settings.ReopenWindow
	for fp, st := range e.byFP {
		if st.inc.Open() || len(st.members) > 0 {
			continue
		}
		if _, dirty := e.dirty[st]; dirty {
			continue
		}
		if st.inc.ID != "" && e.now.Sub(st.inc.ResolvedAt) <= window {
			continue
		}
		delete(e.byFP, fp)
		delete(e.byKey, incKey{rule: st.rule.Name, l: st.labels})
		if st.inc.ID != "" && e.byID[st.inc.ID] == st {
			delete(e.byID, st.inc.ID)
		}
	}
}

// flush assigns ids, recomputes inhibition, renders and persists every
// changed incident and host period. Anything that fails stays dirty and is
// retried by the next flush.
func (e *Engine) flush(ctx context.Context) error {
	defer e.flushMetrics()
	if len(e.dirty) == 0 && len(e.periods) == 0 && !e.changedOpen {
		return nil
	}
	var errs []error
	// Host states first: what reacts to an incident (a migration plan, a
	// ticket) reads the hosts' states of the period, so the evidence is
	// stored before the verdict that rests on it.
	for pr, h := range e.periods {
		if !pr.dirty {
			delete(e.periods, pr)
			continue
		}
		hp := model.HostPeriod{Start: e.periodStart(pr.idx), State: pr.state, Facts: factsMap(pr.facts), Reasons: e.reasonNames(pr.reasons)}
		if err := e.store.SaveHostPeriod(ctx, h.id, hp); err != nil {
			e.m.storeErrors.Inc()
			errs = append(errs, fmt.Errorf("save period %s of host %s: %w", hp.Start.Format(time.RFC3339), h.id, err))
			continue
		}
		pr.savedState, pr.savedReasons, pr.dirty = pr.state, pr.reasons, false
		delete(e.periods, pr)
	}
	// Ids next: inhibition refers to incidents by id.
	for st := range e.dirty {
		if st.inc.ID != "" {
			continue
		}
		if !st.inc.Open() {
			// Pending and cleared within one batch: nobody ever saw it.
			delete(e.dirty, st)
			continue
		}
		id, err := e.store.NextIncidentID(ctx)
		if err != nil {
			e.m.storeErrors.Inc()
			errs = append(errs, fmt.Errorf("allocate incident id: %w", err))
			continue
		}
		st.inc.ID = id
		e.byID[id] = st
	}
	if e.changedOpen {
		e.inhibit()
		e.changedOpen = false
	}
	for st := range e.dirty {
		if st.inc.ID == "" {
			continue
		}
		e.render(st)
		e.applySilences(st)
	}
	for st := range e.dirty {
		if st.inc.ID == "" {
			continue
		}
		if err := e.schedule(ctx, st); err != nil {
			errs = append(errs, err)
			continue
		}
		if st.beforeReopen != nil {
			// A recurrence waiting out its "for": the stored incident
			// stays resolved until the recurrence fires.
			delete(e.dirty, st)
			continue
		}
		if st.withdrawn {
			if err := e.drop(ctx, st); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(e.dirty, st)
			continue
		}
		if err := e.save(ctx, st); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(e.dirty, st)
		if st.logged != st.inc.Status {
			st.logged = st.inc.Status
			e.log.Info("incident "+string(st.inc.Status), "incident", st.inc.ID, "rule", st.inc.Rule,
				"subject", st.inc.Subject, "vms", len(st.inc.VMs), "silenced", st.inc.Silenced, "inhibited_by", st.inc.InhibitedBy)
		}
	}
	e.m.setOpen(e.open)
	return errors.Join(errs...)
}

// schedule keeps the store's escalation set in step with the incident.
func (e *Engine) schedule(ctx context.Context, st *incState) error {
	id := st.inc.ID
	if e.escalatable(st) {
		if st.escScheduled {
			return nil
		}
		p := st.rule.policy
		if st.inc.Level == 0 && p.Levels[0].Wait == 0 {
			e.raiseLevel(st)
		}
		if st.inc.Level < len(p.Levels) {
			due := e.now.Add(p.Levels[st.inc.Level].Wait)
			if err := e.store.ScheduleEscalation(ctx, id, due); err != nil {
				e.m.storeErrors.Inc()
				return fmt.Errorf("schedule escalation of %s: %w", id, err)
			}
			st.escScheduled = true
		}
		return nil
	}
	if st.escScheduled || st.cancelEsc {
		if err := e.store.CancelEscalation(ctx, id); err != nil {
			e.m.storeErrors.Inc()
			return fmt.Errorf("cancel escalation of %s: %w", id, err)
		}
		st.escScheduled, st.cancelEsc = false, false
	}
	return nil
}

// save persists one incident with its version. After a conflict (another
// writer, e.g. the ticket or approval path, saved it meanwhile) it takes
// the fields those writers own from the stored copy and tries once more.
func (e *Engine) save(ctx context.Context, st *incState) error {
	err := e.store.SaveIncident(ctx, &st.inc)
	if err == nil {
		return nil
	}
	cur, gerr := e.store.Incident(ctx, st.inc.ID)
	if gerr != nil || cur.Version == st.inc.Version {
		e.m.storeErrors.Inc()
		return err // the store's error names the incident
	}
	mergeStored(&st.inc, &cur)
	if err := e.store.SaveIncident(ctx, &st.inc); err != nil {
		e.m.storeErrors.Inc()
		return fmt.Errorf("after a version conflict: %w", err)
	}
	return nil
}

// drop deletes a withdrawn incident from the store and forgets its id, so
// that a recurrence starts a new incident. After a version conflict (an
// other writer saved it meanwhile) it tries once more at the stored
// version.
func (e *Engine) drop(ctx context.Context, st *incState) error {
	id := st.inc.ID
	err := e.store.DeleteIncident(ctx, &st.inc)
	if err != nil {
		cur, gerr := e.store.Incident(ctx, id)
		if gerr != nil || cur.Version == st.inc.Version {
			e.m.storeErrors.Inc()
			return fmt.Errorf("delete withdrawn incident %s: %w", id, err)
		}
		st.inc.Version = cur.Version
		if err := e.store.DeleteIncident(ctx, &st.inc); err != nil {
			e.m.storeErrors.Inc()
			return fmt.Errorf("delete withdrawn incident %s after a version conflict: %w", id, err)
		}
	}
	e.log.Info("incident withdrawn before it fired", "incident", id, "rule", st.inc.Rule, "subject", st.inc.Subject)
	if e.byID[id] == st {
		delete(e.byID, id)
	}
	st.inc.ID = ""
	st.withdrawn = false
	st.logged = ""
	return nil
}

// inhibit recomputes which open incidents are muted by which. The source
// chosen for a target is the firing one that started first, so the answer
// does not depend on the order in which observations arrived.
func (e *Engine) inhibit() {
	muted := map[*incState]*incState{}
	for _, in := range e.set.Inhibits {
		sources := map[labels]*incState{}
		for st := range e.open {
			if st.inc.ID == "" || !containsString(in.SourceRules, st.rule.Name) {
				continue
			}
			key, ok := equalKey(st, in.Equal)
			if !ok {
				continue
			}
			if cur := sources[key]; cur == nil || betterSource(st, cur) {
				sources[key] = st
			}
		}
		if len(sources) == 0 {
			continue
		}
		for st := range e.open {
			if !containsString(in.TargetRules, st.rule.Name) {
				continue
			}
			key, ok := equalKey(st, in.Equal)
			if !ok {
				continue
			}
			src := sources[key]
			if src == nil || src == st {
				continue
			}
			if cur := muted[st]; cur == nil || betterSource(src, cur) {
				muted[st] = src
			}
		}
	}
	for st := range e.open {
		src := muted[st]
		id := ""
		if src != nil {
			id = src.inc.ID
			for _, vm := range e.vmsOf(st) {
				if src.inhibitedVMs == nil {
					src.inhibitedVMs = map[string]struct{}{}
				}
				if _, ok := src.inhibitedVMs[vm]; !ok {
					src.inhibitedVMs[vm] = struct{}{}
					e.markDirty(src)
				}
			}
		}
		if st.inc.InhibitedBy != id {
			st.inc.InhibitedBy = id
			e.markDirty(st)
		}
	}
}

func betterSource(a, b *incState) bool {
	af, bf := a.inc.Status == model.StatusFiring, b.inc.Status == model.StatusFiring
	if af != bf {
		return af
	}
	if !a.inc.StartedAt.Equal(b.inc.StartedAt) {
		return a.inc.StartedAt.Before(b.inc.StartedAt)
	}
	return a.inc.ID < b.inc.ID
}

// equalKey projects an incident's labels onto an inhibit rule's equal
// labels; ok is false when one of them is empty.
func equalKey(st *incState, equal []string) (labels, bool) {
	l := st.full
	// Group labels are authoritative; full labels fill in the rest.
	g := st.labels
	if g.vm != "" {
		l.vm = g.vm
	}
	if g.host != "" {
		l.host = g.host
	}
	if g.site != "" {
		l.site = g.site
	}
	if g.source != "" {
		l.source = g.source
	}
	if g.service != "" {
		l.service = g.service
	}
	k := l.project(equal)
	for _, name := range equal {
		if (name == LabelVM && k.vm == "") || (name == LabelHost && k.host == "") || (name == LabelSite && k.site == "") ||
			(name == LabelSource && k.source == "") || (name == LabelService && k.service == "") {
			return k, false
		}
	}
	return k, true
}

// vmsOf lists the VMs an incident is about.
func (e *Engine) vmsOf(st *incState) []string {
	set := map[string]struct{}{}
	if st.rule.Scope == ScopeVM {
		for m := range st.members {
			set[m] = struct{}{}
		}
	}
	if st.labels.vm != "" {
		set[st.labels.vm] = struct{}{}
	}
	if st.rule.Scope == ScopeHost {
		// A host incident's remedy (migrating the host) concerns every VM
		// on it, as of when the incident last changed.
		if h := e.fleet.hosts[st.labels.host]; h != nil {
			for _, v := range h.vms {
				set[v.id] = struct{}{}
			}
		}
	}
	for vm := range st.inhibitedVMs {
		set[vm] = struct{}{}
	}
	// A loaded incident keeps the VMs it had until re-evaluated.
	if st.loaded {
		for _, vm := range st.inc.VMs {
			set[vm] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for vm := range set {
		out = append(out, vm)
	}
	sort.Strings(out)
	return out
}

// render fills in the incident's descriptive fields from its rule and
// members.
func (e *Engine) render(st *incState) {
	r := st.rule
	inc := &st.inc
	if r.Classification.Cause != "" {
		inc.Severity = r.Classification.Severity
		inc.Cause = r.Classification.Cause
		inc.Trigger = r.Classification.Trigger
		inc.Action = r.Action.Type
	}
	if !st.loaded || len(st.members) > 0 {
		l := st.labels
		switch {
		case l.vm != "":
			inc.Kind, inc.Subject = model.KindVM, l.vm
		case l.service != "":
			inc.Kind, inc.Subject = model.KindService, l.host+"/"+l.service
		case l.host != "":
			inc.Kind, inc.Subject = model.KindHost, l.host
		case l.source != "":
			inc.Kind, inc.Subject = KindSource, l.source
		case l.site != "":
			inc.Kind, inc.Subject = KindSite, l.site
		}
		if st.full.host != "" || l.host != "" {
			inc.Host = firstNonEmpty(l.host, st.full.host)
		}
		if st.full.site != "" || l.site != "" {
			inc.Site = firstNonEmpty(l.site, st.full.site)
		}
		inc.HostState = st.hostState
		inc.Event = st.event
	}
	inc.VMs = e.vmsOf(st)
	inc.PlatformRecovery = e.recovering(st)
	if r.policy != nil {
		inc.Escalation = r.policy.Name
	}
	if r.summary != nil {
		var b strings.Builder
		data := SummaryData{
			Rule: r.Name, Cause: inc.Cause, Severity: string(inc.Severity), Trigger: string(inc.Trigger),
			Action: string(inc.Action), VM: st.labels.vm, Host: inc.Host, Site: inc.Site,
			Service: st.labels.service, Source: firstNonEmpty(st.labels.source, st.full.source),
			VMs: inc.VMs, Count: len(inc.VMs), HostState: st.hostState, Event: st.event, Reason: st.reason,
		}
		if data.VM == "" && len(inc.VMs) == 1 {
			data.VM = inc.VMs[0]
		}
		if !st.lastSeen.IsZero() {
			data.LastSeen = st.lastSeen.UTC().Format(time.RFC3339)
		}
		if err := r.summary.Execute(&b, data); err != nil {
			e.log.Warn("render incident summary", "rule", r.Name, "incident", inc.ID, "err", err)
		} else {
			inc.Summary = b.String()
		}
	}
	if e.runbooks != nil {
		inc.Runbooks = e.runbooks(inc)
	} else if r.Runbook != "" {
		inc.Runbooks = []string{r.Runbook}
	}
	if e.services != nil {
		inc.Services = e.services(inc)
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// SummaryData is what a rule's summary template can read, and nothing
// else: templates have no access to the environment or to I/O.
type SummaryData struct {
	Rule, Cause, Severity, Trigger, Action string
	VM, Host, Site, Service, Source        string
	// VMs lists the affected VMs; Count is their number.
	VMs       []string
	Count     int
	HostState string
	Event     string
	// Reason is the VM's crash reason, if its source gave one.
	Reason string
	// LastSeen is the source time of the subject's latest report (RFC 3339).
	LastSeen string
}
