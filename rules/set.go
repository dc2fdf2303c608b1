package rules

import (
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Scope says what a rule is evaluated over, and so which variables its
// expression may read.
type Scope string

// Scopes. A vm rule runs for every VM observation (and again when its host's
// state for the VM's period changes); a host rule for every host
// observation; a service rule for every service observation; a source rule
// on every tick for every source that ever reported.
const (
	ScopeVM      Scope = "vm"
	ScopeHost    Scope = "host"
	ScopeService Scope = "service"
	ScopeSource  Scope = "source"
)

func (s Scope) valid() bool {
	return s == ScopeVM || s == ScopeHost || s == ScopeService || s == ScopeSource
}

// Labels a rule may group by. An incident's fingerprint is a hash of the
// rule name and the values of its group labels.
const (
	LabelVM      = "vm"
	LabelHost    = "host"
	LabelSite    = "site"
	LabelSource  = "source"
	LabelService = "service"
)

// scopeLabels lists the labels a scope knows, and defaultGroup the labels it
// groups by when the rule says nothing: one incident per subject.
var (
	scopeLabels = map[Scope][]string{
		ScopeVM:      {LabelVM, LabelHost, LabelSite, LabelSource},
		ScopeHost:    {LabelHost, LabelSite},
		ScopeService: {LabelService, LabelHost, LabelSite},
		ScopeSource:  {LabelSource},
	}
	defaultGroup = map[Scope][]string{
		ScopeVM:      {LabelVM},
		ScopeHost:    {LabelHost},
		ScopeService: {LabelHost, LabelService},
		ScopeSource:  {LabelSource},
	}
)

// Settings are the engine-wide knobs a rule file may set. Each may be set
// by at most one file of a set.
type Settings struct {
	// Period is the collection period: host facts are merged and host state
	// derived per period. Default 1m.
	Period time.Duration
	// StoppedReporting is how long a VM, host or source may stay silent
	// before it counts as stale. Default 10m.
	StoppedReporting time.Duration
	// ResolveDelay is how long a condition must stay clear before a firing
	// incident resolves, unless the rule sets its own. Default 5m.
	ResolveDelay time.Duration
	// ReopenWindow is how soon after resolution a recurrence reopens the
	// same incident instead of opening a new one. Default 1h.
	ReopenWindow time.Duration
	// History is how many periods of host history are kept per host, which
	// bounds the N of history helpers. Default 16, at most 64.
	History int
}

// DefaultSettings are the settings when no file sets them.
var DefaultSettings = Settings{
	Period:           time.Minute,
	StoppedReporting: 10 * time.Minute,
	ResolveDelay:     5 * time.Minute,
	ReopenWindow:     time.Hour,
	History:          16,
}

// Classification says what an incident is and whose fault it is.
type Classification struct {
	Cause    string
	Trigger  model.Trigger
	Severity model.Severity
}

// RuleAction is the remedy a rule proposes and whether a person must approve
// it first.
type RuleAction struct {
	Type     model.Action
	Approval bool
}

// Rule is one compiled rule. Rules are immutable once loaded; the engine
// swaps whole sets on reload.
type Rule struct {
	Name           string
	Scope          Scope
	Expr           string
	For            time.Duration
	GroupBy        []string
	Classification Classification
	Action         RuleAction
	Runbook        string
	// Summary is the template text; it sees SummaryData only.
	Summary string
	// ResolveDelay overrides the set's default when HasResolveDelay.
	ResolveDelay    time.Duration
	HasResolveDelay bool
	// Escalation names a policy; empty means the first policy whose
	// severities include the rule's severity.
	Escalation string
	// PlatformRecovery marks the incident's VMs as being recovered by the
	// platform (e.g. planned maintenance): remedies must refuse manual
	// actions on them while the incident is open.
	PlatformRecovery bool
	// File and Line locate the rule for error messages.
	File string
	Line int

	prog    *vm.Program
	summary *template.Template
	probes  []probe
	policy  *Policy
	guards  []guard
	// impact is set when the expression reads impact.
	impact bool
}

// HostStateRule is one entry of the host state derivation. Every entry whose
// condition holds for a host's period contributes its reason; the host's
// state is the worst state among them (healthy when none holds).
type HostStateRule struct {
	State  model.HostState
	Reason string
	// Class is hardware, external or service. A host's hardware state (what
	// the crash-versus-host decision reads) only counts hardware and
	// external entries, so a stopped libvirtd is not mistaken for failing
	// memory.
	Class string
	When  string
	File  string
	Line  int

	bit    uint64
	prog   *vm.Program
	probes []probe
}

// Host state classes.
const (
	ClassHardware = "hardware"
	ClassExternal = "external"
	ClassService  = "service"
)

// Inhibit mutes target incidents while a source incident is open and the
// listed labels are equal and non-empty on both. The muted incidents get
// InhibitedBy set and their VMs join the source incident's list.
type Inhibit struct {
	Name        string
	SourceRules []string
	TargetRules []string
	Equal       []string
	File        string
	Line        int
}

// MaxLevels is the most escalation levels a policy may have.
const MaxLevels = 5

// Target is one recipient of an escalation level. Kind is channel,
// usergroup, user or jira-priority.
type Target struct {
	Kind  string
	Value string
}

// String renders the target as "kind:value", the form incidents carry.
func (t Target) String() string { return t.Kind + ":" + t.Value }

// Level is one escalation step: it is reached Wait after the previous one
// (the first, Wait after the incident fires).
type Level struct {
	Wait    time.Duration
	Targets []Target
}

// Policy is an escalation policy: up to five levels, applying to rules of
// the listed severities unless a rule names a policy itself.
type Policy struct {
	Name       string
	Severities []model.Severity
	Levels     []Level
	File       string
	Line       int
}

// Set is a loaded, compiled rule set. It is immutable and safe to share.
type Set struct {
	Settings   Settings
	Rules      []*Rule
	HostStates []*HostStateRule
	Inhibits   []*Inhibit
	Policies   []*Policy

	files   []FileSummary
	byScope map[Scope][]*Rule
	reasons map[string]uint64 // host state reason → bit
	// hwMask has the bits of hardware and external reasons (what
	// hardware_state counts); faultMask those of hardware reasons only
	// (what fault_held looks for).
	hwMask    uint64
	faultMask uint64
	probes    map[Scope][]probe
	// impact says which scopes have a rule that reads impact, so the
	// engine asks for it only there.
	impact map[Scope]bool
	// maxHistory is the largest N any helper asks for.
	maxHistory int
	// digest identifies the file contents LoadFiles built the set from
	// (zero for Parse), so a watcher notices any change made after them.
	digest [32]byte
}

// Rule returns the named rule, or nil.
func (s *Set) Rule(name string) *Rule {
	for _, r := range s.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Policy returns the named escalation policy, or nil.
func (s *Set) Policy(name string) *Policy {
	for _, p := range s.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// FileSummary describes one loaded file, for `vmtriage rules check`.
type FileSummary struct {
	File       string
	Rules      int
	HostStates int
	Inhibits   int
	Policies   int
	Settings   int
}

// String is the one-line summary `rules check` prints.
func (f FileSummary) String() string {
	return fmt.Sprintf("%s: ok: %d rules, %d host states, %d inhibit rules, %d escalation policies, %d settings",
		f.File, f.Rules, f.HostStates, f.Inhibits, f.Policies, f.Settings)
}

// Summary returns one line per loaded file.
func (s *Set) Summary() []FileSummary {
	return append([]FileSummary(nil), s.files...)
}

// Problem is one thing wrong in a rule file.
type Problem struct {
	File string
	Line int
	// Column is the column within the expression for expression errors,
	// 0 otherwise.
	Column int
	// Rule names the rule (or host state, inhibit rule, policy) concerned.
	Rule    string
	Key     string
	Message string
}

// String renders "file:line: rule NAME: key: message (col N)".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Rule != "" {
		fmt.Fprintf(&b, "rule %s: ", p.Rule)
	}
	if p.Key != "" {
		fmt.Fprintf(&b, "%s: ", p.Key)
	}
	b.WriteString(p.Message)
	if p.Column > 0 {
		fmt.Fprintf(&b, " (col %d)", p.Column)
	}
	return b.String()
}

// LoadError lists every problem found while loading rule files. Nothing of
// a set with problems is used.
type LoadError struct {
	Problems []Problem
}

// Error lists one problem per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
