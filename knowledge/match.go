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
	s := kb.cur.Load()
	scores := map[int]int{}
	for _, k := range []struct {
		kind   byte
		value  string
		weight int
	}{
		{'r', inc.Rule, weightRule}, {'e', inc.Event, weightEvent},
		{'c', inc.Cause, weightCause}, {'m', component(inc), weightComponent},
	} {
		if k.value == "" {
			continue
		}
		for _, i := range s.applies[appliesKey{k.kind, k.value}] {
			scores[i] += k.weight
		}
	}
	found := make([]int, 0, len(scores))
	for i := range scores {
		found = append(found, i)
	}
	slices.SortFunc(found, func(x, y int) int {
		if c := cmp.Compare(scores[y], scores[x]); c != 0 {
			return c
		}
		return strings.Compare(s.runbooks[x].Slug, s.runbooks[y].Slug)
	})
	out := make([]Runbook, len(found))
	for j, i := range found {
		out[j] = s.runbooks[i]
	}
	return out
}

// appliesKey is one applies_to entry: kind r(ule), e(vent), c(ause) or
// (co)m(ponent), and the value.
type appliesKey struct {
	kind  byte
	value string
}

// appliesIndex maps every applies_to entry to the runbooks naming it, each
// runbook once, so that Match does not scan every runbook.
func appliesIndex(rbs []Runbook) map[appliesKey][]int {
	m := map[appliesKey][]int{}
	for i, rb := range rbs {
		a := rb.AppliesTo
		for _, l := range []struct {
			kind byte
			vals []string
		}{{'r', a.Rules}, {'e', a.Events}, {'c', a.Causes}, {'m', a.Components}} {
			for _, v := range l.vals {
				k := appliesKey{l.kind, v}
				if ids := m[k]; len(ids) == 0 || ids[len(ids)-1] != i {
					m[k] = append(ids, i)
				}
			}
		}
	}
	return m
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
