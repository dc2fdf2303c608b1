package rules

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// guard is a necessary condition of a vm rule that the engine can test in
// Go before running the program: a conjunct such as vm.crashed, or
// vm.event == "X" / vm.event in [...]. Most VMs are running with no event,
// so most vm rules are decided without running expr at all; that is what
// keeps a sweep of 100,000 VMs well inside its budget. A guard only ever
// skips a rule whose result would be false, so it never changes a result.
type guard struct {
	// field is a boolean VM field that must be true: crashed, down,
	// running or stale (none for an event guard).
	field guardField
	// events, when not nil, lists the events vm.event must be one of;
	// emptyOK says whether "" is one of them, which answers the common
	// case (no event) without hashing.
	events  map[string]struct{}
	emptyOK bool
}

type guardField uint8

const (
	fieldNone guardField = iota
	fieldCrashed
	fieldDown
	fieldRunning
	fieldStale
)

// guardFields maps the VM fields a guard can test to their guardField.
var guardFields = []struct {
	name  string
	field guardField
}{{"crashed", fieldCrashed}, {"down", fieldDown}, {"running", fieldRunning}, {"stale", fieldStale}}

func eventGuard(set map[string]struct{}) guard {
	_, empty := set[""]
	return guard{events: set, emptyOK: empty}
}

// vmGuards extracts the guards of a vm rule expression: one per top-level
// conjunct that has a recognised shape.
func vmGuards(src string) []guard {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	var out []guard
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		switch x := n.(type) {
		case *ast.BinaryNode:
			switch x.Operator {
			case "&&", "and":
				walk(x.Left)
				walk(x.Right)
			case "==":
				if isVMField(x.Left, "event") {
					if s, ok := x.Right.(*ast.StringNode); ok {
						out = append(out, eventGuard(map[string]struct{}{s.Value: {}}))
					}
				} else if isVMField(x.Right, "event") {
					if s, ok := x.Left.(*ast.StringNode); ok {
						out = append(out, eventGuard(map[string]struct{}{s.Value: {}}))
					}
				}
			case "in":
				arr, ok := x.Right.(*ast.ArrayNode)
				if !ok || !isVMField(x.Left, "event") {
					return
				}
				set := map[string]struct{}{}
				for _, el := range arr.Nodes {
					s, ok := el.(*ast.StringNode)
					if !ok {
						return
					}
					set[s.Value] = struct{}{}
				}
				out = append(out, eventGuard(set))
			}
		case *ast.MemberNode:
			for _, f := range guardFields {
				if isVMField(x, f.name) {
					out = append(out, guard{field: f.field})
				}
			}
		}
	}
	walk(tree.Node)
	return out
}

// isVMField reports whether n is vm.<name> (or vm["<name>"]).
func isVMField(n ast.Node, name string) bool {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional {
		return false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "vm" {
		return false
	}
	p, ok := m.Property.(*ast.StringNode)
	return ok && p.Value == name
}

// pass reports whether every guard holds for the VM in env.
func guardsPass(gs []guard, v *VMEnv) bool {
	for i := range gs {
		g := &gs[i]
		switch g.field {
		case fieldCrashed:
			if !v.Crashed {
				return false
			}
		case fieldDown:
			if !v.Down {
				return false
			}
		case fieldRunning:
			if !v.Running {
				return false
			}
		case fieldStale:
			if !v.Stale {
				return false
			}
		}
		if g.events != nil {
			if v.Event == "" {
				if !g.emptyOK {
					return false
				}
			} else if _, ok := g.events[v.Event]; !ok {
				return false
			}
		}
	}
	return true
}
