package knowledge

import (
	"cmp"
	"slices"
	"strings"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Match weights: a runbook naming the incident's rule is the most specific,
// then one naming its platform event, its cause, its component. Each is
// worth more than all lower ones together, so the order is strict.
const (
	weightRule      = 8
	weightEvent     = 4
	weightCause     = 2
	weightComponent = 1
)

// Match returns the runbooks whose front matter applies to inc, best
// first: a runbook naming the incident's rule before one naming its event,
// before one naming its cause, before one naming its component (the
// service of a service incident, "host-007/libvirtd" giving "libvirtd", or
// the source of a source incident). Ties go by the sum of what matched,
// then by slug.
func (kb *KB) Match(inc model.Incident) []Runbook {
	comp := component(inc)
	type scored struct {
		i     int
		score int
	}
	s := kb.cur.Load()
	var found []scored
	for i, rb := range s.runbooks {
		a := rb.AppliesTo
		score := 0
		if inc.Rule != "" && slices.Contains(a.Rules, inc.Rule) {
			score += weightRule
		}
		if inc.Event != "" && slices.Contains(a.Events, inc.Event) {
			score += weightEvent
		}
		if inc.Cause != "" && slices.Contains(a.Causes, inc.Cause) {
			score += weightCause
		}
		if comp != "" && slices.Contains(a.Components, comp) {
			score += weightComponent
		}
		if score > 0 {
			found = append(found, scored{i, score})
		}
	}
	slices.SortFunc(found, func(x, y scored) int {
		if c := cmp.Compare(y.score, x.score); c != 0 {
			return c
		}
		return strings.Compare(s.runbooks[x.i].Slug, s.runbooks[y.i].Slug)
	})
	out := make([]Runbook, len(found))
	for j, f := range found {
		out[j] = s.runbooks[f.i]
	}
	return out
}

// Links returns the links of the best Options.MaxLinks runbooks for inc.
// Its signature is rules.Options.Runbooks, so the rule engine fills each
// incident's Runbooks with it: rules.Options{Runbooks: kb.Links}.
func (kb *KB) Links(inc *model.Incident) []string {
	rbs := kb.Match(*inc)
	if len(rbs) > kb.opts.MaxLinks {
		rbs = rbs[:kb.opts.MaxLinks]
	}
	if len(rbs) == 0 {
		return nil
	}
	out := make([]string, len(rbs))
	for i, rb := range rbs {
		out[i] = kb.Link(rb.Slug)
	}
	return out
}

// component is what a service or source incident is about: the service
// name ("libvirtd" of "host-007/libvirtd") or the source name.
func component(inc model.Incident) string {
	switch inc.Kind {
	case model.KindService:
		if i := strings.LastIndexByte(inc.Subject, '/'); i >= 0 {
			return inc.Subject[i+1:]
		}
		return inc.Subject
	case "source":
		return inc.Subject
	}
	return ""
}
