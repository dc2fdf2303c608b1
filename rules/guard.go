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
	// running or stale.
	field string
	// events, when not nil, lists the events vm.event must be one of.
	events map[string]struct{}
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
						out = append(out, guard{events: map[string]struct{}{s.Value: {}}})
					}
				} else if isVMField(x.Right, "event") {
					if s, ok := x.Left.(*ast.StringNode); ok {
						out = append(out, guard{events: map[string]struct{}{s.Value: {}}})
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
				out = append(out, guard{events: set})
			}
		case *ast.MemberNode:
			for _, f := range []string{"crashed", "down", "running", "stale"} {
				if isVMField(x, f) {
					out = append(out, guard{field: f})
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
		case "crashed":
			if !v.Crashed {
				return false
			}
		case "down":
			if !v.Down {
				return false
			}
		case "running":
			if !v.Running {
				return false
			}
		case "stale":
			if !v.Stale {
				return false
			}
		}
		if g.events != nil {
			if _, ok := g.events[v.Event]; !ok {
				return false
			}
		}
	}
	return true
}
