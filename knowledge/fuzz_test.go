package knowledge

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary files to the front-matter parser: it must never
// panic, a runbook it accepts must satisfy what the rest of the package
// relies on, and every refusal must name the file and a line of it.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodRunbook))
	f.Add([]byte("---\ntitle: T\n---\ntext"))
	f.Add([]byte("---\ntitle: &a T\ntags: [*a, *a]\n---\nx"))
	f.Add([]byte("---\napplies_to: {rules: [a], events: [b, {c: d}]}\ntitle: t\n---\n# h\n"))
	f.Add([]byte("---\r\ntitle: T\r\ntags: [a\r\n---\r\nx"))
	f.Add([]byte("\uFEFF---\ntitle: \"\\u0000\"\n---\n<script>alert(1)</script>"))
	f.Add([]byte("---\n---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, err := Parse("fuzz.md", data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %v is not a *LoadError with problems", err)
			}
			lines := strings.Count(string(data), "\n") + 1
			for _, p := range le.Problems {
				if p.File != "fuzz.md" || p.Line < 0 || p.Line > lines+1 || p.Message == "" {
					t.Fatalf("problem %+v does not name the file and a line (the file has %d)", p, lines)
				}
			}
			return
		}
		switch {
		case rb.Slug != "fuzz":
			t.Fatalf("slug %q", rb.Slug)
		case strings.TrimSpace(rb.Title) == "" || strings.ContainsAny(rb.Title, "\r\n") || utf8.RuneCountInString(rb.Title) > MaxTitleLen:
			t.Fatalf("accepted title %q", rb.Title)
		case strings.TrimSpace(rb.Body) == "":
			t.Fatal("accepted an empty body")
		}
		for _, list := range [][]string{rb.Tags, rb.AppliesTo.Rules, rb.AppliesTo.Causes, rb.AppliesTo.Events, rb.AppliesTo.Components} {
			for _, s := range list {
				if strings.TrimSpace(s) == "" || strings.ContainsAny(s, "\r\n") {
					t.Fatalf("accepted list entry %q", s)
				}
			}
		}
		// What is accepted must also index and render.
		buildIndex([]Runbook{rb}).search([]Runbook{rb}, rb.Title, 1)
		if _, err := renderMarkdown(rb.Body); err != nil {
			t.Fatalf("render: %v", err)
		}
	})
}
