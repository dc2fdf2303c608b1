package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Env is everything a rule expression can read. Field names in expressions
// are the snake_case expr tags (vm.state, host.facts.ecc_uncorrected). Which
// of vm, host, service and source a rule may use depends on its scope: vm
// rules see vm and the VM's host; host rules see host; service rules see
// service and its host; source rules see source. All see period.
//
// Env holds only plain values: rules cannot read the process environment,
// the clock or anything outside this struct, and cannot do I/O.
type Env struct {
	VM      VMEnv      `expr:"vm"`
	Host    HostEnv    `expr:"host"`
	Service ServiceEnv `expr:"service"`
	Source  SourceEnv  `expr:"source"`
	Period  PeriodEnv  `expr:"period"`
	// Impact is what the subject's fault does to the services of its VMs
	// (vm and host rules), filled in only for rule sets that read it and
	// only when the engine has an Impact hook; zero otherwise.
	Impact ImpactEnv `expr:"impact"`

	// Probe results of the history helpers, filled in by the engine before
	// each evaluation; the loader rewrites host_held("failed", 3) into an
	// index into these, so a helper call costs no function call and no
	// allocation.
	ProbeBool [maxProbes]bool `expr:"__probe_bool"`
	ProbeInt  [maxProbes]int  `expr:"__probe_int"`
}

// VMEnv is the VM a rule is evaluated for.
type VMEnv struct {
	ID     string         `expr:"id"`
	State  string         `expr:"state"`
	Host   string         `expr:"host"`
	Site   string         `expr:"site"`
	Source string         `expr:"source"`
	Event  string         `expr:"event"`
	Attrs  map[string]any `expr:"attrs"`
	// Since is when the VM entered its state (time generated at the source).
	Since time.Time `expr:"since"`
	// DownFor is how long the VM has been in a non-running state (0 when
	// running).
	DownFor time.Duration `expr:"down_for"`
	// Crashed is true for state crashed, and for shutoff with a crash
	// reason (libvirt's default on_crash turns a crash into a shutoff).
	Crashed     bool   `expr:"crashed"`
	Down        bool   `expr:"down"`
	Running     bool   `expr:"running"`
	CrashReason string `expr:"crash_reason"`
	// LastSeen is the source time of the latest observation; SilentFor how
	// long ago (engine clock) it arrived; Stale whether that exceeds the
	// stopped-reporting timeout.
	LastSeen  time.Time     `expr:"last_seen"`
	SilentFor time.Duration `expr:"silent_for"`
	Stale     bool          `expr:"stale"`
	// SourceStale is true when the VM's whole source stopped reporting, so
	// a rule can leave that to the one source incident.
	SourceStale bool `expr:"source_stale"`
}

// HostEnv is a host in one collection period: for host rules the newest
// period known, for vm rules the period that decides the VM's case (the one
// in which it went down, or of its latest observation when running).
type HostEnv struct {
	ID   string `expr:"id"`
	Site string `expr:"site"`
	// State is the derived state (healthy, degraded, failed, or unknown
	// when no facts arrived for the period).
	State string `expr:"state"`
	// HardwareState counts only hardware and external reasons.
	HardwareState string   `expr:"hardware_state"`
	Reasons       []string `expr:"reasons"`
	// Reported is the state the host itself reported (up, down, unknown or
	// empty).
	Reported string            `expr:"reported"`
	Facts    FactsEnv          `expr:"facts"`
	Services map[string]string `expr:"services"`
	// ServicesDown counts the host's services reported down.
	ServicesDown int `expr:"services_down"`
	VMCount      int `expr:"vm_count"`
	VMsDown      int `expr:"vms_down"`
	// Crashes counts VMs that crashed on the host in the period.
	Crashes   int           `expr:"crashes"`
	LastSeen  time.Time     `expr:"last_seen"`
	SilentFor time.Duration `expr:"silent_for"`
	Stale     bool          `expr:"stale"`
	// Known is false for a VM without a host (e.g. a cloud VM).
	Known bool `expr:"known"`
}

// FactsEnv holds the hardware facts of a host's period, merged worst-wins
// across the period's observations: counts and temperature take the
// maximum, health flags are false if any observation said false. A flag
// never reported reads true and a count never reported reads 0.
type FactsEnv struct {
	ECCUncorrected   float64 `expr:"ecc_uncorrected"`
	ECCCorrected     float64 `expr:"ecc_corrected"`
	MCE              float64 `expr:"mce"`
	DiskErrors       float64 `expr:"disk_errors"`
	NICUp            bool    `expr:"nic_up"`
	PSUOK            bool    `expr:"psu_ok"`
	TempC            float64 `expr:"temp_c"`
	StorageReachable bool    `expr:"storage_reachable"`
	NetworkReachable bool    `expr:"network_reachable"`
	// Reported is true when any hardware fact arrived for the period.
	Reported bool `expr:"reported"`
}

// ServiceEnv is a service component on a host (libvirtd, nova-compute).
type ServiceEnv struct {
	Name    string        `expr:"name"`
	Host    string        `expr:"host"`
	State   string        `expr:"state"`
	Since   time.Time     `expr:"since"`
	DownFor time.Duration `expr:"down_for"`
}

// SourceEnv is a collector source (libvirt, azure, prometheus...).
type SourceEnv struct {
	Name      string        `expr:"name"`
	LastSeen  time.Time     `expr:"last_seen"`
	SilentFor time.Duration `expr:"silent_for"`
	Stale     bool          `expr:"stale"`
	VMs       int           `expr:"vms"`
	Hosts     int           `expr:"hosts"`
}

// ImpactEnv is the impact of the subject being down on the services of its
// VMs, from the inventory: for a vm rule, that VM down (if it is) together
// with the instances already down; for a host rule, every VM of the host
// down.
type ImpactEnv struct {
	// MaxFractionDown is the largest share of instances down among the
	// services hit, 0 to 1.
	MaxFractionDown float64 `expr:"max_fraction_down"`
	// LastInSite is true when some service has no running instance left in
	// the subject's site.
	LastInSite bool `expr:"last_in_site"`
	// Services counts the services hit.
	Services int `expr:"services"`
}

// ImpactQuery names the subject whose impact a rule reads: a VM (with
// whether it is down) or, for host rules, a host (VM empty).
type ImpactQuery struct {
	VM, Host, Site string
	Down           bool
}

// PeriodEnv is the collection period of the evaluation.
type PeriodEnv struct {
	Start  time.Time     `expr:"start"`
	Length time.Duration `expr:"length"`
	// Now is the engine clock at evaluation time.
	Now time.Time `expr:"now"`
}

// maxProbes caps distinct history-helper calls per set and per kind.
const maxProbes = 16

// probeKind names a history helper.
type probeKind int

const (
	probeHostHeld probeKind = iota + 1
	probeReasonHeld
	probeFaultHeld
	probeCrashes
)

// helpers maps the helper names of the rule language to their kinds and
// argument shapes.
var helpers = map[string]struct {
	kind  probeKind
	state bool // first argument is a host state
	name  bool // first argument is a reason name
	isInt bool // returns an int
}{
	"host_held":       {kind: probeHostHeld, state: true},
	"reason_held":     {kind: probeReasonHeld, name: true},
	"fault_held":      {kind: probeFaultHeld},
	"crashes_on_host": {kind: probeCrashes, isInt: true},
}

// probe is one distinct helper call of a set. slot indexes ProbeBool or
// ProbeInt.
type probe struct {
	kind probeKind
	arg  string
	bit  uint64
	n    int
	slot int
}

// probeTable collects the distinct helper calls of a set while compiling.
type probeTable struct {
	bools, ints []probe
}

func (t *probeTable) add(p probe, isInt bool) (probe, error) {
	list := &t.bools
	if isInt {
		list = &t.ints
	}
	for _, q := range *list {
		if q.kind == p.kind && q.arg == p.arg && q.n == p.n {
			return q, nil
		}
	}
	if len(*list) == maxProbes {
		return p, fmt.Errorf("more than %d distinct history helper calls in the rule set", maxProbes)
	}
	p.slot = len(*list)
	*list = append(*list, p)
	return p, nil
}

// exprProblem is an error in an expression at a rune offset.
type exprProblem struct {
	offset int
	msg    string
}

// helperPatch rewrites history-helper calls into probe lookups and checks
// that their arguments are literals, which is what lets the engine compute
// every probe once per host and period instead of calling functions.
type helperPatch struct {
	set      *Set
	table    *probeTable
	used     []probe
	problems []exprProblem
	// scope checks which top-level variables the rule may read.
	allowed map[string]bool
	// impact is set when the expression reads impact.
	impact bool
}

// Visit implements ast.Visitor.
func (h *helperPatch) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if n.Value == "impact" {
			h.impact = true
		}
		if !h.allowed[n.Value] && envVars[n.Value] {
			h.problems = append(h.problems, exprProblem{n.Location().From, fmt.Sprintf("%s is not available in this scope", n.Value)})
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		hp, ok := helpers[id.Value]
		if !ok {
			return
		}
		if !h.allowed["host"] {
			h.problems = append(h.problems, exprProblem{n.Location().From, fmt.Sprintf("%s needs a host, which this scope does not have", id.Value)})
		}
		p := probe{kind: hp.kind}
		want := 1
		if hp.state || hp.name {
			want = 2
		}
		if len(n.Arguments) != want {
			h.problems = append(h.problems, exprProblem{n.Location().From, fmt.Sprintf("%s takes %d argument(s), got %d", id.Value, want, len(n.Arguments))})
			h.replace(node, hp.isInt, p)
			return
		}
		args := n.Arguments
		if want == 2 {
			s, ok := args[0].(*ast.StringNode)
			if !ok {
				h.problems = append(h.problems, exprProblem{args[0].Location().From, fmt.Sprintf("%s: first argument must be a string literal", id.Value)})
				h.replace(node, hp.isInt, p)
				return
			}
			p.arg = s.Value
			switch {
			case hp.state:
				if stateRank(s.Value) < 0 {
					h.problems = append(h.problems, exprProblem{args[0].Location().From, fmt.Sprintf("%s: unknown host state %q (want healthy, degraded or failed)", id.Value, s.Value)})
				}
			case hp.name:
				bit, ok := h.set.reasons[s.Value]
				if !ok {
					h.problems = append(h.problems, exprProblem{args[0].Location().From, fmt.Sprintf("%s: no host_states entry has reason %q", id.Value, s.Value)})
				}
				p.bit = bit
			}
			args = args[1:]
		}
		num, ok := args[0].(*ast.IntegerNode)
		if !ok || num.Value < 1 || num.Value > h.set.Settings.History {
			h.problems = append(h.problems, exprProblem{args[0].Location().From, fmt.Sprintf("%s: the number of periods must be an integer literal from 1 to %d (settings.history)", id.Value, h.set.Settings.History)})
			h.replace(node, hp.isInt, p)
			return
		}
		p.n = num.Value
		if p.n > h.set.maxHistory {
			h.set.maxHistory = p.n
		}
		h.replace(node, hp.isInt, p)
	}
}

func (h *helperPatch) replace(node *ast.Node, isInt bool, p probe) {
	p, err := h.table.add(p, isInt)
	if err != nil {
		h.problems = append(h.problems, exprProblem{(*node).Location().From, err.Error()})
		return
	}
	h.used = append(h.used, p)
	name := "__probe_bool"
	if isInt {
		name = "__probe_int"
	}
	ast.Patch(node, &ast.MemberNode{
		Node:     &ast.IdentifierNode{Value: name},
		Property: &ast.IntegerNode{Value: p.slot},
	})
}

// envVars are the top-level variables of Env that scopes restrict.
var envVars = map[string]bool{"vm": true, "host": true, "service": true, "source": true, "impact": true}

// scopeVars lists what each scope may read (period is always allowed).
var scopeVars = map[Scope]map[string]bool{
	ScopeVM:      {"vm": true, "host": true, "impact": true},
	ScopeHost:    {"host": true, "impact": true},
	ScopeService: {"service": true, "host": true},
	ScopeSource:  {"source": true},
}

// compileExpr compiles a boolean expression for a scope. The problems it
// returns carry rune offsets into src; impact says whether it reads impact.
func compileExpr(set *Set, table *probeTable, scope Scope, src string) (prog *vm.Program, used []probe, probs []exprProblem, impact bool) {
	patch := &helperPatch{set: set, table: table, allowed: scopeVars[scope]}
	prog, err := expr.Compile(src,
		expr.Env(Env{}),
		expr.AsBool(),
		expr.Patch(patch),
		// now() would read the wall clock: rules must see the engine's
		// clock (period.now) so tests and replays are deterministic.
		expr.DisableBuiltin("now"),
		expr.MaxNodes(2000),
	)
	probs = patch.problems
	if err != nil {
		probs = append(probs, exprErrorProblem(err))
	}
	if len(probs) > 0 {
		return nil, nil, probs, false
	}
	return prog, patch.used, nil, patch.impact
}

// exprErrorProblem extracts the offset of an expr compile error.
func exprErrorProblem(err error) exprProblem {
	var fe *file.Error
	if errors.As(err, &fe) {
		return exprProblem{fe.From, typeNames.Replace(fe.Message)}
	}
	return exprProblem{-1, err.Error()}
}

// typeNames turns Go type names in expr's messages into the names rule
// authors write.
var typeNames = strings.NewReplacer(
	"rules.VMEnv", "vm", "rules.HostEnv", "host", "rules.FactsEnv", "host.facts",
	"rules.ServiceEnv", "service", "rules.SourceEnv", "source", "rules.PeriodEnv", "period", "rules.ImpactEnv", "impact",
	"rules.Env", "the environment",
)

// stateRank orders host states by badness; -1 for an unknown name.
func stateRank(s string) int {
	switch s {
	case "healthy":
		return 0
	case "degraded":
		return 1
	case "failed":
		return 2
	}
	return -1
}

// evaluator runs compiled programs without allocating. It is not safe for
// concurrent use; the engine owns one and uses it under its lock.
type evaluator struct {
	vm  vm.VM
	env *Env
	box any
}

// eface is the layout of an empty interface.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// newEvaluator boxes one Env for the life of the evaluator. expr reads
// struct fields through reflect, which copies (allocates) every field it
// returns from an addressable struct, i.e. one passed by pointer; passed by
// value the fields are returned without copying, but boxing a fresh struct
// into an interface allocates on every call. So the evaluator points one
// interface value at its own Env and rewrites that Env in place between
// runs: the reflect view is a non-addressable value and nothing allocates.
// expr never retains or writes the env, which is what makes this sound.
func newEvaluator() *evaluator {
	ev := &evaluator{env: new(Env)}
	var box any = Env{}
	(*eface)(unsafe.Pointer(&box)).data = unsafe.Pointer(ev.env)
	ev.box = box
	return ev
}

// run evaluates prog over the evaluator's env. A run-time error (a nil map,
// say) counts as false and is returned for logging.
func (ev *evaluator) run(prog *vm.Program) (bool, error) {
	out, err := ev.vm.Run(prog, ev.box)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
