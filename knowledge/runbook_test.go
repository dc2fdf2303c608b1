package knowledge

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

const goodRunbook = `---
title: Host hardware fault
tags: [ecc, mce]
applies_to:
  rules: [vm-crash-on-failing-host]
  causes: [host-hardware-fault]
  events: [VirtualMachineHostCrashed]
  components: [libvirtd]
---
## What it means

The host's memory is failing.
`

func TestParse(t *testing.T) {
	rb, err := Parse("hw/host-hardware-fault.md", []byte(goodRunbook))
	if err != nil {
		t.Fatal(err)
	}
	want := Runbook{
		Slug: "host-hardware-fault", Path: "hw/host-hardware-fault.md", Title: "Host hardware fault",
		Tags: []string{"ecc", "mce"},
		AppliesTo: AppliesTo{
			Rules: []string{"vm-crash-on-failing-host"}, Causes: []string{"host-hardware-fault"},
			Events: []string{"VirtualMachineHostCrashed"}, Components: []string{"libvirtd"},
		},
		Body:     "## What it means\n\nThe host's memory is failing.\n",
		BodyLine: 10,
	}
	if !reflect.DeepEqual(rb, want) {
		t.Fatalf("Parse:\n got %#v\nwant %#v", rb, want)
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(Runbook) bool
	}{
		{"CRLF line ends and a BOM", "\uFEFF---\r\ntitle: T\r\n---\r\nbody\r\n",
			func(rb Runbook) bool { return rb.Title == "T" && rb.Body == "body\n" }},
		{"title only", "---\ntitle: Only a title\n---\ntext", func(rb Runbook) bool { return rb.Title == "Only a title" && rb.Tags == nil }},
		{"closing line with trailing spaces", "---\ntitle: T\n---  \ntext", func(rb Runbook) bool { return rb.Body == "text" }},
		{"block lists", "---\ntitle: T\ntags:\n  - a\n  - b\napplies_to:\n  events:\n    - E1\n---\ntext",
			func(rb Runbook) bool { return len(rb.Tags) == 2 && rb.AppliesTo.Events[0] == "E1" }},
		{"a --- inside the body is text", "---\ntitle: T\n---\nabove\n---\nbelow\n",
			func(rb Runbook) bool { return rb.Body == "above\n---\nbelow\n" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb, err := Parse("x.md", []byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.want(rb) {
				t.Fatalf("Parse gave %#v", rb)
			}
		})
	}
}

// Every problem names the file and the line in the file (the YAML starts on
// line 2, after the opening "---").
func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		file string
		in   string
		want []string
	}{
		{"no front matter", "a.md", "# Title\ntext\n", []string{`a.md:1: missing front matter: the file must start with a line "---"`}},
		{"not closed", "a.md", "---\ntitle: T\ntext\n", []string{`a.md:1: front matter is not closed`}},
		{"unknown key", "a.md", "---\ntitle: T\nowner: me\n---\ntext", []string{`a.md:3: owner: unknown key (allowed: title, tags, applies_to)`}},
		{"unknown applies_to key", "a.md", "---\ntitle: T\napplies_to:\n  rules: [r]\n  hosts: [h]\n---\ntext",
			[]string{`a.md:5: applies_to.hosts: unknown key (allowed: rules, causes, events, components)`}},
		{"duplicate key", "a.md", "---\ntitle: T\ntags: [a]\ntags: [b]\n---\ntext", []string{`a.md:4: tags: duplicate key (first at line 3)`}},
		{"missing title", "a.md", "---\ntags: [a]\n---\ntext", []string{`a.md:2: title: is required`}},
		{"empty title", "a.md", "---\ntitle: \"  \"\n---\ntext", []string{`a.md:2: title: must not be empty`}},
		{"null title", "a.md", "---\ntitle:\n---\ntext", []string{`a.md:2: title: must be a string, got nothing`}},
		{"title is a list", "a.md", "---\ntitle: [a]\n---\ntext", []string{`a.md:2: title: must be a string, got a list`}},
		{"tags not a list", "a.md", "---\ntitle: T\ntags: ecc\n---\ntext", []string{`a.md:3: tags: must be a list of strings, got "ecc"`}},
		{"nested tag", "a.md", "---\ntitle: T\ntags:\n  - ok\n  - {a: b}\n---\ntext", []string{`a.md:5: tags: must be a string, got a mapping`}},
		{"empty tag", "a.md", "---\ntitle: T\ntags: [a, \"\"]\n---\ntext", []string{`a.md:3: tags: entries must not be empty`}},
		{"applies_to a list", "a.md", "---\ntitle: T\napplies_to: [r]\n---\ntext", []string{`a.md:3: applies_to: must be a mapping of rules, causes, events, components, got a list`}},
		{"rules a string", "a.md", "---\ntitle: T\napplies_to:\n  rules: vm-guest-crash\n---\ntext",
			[]string{`a.md:4: applies_to.rules: must be a list of strings, got "vm-guest-crash"`}},
		{"front matter a list", "a.md", "---\n- a\n---\ntext", []string{`a.md:2: must be a mapping of title, tags, applies_to, got a list`}},
		{"empty front matter", "a.md", "---\n---\ntext", []string{`a.md:1: front matter is empty: title is required`}},
		{"invalid YAML", "a.md", "---\ntitle: T\ntags: [a\n---\ntext", []string{"a.md:3: invalid YAML: did not find expected ',' or ']'"}},
		{"unclosed flow list further down", "a.md", "---\ntitle: T\ntags: [a]\napplies_to:\n  rules: [a, b\n  causes: [c]\n---\ntext",
			[]string{"a.md:5: invalid YAML: did not find expected ',' or ']'"}},
		{"bad indentation", "a.md", "---\ntitle: T\n\nfoo: bar\n  baz: 1\n---\ntext", []string{"a.md:5: invalid YAML: mapping values are not allowed in this context"}},
		{"tab indentation", "a.md", "---\ntitle: T\napplies_to:\n\trules: [r]\n---\ntext", []string{`a.md:4: invalid YAML: found character that cannot start any token`}},
		{"alias", "a.md", "---\ntitle: &t T\ntags: [*t]\n---\ntext", []string{`a.md:3: tags: must be a string, got an alias (aliases are not allowed)`}},
		{"no body", "a.md", "---\ntitle: T\n---\n\n  \n", []string{`a.md:4: the runbook has no text after the front matter`}},
		{"bad slug", "Host_Fault.md", "---\ntitle: T\n---\ntext", []string{`Host_Fault.md: file name "Host_Fault.md" does not make a slug`}},
		{"not UTF-8", "a.md", "---\ntitle: \xff\n---\ntext", []string{`a.md: file is not UTF-8 text`}},
		{"multi-line title", "a.md", "---\ntitle: \"a\\nb\"\n---\ntext", []string{`a.md:2: title: must be one line`}},
		{"too long title", "a.md", "---\ntitle: " + strings.Repeat("x", MaxTitleLen+1) + "\n---\ntext", []string{`a.md:2: title: is 201 characters long; keep it under 200`}},
		{"too big", "a.md", "---\ntitle: T\n---\n" + strings.Repeat("x", MaxFileSize), []string{`a.md: file is 1048593 bytes; the limit is 1048576`}},
		{"several problems, in order", "a.md", "---\ntitle: 7\ncolour: red\ntags: x\n---\ntext",
			[]string{`a.md:3: colour: unknown key`, `a.md:4: tags: must be a list of strings`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.in))
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Parse error = %v, want a *LoadError", err)
			}
			if len(le.Problems) != len(tt.want) {
				t.Fatalf("problems:\n%v\nwant %d: %q", err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if got := le.Problems[i].String(); !strings.HasPrefix(got, w) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got, w)
				}
			}
		})
	}
}

func TestLoadFS(t *testing.T) {
	page := func(title string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("---\ntitle: " + title + "\n---\ntext\n")}
	}
	t.Run("walks folders, skips READMEs and hidden files", func(t *testing.T) {
		fsys := fstest.MapFS{
			"b.md":               page("B"),
			"hw/a.md":            page("A"),
			"README.md":          {Data: []byte("# Runbooks\nno front matter here")},
			"hw/readme.md":       {Data: []byte("no front matter")},
			".git/x.md":          {Data: []byte("not a runbook")},
			"..2026_11_01/c.md":  {Data: []byte("a ConfigMap's timestamped copy")},
			"_drafts/draft.md":   {Data: []byte("unfinished")},
			"notes.txt":          {Data: []byte("not markdown")},
			"hw/images/diag.png": {Data: []byte{0x89, 'P', 'N', 'G'}},
		}
		rbs, err := LoadFS(fsys)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, rb := range rbs {
			got = append(got, rb.Path+"="+rb.Slug)
		}
		if want := "b.md=b hw/a.md=a"; strings.Join(got, " ") != want {
			t.Fatalf("loaded %q, want %q", strings.Join(got, " "), want)
		}
	})
	t.Run("a duplicate slug and a bad file refuse the whole folder", func(t *testing.T) {
		fsys := fstest.MapFS{
			"a.md":    page("A"),
			"hw/a.md": page("A again"),
			"c.md":    {Data: []byte("---\ntitle: C\nwhat: x\n---\ntext")},
		}
		rbs, err := LoadFS(fsys)
		if rbs != nil {
			t.Fatalf("LoadFS returned runbooks with an error: %v", rbs)
		}
		want := "2 runbook problems:\n" +
			"c.md:3: what: unknown key (allowed: title, tags, applies_to)\n" +
			`hw/a.md: slug "a" is also the slug of a.md; runbook file names must be unique`
		if err == nil || err.Error() != want {
			t.Fatalf("LoadFS error:\n%v\nwant:\n%s", err, want)
		}
	})
}

func TestValidSlug(t *testing.T) {
	for s, want := range map[string]bool{
		"guest-crash": true, "a": true, "x1-2": true,
		"": false, "-a": false, "a-": false, "a--b": false, "A": false, "a_b": false, "a.b": false, "ä": false,
		strings.Repeat("a", 101): false,
	} {
		if got := validSlug(s); got != want {
			t.Errorf("validSlug(%q) = %v, want %v", s, got, want)
		}
	}
}
