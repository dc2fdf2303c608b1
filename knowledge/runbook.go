package knowledge

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Runbook is one Markdown runbook and what its front matter says.
type Runbook struct {
	// Slug names the runbook in links and commands: the file name without
	// ".md" ("host-hardware-fault").
	Slug string
	// Path is the file's slash-separated path under the knowledge base
	// folder ("host/host-hardware-fault.md"); links to a Git web UI append
	// it to the base URL.
	Path  string
	Title string
	Tags  []string
	// AppliesTo says which incidents the runbook is for.
	AppliesTo AppliesTo
	// Body is the Markdown after the front matter.
	Body string
	// BodyLine is the file line the body starts on.
	BodyLine int
}

// AppliesTo lists what a runbook is for. An incident matches when any one
// entry equals its rule name, platform event, cause or component.
type AppliesTo struct {
	Rules      []string
	Causes     []string
	Events     []string
	Components []string
}

// Limits of a runbook file, so that a stray binary or a runaway generator in
// the folder is refused rather than indexed.
const (
	MaxFileSize = 1 << 20
	MaxTitleLen = 200
)

// frontKeys and appliesKeys are the only keys the front matter may have.
var (
	frontKeys   = []string{"title", "tags", "applies_to"}
	appliesKeys = []string{"rules", "causes", "events", "components"}
)

// Problem is one thing wrong with a runbook file.
type Problem struct {
	File string
	// Line is the file line (1-based), 0 when the problem concerns the whole
	// file.
	Line int
	// Key is the front matter key concerned ("applies_to.rules"), if any.
	Key     string
	Message string
}

// String renders "file:line: key: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// LoadError lists every problem found while loading runbooks, in file
// order. Nothing of a load that fails is used.
type LoadError struct {
	Problems []Problem
}

// Error lists the problems, one a line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return "runbook refused: " + lines[0]
	}
	return fmt.Sprintf("%d runbook problems:\n%s", len(lines), strings.Join(lines, "\n"))
}

// Parse reads one runbook file. name is its slash-separated path under the
// knowledge base folder; the slug is its base name without ".md". Errors
// are a *LoadError naming name and the line.
func Parse(name string, data []byte) (Runbook, error) {
	var probs []Problem
	rb := parse(name, data, &probs)
	if len(probs) > 0 {
		return Runbook{}, &LoadError{Problems: probs}
	}
	return rb, nil
}

func parse(name string, data []byte, probs *[]Problem) Runbook {
	d := &fmDecoder{file: name, probs: probs}
	rb := Runbook{Path: name, Slug: strings.TrimSuffix(path.Base(name), ".md")}
	if !validSlug(rb.Slug) {
		d.errf(0, "", "file name %q does not make a slug: use lowercase letters, digits and single dashes, ending in .md", path.Base(name))
	}
	if len(data) > MaxFileSize {
		d.errf(0, "", "file is %d bytes; the limit is %d", len(data), MaxFileSize)
		return rb
	}
	if !utf8.Valid(data) {
		d.errf(0, "", "file is not UTF-8 text")
		return rb
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	text := strings.ReplaceAll(string(data), "\r\n", "\n")

	front, body, bodyLine, ok := splitFrontMatter(text)
	if !ok {
		if !strings.HasPrefix(text, "---\n") {
			d.errf(1, "", "missing front matter: the file must start with a line \"---\", then title, tags and applies_to, then \"---\"")
		} else {
			d.errf(1, "", "front matter is not closed: no line \"---\" after the opening one")
		}
		return rb
	}
	rb.BodyLine = bodyLine
	rb.Body = body
	if strings.TrimSpace(body) == "" {
		d.errf(bodyLine, "", "the runbook has no text after the front matter")
	}

	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(front), &doc); err != nil {
		line, msg := yamlError(err)
		if strings.HasPrefix(msg, "did not find expected") {
			// yaml.v3 reports parser errors at the 0-based line of the
			// construct left open (the "[" never closed); scanner errors
			// at their 1-based line.
			line++
		}
		if line > 0 {
			line++ // the opening "---" is line 1
		}
		d.errf(line, "", "invalid YAML: %s", msg)
		return rb
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		d.errf(1, "", "front matter is empty: title is required")
		return rb
	}
	top := doc.Content[0]
	f := d.fields(top, "", frontKeys)
	if n, ok := f["title"]; ok {
		rb.Title = strings.TrimSpace(d.str(n, "title"))
		switch {
		case rb.Title == "" && n.Kind == yaml.ScalarNode && n.Tag != "!!null":
			d.errf(d.line(n), "title", "must not be empty")
		case utf8.RuneCountInString(rb.Title) > MaxTitleLen:
			d.errf(d.line(n), "title", "is %d characters long; keep it under %d", utf8.RuneCountInString(rb.Title), MaxTitleLen)
		case strings.ContainsAny(rb.Title, "\n\r"):
			d.errf(d.line(n), "title", "must be one line")
		}
	} else if top.Kind == yaml.MappingNode {
		d.errf(d.line(top), "title", "is required")
	}
	if n, ok := f["tags"]; ok {
		rb.Tags = d.strList(n, "tags")
	}
	if n, ok := f["applies_to"]; ok {
		a := d.fields(n, "applies_to", appliesKeys)
		rb.AppliesTo = AppliesTo{
			Rules:      d.optList(a, "applies_to", "rules"),
			Causes:     d.optList(a, "applies_to", "causes"),
			Events:     d.optList(a, "applies_to", "events"),
			Components: d.optList(a, "applies_to", "components"),
		}
	}
	return rb
}

// splitFrontMatter splits "---\nYAML\n---\nbody". bodyLine is the file line
// the body starts on.
func splitFrontMatter(text string) (front, body string, bodyLine int, ok bool) {
	if !strings.HasPrefix(text, "---\n") {
		return "", "", 0, false
	}
	rest := text[len("---\n"):]
	line := 2
	for off := 0; off <= len(rest); {
		end := strings.IndexByte(rest[off:], '\n')
		var l string
		next := len(rest) + 1
		if end < 0 {
			l = rest[off:]
		} else {
			l = rest[off : off+end]
			next = off + end + 1
		}
		if strings.TrimRight(l, " \t") == "---" {
			front = rest[:off]
			if next <= len(rest) {
				body = rest[next:]
			}
			return front, body, line + 1, true
		}
		off = next
		line++
	}
	return "", "", 0, false
}

// yamlError takes yaml.v3's "yaml: line 3: message" apart.
func yamlError(err error) (line int, msg string) {
	msg = strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				return n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return 0, msg
}

// fmDecoder walks the front matter's yaml.Node tree so that every problem
// names its line in the file (the YAML starts on line 2).
type fmDecoder struct {
	file  string
	probs *[]Problem
}

func (d *fmDecoder) errf(line int, key, format string, args ...any) {
	*d.probs = append(*d.probs, Problem{File: d.file, Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
}

// line turns a node's YAML line into a file line.
func (d *fmDecoder) line(n *yaml.Node) int {
	if n == nil || n.Line == 0 {
		return 0
	}
	return n.Line + 1
}

// fields checks that n is a mapping with only the allowed keys, each once,
// and returns the value node of each key present.
func (d *fmDecoder) fields(n *yaml.Node, what string, allowed []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		d.errf(d.line(n), what, "must be a mapping of %s, got %s", strings.Join(allowed, ", "), kindName(n))
		return out
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := joinKey(what, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.errf(d.line(k), key, "duplicate key (first at line %d)", d.line(prev))
			continue
		}
		seen[k.Value] = k
		known := false
		for _, a := range allowed {
			known = known || a == k.Value
		}
		if !known {
			d.errf(d.line(k), key, "unknown key (allowed: %s)", strings.Join(allowed, ", "))
			continue
		}
		out[k.Value] = v
	}
	return out
}

func (d *fmDecoder) str(n *yaml.Node, key string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errf(d.line(n), key, "must be a string, got %s", kindName(n))
		return ""
	}
	return n.Value
}

// strList reads a list of non-empty one-line strings.
func (d *fmDecoder) strList(n *yaml.Node, key string) []string {
	if n.Kind != yaml.SequenceNode {
		d.errf(d.line(n), key, "must be a list of strings, got %s", kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		s := strings.TrimSpace(d.str(e, key))
		switch {
		case s == "" && e.Kind == yaml.ScalarNode && e.Tag != "!!null":
			d.errf(d.line(e), key, "entries must not be empty")
		case strings.ContainsAny(s, "\n\r"):
			d.errf(d.line(e), key, "entries must be one line")
		case s != "":
			out = append(out, s)
		}
	}
	return out
}

func (d *fmDecoder) optList(f map[string]*yaml.Node, what, key string) []string {
	n, ok := f[key]
	if !ok {
		return nil
	}
	return d.strList(n, joinKey(what, key))
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
			return "nothing"
		}
		return strconv.Quote(n.Value)
	case yaml.AliasNode:
		return "an alias (aliases are not allowed)"
	}
	return "nothing"
}

// validSlug reports whether s is lowercase letters and digits in groups
// joined by single dashes: safe in a URL path, a Slack command and a file
// name alike.
func validSlug(s string) bool {
	if s == "" || len(s) > 100 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && s[i-1] != '-':
		default:
			return false
		}
	}
	return true
}
