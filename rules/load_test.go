package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ruleWith is a valid rule file with one rule whose body lines can be
// replaced.
func ruleWith(lines ...string) string {
	return "rules:\n  - name: r1\n" + "    " + strings.Join(lines, "\n    ") + "\n"
}

const okRule = `    scope: vm
    expr: vm.crashed
    classification: {cause: c, trigger: vm, severity: low}
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		// want are substrings of the error, each expected in some problem;
		// wantLine is the line of the first problem.
		want     []string
		wantLine int
		wantCol  int
	}{
		{
			name:     "unknown top-level key",
			src:      "rulez: []\n",
			want:     []string{"x.yaml:1: rulez: unknown key (allowed: settings, host_states, rules, inhibit, escalation)"},
			wantLine: 1,
		},
		{
			name:     "unknown rule key names the rule",
			src:      "rules:\n  - name: r1\n" + okRule + "    severity: high\n",
			want:     []string{"x.yaml:6: rule r1: severity: unknown key"},
			wantLine: 6,
		},
		{
			name:     "unknown field in the expression, with its column",
			src:      ruleWith("scope: vm", `expr: vm.crashed && vm.stat == "x"`, "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{"x.yaml:4: rule r1: expr:", "has no field stat", "(col 18)"},
			wantLine: 4,
			wantCol:  18,
		},
		{
			name:     "not a boolean",
			src:      ruleWith("scope: vm", "expr: vm.state", "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{"rule r1: expr: expected bool, but got string"},
			wantLine: 4,
		},
		{
			name:     "syntax error",
			src:      ruleWith("scope: vm", "expr: vm.crashed &&", "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{"rule r1: expr: unexpected token EOF"},
			wantLine: 4,
		},
		{
			name: "error on the second line of a block expression",
			src: ruleWith("scope: vm", "expr: |", "  vm.crashed &&", "    vm.nope", "classification: {cause: c, trigger: vm, severity: low}") +
				"",
			want:     []string{"x.yaml:6: rule r1: expr:", "has no field nope", "(col 6)"},
			wantLine: 6,
			wantCol:  6,
		},
		{
			name:     "variable outside the rule's scope",
			src:      ruleWith("scope: host", "expr: vm.crashed", "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{"rule r1: expr: vm is not available in this scope (col 1)"},
			wantLine: 4,
		},
		{
			name:     "unknown host state in a helper",
			src:      ruleWith("scope: host", `expr: host_held("broken", 3)`, "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{`host_held: unknown host state "broken"`},
			wantLine: 4,
		},
		{
			name:     "unknown reason in a helper",
			src:      ruleWith("scope: host", `expr: reason_held("nope", 3)`, "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{`reason_held: no host_states entry has reason "nope"`},
			wantLine: 4,
		},
		{
			name:     "helper count not a literal",
			src:      ruleWith("scope: host", `expr: fault_held(host.vm_count)`, "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{"fault_held: the number of periods must be an integer literal from 1 to 16"},
			wantLine: 4,
		},
		{
			name:     "helper count beyond history",
			src:      ruleWith("scope: vm", `expr: crashes_on_host(17) > 2`, "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{"crashes_on_host: the number of periods must be an integer literal from 1 to 16"},
			wantLine: 4,
		},
		{
			name:     "helper in a scope without a host",
			src:      ruleWith("scope: source", `expr: fault_held(2)`, "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{"fault_held needs a host, which this scope does not have"},
			wantLine: 4,
		},
		{
			name: "bad enumerations are all reported",
			src: ruleWith("scope: vms", "expr: vm.crashed", "classification: {cause: c, trigger: guest, severity: urgent}",
				"action: {type: reboot, approval: yes}"),
			want: []string{
				`rule r1: scope: must be vm, host, service or source, got "vms"`,
				`classification.trigger: must be platform, user or vm, got "guest"`,
				`classification.severity: must be critical, high, medium or low, got "urgent"`,
				`action.type: must be none, notify, restart-vm, restart-service or migrate-host, got "reboot"`,
				`action.approval: must be true or false`,
			},
			wantLine: 3,
		},
		{
			name:     "missing required keys",
			src:      "rules:\n  - name: r1\n",
			want:     []string{"rule r1: scope: is required", "rule r1: expr: is required", "rule r1: classification: is required"},
			wantLine: 2,
		},
		{
			name:     "bad duration",
			src:      "rules:\n  - name: r1\n" + okRule + "    for: 5 minutes\n",
			want:     []string{`x.yaml:6: rule r1: for: must be a duration such as 90s or 5m, got "5 minutes"`},
			wantLine: 6,
		},
		{
			name:     "duplicate key",
			src:      "rules:\n  - name: r1\n" + okRule + "    scope: host\n",
			want:     []string{"x.yaml:6: rule r1: scope: duplicate key (first at line 3)"},
			wantLine: 6,
		},
		{
			name:     "duplicate rule name",
			src:      "rules:\n  - name: r1\n" + okRule + "  - name: r1\n" + okRule,
			want:     []string{"x.yaml:6: rule r1: name: duplicate rule name (first at x.yaml:2)"},
			wantLine: 6,
		},
		{
			name:     "group by an unknown label",
			src:      "rules:\n  - name: r1\n" + okRule + "    group_by: [rack]\n",
			want:     []string{`group_by: label "rack" is not known in scope vm`},
			wantLine: 6,
		},
		{
			name:     "summary template error",
			src:      "rules:\n  - name: r1\n" + okRule + "    summary: \"{{.Nope}}\"\n",
			want:     []string{"x.yaml:6: rule r1: summary:", "can't evaluate field Nope"},
			wantLine: 6,
		},
		{
			name:     "summary template syntax",
			src:      "rules:\n  - name: r1\n" + okRule + "    summary: \"{{.VM\"\n",
			want:     []string{"x.yaml:6: rule r1: summary:"},
			wantLine: 6,
		},
		{
			name:     "invalid YAML",
			src:      "rules:\n  - name: r1\n    expr: [unclosed\n",
			want:     []string{"x.yaml:", "invalid YAML"},
			wantLine: 0,
		},
		{
			name:     "inhibit names an unknown rule",
			src:      "rules:\n  - name: r1\n" + okRule + "inhibit:\n  - {name: i, source_rules: [r1], target_rules: [r2], equal: [host]}\n",
			want:     []string{`x.yaml:7: rule inhibit i: no rule named "r2"`},
			wantLine: 7,
		},
		{
			name:     "inhibit without equal labels",
			src:      "rules:\n  - name: r1\n" + okRule + "inhibit:\n  - {name: i, source_rules: [r1], target_rules: [r1]}\n",
			want:     []string{"rule inhibit i: equal: must list at least one label"},
			wantLine: 7,
		},
		{
			name: "escalation with six levels and a bad target",
			src: "escalation:\n  - name: p\n    levels:\n" + strings.Repeat("      - {wait: 1m, targets: [{channel: x}]}\n", 5) +
				"      - {wait: 1m, targets: [{pager: x}]}\n",
			want:     []string{"rule policy p: levels: must have 1 to 5 levels, got 6", "levels[5].targets.pager: unknown key"},
			wantLine: 4,
		},
		{
			name:     "rule names an unknown policy",
			src:      "rules:\n  - name: r1\n" + okRule + "    escalation: nope\n",
			want:     []string{`x.yaml:6: rule r1: escalation: no escalation policy named "nope"`},
			wantLine: 6,
		},
		{
			name:     "host state with a bad state",
			src:      "host_states:\n  - {reason: x, state: sick, when: host.facts.mce > 0}\n",
			want:     []string{`rule host state x: state: must be degraded or failed, got "sick"`},
			wantLine: 2,
		},
		{
			name:     "host state expression error",
			src:      "host_states:\n  - reason: x\n    state: failed\n    when: host.facts.ecc > 0\n",
			want:     []string{"x.yaml:4: rule host state x: when:", "has no field ecc", "(col 12)"},
			wantLine: 4,
			wantCol:  12,
		},
		{
			name:     "bad settings",
			src:      "settings:\n  period: 0s\n  history: 100\n  colour: red\n",
			want:     []string{"settings.colour: unknown key", "settings.period: must be positive", "settings.history: must be from 1 to 64"},
			wantLine: 2,
		},
		{
			name:     "platform recovery outside vm scope",
			src:      ruleWith("scope: host", "expr: host.stale", "classification: {cause: c, trigger: vm, severity: low}", "platform_recovery: true"),
			want:     []string{"platform_recovery: only vm rules can mark platform recovery"},
			wantLine: 6,
		},
		{
			name:     "wall clock is not available",
			src:      ruleWith("scope: vm", "expr: now() > vm.since", "classification: {cause: c, trigger: vm, severity: low}"),
			want:     []string{"rule r1: expr:"},
			wantLine: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.src))
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want a *LoadError", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if tc.wantLine > 0 && le.Problems[0].Line != tc.wantLine {
				t.Errorf("first problem at line %d, want %d:\n%s", le.Problems[0].Line, tc.wantLine, msg)
			}
			if tc.wantCol > 0 && le.Problems[0].Column != tc.wantCol {
				t.Errorf("first problem at column %d, want %d:\n%s", le.Problems[0].Column, tc.wantCol, msg)
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("a.yaml", "rules:\n  - name: r1\n"+okRule)
	write("b.yml", "escalation:\n  - {name: p, severities: [low], levels: [{wait: 0s, targets: [{channel: x}]}]}\n")
	write("notes.txt", "not a rule file")

	s, err := LoadFiles(dir)
	if err != nil {
		t.Fatalf("LoadFiles(dir): %v", err)
	}
	if len(s.Rules) != 1 || s.Rule("r1").policy == nil || s.Rule("r1").policy.Name != "p" {
		t.Fatalf("rules %v: want r1 with policy p from the other file", s.Rules)
	}
	sum := s.Summary()
	if len(sum) != 2 || !strings.HasSuffix(sum[0].String(), "a.yaml: ok: 1 rules, 0 host states, 0 inhibit rules, 0 escalation policies, 0 settings") {
		t.Fatalf("summary %v", sum)
	}

	// Every problem of every file is listed, and the set is refused.
	bad1 := write("bad1.yaml", "rules:\n  - name: r1\n"+okRule) // duplicate of a.yaml's r1
	bad2 := write("bad2.yaml", "settings:\n  period: soon\n")
	_, err = LoadFiles(dir+"/a.yaml", bad1, bad2, filepath.Join(dir, "missing.yaml"))
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want *LoadError", err)
	}
	if len(le.Problems) != 1 || !strings.Contains(err.Error(), "missing.yaml: stat:") {
		t.Fatalf("a missing file must be reported before parsing: %v", err)
	}
	_, err = LoadFiles(dir+"/a.yaml", bad1, bad2)
	if !errors.As(err, &le) || len(le.Problems) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	for _, w := range []string{"bad1.yaml:2: rule r1: name: duplicate rule name (first at " + dir + "/a.yaml:2)", "bad2.yaml:2: settings.period: must be a duration"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if _, err := LoadFiles(); err == nil {
		t.Fatal("LoadFiles() with no path succeeded")
	}
	if _, err := LoadFiles(t.TempDir()); err == nil {
		t.Fatal("an empty folder loaded")
	}
}

func TestSettingsOnce(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("settings:\n  period: 30s\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := LoadFiles(dir)
	if err == nil || !strings.Contains(err.Error(), "b.yaml:2: settings.period: already set at "+filepath.Join(dir, "a.yaml")+":2") {
		t.Fatalf("got %v", err)
	}
}

func TestEmptyFileIsAllowed(t *testing.T) {
	s, err := Parse("empty.yaml", []byte("# nothing yet\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Settings != DefaultSettings || len(s.Rules) != 0 {
		t.Fatalf("empty file gave %+v", s)
	}
}
