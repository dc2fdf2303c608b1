package bot

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

func joinArgs(args []string) string { return strings.TrimSpace(strings.Join(args, " ")) }

// help lists the verbs the user may run, nothing more: a list of commands
// that answer "you may not" would only teach people what they cannot do.
func (r *Router) help(ctx context.Context, cmd Command) (Reply, error) {
	return r.helpFor(ctx, cmd.User)
}

func (r *Router) helpFor(ctx context.Context, user string) (Reply, error) {
	r.mu.RLock()
	verbs := make([]*Verb, 0, len(r.order))
	for _, name := range r.order {
		verbs = append(verbs, r.verbs[name])
	}
	r.mu.RUnlock()
	sec := Section{}
	for _, v := range verbs {
		ok, _, err := r.opts.Permissions.allowed(ctx, r.opts.Membership, v.Group, user)
		if err != nil {
			return Reply{}, err
		}
		if ok {
			sec.Fields = append(sec.Fields, Field{Key: v.Usage(), Value: v.Help})
		}
	}
	return Reply{
		Title:    "Commands you can run",
		Sections: []Section{sec, {Lines: []string{`Durations: 30m, 2h, 1d, 1w. Quote a reason with spaces: "disk swap".`}}},
	}, nil
}

// target is what a name given to status or silence turned out to be.
type target struct {
	kind string // "VM", "host" or "site"
	id   string
	vm   model.VMStatus
	host model.HostStatus
}

// resolve finds what name is: a known VM, host or site, in that order.
func (r *Router) resolve(ctx context.Context, name string, periods int) (target, error) {
	vm, err := r.opts.Fleet.VM(ctx, name)
	switch {
	case err == nil && vm.ID != "":
		return target{kind: "VM", id: name, vm: vm}, nil
	case err != nil && !r.opts.NotFound(err):
		return target{}, fmt.Errorf("look up VM %s: %w", name, err)
	}
	host, err := r.opts.Fleet.Host(ctx, name, periods)
	switch {
	case err == nil && host.ID != "":
		return target{kind: "host", id: name, host: host}, nil
	case err != nil && !r.opts.NotFound(err):
		return target{}, fmt.Errorf("look up host %s: %w", name, err)
	}
	sites, err := r.opts.Fleet.Sites(ctx)
	if err != nil {
		return target{}, fmt.Errorf("list sites: %w", err)
	}
	if slices.Contains(sites, name) {
		return target{kind: "site", id: name}, nil
	}
	return target{}, Userf("nothing is named %q: it is not a known VM, host or site", name).
		withHint("check the name; " + Prefix + " incidents lists what is open")
}

func (r *Router) status(ctx context.Context, cmd Command) (Reply, error) {
	t, err := r.resolve(ctx, cmd.Args[0], r.opts.Periods)
	if err != nil {
		return Reply{}, err
	}
	switch t.kind {
	case "VM":
		return r.statusVM(ctx, t.vm)
	case "host":
		return r.statusHost(ctx, t.host)
	}
	return r.statusSite(ctx, t.id)
}

func stateTone(s model.State) Tone {
	switch {
	case s == model.StateRunning || s == model.StateUp:
		return ToneOK
	case s.Down():
		return ToneError
	}
	return ToneWarning
}

func hostTone(s model.HostState) Tone {
	switch s {
	case model.HostHealthy:
		return ToneOK
	case model.HostFailed:
		return ToneError
	}
	return ToneWarning
}

func (r *Router) statusVM(ctx context.Context, vm model.VMStatus) (Reply, error) {
	now := r.clock.Now()
	state := string(vm.State)
	if state == "" {
		state = "unknown"
	}
	reply := Reply{Title: vm.ID + " is " + state, Tone: stateTone(vm.State)}
	main := Section{Fields: []Field{{"state", state + " since " + formatSince(vm.Since, now)}}}
	if vm.Host != "" {
		main.Fields = append(main.Fields, Field{"host", vm.Host})
	}
	if vm.Site != "" {
		main.Fields = append(main.Fields, Field{"site", vm.Site})
	}
	if vm.Event != "" {
		main.Fields = append(main.Fields, Field{"last event", vm.Event})
	}
	if reason, _ := vm.Attrs[model.AttrCrashReason].(string); reason != "" {
		main.Fields = append(main.Fields, Field{"crash reason", reason})
	}
	if vm.Source != "" {
		main.Fields = append(main.Fields, Field{"source", vm.Source})
	}
	if !vm.Last.Generated.IsZero() {
		main.Fields = append(main.Fields, Field{"last report", formatSince(vm.Last.Generated, now)})
	}
	reply.Sections = append(reply.Sections, main)

	if vm.Host != "" {
		h, err := r.opts.Fleet.Host(ctx, vm.Host, r.opts.Periods)
		switch {
		case err == nil:
			reply.Sections = append(reply.Sections, periodsSection(h))
		case !r.opts.NotFound(err):
			return Reply{}, fmt.Errorf("look up host %s of %s: %w", vm.Host, vm.ID, err)
		}
	}
	open, err := r.openIncidents(ctx, model.IncidentFilter{VM: vm.ID})
	if err != nil {
		return Reply{}, err
	}
	reply.Sections = append(reply.Sections, r.incidentsSection(open, now))
	reply.Actions = append(ackActions(open, 3), Action{Label: "Silence VM " + SilenceButtonDuration,
		Command: CommandText("silence", vm.ID, SilenceButtonDuration)})
	return reply, nil
}

func (r *Router) statusHost(ctx context.Context, h model.HostStatus) (Reply, error) {
	now := r.clock.Now()
	state := string(h.State)
	if state == "" {
		state = string(model.HostUnknown)
	}
	reply := Reply{Title: h.ID + " is " + state, Tone: hostTone(h.State)}
	main := Section{Fields: []Field{{"state", state + " since " + formatSince(h.Since, now)}}}
	if h.Reported != "" {
		main.Fields = append(main.Fields, Field{"reported", string(h.Reported)})
	}
	if h.Site != "" {
		main.Fields = append(main.Fields, Field{"site", h.Site})
	}
	vms, err := r.opts.Fleet.ListVMs(ctx, "", h.ID)
	if err != nil {
		return Reply{}, fmt.Errorf("list VMs of host %s: %w", h.ID, err)
	}
	down := downVMs(vms)
	main.Fields = append(main.Fields, Field{"VMs", fmt.Sprintf("%d (%d down)", len(vms), len(down))})
	for _, s := range h.Services {
		if s.State != model.StateUp {
			main.Fields = append(main.Fields, Field{"service " + s.Name, string(s.State) + " since " + formatSince(s.Since, now)})
		}
	}
	if !h.Last.Generated.IsZero() {
		main.Fields = append(main.Fields, Field{"last report", formatSince(h.Last.Generated, now)})
	}
	reply.Sections = append(reply.Sections, main)
	if len(down) > 0 {
		reply.Sections = append(reply.Sections, Section{Heading: "Down VMs", List: &List{Items: vmLines(down, now, false)}})
	}
	reply.Sections = append(reply.Sections, periodsSection(h))
	open, err := r.openIncidents(ctx, model.IncidentFilter{Host: h.ID})
	if err != nil {
		return Reply{}, err
	}
	reply.Sections = append(reply.Sections, r.incidentsSection(open, now))
	reply.Actions = append(ackActions(open, 3), Action{Label: "Silence host " + SilenceButtonDuration,
		Command: CommandText("silence", h.ID, SilenceButtonDuration)})
	return reply, nil
}

func (r *Router) statusSite(ctx context.Context, site string) (Reply, error) {
	now := r.clock.Now()
	vms, err := r.opts.Fleet.ListVMs(ctx, site, "")
	if err != nil {
		return Reply{}, fmt.Errorf("list VMs of site %s: %w", site, err)
	}
	down := downVMs(vms)
	reply := Reply{Title: fmt.Sprintf("%s: %s, %d down", site, plural(len(vms), "VM", "VMs"), len(down)), Tone: ToneOK}
	if len(down) > 0 {
		reply.Tone = ToneWarning
	}
	byState := map[model.State]int{}
	hosts := map[string]int{}
	downHosts := map[string]int{}
	for _, vm := range vms {
		byState[vm.State]++
		if vm.Host != "" {
			hosts[vm.Host]++
		}
	}
	for _, vm := range down {
		if vm.Host != "" {
			downHosts[vm.Host]++
		}
	}
	states := make([]string, 0, len(byState))
	for s, n := range byState {
		name := string(s)
		if name == "" {
			name = "unknown"
		}
		states = append(states, fmt.Sprintf("%s %d", name, n))
	}
	slices.Sort(states)
	bad, err := r.badHosts(ctx, slices.Sorted(maps.Keys(hosts)))
	if err != nil {
		return Reply{}, err
	}
	open, err := r.openIncidents(ctx, model.IncidentFilter{Site: site})
	if err != nil {
		return Reply{}, err
	}
	main := Section{Fields: []Field{{"VMs", fmt.Sprint(len(vms))}}}
	if len(states) > 0 {
		main.Fields = append(main.Fields, Field{"by state", strings.Join(states, ", ")})
	}
	main.Fields = append(main.Fields, Field{"hosts", fmt.Sprint(len(hosts)) + hostStateCounts(bad)})
	main.Fields = append(main.Fields, Field{"open incidents", severityCounts(open)})
	reply.Sections = append(reply.Sections, main)
	if len(bad) > 0 {
		// The tone stays that of the VMs: a degraded host with every VM
		// running is worth a look, not an alarm.
		items := make([]string, len(bad))
		for i, h := range bad {
			items[i] = fmt.Sprintf("%s %s since %s, %d of %d VMs down", h.ID, h.State, formatSince(h.Since, now), downHosts[h.ID], hosts[h.ID])
		}
		reply.Sections = append(reply.Sections, Section{Heading: "Degraded and failed hosts", List: &List{Items: items, Limit: 5}})
	}
	if len(downHosts) > 0 {
		names := make([]string, 0, len(downHosts))
		for h := range downHosts {
			names = append(names, h)
		}
		// Hosts with the most down VMs first: they are where to look.
		slices.SortFunc(names, func(a, b string) int {
			return cmp.Or(cmp.Compare(downHosts[b], downHosts[a]), cmp.Compare(a, b))
		})
		items := make([]string, len(names))
		for i, h := range names {
			items[i] = fmt.Sprintf("%s: %d of %d VMs down", h, downHosts[h], hosts[h])
		}
		reply.Sections = append(reply.Sections, Section{Heading: "Hosts with down VMs", List: &List{Items: items, Limit: 5}})
	}
	if len(down) > 0 {
		reply.Sections = append(reply.Sections, Section{Heading: "Down VMs", List: &List{Items: vmLines(down, now, true)}})
	}
	reply.Sections = append(reply.Sections, r.incidentsSection(open, now))
	return reply, nil
}

// badHosts returns those of ids whose derived state in the latest period is
// failed or degraded: failed first, then the longest in that state. It reads
// them at once when the fleet reader can (HostStateReader), else one by one;
// a host the fleet does not know is skipped.
func (r *Router) badHosts(ctx context.Context, ids []string) ([]model.HostStatus, error) {
	var states map[string]model.HostStatus
	if hr, ok := r.opts.Fleet.(HostStateReader); ok {
		var err error
		if states, err = hr.HostStates(ctx, ids); err != nil {
			return nil, fmt.Errorf("read state of hosts: %w", err)
		}
	} else {
		states = make(map[string]model.HostStatus, len(ids))
		for _, id := range ids {
			h, err := r.opts.Fleet.Host(ctx, id, 0)
			if err != nil && r.opts.NotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read host %s: %w", id, err)
			}
			states[id] = h
		}
	}
	var bad []model.HostStatus
	for _, id := range ids {
		if h, ok := states[id]; ok && (h.State == model.HostFailed || h.State == model.HostDegraded) {
			h.ID = id
			bad = append(bad, h)
		}
	}
	slices.SortFunc(bad, func(a, b model.HostStatus) int {
		return cmp.Or(cmp.Compare(hostStateRank(a.State), hostStateRank(b.State)), a.Since.Compare(b.Since), cmp.Compare(a.ID, b.ID))
	})
	return bad, nil
}

func hostStateRank(s model.HostState) int {
	if s == model.HostFailed {
		return 0
	}
	return 1
}

// hostStateCounts is " (1 failed, 2 degraded)" for the hosts in bad, or
// nothing when there are none.
func hostStateCounts(bad []model.HostStatus) string {
	var failed, degraded int
	for _, h := range bad {
		if h.State == model.HostFailed {
			failed++
		} else {
			degraded++
		}
	}
	var parts []string
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", failed))
	}
	if degraded > 0 {
		parts = append(parts, fmt.Sprintf("%d degraded", degraded))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// severityCounts is "critical 1, high 2" for the incidents given, most
// urgent severity first, or "none".
func severityCounts(incs []model.Incident) string {
	n := map[model.Severity]int{}
	for _, inc := range incs {
		n[inc.Severity]++
	}
	if len(n) == 0 {
		return "none"
	}
	sevs := slices.SortedFunc(maps.Keys(n), func(a, b model.Severity) int {
		return cmp.Or(cmp.Compare(a.Rank(), b.Rank()), cmp.Compare(a, b))
	})
	parts := make([]string, len(sevs))
	for i, s := range sevs {
		parts[i] = fmt.Sprintf("%s %d", s, n[s])
	}
	return strings.Join(parts, ", ")
}

// downVMs returns the VMs that are down, most recently down first.
func downVMs(vms []model.VMStatus) []model.VMStatus {
	var down []model.VMStatus
	for _, vm := range vms {
		if vm.State.Down() {
			down = append(down, vm)
		}
	}
	slices.SortFunc(down, func(a, b model.VMStatus) int {
		return cmp.Or(b.Since.Compare(a.Since), cmp.Compare(a.ID, b.ID))
	})
	return down
}

func vmLines(vms []model.VMStatus, now time.Time, withHost bool) []string {
	out := make([]string, len(vms))
	for i, vm := range vms {
		s := vm.ID + " " + string(vm.State)
		if withHost && vm.Host != "" {
			s += " on " + vm.Host
		}
		out[i] = s + " since " + formatSince(vm.Since, now)
	}
	return out
}

func periodsSection(h model.HostStatus) Section {
	sec := Section{Heading: fmt.Sprintf("%s in recent periods", h.ID)}
	if len(h.Periods) == 0 {
		sec.Lines = []string{"no periods recorded"}
		return sec
	}
	for _, p := range h.Periods {
		v := string(p.State)
		if v == "" {
			v = string(model.HostUnknown)
		}
		if len(p.Reasons) > 0 {
			v += ": " + strings.Join(p.Reasons, ", ")
		}
		sec.Fields = append(sec.Fields, Field{p.Start.UTC().Format("15:04"), v})
	}
	return sec
}

// openIncidents lists the open incidents matching f, most urgent first. It
// asks per open status rather than filtering a plain listing, which the
// store caps: old open incidents must not hide behind recent resolved ones.
func (r *Router) openIncidents(ctx context.Context, f model.IncidentFilter) ([]model.Incident, error) {
	var open []model.Incident
	for _, st := range []model.Status{model.StatusFiring, model.StatusPending} {
		f.Status = st
		list, err := r.opts.Incidents.Incidents(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list %s incidents: %w", st, err)
		}
		for _, inc := range list {
			if inc.Open() {
				open = append(open, inc)
			}
		}
	}
	sortIncidents(open)
	return open, nil
}

// sortIncidents orders by severity, then newest first.
func sortIncidents(incs []model.Incident) {
	slices.SortStableFunc(incs, func(a, b model.Incident) int {
		return cmp.Or(cmp.Compare(a.Severity.Rank(), b.Severity.Rank()), b.StartedAt.Compare(a.StartedAt), cmp.Compare(a.ID, b.ID))
	})
}

func (r *Router) incidentsSection(incs []model.Incident, now time.Time) Section {
	sec := Section{Heading: "Open incidents"}
	if len(incs) == 0 {
		sec.Lines = []string{"none"}
		return sec
	}
	items := make([]string, len(incs))
	for i, inc := range incs {
		items[i] = IncidentLine(inc, now)
	}
	sec.List = &List{Items: items}
	return sec
}

// ackActions offers an Acknowledge button for up to max open incidents that
// nobody has acknowledged yet.
func ackActions(incs []model.Incident, max int) []Action {
	var acts []Action
	for _, inc := range incs {
		if len(acts) == max {
			break
		}
		if inc.AckedBy == "" && inc.Status == model.StatusFiring {
			acts = append(acts, Action{Label: "Acknowledge " + inc.ID, Command: CommandText("ack", inc.ID), Style: StylePrimary})
		}
	}
	return acts
}

func (r *Router) incidents(ctx context.Context, cmd Command) (Reply, error) {
	var (
		err        error
		f          model.IncidentFilter
		status     = "open"
		seenStatus bool
		desc       []string
	)
	for _, a := range cmd.Args {
		word := strings.ToLower(a)
		switch {
		case model.Severity(word).Valid():
			if f.Severity != "" {
				return Reply{}, Userf("give one severity, not %s and %s", f.Severity, word)
			}
			f.Severity = model.Severity(word)
		case word == "open" || word == "all" || word == string(model.StatusFiring) ||
			word == string(model.StatusPending) || word == string(model.StatusResolved):
			if seenStatus {
				return Reply{}, Userf("give one status, not %s and %s", status, word)
			}
			status, seenStatus = word, true
		default:
			if f.Site != "" {
				return Reply{}, Userf("give one site, not %s and %s", f.Site, a)
			}
			sites, err := r.opts.Fleet.Sites(ctx)
			if err != nil {
				return Reply{}, fmt.Errorf("list sites: %w", err)
			}
			if !slices.Contains(sites, a) {
				return Reply{}, Userf("%q is not a known site, severity or status", a).
					withHint("severities: critical, high, medium, low; statuses: open, firing, pending, resolved, all")
			}
			f.Site = a
		}
	}
	switch status {
	case "open", "all":
	default:
		f.Status = model.Status(status)
	}
	var list []model.Incident
	if status == "open" {
		list, err = r.openIncidents(ctx, f)
	} else {
		list, err = r.opts.Incidents.Incidents(ctx, f)
	}
	if err != nil {
		return Reply{}, fmt.Errorf("list incidents: %w", err)
	}
	sortIncidents(list)
	if f.Severity != "" {
		desc = append(desc, string(f.Severity))
	}
	what := "incident"
	if status != "all" {
		what = status + " incident"
	}
	title := plural(len(list), what, what+"s")
	if f.Site != "" {
		title += " in " + f.Site
	}
	if len(desc) > 0 {
		title += " (" + strings.Join(desc, ", ") + ")"
	}
	if len(list) == 0 {
		return Reply{Title: "No " + strings.TrimPrefix(title, "0 "), Tone: ToneOK}, nil
	}
	now := r.clock.Now()
	items := make([]string, len(list))
	for i, inc := range list {
		items[i] = IncidentLine(inc, now)
	}
	tone := ToneInfo
	if list[0].Open() && list[0].Severity.Rank() <= 1 {
		tone = ToneWarning
	}
	return Reply{Title: title, Tone: tone, Sections: []Section{{List: &List{Items: items, Limit: 15}}},
		Actions: ackActions(list, 3)}, nil
}

func (r *Router) ack(ctx context.Context, cmd Command) (Reply, error) {
	id := cmd.Args[0]
	inc, err := r.opts.Incidents.Incident(ctx, id)
	switch {
	case err != nil && r.opts.NotFound(err):
		return Reply{}, Userf("there is no incident %q", id).withHint(Prefix + " incidents lists the open ones")
	case err != nil:
		return Reply{}, fmt.Errorf("get incident %s: %w", id, err)
	}
	// A button can be clicked long after it was posted: say what happened
	// since rather than act on a stale view.
	if inc.Status == model.StatusResolved {
		return Reply{Title: fmt.Sprintf("%s is already resolved; there is nothing to acknowledge.", inc.ID)}, nil
	}
	if inc.AckedBy != "" {
		t := fmt.Sprintf("%s was already acknowledged by %s", inc.ID, inc.AckedBy)
		if !inc.AckedAt.IsZero() {
			t += " at " + formatSince(inc.AckedAt, r.clock.Now())
		}
		return Reply{Title: t + "."}, nil
	}
	acked, err := r.opts.Actions.Ack(ctx, id, cmd.User)
	switch {
	case err != nil && r.opts.NotFound(err):
		return Reply{}, Userf("there is no incident %q", id)
	case err != nil:
		return Reply{}, fmt.Errorf("ack incident %s for %s: %w", id, cmd.User, err)
	}
	return Reply{
		Title:      fmt.Sprintf("%s acknowledged by %s.", acked.ID, cmd.User),
		Tone:       ToneOK,
		Visibility: InChannel,
		Sections: []Section{{Lines: []string{
			IncidentLine(acked, r.clock.Now()),
			"Escalation stops for this incident.",
		}}},
	}, nil
}

func silenceTarget(s *model.Silence) string {
	var parts []string
	if s.VM != "" {
		parts = append(parts, "VM "+s.VM)
	}
	if s.Host != "" {
		parts = append(parts, "host "+s.Host)
	}
	if s.Site != "" {
		parts = append(parts, "site "+s.Site)
	}
	if s.Rule != "" {
		parts = append(parts, "rule "+s.Rule)
	}
	return strings.Join(parts, ", ")
}

func (r *Router) silence(ctx context.Context, cmd Command) (Reply, error) {
	d, err := ParseDuration(cmd.Args[1])
	if err != nil {
		return Reply{}, err
	}
	t, err := r.resolve(ctx, cmd.Args[0], 1)
	if err != nil {
		return Reply{}, err
	}
	now := r.clock.Now()
	s := model.Silence{StartsAt: now, EndsAt: now.Add(d), Author: cmd.User, Comment: joinArgs(cmd.Args[2:]), CreatedAt: now}
	var f model.IncidentFilter
	switch t.kind {
	case "VM":
		s.VM, f.VM = t.id, t.id
	case "host":
		s.Host, f.Host = t.id, t.id
	default:
		s.Site, f.Site = t.id, t.id
	}
	saved, err := r.opts.Actions.AddSilence(ctx, s)
	if err != nil {
		return Reply{}, fmt.Errorf("add silence on %s for %s: %w", silenceTarget(&s), cmd.User, err)
	}
	fields := []Field{
		{"silence", saved.ID},
		{"matches", silenceTarget(&saved)},
		{"until", formatSince(saved.EndsAt, now)},
		{"by", saved.Author},
	}
	if saved.Comment != "" {
		fields = append(fields, Field{"reason", saved.Comment})
	}
	lines := []string{"Matching incidents are still recorded and counted; only their notifications stop."}
	// The count is a courtesy; failing to get it must not hide that the
	// silence is in place.
	if open, err := r.openIncidents(ctx, f); err == nil {
		n := 0
		for i := range open {
			if saved.Matches(&open[i]) {
				n++
			}
		}
		if n > 0 {
			lines = append(lines, "It mutes "+plural(n, "open incident", "open incidents")+".")
		}
	} else {
		r.log.Warn("count incidents a new silence mutes", "silence", saved.ID, "err", err)
	}
	return Reply{
		Title:      fmt.Sprintf("Silenced %s for %s (%s).", silenceTarget(&saved), FormatDuration(d), saved.ID),
		Tone:       ToneOK,
		Visibility: InChannel,
		Sections:   []Section{{Fields: fields, Lines: lines}},
		Actions:    []Action{{Label: "Unsilence", Command: CommandText("unsilence", saved.ID)}},
	}, nil
}

func (r *Router) silences(ctx context.Context, cmd Command) (Reply, error) {
	all, err := r.opts.Actions.Silences(ctx)
	if err != nil {
		return Reply{}, fmt.Errorf("list silences: %w", err)
	}
	now := r.clock.Now()
	var active []model.Silence
	ended := 0
	for _, s := range all {
		if !now.Before(s.EndsAt) {
			ended++
			continue
		}
		active = append(active, s)
	}
	slices.SortFunc(active, func(a, b model.Silence) int {
		return cmp.Or(a.EndsAt.Compare(b.EndsAt), cmp.Compare(a.ID, b.ID))
	})
	if len(active) == 0 {
		return Reply{Title: "No active silences.", Tone: ToneOK}, nil
	}
	items := make([]string, len(active))
	var acts []Action
	for i, s := range active {
		line := fmt.Sprintf("%s · %s · until %s · by %s", s.ID, silenceTarget(&s), formatSince(s.EndsAt, now), s.Author)
		if now.Before(s.StartsAt) {
			line += " · starts " + formatSince(s.StartsAt, now)
		}
		if s.Comment != "" {
			line += " · " + s.Comment
		}
		items[i] = line
		if i < 5 {
			acts = append(acts, Action{Label: "Unsilence " + s.ID, Command: CommandText("unsilence", s.ID)})
		}
	}
	reply := Reply{Title: plural(len(active), "active silence", "active silences"), Sections: []Section{{List: &List{Items: items, Limit: 20}}}, Actions: acts}
	if ended > 0 {
		reply.Sections = append(reply.Sections, Section{Lines: []string{plural(ended, "silence", "silences") + " ended recently."}})
	}
	return reply, nil
}

func (r *Router) unsilence(ctx context.Context, cmd Command) (Reply, error) {
	id := cmd.Args[0]
	all, err := r.opts.Actions.Silences(ctx)
	if err != nil {
		return Reply{}, fmt.Errorf("list silences: %w", err)
	}
	i := slices.IndexFunc(all, func(s model.Silence) bool { return s.ID == id })
	if i < 0 {
		return Reply{}, Userf("there is no silence %q", id).withHint(Prefix + " silences lists the active ones")
	}
	s := all[i]
	now := r.clock.Now()
	if !now.Before(s.EndsAt) {
		return Reply{Title: fmt.Sprintf("%s (%s) already ended %s.", s.ID, silenceTarget(&s), formatSince(s.EndsAt, now))}, nil
	}
	err = r.opts.Actions.ExpireSilence(ctx, id, cmd.User)
	switch {
	case err != nil && r.opts.NotFound(err):
		return Reply{}, Userf("there is no silence %q", id)
	case err != nil:
		return Reply{}, fmt.Errorf("expire silence %s for %s: %w", id, cmd.User, err)
	}
	return Reply{
		Title:      fmt.Sprintf("%s (%s) ended by %s; notifications resume.", s.ID, silenceTarget(&s), cmd.User),
		Tone:       ToneOK,
		Visibility: InChannel,
	}, nil
}
