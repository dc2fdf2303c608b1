package rules

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestCheckOutputGolden pins what `vmtriage rules check` prints for a file
// full of mistakes: every problem, in file order, each naming the file,
// line, rule and key, and the expression's column where there is one.
func TestCheckOutputGolden(t *testing.T) {
	const file = "testdata/check-bad.yaml"
	_, err := LoadFiles(file)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("LoadFiles = %v, want a *LoadError", err)
	}
	got := err.Error() + "\n"
	golden := "testdata/check-bad.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("rules check output changed (run with -update if intended):\n--- got\n%s--- want\n%s", got, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if !strings.HasPrefix(line, file+":") {
			t.Errorf("problem without file:line: %q", line)
		}
	}
	for _, p := range le.Problems {
		if p.Line == 0 {
			t.Errorf("problem without a line: %+v", p)
		}
		if p.Key == "expr" || p.Key == "when" {
			if p.Column == 0 && !strings.Contains(p.Message, "expected bool") {
				t.Errorf("expression problem without a column: %+v", p)
			}
		}
	}
}
