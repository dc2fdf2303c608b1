package app_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/internal/app"
	"github.com/vmtriage/vmtriage/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// run runs the command line with buffers and returns the exit code and
// what it wrote.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	code = app.Main(t.Context(), args, app.IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// clearConfigEnv unsets every VMTRIAGE_ variable of the process for the
// test, so the developer's own settings cannot change the outcome.
func clearConfigEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.Prefix) && !strings.HasPrefix(name, config.Prefix+"TEST_") {
			t.Setenv(name, "") // restores the value after the test
			os.Unsetenv(name)
		}
	}
}

func TestMainCommands(t *testing.T) {
	app.Version = "v9.9.9-test"
	t.Cleanup(func() { app.Version = "" })
	commands := []string{"serve", "demo", "rules check", "replay", "version", "help"}

	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		// wantOut and wantErr must each appear in stdout and stderr.
		wantOut []string
		wantErr []string
		// quietOut says nothing may be written to stdout.
		quietOut bool
	}{
		{name: "help", args: []string{"help"}, wantCode: 0, wantOut: commands},
		{name: "dash h", args: []string{"-h"}, wantCode: 0, wantOut: commands},
		{name: "no command", args: nil, wantCode: 2, wantErr: append([]string{"Usage:"}, commands...), quietOut: true},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2,
			wantErr: []string{`unknown command "frobnicate"`, "Usage:", "vmtriage serve"}, quietOut: true},
		{name: "version", args: []string{"version"}, wantCode: 0, wantOut: []string{"vmtriage v9.9.9-test\n"}},
		{name: "demo help", args: []string{"demo", "-h"}, wantCode: 0, wantErr: []string{"-duration", "-step", "-vms", "-seed"}},
		{name: "demo bad flag", args: []string{"demo", "--vms", "many"}, wantCode: 1, wantErr: []string{"-vms", "many"}},
		{name: "replay help", args: []string{"replay", "-h"}, wantCode: 0, wantErr: []string{"Usage: vmtriage replay", "-settle"}},
		{name: "replay without file", args: []string{"replay"}, wantCode: 2, wantErr: []string{"Usage: vmtriage replay"}},
		{name: "replay missing file", args: []string{"replay", "testdata/no-such-file.jsonl"}, wantCode: 1,
			wantErr: []string{"no-such-file.jsonl", "no such file"}, quietOut: true},
		{name: "rules without verb", args: []string{"rules"}, wantCode: 2, wantErr: []string{"Usage: vmtriage rules check"}},
		{name: "rules check without files", args: []string{"rules", "check"}, wantCode: 2, wantErr: []string{"name at least one rule file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if tc.quietOut && out != "" {
				t.Errorf("stdout should be empty, got:\n%s", out)
			}
		})
	}
}

// configVars lists every variable Config reads, from its env tags, with
// the default when it has one ("" otherwise).
func configVars(t reflect.Type, prefix string) map[string]string {
	vars := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("env")
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		name = strings.TrimSpace(name)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && name == "" {
			sub := ""
			for _, o := range strings.Split(opts, ",") {
				if p, ok := strings.CutPrefix(strings.TrimSpace(o), "prefix="); ok {
					sub = p
				}
			}
			for k, v := range configVars(ft, prefix+sub) {
				vars[k] = v
			}
			continue
		}
		def := ""
		if _, d, ok := strings.Cut(opts, "default="); ok {
			def = d
		}
		vars[config.Prefix+prefix+name] = def
	}
	return vars
}

func TestServeHelpListsEveryVariable(t *testing.T) {
	code, out, errOut := run(t, "serve", "-h")
	if code != 0 {
		t.Fatalf("serve -h exit code %d, want 0; stderr:\n%s", code, errOut)
	}
	vars := configVars(reflect.TypeOf(config.Config{}), "")
	if len(vars) < 10 {
		t.Fatalf("found only %d variables in config.Config; the reflection walk is broken: %v", len(vars), vars)
	}
	lines := strings.Split(out, "\n")
	for name, def := range vars {
		t.Run(name, func(t *testing.T) {
			var line string
			for _, l := range lines {
				if f := strings.Fields(l); len(f) > 0 && f[0] == name {
					line = l
					break
				}
			}
			if line == "" {
				t.Fatalf("serve -h does not list %s:\n%s", name, out)
			}
			if def != "" && !strings.Contains(line, def) {
				t.Errorf("serve -h line for %s lacks its default %q: %s", name, def, line)
			}
			if len(strings.Fields(line)) < 3 {
				t.Errorf("serve -h line for %s has no meaning: %q", name, line)
			}
		})
	}
}

func TestServeRefusesBadVariable(t *testing.T) {
	for _, tc := range []struct {
		name, variable, value string
	}{
		{"not a number", "VMTRIAGE_INGEST_WORKERS", "abc"},
		{"out of range", "VMTRIAGE_INGEST_WORKERS", "0"},
		{"not a duration", "VMTRIAGE_RECLAIM_IDLE", "30"},
		{"not host:port", "VMTRIAGE_HTTP_ADDR", "localhost"},
		{"not a redis url", "VMTRIAGE_REDIS_URL", "ftp://cache:6379"},
		{"unknown log level", "VMTRIAGE_LOG_LEVEL", "loud"},
		{"too small a body", "VMTRIAGE_MAX_BODY_BYTES", "10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearConfigEnv(t)
			t.Setenv(tc.variable, tc.value)
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // should it start after all, it stops at once
			var out, errOut syncBuffer
			code := app.Main(ctx, []string{"serve"}, app.IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
			if code != 1 {
				t.Errorf("exit code %d, want 1; stderr:\n%s", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.variable) {
				t.Errorf("stderr does not name %s:\n%s", tc.variable, errOut.String())
			}
		})
	}
}

func TestRulesCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []string
		wantCode int
		wantOut  []string
		// wantErr are regular expressions, each matching a line of stderr.
		wantErr []string
	}{
		{
			name:     "good file",
			files:    []string{"testdata/rules-good.yaml"},
			wantCode: 0,
			wantOut:  []string{"testdata/rules-good.yaml: ok: 1 rules, 1 host states, 0 inhibit rules, 1 escalation policies, 2 settings\n"},
		},
		{
			name:     "bad file names file, line, rule and key",
			files:    []string{"testdata/rules-bad.yaml"},
			wantCode: 1,
			wantErr: []string{
				`^testdata/rules-bad\.yaml:6: rule vm-typo: expr: .*crashd.*\(col \d+\)$`,
				`^testdata/rules-bad\.yaml:17: rule vm-unknown-key: colour: unknown key`,
			},
		},
		{
			name:     "one bad file fails the lot",
			files:    []string{"testdata/rules-good.yaml", "testdata/rules-bad.yaml"},
			wantCode: 1,
			wantErr:  []string{`^testdata/rules-bad\.yaml:6: rule vm-typo: `},
		},
		{
			name:     "missing file",
			files:    []string{"testdata/no-such-rules.yaml"},
			wantCode: 1,
			wantErr:  []string{`no-such-rules\.yaml`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"rules", "check"}, tc.files...)...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantErr {
				if !regexp.MustCompile("(?m)" + w).MatchString(errOut) {
					t.Errorf("no stderr line matches %s:\n%s", w, errOut)
				}
			}
			if tc.wantCode != 0 && out != "" {
				t.Errorf("a failed check printed summaries on stdout:\n%s", out)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	t.Run("good file prints the incidents", func(t *testing.T) {
		code, out, errOut := run(t, "replay", "--settle", "6m", "testdata/replay-good.jsonl")
		if code != 0 {
			t.Fatalf("exit code %d, want 0; stderr:\n%s", code, errOut)
		}
		golden(t, "replay-good.golden", out)
	})
	t.Run("json output", func(t *testing.T) {
		code, out, errOut := run(t, "replay", "--settle", "6m", "--json", "testdata/replay-good.jsonl")
		if code != 0 {
			t.Fatalf("exit code %d, want 0; stderr:\n%s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("want 2 JSON lines, got %d:\n%s", len(lines), out)
		}
		for i, want := range []string{`"rule":"vm-guest-crash"`, `"rule":"vm-crash-on-failing-host"`} {
			if !strings.Contains(lines[i], want) {
				t.Errorf("line %d lacks %s: %s", i+1, want, lines[i])
			}
		}
		if !strings.Contains(lines[1], `"vms":["vm-0043","vm-0044"]`) {
			t.Errorf("the host incident does not list both crashed VMs: %s", lines[1])
		}
	})
	t.Run("bad file names the lines", func(t *testing.T) {
		code, out, errOut := run(t, "replay", "testdata/replay-bad.jsonl")
		if code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if out != "" {
			t.Errorf("a refused replay printed on stdout:\n%s", out)
		}
		golden(t, "replay-bad.golden", errOut)
	})
}

func TestDemoRunsForItsDuration(t *testing.T) {
	clearConfigEnv(t)
	var out bytes.Buffer // a plain buffer: Demo must serialise its writers
	var errOut syncBuffer
	code := app.Main(t.Context(), []string{"demo", "--duration", "3s", "--step", "25ms", "--vms", "40", "--hosts", "4", "--sites", "1"},
		app.IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	if code != 0 {
		t.Fatalf("demo exit code %d, want 0; stderr:\n%s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"vmtriage demo: 40 VMs on 4 hosts in 1 sites",
		"HTTP API on http://127.0.0.1:",
		"▸ injected: ",
		"[CRITICAL]", // the host hardware failure the schedule injects first
		"/triage ack inc-",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
}
