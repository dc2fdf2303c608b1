package knowledge_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/knowledge"
	"github.com/vmtriage/vmtriage/rules"
)

// The starter set must cover the default rules: every rule's runbook slug
// exists, and an incident of every rule gets that runbook among its links.
// (The test imports rules; the package itself does not.)
func TestStarterCoversDefaultRules(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	kb, err := knowledge.New(knowledge.Options{ServerURL: "https://vmtriage.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, r := range set.Rules {
		t.Run(r.Name, func(t *testing.T) {
			if r.Runbook == "" {
				t.Fatalf("default rule %s names no runbook", r.Name)
			}
			if _, ok := kb.Runbook(r.Runbook); !ok {
				t.Fatalf("rule %s names runbook %q, which the starter set lacks", r.Name, r.Runbook)
			}
			inc := model.Incident{Rule: r.Name, Cause: r.Classification.Cause}
			links := kb.Links(&inc)
			want := "https://vmtriage.example.com/kb/" + r.Runbook
			if !slices.Contains(links, want) {
				t.Fatalf("incident of rule %s got links %v, want %s among them", r.Name, links, want)
			}
			for _, rb := range kb.Match(inc) {
				used[rb.Slug] = true
			}
		})
	}
	for _, rb := range kb.Runbooks() {
		if !used[rb.Slug] {
			t.Errorf("starter runbook %s matches no default rule", rb.Slug)
		}
	}
}

// A starter runbook is written for an operator at 3 a.m.: it says what the
// incident means, how to confirm it, what to do and when to escalate, and
// gives concrete commands to confirm it.
func TestStarterRunbooksHaveTheFourSections(t *testing.T) {
	kb, err := knowledge.New(knowledge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(kb.Runbooks()); n < 12 {
		t.Fatalf("starter set has %d runbooks", n)
	}
	code := regexp.MustCompile("(?s)```sh\n.+?```|`[a-z][^`]* [^`]+`")
	for _, rb := range kb.Runbooks() {
		for _, h := range []string{"## What it means", "## How to confirm", "## What to do", "## When to escalate"} {
			if !strings.Contains(rb.Body, "\n"+h+"\n") && !strings.HasPrefix(rb.Body, h+"\n") {
				t.Errorf("%s lacks the section %q", rb.Path, h)
			}
		}
		confirm := rb.Body[strings.Index(rb.Body, "## How to confirm"):]
		confirm = confirm[:strings.Index(confirm, "## What to do")]
		if !code.MatchString(confirm) {
			t.Errorf("%s: \"How to confirm\" gives no command", rb.Path)
		}
		if len(rb.Tags) == 0 || len(rb.AppliesTo.Rules) == 0 || len(rb.AppliesTo.Causes) == 0 {
			t.Errorf("%s: tags, applies_to.rules and applies_to.causes should all be set", rb.Path)
		}
	}
}
