package rules

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// must either return a usable set or a *LoadError naming the file.
func FuzzLoad(f *testing.F) {
	entries, err := fs.ReadDir(defaultFS, "default")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := defaultFS.ReadFile("default/" + e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(lifecycleRules))
	for _, s := range []string{
		"",
		"rules: 3",
		"rules: [1, 2]",
		"rules:\n  - name: a\n    scope: vm\n    expr: 'host_held(\"failed\", 1) && crashes_on_host(2) > 1'\n    classification: {cause: c, trigger: vm, severity: low}\n",
		"host_states:\n  - {reason: r, state: failed, when: 'reason_held(\"r\", 2)'}\n",
		"escalation:\n  - name: p\n    levels: [{wait: 1m, targets: [{channel: a, user: b}]}]\n",
		"settings: {period: 1ns, history: 1}\nrules:\n  - {name: a, scope: source, expr: source.stale, classification: {cause: c, trigger: vm, severity: low}}\n",
		"a: &x [*x]",
		"rules:\n  - <<: {name: a}\n",
		"--- \n---\n",
		"rules:\n  - name: a\n    scope: vm\n    expr: \"fault_held(1, 2)\"\n",
		"rules:\n  - name: a\n    scope: vm\n    expr: 'let x = vm; x.crashed'\n    classification: {cause: c, trigger: vm, severity: low}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %v is not a *LoadError with problems", err)
			}
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, r := range s.Rules {
			if r.prog == nil {
				t.Fatalf("rule %q loaded without a program", r.Name)
			}
		}
		_ = s.Summary()
	})
}
