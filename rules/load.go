package rules

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmtriage/vmtriage/internal/model"
)

//go:embed default/*.yaml
var defaultFS embed.FS

// Default returns the default rule set shipped in the binary (rules/default).
func Default() (*Set, error) {
	entries, err := fs.ReadDir(defaultFS, "default")
	if err != nil {
		return nil, fmt.Errorf("read embedded default rules: %w", err)
	}
	var srcs []source
	for _, e := range entries {
		b, err := defaultFS.ReadFile("default/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read embedded default rules: %w", err)
		}
		srcs = append(srcs, source{name: "default/" + e.Name(), data: b})
	}
	return load(srcs)
}

// LoadFiles loads and compiles rule files. Each path is a file or a folder,
// whose *.yaml and *.yml files are read in name order (not recursively).
// Any problem in any file fails the whole load with a *LoadError listing
// every problem found.
func LoadFiles(paths ...string) (*Set, error) {
	if len(paths) == 0 {
		return nil, errors.New("load rules: no path given")
	}
	var srcs []source
	var probs []Problem
	for _, p := range paths {
		files, err := expandPath(p)
		if err != nil {
			probs = append(probs, Problem{File: p, Message: err.Error()})
			continue
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				probs = append(probs, Problem{File: f, Message: fmt.Sprintf("read: %v", err)})
				continue
			}
			srcs = append(srcs, source{name: f, data: b})
		}
	}
	if len(probs) > 0 {
		return nil, &LoadError{Problems: probs}
	}
	if len(srcs) == 0 {
		return nil, &LoadError{Problems: []Problem{{File: strings.Join(paths, ","), Message: "no *.yaml or *.yml rule files found"}}}
	}
	set, err := load(srcs)
	if err != nil {
		return nil, err
	}
	set.digest = digestSources(srcs)
	return set, nil
}

// expandPath lists the rule files of a path.
func expandPath(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("read folder: %w", err)
	}
	var out []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, errors.New("folder has no *.yaml or *.yml files")
	}
	return out, nil
}

// Parse loads a set from one file's contents; name is used in errors.
//
// A rule file is a YAML mapping with any of these keys (unknown keys are
// errors everywhere):
//
//	settings:      {period, stopped_reporting, resolve_delay, reopen_window, history}
//	host_states:   [{state, reason, class, when}]
//	rules:         [{name, scope, expr, for, group_by, classification: {cause, trigger, severity},
//	                 action: {type, approval}, runbook, summary, resolve_delay, escalation,
//	                 platform_recovery}]
//	inhibit:       [{name, source_rules, target_rules, equal}]
//	escalation:    [{name, severities, levels: [{wait, targets: [{channel|usergroup|user|jira-priority: X}]}]}]
func Parse(name string, data []byte) (*Set, error) {
	return load([]source{{name: name, data: data}})
}

type source struct {
	name string
	data []byte
}

// decoder walks yaml.Node trees so that every problem names its line.
type decoder struct {
	file  string
	probs *[]Problem
}

func (d *decoder) errf(n *yaml.Node, rule, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	*d.probs = append(*d.probs, Problem{File: d.file, Line: line, Rule: rule, Key: key, Message: fmt.Sprintf(format, args...)})
}

// fields checks that n is a mapping with only the allowed keys, each once,
// and returns the value node of each key present.
func (d *decoder) fields(n *yaml.Node, rule, what string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		d.errf(n, rule, what, "must be a mapping, got %s", kindName(n))
		return out
	}
	keys := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if prev, dup := keys[key]; dup {
			d.errf(k, rule, joinKey(what, key), "duplicate key (first at line %d)", prev.Line)
			continue
		}
		keys[key] = k
		ok := false
		for _, a := range allowed {
			if a == key {
				ok = true
				break
			}
		}
		if !ok {
			d.errf(k, rule, joinKey(what, key), "unknown key (allowed: %s)", strings.Join(allowed, ", "))
			continue
		}
		out[key] = v
	}
	return out
}

// peekName returns a rule mapping's name before its keys are checked, so
// that every problem in the rule can name it.
func peekName(n *yaml.Node) string { return peekKey(n, "name") }

func peekKey(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func joinKey(what, key string) string {
	if what == "" {
		return key
	}
	return what + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func (d *decoder) str(n *yaml.Node, rule, key string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errf(n, rule, key, "must be a string, got %s", kindName(n))
		return ""
	}
	return n.Value
}

func (d *decoder) boolean(n *yaml.Node, rule, key string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errf(n, rule, key, "must be true or false, got %s", kindName(n))
		return false
	}
	b, _ := strconv.ParseBool(n.Value)
	return b
}

func (d *decoder) integer(n *yaml.Node, rule, key string) int {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errf(n, rule, key, "must be an integer, got %s", kindName(n))
		return 0
	}
	i, err := strconv.Atoi(n.Value)
	if err != nil {
		d.errf(n, rule, key, "must be an integer: %v", err)
	}
	return i
}

func (d *decoder) duration(n *yaml.Node, rule, key string) time.Duration {
	s := d.str(n, rule, key)
	if s == "" {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errf(n, rule, key, "must be a duration such as 90s or 5m, got %q", s)
		return 0
	}
	if v < 0 {
		d.errf(n, rule, key, "must not be negative")
		return 0
	}
	return v
}

func (d *decoder) list(n *yaml.Node, rule, key string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		d.errf(n, rule, key, "must be a list, got %s", kindName(n))
		return nil
	}
	return n.Content
}

func (d *decoder) strList(n *yaml.Node, rule, key string) []string {
	var out []string
	for _, v := range d.list(n, rule, key) {
		if s := d.str(v, rule, key); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// rawExpr keeps an expression with its node so that compile errors can be
// placed in the file.
type rawExpr struct {
	file string
	node *yaml.Node
}

// position turns a rune offset within the expression into a file line and a
// 1-based column within the expression's line.
func (r rawExpr) position(offset int) (line, col int) {
	line = r.node.Line
	if r.node.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		line++ // block scalars start on the next line
	}
	if offset < 0 {
		return line, 0
	}
	col = 1
	i := 0
	for _, c := range r.node.Value {
		if i == offset {
			break
		}
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
		i++
	}
	return line, col
}

// pending holds what parsing produced before compilation, which needs the
// whole set (reasons and policies may be defined in another file).
type pending struct {
	set       *Set
	ruleExprs map[*Rule]rawExpr
	hsExprs   map[*HostStateRule]rawExpr
	sumNodes  map[*Rule]rawExpr
	escNodes  map[*Rule]rawExpr
	inhNodes  map[*Inhibit]*yaml.Node
	names     map[string]Problem // rule name → where first defined
	setBy     map[string]string  // setting → file:line
}

func load(srcs []source) (*Set, error) {
	var probs []Problem
	p := &pending{
		set:       &Set{Settings: DefaultSettings},
		ruleExprs: map[*Rule]rawExpr{},
		hsExprs:   map[*HostStateRule]rawExpr{},
		sumNodes:  map[*Rule]rawExpr{},
		escNodes:  map[*Rule]rawExpr{},
		inhNodes:  map[*Inhibit]*yaml.Node{},
		names:     map[string]Problem{},
		setBy:     map[string]string{},
	}
	for _, src := range srcs {
		d := &decoder{file: src.name, probs: &probs}
		p.parseFile(d, src.data)
	}
	p.compile(&probs)
	if len(probs) > 0 {
		// Compilation problems are found after parsing ones; list them
		// in file and line order, which is how people fix them.
		order := map[string]int{}
		for i, src := range srcs {
			order[src.name] = i
		}
		sort.SliceStable(probs, func(i, j int) bool {
			a, b := probs[i], probs[j]
			if order[a.File] != order[b.File] {
				return order[a.File] < order[b.File]
			}
			return a.Line < b.Line
		})
		return nil, &LoadError{Problems: probs}
	}
	return p.set, nil
}

func (p *pending) parseFile(d *decoder, data []byte) {
	sum := FileSummary{File: d.file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.set.files = append(p.set.files, sum) // an empty file is allowed
			return
		}
		*d.probs = append(*d.probs, yamlProblem(d.file, err))
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errf(&extra, "", "", "only one YAML document per file")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		p.set.files = append(p.set.files, sum)
		return
	}
	top := d.fields(root, "", "", "settings", "host_states", "rules", "inhibit", "escalation")
	if n := top["settings"]; n != nil {
		sum.Settings = p.parseSettings(d, n)
	}
	if n := top["host_states"]; n != nil {
		for _, e := range d.list(n, "", "host_states") {
			p.parseHostState(d, e)
			sum.HostStates++
		}
	}
	if n := top["rules"]; n != nil {
		for _, e := range d.list(n, "", "rules") {
			p.parseRule(d, e)
			sum.Rules++
		}
	}
	if n := top["inhibit"]; n != nil {
		for _, e := range d.list(n, "", "inhibit") {
			p.parseInhibit(d, e)
			sum.Inhibits++
		}
	}
	if n := top["escalation"]; n != nil {
		for _, e := range d.list(n, "", "escalation") {
			p.parsePolicy(d, e)
			sum.Policies++
		}
	}
	p.set.files = append(p.set.files, sum)
}

// yamlProblem turns a yaml.v3 syntax error ("yaml: line 3: ...") into a
// Problem with its line.
func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line = n
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return Problem{File: file, Line: line, Message: "invalid YAML: " + msg}
}

func (p *pending) parseSettings(d *decoder, n *yaml.Node) int {
	f := d.fields(n, "", "settings", "period", "stopped_reporting", "resolve_delay", "reopen_window", "history")
	set := func(key string, apply func()) {
		v := f[key]
		if v == nil {
			return
		}
		if prev, ok := p.setBy[key]; ok {
			d.errf(v, "", "settings."+key, "already set at %s", prev)
			return
		}
		p.setBy[key] = fmt.Sprintf("%s:%d", d.file, v.Line)
		apply()
	}
	s := &p.set.Settings
	set("period", func() {
		n := len(*d.probs)
		v := d.duration(f["period"], "", "settings.period")
		switch {
		case v > 0:
			s.Period = v
		case len(*d.probs) == n:
			d.errf(f["period"], "", "settings.period", "must be positive")
		}
	})
	set("stopped_reporting", func() { s.StoppedReporting = d.duration(f["stopped_reporting"], "", "settings.stopped_reporting") })
	set("resolve_delay", func() { s.ResolveDelay = d.duration(f["resolve_delay"], "", "settings.resolve_delay") })
	set("reopen_window", func() { s.ReopenWindow = d.duration(f["reopen_window"], "", "settings.reopen_window") })
	set("history", func() {
		h := d.integer(f["history"], "", "settings.history")
		if h < 1 || h > 64 {
			d.errf(f["history"], "", "settings.history", "must be from 1 to 64")
			return
		}
		s.History = h
	})
	return len(f)
}

func (p *pending) parseHostState(d *decoder, n *yaml.Node) {
	f := d.fields(n, "host state "+peekKey(n, "reason"), "", "state", "reason", "class", "when")
	hs := &HostStateRule{File: d.file, Line: n.Line, Class: ClassHardware}
	name := ""
	if v := f["reason"]; v != nil {
		hs.Reason = d.str(v, "", "host_states.reason")
		name = "host state " + hs.Reason
	} else {
		d.errf(n, "", "host_states.reason", "is required")
	}
	if v := f["state"]; v != nil {
		hs.State = model.HostState(d.str(v, name, "state"))
		if hs.State != model.HostDegraded && hs.State != model.HostFailed {
			d.errf(v, name, "state", "must be degraded or failed, got %q", hs.State)
		}
	} else {
		d.errf(n, name, "state", "is required")
	}
	if v := f["class"]; v != nil {
		hs.Class = d.str(v, name, "class")
		if hs.Class != ClassHardware && hs.Class != ClassExternal && hs.Class != ClassService {
			d.errf(v, name, "class", "must be hardware, external or service, got %q", hs.Class)
		}
	}
	if v := f["when"]; v != nil {
		hs.When = d.str(v, name, "when")
		p.hsExprs[hs] = rawExpr{file: d.file, node: v}
	} else {
		d.errf(n, name, "when", "is required")
	}
	p.set.HostStates = append(p.set.HostStates, hs)
}

func (p *pending) parseRule(d *decoder, n *yaml.Node) {
	f := d.fields(n, peekName(n), "", "name", "scope", "expr", "for", "group_by", "classification", "action",
		"runbook", "summary", "resolve_delay", "escalation", "platform_recovery")
	r := &Rule{File: d.file, Line: n.Line}
	if v := f["name"]; v != nil {
		r.Name = d.str(v, "", "name")
		if r.Name != "" && !validName(r.Name) {
			d.errf(v, r.Name, "name", "must be lowercase letters, digits and dashes")
		}
		if prev, dup := p.names[r.Name]; dup && r.Name != "" {
			d.errf(v, r.Name, "name", "duplicate rule name (first at %s:%d)", prev.File, prev.Line)
		}
		p.names[r.Name] = Problem{File: d.file, Line: v.Line}
	} else if n.Kind == yaml.MappingNode {
		d.errf(n, "", "name", "is required")
	}
	name := r.Name
	if v := f["scope"]; v != nil {
		r.Scope = Scope(d.str(v, name, "scope"))
		if !r.Scope.valid() {
			d.errf(v, name, "scope", "must be vm, host, service or source, got %q", r.Scope)
		}
	} else if n.Kind == yaml.MappingNode {
		d.errf(n, name, "scope", "is required")
	}
	if v := f["expr"]; v != nil {
		r.Expr = d.str(v, name, "expr")
		p.ruleExprs[r] = rawExpr{file: d.file, node: v}
	} else if n.Kind == yaml.MappingNode {
		d.errf(n, name, "expr", "is required")
	}
	if v := f["for"]; v != nil {
		r.For = d.duration(v, name, "for")
	}
	if v := f["resolve_delay"]; v != nil {
		r.ResolveDelay = d.duration(v, name, "resolve_delay")
		r.HasResolveDelay = true
	}
	if v := f["group_by"]; v != nil {
		r.GroupBy = d.strList(v, name, "group_by")
		labels := scopeLabels[r.Scope]
		for _, l := range r.GroupBy {
			if !contains(labels, l) && r.Scope.valid() {
				d.errf(v, name, "group_by", "label %q is not known in scope %s (known: %s)", l, r.Scope, strings.Join(labels, ", "))
			}
		}
		if len(r.GroupBy) == 0 {
			d.errf(v, name, "group_by", "must list at least one label")
		}
	} else {
		r.GroupBy = defaultGroup[r.Scope]
	}
	if v := f["classification"]; v != nil {
		c := d.fields(v, name, "classification", "cause", "trigger", "severity")
		if x := c["cause"]; x != nil {
			r.Classification.Cause = d.str(x, name, "classification.cause")
		} else {
			d.errf(v, name, "classification.cause", "is required")
		}
		if x := c["trigger"]; x != nil {
			r.Classification.Trigger = model.Trigger(d.str(x, name, "classification.trigger"))
			if !r.Classification.Trigger.Valid() {
				d.errf(x, name, "classification.trigger", "must be platform, user or vm, got %q", x.Value)
			}
		} else {
			d.errf(v, name, "classification.trigger", "is required")
		}
		if x := c["severity"]; x != nil {
			r.Classification.Severity = model.Severity(d.str(x, name, "classification.severity"))
			if !r.Classification.Severity.Valid() {
				d.errf(x, name, "classification.severity", "must be critical, high, medium or low, got %q", x.Value)
			}
		} else {
			d.errf(v, name, "classification.severity", "is required")
		}
	} else if n.Kind == yaml.MappingNode {
		d.errf(n, name, "classification", "is required")
	}
	r.Action.Type = model.ActionNone
	if v := f["action"]; v != nil {
		a := d.fields(v, name, "action", "type", "approval")
		if x := a["type"]; x != nil {
			r.Action.Type = model.Action(d.str(x, name, "action.type"))
			if !r.Action.Type.Valid() {
				d.errf(x, name, "action.type", "must be none, notify, restart-vm, restart-service or migrate-host, got %q", x.Value)
			}
		} else {
			d.errf(v, name, "action.type", "is required")
		}
		if x := a["approval"]; x != nil {
			r.Action.Approval = d.boolean(x, name, "action.approval")
		}
	}
	if v := f["runbook"]; v != nil {
		r.Runbook = d.str(v, name, "runbook")
		if r.Runbook != "" && !validName(r.Runbook) {
			d.errf(v, name, "runbook", "must be a slug (lowercase letters, digits and dashes)")
		}
	}
	if v := f["summary"]; v != nil {
		r.Summary = d.str(v, name, "summary")
		p.sumNodes[r] = rawExpr{file: d.file, node: v}
	}
	if v := f["escalation"]; v != nil {
		r.Escalation = d.str(v, name, "escalation")
		p.escNodes[r] = rawExpr{file: d.file, node: v}
	}
	if v := f["platform_recovery"]; v != nil {
		r.PlatformRecovery = d.boolean(v, name, "platform_recovery")
		if r.PlatformRecovery && r.Scope != ScopeVM {
			d.errf(v, name, "platform_recovery", "only vm rules can mark platform recovery")
		}
	}
	p.set.Rules = append(p.set.Rules, r)
}

func (p *pending) parseInhibit(d *decoder, n *yaml.Node) {
	f := d.fields(n, "inhibit "+peekKey(n, "name"), "", "name", "source_rules", "target_rules", "equal")
	in := &Inhibit{File: d.file, Line: n.Line}
	if v := f["name"]; v != nil {
		in.Name = d.str(v, "", "inhibit.name")
	}
	name := "inhibit " + in.Name
	if v := f["source_rules"]; v != nil {
		in.SourceRules = d.strList(v, name, "source_rules")
	}
	if len(in.SourceRules) == 0 {
		d.errf(n, name, "source_rules", "must list at least one rule")
	}
	if v := f["target_rules"]; v != nil {
		in.TargetRules = d.strList(v, name, "target_rules")
	}
	if len(in.TargetRules) == 0 {
		d.errf(n, name, "target_rules", "must list at least one rule")
	}
	if v := f["equal"]; v != nil {
		in.Equal = d.strList(v, name, "equal")
		for _, l := range in.Equal {
			if l != LabelVM && l != LabelHost && l != LabelSite && l != LabelSource && l != LabelService {
				d.errf(v, name, "equal", "unknown label %q (want vm, host, site, source or service)", l)
			}
		}
	}
	if len(in.Equal) == 0 {
		d.errf(n, name, "equal", "must list at least one label, or every source would mute every target fleet-wide")
	}
	p.inhNodes[in] = n
	p.set.Inhibits = append(p.set.Inhibits, in)
}

// targetKinds are the recipients an escalation level can name.
var targetKinds = []string{"channel", "usergroup", "user", "jira-priority"}

func (p *pending) parsePolicy(d *decoder, n *yaml.Node) {
	f := d.fields(n, "policy "+peekKey(n, "name"), "", "name", "severities", "levels")
	pol := &Policy{File: d.file, Line: n.Line}
	if v := f["name"]; v != nil {
		pol.Name = d.str(v, "", "escalation.name")
		if p.set.Policy(pol.Name) != nil {
			d.errf(v, "policy "+pol.Name, "name", "duplicate escalation policy")
		}
	} else {
		d.errf(n, "", "escalation.name", "is required")
	}
	name := "policy " + pol.Name
	if v := f["severities"]; v != nil {
		for _, s := range d.strList(v, name, "severities") {
			sev := model.Severity(s)
			if !sev.Valid() {
				d.errf(v, name, "severities", "unknown severity %q", s)
			}
			pol.Severities = append(pol.Severities, sev)
		}
	}
	if v := f["levels"]; v != nil {
		levels := d.list(v, name, "levels")
		if len(levels) == 0 || len(levels) > MaxLevels {
			d.errf(v, name, "levels", "must have 1 to %d levels, got %d", MaxLevels, len(levels))
		}
		for i, ln := range levels {
			key := fmt.Sprintf("levels[%d]", i)
			lf := d.fields(ln, name, key, "wait", "targets")
			var lvl Level
			if w := lf["wait"]; w != nil {
				lvl.Wait = d.duration(w, name, key+".wait")
			}
			if t := lf["targets"]; t != nil {
				for _, tn := range d.list(t, name, key+".targets") {
					tf := d.fields(tn, name, key+".targets", targetKinds...)
					if len(tf) > 1 {
						d.errf(tn, name, key+".targets", "each target names exactly one of %s", strings.Join(targetKinds, ", "))
					}
					for _, k := range targetKinds {
						if x := tf[k]; x != nil {
							lvl.Targets = append(lvl.Targets, Target{Kind: k, Value: d.str(x, name, key+".targets."+k)})
						}
					}
				}
			}
			if len(lvl.Targets) == 0 {
				d.errf(ln, name, key+".targets", "must list at least one target")
			}
			pol.Levels = append(pol.Levels, lvl)
		}
	} else {
		d.errf(n, name, "levels", "is required")
	}
	p.set.Policies = append(p.set.Policies, pol)
}

// compile runs once all files are parsed: it interns reasons, compiles
// expressions and templates, and resolves references between entries.
func (p *pending) compile(probs *[]Problem) {
	s := p.set
	s.reasons = map[string]uint64{}
	for _, hs := range s.HostStates {
		if hs.Reason == "" {
			continue
		}
		bit, ok := s.reasons[hs.Reason]
		if !ok {
			if len(s.reasons) == 64 {
				*probs = append(*probs, Problem{File: hs.File, Line: hs.Line, Rule: "host state " + hs.Reason, Key: "reason", Message: "more than 64 distinct reasons"})
				continue
			}
			bit = 1 << uint(len(s.reasons))
			s.reasons[hs.Reason] = bit
		}
		hs.bit = bit
		if hs.Class != ClassService {
			s.hwMask |= bit
		}
		if hs.Class == ClassHardware {
			s.faultMask |= bit
		}
	}
	table := &probeTable{}
	exprErr := func(raw rawExpr, rule, key string, eps []exprProblem) {
		for _, ep := range eps {
			line, col := raw.position(ep.offset)
			*probs = append(*probs, Problem{File: raw.file, Line: line, Column: col, Rule: rule, Key: key, Message: ep.msg})
		}
	}
	for _, hs := range s.HostStates {
		raw, ok := p.hsExprs[hs]
		if !ok || hs.When == "" {
			continue
		}
		prog, used, eps, impact := compileExpr(s, table, ScopeHost, hs.When)
		if impact {
			// Host states are derived from hardware facts alone, before
			// any rule runs.
			eps = append(eps, exprProblem{-1, "impact is not available in host_states"})
			prog = nil
		}
		exprErr(raw, "host state "+hs.Reason, "when", eps)
		hs.prog, hs.probes = prog, used
	}
	s.byScope = map[Scope][]*Rule{}
	for _, r := range s.Rules {
		if raw, ok := p.ruleExprs[r]; ok && r.Expr != "" && r.Scope.valid() {
			prog, used, eps, impact := compileExpr(s, table, r.Scope, r.Expr)
			exprErr(raw, r.Name, "expr", eps)
			r.prog, r.probes, r.impact = prog, used, impact
			if r.Scope == ScopeVM && prog != nil {
				r.guards = vmGuards(r.Expr)
			}
		}
		if raw, ok := p.sumNodes[r]; ok {
			t, err := template.New(r.Name).Option("missingkey=error").Parse(r.Summary)
			if err != nil {
				line, _ := raw.position(-1)
				*probs = append(*probs, Problem{File: raw.file, Line: line, Rule: r.Name, Key: "summary", Message: strings.TrimPrefix(err.Error(), "template: ")})
			} else if err := t.Execute(io.Discard, SummaryData{}); err != nil {
				line, _ := raw.position(-1)
				*probs = append(*probs, Problem{File: raw.file, Line: line, Rule: r.Name, Key: "summary", Message: strings.TrimPrefix(err.Error(), "template: ")})
			} else {
				r.summary = t
			}
		}
		if r.Escalation != "" {
			r.policy = s.Policy(r.Escalation)
			if r.policy == nil {
				raw := p.escNodes[r]
				*probs = append(*probs, Problem{File: raw.file, Line: raw.node.Line, Rule: r.Name, Key: "escalation", Message: fmt.Sprintf("no escalation policy named %q", r.Escalation)})
			}
		} else {
			for _, pol := range s.Policies {
				if containsSeverity(pol.Severities, r.Classification.Severity) {
					r.policy = pol
					break
				}
			}
		}
		if r.Scope.valid() {
			s.byScope[r.Scope] = append(s.byScope[r.Scope], r)
		}
	}
	for _, in := range s.Inhibits {
		n := p.inhNodes[in]
		for _, name := range append(append([]string(nil), in.SourceRules...), in.TargetRules...) {
			if s.Rule(name) == nil {
				*probs = append(*probs, Problem{File: in.File, Line: n.Line, Rule: "inhibit " + in.Name, Message: fmt.Sprintf("no rule named %q", name)})
			}
		}
	}
	// Which probes each scope needs, so an evaluation computes only those.
	s.probes = map[Scope][]probe{}
	s.impact = map[Scope]bool{}
	for _, r := range s.Rules {
		s.probes[r.Scope] = mergeProbes(s.probes[r.Scope], r.probes)
		s.impact[r.Scope] = s.impact[r.Scope] || r.impact
	}
	for _, hs := range s.HostStates {
		s.probes["host_states"] = mergeProbes(s.probes["host_states"], hs.probes)
	}
}

func mergeProbes(dst, src []probe) []probe {
	for _, p := range src {
		found := false
		for _, q := range dst {
			if q.kind == p.kind && q.arg == p.arg && q.n == p.n {
				found = true
				break
			}
		}
		if !found {
			dst = append(dst, p)
		}
	}
	return dst
}

func containsSeverity(list []model.Severity, s model.Severity) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validName accepts slugs: lowercase letters, digits, dashes and dots.
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
