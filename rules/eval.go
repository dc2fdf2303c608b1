package rules

import (
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// labels are the values a rule can group and inhibit by.
type labels struct {
	vm, host, site, source, service string
}

// project keeps only the named labels.
func (l labels) project(names []string) labels {
	var out labels
	for _, n := range names {
		switch n {
		case LabelVM:
			out.vm = l.vm
		case LabelHost:
			out.host = l.host
		case LabelSite:
			out.site = l.site
		case LabelSource:
			out.source = l.source
		case LabelService:
			out.service = l.service
		}
	}
	return out
}

// evalCtx carries what an incident created or joined by the current
// evaluation should record besides its group labels.
type evalCtx struct {
	labels    labels
	started   time.Time
	hostState string
	event     string
	lastSeen  time.Time
	reason    string
}

func (e *Engine) periodIdx(t time.Time) int64 {
	return t.UnixNano() / int64(e.set.Settings.Period)
}

func (e *Engine) periodStart(idx int64) time.Time {
	return time.Unix(0, idx*int64(e.set.Settings.Period)).UTC()
}

// notAfterNow caps a source time at the engine clock, so a source clock
// running ahead cannot date an incident in the future.
func (e *Engine) notAfterNow(t time.Time) time.Time {
	if t.IsZero() || t.After(e.now) {
		return e.now
	}
	return t
}

func (e *Engine) observeVM(o *model.Observation) {
	f := e.fleet
	src := f.source(o.Source)
	e.seen(src, o.TimeGenerated)
	v := f.vms[o.ID]
	if o.State == "" {
		// A heartbeat: proof of life, not a state report. It must not
		// change the VM's state or the source it is judged against.
		if v != nil && v.stale {
			v.lastSeen = e.now
			v.stale = false
			e.evalVM(v)
		} else if v != nil {
			v.lastSeen = e.now
		}
		return
	}
	if v == nil {
		v = &vmRec{id: o.ID}
		f.vms[o.ID] = v
	}
	if v.src != src {
		if v.src != nil {
			v.src.vms--
		}
		v.src = src
		src.vms++
	}
	v.lastSeen = e.now
	v.stale = false
	if o.TimeGenerated.Before(v.lastGen) {
		// An older report must not regress the current state (the store
		// applies the same rule); it still proves the source is alive.
		e.evalVM(v)
		return
	}
	v.lastGen = o.TimeGenerated
	if o.Site != "" {
		v.site = o.Site
	}
	if o.Host != "" && (v.h == nil || v.h.id != o.Host) {
		h := f.host(o.Host)
		if h.site == "" {
			h.site = o.Site
		}
		f.moveVM(v, h)
	}
	if o.State != v.state {
		wasDown, isDown := v.state.Down(), o.State.Down()
		if v.h != nil && wasDown != isDown {
			if isDown {
				v.h.vmsDown++
			} else {
				v.h.vmsDown--
			}
		}
		v.state = o.State
		v.since = o.TimeGenerated
	}
	v.event = o.Event
	v.attrs = o.Attrs
	crashed := crashedState(v.state, v.attrs)
	if crashed && !v.crashed && v.h != nil {
		// Counted once per crash, in the period it happened, so that a
		// redelivered observation does not count twice.
		if pr := v.h.periodFor(e.periodIdx(v.since)); pr != nil {
			pr.crashes++
		}
	}
	v.crashed = crashed
	e.evalVM(v)
}

func (e *Engine) seen(src *sourceRec, gen time.Time) {
	src.lastSeen = e.now
	if gen.After(src.lastGen) {
		src.lastGen = gen
	}
	if src.stale {
		src.stale = false
		e.evalSource(src)
	}
}

func (e *Engine) observeHost(o *model.Observation) {
	f := e.fleet
	src := f.source(o.Source)
	e.seen(src, o.TimeGenerated)
	if o.State == "" && len(o.Attrs) == 0 {
		// A heartbeat: proof of life only. Taken as a period with facts it
		// would make the host look healthy in that period and turn a crash
		// on it into a guest crash; it must not change the host's reported
		// state, its period facts, nor the source it is judged against.
		if h := f.hosts[o.ID]; h != nil {
			h.lastSeen = e.now
			if h.stale {
				h.stale = false
				e.evalHost(h)
			}
		}
		return
	}
	h := f.host(o.ID)
	if h.src != src {
		if h.src != nil {
			h.src.hosts--
		}
		h.src = src
		src.hosts++
	}
	h.lastSeen = e.now
	h.stale = false
	if o.Site != "" {
		h.site = o.Site
	}
	if !o.TimeGenerated.Before(h.lastGen) {
		h.lastGen = o.TimeGenerated
		if o.State != "" {
			h.reported = string(o.State)
		}
	}
	pr := h.periodFor(e.periodIdx(o.TimeGenerated))
	if pr == nil {
		e.evalHost(h)
		return
	}
	mergeFacts(&pr.facts, o.Attrs)
	pr.hasFacts = true
	changed := e.derive(h, pr)
	e.evalHost(h)
	if changed {
		e.evalHostDependents(h)
	}
}

// evalHostDependents re-evaluates what reads a host's derived state: its
// non-running VMs (so a host fault that arrives after its VMs' crashes in
// the same period still claims them) and its services.
func (e *Engine) evalHostDependents(h *hostRec) {
	for _, v := range h.vms {
		if v.state.Down() {
			e.evalVM(v)
		}
	}
	for _, s := range h.services {
		e.evalService(s)
	}
}

func (e *Engine) observeService(o *model.Observation) {
	if o.Host == "" {
		// A service is named per host; without one there is nothing to
		// judge it against.
		return
	}
	f := e.fleet
	src := f.source(o.Source)
	e.seen(src, o.TimeGenerated)
	h := f.host(o.Host)
	if h.site == "" {
		// As a VM's report does: a host known only through its services
		// (a registered site's pseudo-host) still belongs to a site.
		h.site = o.Site
	}
	var s *serviceRec
	for _, x := range h.services {
		if x.name == o.ID {
			s = x
			break
		}
	}
	if s == nil {
		s = &serviceRec{key: o.Key(), name: o.ID, h: h}
		h.services = append(h.services, s)
		f.services[s.key] = s
	}
	if o.TimeGenerated.Before(s.lastGen) {
		return
	}
	s.lastGen = o.TimeGenerated
	if o.State == s.state {
		e.evalService(s)
		return
	}
	if s.state == model.StateDown {
		h.svcDown--
	}
	if o.State == model.StateDown {
		h.svcDown++
	}
	s.state = o.State
	s.since = o.TimeGenerated
	h.svcMap[s.name] = string(s.state)
	// Service states are part of the host's state in the period.
	if pr := h.periodFor(e.periodIdx(o.TimeGenerated)); pr != nil && e.derive(h, pr) {
		e.evalHost(h)
		for _, v := range h.vms {
			if v.state.Down() {
				e.evalVM(v)
			}
		}
	}
	for _, x := range h.services {
		e.evalService(x)
	}
}

// derive computes a host's state for one period from the host_states
// entries and reports whether it changed.
func (e *Engine) derive(h *hostRec, pr *periodRec) bool {
	env := e.ev.env
	e.fillHost(&env.Host, h, pr)
	env.Period = PeriodEnv{Start: e.periodStart(pr.idx), Length: e.set.Settings.Period, Now: e.now}
	e.probes(e.set.probes["host_states"], h, pr.idx)
	var mask uint64
	state, hw := 0, 0
	for _, hs := range e.set.HostStates {
		if hs.prog == nil {
			continue
		}
		ok, err := e.ev.run(hs.prog)
		e.evals[1]++
		if err != nil {
			e.evalError("host state "+hs.Reason, err)
		}
		if !ok {
			continue
		}
		mask |= hs.bit
		r := stateRank(string(hs.State))
		state = max(state, r)
		if hs.Class != ClassService {
			hw = max(hw, r)
		}
	}
	newState, newHW := rankState(state), rankState(hw)
	if !pr.hasFacts {
		// Without hardware facts a healthy verdict would be a guess.
		if mask == 0 {
			newState = model.HostUnknown
		}
		if mask&e.set.hwMask == 0 {
			newHW = model.HostUnknown
		}
	}
	changed := newState != pr.state || newHW != pr.hwState || mask != pr.reasons
	pr.state, pr.hwState, pr.reasons = newState, newHW, mask
	if pr.state != pr.savedState || pr.reasons != pr.savedReasons {
		pr.dirty = true
		e.periods[pr] = h
	}
	return changed
}

func rankState(r int) model.HostState {
	switch r {
	case 1:
		return model.HostDegraded
	case 2:
		return model.HostFailed
	}
	return model.HostHealthy
}

// reasonNames turns a reason mask into names, cached so that building an
// environment does not allocate.
func (e *Engine) reasonNames(mask uint64) []string {
	if mask == 0 {
		return nil
	}
	if e.reasonCache == nil {
		e.reasonCache = map[uint64][]string{}
	}
	if names, ok := e.reasonCache[mask]; ok {
		return names
	}
	var names []string
	for _, hs := range e.set.HostStates {
		if mask&hs.bit != 0 && !containsString(names, hs.Reason) {
			names = append(names, hs.Reason)
		}
	}
	e.reasonCache[mask] = names
	return names
}

// fillHost writes a host's environment for one period (pr may be nil when
// nothing is known of that period).
func (e *Engine) fillHost(dst *HostEnv, h *hostRec, pr *periodRec) {
	if h == nil {
		*dst = HostEnv{State: string(model.HostUnknown), HardwareState: string(model.HostUnknown), Facts: defaultFacts}
		return
	}
	*dst = HostEnv{
		ID:           h.id,
		Site:         h.site,
		Reported:     h.reported,
		Services:     h.svcMap,
		ServicesDown: h.svcDown,
		VMCount:      len(h.vms),
		VMsDown:      h.vmsDown,
		LastSeen:     h.lastGen,
		SilentFor:    e.now.Sub(h.lastSeen),
		Stale:        h.stale,
		Known:        true,
	}
	if pr == nil {
		dst.State, dst.HardwareState, dst.Facts = string(model.HostUnknown), string(model.HostUnknown), defaultFacts
		return
	}
	dst.State, dst.HardwareState = string(pr.state), string(pr.hwState)
	dst.Facts = pr.facts
	dst.Crashes = pr.crashes
	dst.Reasons = e.reasonNames(pr.reasons)
}

// probes computes the history helpers a scope uses for host h, looking
// back from period idx.
func (e *Engine) probes(list []probe, h *hostRec, idx int64) {
	env := e.ev.env
	for _, p := range list {
		switch p.kind {
		case probeHostHeld:
			want := stateRank(p.arg)
			ok := h != nil
			for i := 0; ok && i < p.n; i++ {
				pr := h.period(idx - int64(i))
				ok = pr != nil && stateRank(string(pr.state)) >= want
			}
			env.ProbeBool[p.slot] = ok
		case probeReasonHeld:
			ok := h != nil
			for i := 0; ok && i < p.n; i++ {
				pr := h.period(idx - int64(i))
				ok = pr != nil && pr.reasons&p.bit != 0
			}
			env.ProbeBool[p.slot] = ok
		case probeFaultHeld:
			mask := e.set.faultMask
			for i := 0; mask != 0 && i < p.n; i++ {
				var pr *periodRec
				if h != nil {
					pr = h.period(idx - int64(i))
				}
				if pr == nil {
					mask = 0
				} else {
					mask &= pr.reasons
				}
			}
			env.ProbeBool[p.slot] = mask != 0
		case probeCrashes:
			n := 0
			for i := 0; h != nil && i < p.n; i++ {
				if pr := h.period(idx - int64(i)); pr != nil {
					n += pr.crashes
				}
			}
			env.ProbeInt[p.slot] = n
		}
	}
}

// evalVM evaluates the vm rules for one VM. The host period it sees is the
// one that decides the VM's case: the period the VM went down in, or that
// of its latest report while it runs.
func (e *Engine) evalVM(v *vmRec) {
	rules := e.set.byScope[ScopeVM]
	if len(rules) == 0 {
		return
	}
	env := e.ev.env
	decided := v.lastGen
	if v.state.Down() {
		decided = v.since
	}
	idx := e.periodIdx(decided)
	var downFor time.Duration
	if v.state.Down() {
		downFor = e.now.Sub(v.since)
	}
	crashReason, _ := v.attrs[model.AttrCrashReason].(string)
	srcName := ""
	srcStale := false
	if v.src != nil {
		srcName, srcStale = v.src.name, v.src.stale
	}
	hostID := ""
	if v.h != nil {
		hostID = v.h.id
	}
	env.VM = VMEnv{
		ID:          v.id,
		State:       string(v.state),
		Host:        hostID,
		Site:        v.site,
		Source:      srcName,
		Event:       v.event,
		Attrs:       v.attrs,
		Since:       v.since,
		DownFor:     downFor,
		Crashed:     v.crashed,
		Down:        v.state.Down(),
		Running:     v.state == model.StateRunning,
		CrashReason: crashReason,
		LastSeen:    v.lastGen,
		SilentFor:   e.now.Sub(v.lastSeen),
		Stale:       v.stale,
		SourceStale: srcStale,
	}
	if len(v.matches) == 0 && e.allGuarded(rules) {
		// The common case (a running VM with no event and no incident):
		// every rule is ruled out by its guards, so the host need not even
		// be looked at.
		e.evals[0] += len(rules)
		return
	}
	var pr *periodRec
	if v.h != nil {
		pr = v.h.period(idx)
		if v.state.Down() {
			pr = v.judgedPeriod(pr, idx)
		}
	}
	e.fillHost(&env.Host, v.h, pr)
	env.Period = PeriodEnv{Start: e.periodStart(idx), Length: e.set.Settings.Period, Now: e.now}
	e.probes(e.set.probes[ScopeVM], v.h, idx)
	env.Impact = ImpactEnv{}
	if e.impact != nil && e.set.impact[ScopeVM] {
		e.impact(ImpactQuery{VM: v.id, Host: hostID, Site: v.site, Down: v.state.Down()}, &env.Impact)
	}
	e.cur = evalCtx{
		labels:    labels{vm: v.id, host: hostID, site: v.site, source: srcName},
		started:   e.notAfterNow(decided),
		hostState: env.Host.State,
		event:     v.event,
		lastSeen:  v.lastGen,
		reason:    crashReason,
	}
	if v.stale {
		e.cur.started = e.now
	}
	e.evalRules(rules, &v.matches, v.id, 0)
}

// allGuarded reports whether the guards rule out every rule.
func (e *Engine) allGuarded(rules []*Rule) bool {
	for _, r := range rules {
		if r.prog != nil && !e.guarded(r) {
			return false
		}
	}
	return true
}

// guarded reports whether a rule's guards rule it out for the env's VM.
func (e *Engine) guarded(r *Rule) bool {
	return len(r.guards) > 0 && !guardsPass(r.guards, &e.ev.env.VM)
}

// evalHost evaluates the host rules at the host's newest period.
func (e *Engine) evalHost(h *hostRec) {
	rules := e.set.byScope[ScopeHost]
	if len(rules) == 0 {
		return
	}
	env := e.ev.env
	pr := h.period(h.latest)
	e.fillHost(&env.Host, h, pr)
	env.Period = PeriodEnv{Start: e.periodStart(h.latest), Length: e.set.Settings.Period, Now: e.now}
	e.probes(e.set.probes[ScopeHost], h, h.latest)
	env.Impact = ImpactEnv{}
	if e.impact != nil && e.set.impact[ScopeHost] {
		e.impact(ImpactQuery{Host: h.id, Site: h.site}, &env.Impact)
	}
	srcName := ""
	if h.src != nil {
		srcName = h.src.name
	}
	e.cur = evalCtx{
		labels:    labels{host: h.id, site: h.site, source: srcName},
		started:   e.notAfterNow(h.lastGen),
		hostState: env.Host.State,
		lastSeen:  h.lastGen,
	}
	e.evalRules(rules, &h.matches, h.id, 1)
}

func (e *Engine) evalService(s *serviceRec) {
	rules := e.set.byScope[ScopeService]
	if len(rules) == 0 {
		return
	}
	env := e.ev.env
	h := s.h
	pr := h.period(h.latest)
	e.fillHost(&env.Host, h, pr)
	var downFor time.Duration
	if s.state.Down() {
		downFor = e.now.Sub(s.since)
	}
	env.Service = ServiceEnv{Name: s.name, Host: h.id, State: string(s.state), Since: s.since, DownFor: downFor}
	env.Period = PeriodEnv{Start: e.periodStart(h.latest), Length: e.set.Settings.Period, Now: e.now}
	e.probes(e.set.probes[ScopeService], h, h.latest)
	e.cur = evalCtx{
		labels:    labels{host: h.id, site: h.site, service: s.name},
		started:   e.notAfterNow(s.since),
		hostState: env.Host.HardwareState,
		lastSeen:  s.lastGen,
	}
	e.evalRules(rules, &s.matches, s.key, 2)
}

func (e *Engine) evalSource(s *sourceRec) {
	rules := e.set.byScope[ScopeSource]
	if len(rules) == 0 {
		return
	}
	env := e.ev.env
	env.Source = SourceEnv{
		Name:      s.name,
		LastSeen:  s.lastGen,
		SilentFor: e.now.Sub(s.lastSeen),
		Stale:     s.stale,
		VMs:       s.vms,
		Hosts:     s.hosts,
	}
	idx := e.periodIdx(e.now)
	env.Period = PeriodEnv{Start: e.periodStart(idx), Length: e.set.Settings.Period, Now: e.now}
	e.cur = evalCtx{labels: labels{source: s.name}, started: e.now, lastSeen: s.lastGen}
	e.evalRules(rules, &s.matches, s.name, 3)
}

// evalRules runs rules over the env already filled in and updates the
// subject's incident memberships. Nothing allocates unless a membership
// changes.
func (e *Engine) evalRules(rules []*Rule, ms *[]match, member string, scope int) {
	for _, r := range rules {
		if r.prog == nil {
			continue
		}
		var ok bool
		if scope != 0 || !e.guarded(r) {
			var err error
			ok, err = e.ev.run(r.prog)
			if err != nil {
				e.evalError(r.Name, err)
			}
		}
		e.evals[scope]++
		idx := -1
		for i := range *ms {
			if (*ms)[i].rule == r {
				idx = i
				break
			}
		}
		if ok {
			group := e.cur.labels.project(r.GroupBy)
			if idx >= 0 {
				st := (*ms)[idx].inc
				if st.labels == group {
					e.touchMember(st)
					continue
				}
				// The subject moved (e.g. a VM to another host).
				e.removeMember(st, member)
				e.dropMatch(ms, idx)
			}
			st := e.incFor(r, group)
			e.addMember(st, member)
			*ms = append(*ms, match{rule: r, inc: st})
		} else if idx >= 0 {
			e.removeMember((*ms)[idx].inc, member)
			e.dropMatch(ms, idx)
		}
	}
}

func (e *Engine) dropMatch(ms *[]match, i int) {
	last := len(*ms) - 1
	(*ms)[i] = (*ms)[last]
	(*ms)[last] = match{}
	*ms = (*ms)[:last]
}

func (e *Engine) evalError(rule string, err error) {
	e.errs++
	e.log.Debug("rule evaluation failed", "rule", rule, "err", err)
}

// checkStale marks sources that went silent, and VMs and hosts whose
// source kept reporting without them, and re-evaluates what changed. A VM
// is stale only relative to its source, so a whole source going silent is
// one source incident and not one per VM.
func (e *Engine) checkStale() {
	timeout := e.set.Settings.StoppedReporting
	for _, s := range e.fleet.sources {
		s.stale = e.now.Sub(s.lastSeen) > timeout
		e.evalSource(s)
	}
	for _, v := range e.fleet.vms {
		stale := v.src != nil && v.src.lastSeen.Sub(v.lastSeen) > timeout
		if stale != v.stale {
			v.stale = stale
			e.evalVM(v)
		}
	}
	for _, h := range e.fleet.hosts {
		stale := h.src != nil && h.src.lastSeen.Sub(h.lastSeen) > timeout
		if stale != h.stale {
			h.stale = stale
			e.evalHost(h)
		}
	}
}

// sweep evaluates every rule for every subject; used on reload and by the
// full-sweep benchmark.
func (e *Engine) sweep() {
	for _, h := range e.fleet.hosts {
		e.evalHost(h)
	}
	for _, v := range e.fleet.vms {
		e.evalVM(v)
	}
	for _, s := range e.fleet.services {
		e.evalService(s)
	}
	for _, s := range e.fleet.sources {
		e.evalSource(s)
	}
}

// clearMatches forgets every membership (before a reload's sweep).
func (e *Engine) clearMatches() {
	e.reasonCache = nil
	for _, v := range e.fleet.vms {
		clear(v.matches)
		v.matches = v.matches[:0]
	}
	for _, h := range e.fleet.hosts {
		clear(h.matches)
		h.matches = h.matches[:0]
	}
	for _, s := range e.fleet.services {
		clear(s.matches)
		s.matches = s.matches[:0]
	}
	for _, s := range e.fleet.sources {
		clear(s.matches)
		s.matches = s.matches[:0]
	}
}

// resizeRings keeps what fits when the history length changes.
func (f *fleet) resizeRings(n int) {
	f.ringLen = n
	for _, h := range f.hosts {
		old := h.ring
		h.ring = make([]periodRec, n)
		for _, p := range old {
			if p.valid && p.idx > h.latest-int64(n) {
				h.ring[int(uint64(p.idx)%uint64(n))] = p
			}
		}
	}
}
