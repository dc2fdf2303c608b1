package rules

import "testing"

func TestDefaultLoads(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	for _, f := range s.Summary() {
		t.Log(f)
	}
}
