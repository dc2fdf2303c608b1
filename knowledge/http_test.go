package knowledge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vmtriage/vmtriage/internal/store"
)

// hostile is a runbook that tries every way of getting markup or script
// into the page: raw HTML blocks and inline, a javascript: link, and
// markup in the title, tags and applies_to.
const hostile = `---
title: "<script>alert('title')</script> & co"
tags: ["<b>tag</b>"]
applies_to:
  rules: ["<img src=x onerror=alert(1)>"]
---
## What it means <em>really</em>

<script>alert('block')</script>

Inline <script>alert('inline')</script> and <a href="javascript:alert(2)">raw link</a>.

[click me](javascript:alert(3)) and ![img](javascript:alert(4))

<div onclick="alert(5)">div</div>

` + "```html\n<script>alert('code')</script>\n```\n"

func httpKB(t *testing.T) *KB {
	t.Helper()
	fsys := fstest.MapFS{
		"hostile.md":     {Data: []byte(hostile)},
		"guest-crash.md": {Data: []byte("---\ntitle: Guest crash\ntags: [crash, kernel panic]\n---\n## What it means\n\nThe guest **crashed**; see [host fault](host-hardware-fault.md).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")},
	}
	rbs, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := newKB(Options{ServerURL: "https://vmtriage.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := kb.install(rbs); err != nil {
		t.Fatal(err)
	}
	return kb
}

func get(t *testing.T, h http.Handler, method, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHandlerRoutes(t *testing.T) {
	h := httpKB(t).Handler()
	tests := []struct {
		name     string
		method   string
		target   string
		code     int
		contains []string
		location string
	}{
		{"index", "GET", "/kb/", 200, []string{`<a href="/kb/guest-crash">Guest crash</a>`, `<a href="/kb/hostile">`}, ""},
		{"search", "GET", "/kb/?q=kernel+panic", 200, []string{`1 result(s) for “kernel panic” among 2 runbooks`, `<a href="/kb/guest-crash">`}, ""},
		{"runbook", "GET", "/kb/guest-crash", 200, []string{
			"<title>Guest crash · vmtriage runbooks</title>", "<h1>Guest crash</h1>", "<strong>crashed</strong>",
			`<h2 id="what-it-means">What it means</h2>`, "<table>", `Link: <a href="https://vmtriage.example.com/kb/guest-crash">`}, ""},
		{"HEAD works", "HEAD", "/kb/guest-crash", 200, nil, ""},
		{"link to a .md file redirects to the slug", "GET", "/kb/host-hardware-fault.md", 301, nil, "/kb/host-hardware-fault"},
		{"unknown slug", "GET", "/kb/no-such-runbook", 404, []string{`No runbook “no-such-runbook”`}, ""},
		{"unknown slug is escaped", "GET", "/kb/%3Cscript%3E", 404, []string{`No runbook “&lt;script&gt;”`}, ""},
		{"nested path", "GET", "/kb/a/b", 404, nil, ""},
		{"read-only", "POST", "/kb/guest-crash", 405, nil, ""},
		{"read-only index", "DELETE", "/kb/", 405, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, h, tt.method, tt.target)
			if res.StatusCode != tt.code {
				t.Fatalf("%s %s = %d, want %d\n%s", tt.method, tt.target, res.StatusCode, tt.code, body)
			}
			for _, c := range tt.contains {
				if !strings.Contains(body, c) {
					t.Errorf("body lacks %q:\n%s", c, body)
				}
			}
			if tt.location != "" && res.Header.Get("Location") != tt.location {
				t.Errorf("Location = %q, want %q", res.Header.Get("Location"), tt.location)
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("nosniff missing")
			}
			if tt.code == 200 && res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", res.Header.Get("Content-Type"))
			}
		})
	}
}

// A runbook with <script> in it renders inert: no element, attribute or
// URL from it can run, wherever it appears.
func TestHandlerRendersHostileRunbookInert(t *testing.T) {
	h := httpKB(t).Handler()
	for _, target := range []string{"/kb/hostile", "/kb/", "/kb/?q=alert+script"} {
		t.Run(target, func(t *testing.T) {
			res, body := get(t, h, "GET", target)
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			lower := strings.ToLower(body)
			// Escaped text such as "&lt;img src=x onerror=…&gt;" is fine;
			// these only occur as live markup.
			for _, bad := range []string{"<script", "javascript:", "onerror=alert(1)>", "onclick=", "<img src=x", "<div", "<em>", "<b>"} {
				if strings.Contains(lower, bad) {
					i := strings.Index(lower, bad)
					t.Errorf("page contains %q: …%s…", bad, body[max(0, i-60):min(len(body), i+60)])
				}
			}
		})
	}
	_, body := get(t, h, "GET", "/kb/hostile")
	for _, want := range []string{
		"<h1>&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; &amp; co</h1>", // title escaped by html/template
		"<span>&lt;b&gt;tag&lt;/b&gt;</span>",                                   // tag escaped
		"<!-- raw HTML omitted -->",                                             // goldmark dropped the raw HTML
		"&lt;script&gt;alert('code')&lt;/script&gt;",                            // code is shown as text
		`<a href="">click me</a> and <img src="" alt="img">`,                    // javascript: URLs dropped
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
}

func TestRunbookPageGolden(t *testing.T) {
	kb, err := New(Options{BaseURL: "https://git.example.com/ops/vmtriage/src/branch/main/knowledge/runbooks"})
	if err != nil {
		t.Fatal(err)
	}
	_, body := get(t, kb.Handler(), "GET", "/kb/service-down")
	golden(t, "service-down.html.golden", body)
}

func TestRunbookPageShowsPreviousFixes(t *testing.T) {
	fsys := fstest.MapFS{
		"service-down.md": {Data: []byte("---\ntitle: Service down\napplies_to:\n  causes: [service-down, agent-down]\n---\ntext\n")},
	}
	rbs, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	notes := &causeNotes{by: map[string][]store.Note{
		"service-down": {
			{Incident: "inc-9", Cause: "service-down", Text: "cleaned /var, restarted <libvirtd>", Author: "U2", Time: t0.Add(2 * time.Hour)},
			{Incident: "inc-4", Cause: "service-down", Text: "restarted libvirtd", Author: "U1", Time: t0},
		},
		"agent-down": {{Incident: "inc-7", Cause: "agent-down", Text: "reinstalled the agent", Author: "U3", Time: t0.Add(time.Hour)}},
	}}
	kb, err := newKB(Options{Notes: notes, PreviousFixes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := kb.install(rbs); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, kb.Handler(), "GET", "/kb/service-down")
	want := `<li>cleaned /var, restarted &lt;libvirtd&gt; <span class="meta">— U2, inc-9 (service-down), 2026-11-22 05:00 UTC</span></li>
<li>reinstalled the agent <span class="meta">— U3, inc-7 (agent-down), 2026-11-22 04:00 UTC</span></li>
</ul>`
	if !strings.Contains(body, want) {
		t.Fatalf("page lacks the two newest fixes, escaped:\n%s", body)
	}

	notes.err = errors.New("redis down")
	res, body := get(t, kb.Handler(), "GET", "/kb/service-down")
	if res.StatusCode != 200 || !strings.Contains(body, "The resolution notes cannot be read right now.") {
		t.Fatalf("with the store down: %d\n%s", res.StatusCode, body)
	}
}

type causeNotes struct {
	by  map[string][]store.Note
	err error
}

func (c *causeNotes) Notes(_ context.Context, cause string, n int) ([]store.Note, error) {
	if c.err != nil {
		return nil, c.err
	}
	l := c.by[cause]
	return l[:min(n, len(l))], nil
}
