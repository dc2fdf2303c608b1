package rules

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// TestReloadRefusesBadFiles: a bad new rule file is refused with a precise
// error, counted in vmtriage_rule_reloads_total{result="failure"}, and the
// rules in force stay, incidents untouched.
func TestReloadRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name string
		body string // empty: the file does not exist
		want string
	}{
		{name: "missing file", want: "stat"},
		{name: "YAML syntax", body: "rules:\n  - name: r1\n    expr: [unclosed\n", want: "invalid YAML"},
		{name: "unknown key", body: "rules:\n  - name: r1\n" + okRule + "    colour: red\n", want: "bad.yaml:6: rule r1: colour: unknown key"},
		{name: "bad expression", body: ruleWith("scope: vm", "expr: vm.crashd", "classification: {cause: c, trigger: vm, severity: low}"),
			want: "bad.yaml:4: rule r1: expr:"},
		{name: "wrong type", body: ruleWith("scope: vm", `expr: vm.state == 3`, "classification: {cause: c, trigger: vm, severity: low}"),
			want: "bad.yaml:4: rule r1: expr:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			clk := clock.NewFake(t0)
			st := newFakeStore(clk.Now)
			old := lifecycleSet(t)
			e, err := NewEngine(context.Background(), Options{Rules: old, Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler), Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			h := &harness{t: t, ctx: context.Background(), clk: clk, store: st, e: e}
			h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
			before := h.one("vm-down")

			path := filepath.Join(t.TempDir(), "bad.yaml")
			if tc.body != "" {
				if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err = e.ReloadFiles(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReloadFiles = %v, want an error containing %q", err, tc.want)
			}
			if e.Rules() != old {
				t.Fatal("a refused reload replaced the rules")
			}
			if got := metricValue(t, reg, "vmtriage_rule_reloads_total", "result", "failure"); got != 1 {
				t.Errorf("reload failures %v, want 1", got)
			}
			if got := metricValue(t, reg, "vmtriage_rule_reloads_total", "result", "success"); got != 0 {
				t.Errorf("reload successes %v, want 0", got)
			}
			h.advance(time.Hour)
			if got := h.one("vm-down"); got.ID != before.ID || got.Status != model.StatusFiring {
				t.Fatalf("after a refused reload: %+v, want %s still firing", got, before.ID)
			}
		})
	}
}

// TestWatchFilesKeepsRulesOnBadEdit: the file watcher applies a good edit,
// refuses (and counts) a bad one while the rules in force stay, and
// applies the next good one.
func TestWatchFilesKeepsRulesOnBadEdit(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	// Writes are atomic (a rename, as a ConfigMap update or a deploy
	// tool does); torn writes are TestWatcher's business.
	write := func(body string) {
		t.Helper()
		tmp := filepath.Join(t.TempDir(), "r.yaml")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("rules:\n  - name: r1\n" + okRule)
	set, err := LoadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	clk := clock.NewFake(t0)
	e, err := NewEngine(context.Background(), Options{Rules: set, Store: newFakeStore(clk.Now), Clock: clk, Logger: slog.New(slog.DiscardHandler), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.WatchFiles(ctx, []string{dir}, time.Millisecond)
		close(done)
	}()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; i < 5000 && !cond(); i++ {
			time.Sleep(time.Millisecond)
		}
		if !cond() {
			t.Fatalf("the watcher never got there: %s", what)
		}
	}
	failures := func() float64 { return metricValue(t, reg, "vmtriage_rule_reloads_total", "result", "failure") }

	write("rules:\n  - name: r2\n" + okRule)
	waitFor("r2 loaded", func() bool { return e.Rules().Rule("r2") != nil })
	good := e.Rules()

	write("rules:\n  - name: r3\n    scope: vm\n    expr: vm.nope\n")
	waitFor("the bad edit counted", func() bool { return failures() == 1 })
	if e.Rules() != good {
		t.Fatal("a bad edit replaced the rules")
	}

	write("rules:\n  - name: r4\n" + okRule)
	waitFor("r4 loaded", func() bool { return e.Rules().Rule("r4") != nil })
	if got := failures(); got != 1 {
		t.Errorf("reload failures %v, want 1", got)
	}
}
