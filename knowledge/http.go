package knowledge

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"

	"github.com/vmtriage/vmtriage/internal/store"
)

// md renders runbooks. goldmark's HTML renderer is safe by default: raw
// HTML in the Markdown is replaced by a comment and javascript: links are
// dropped, so a runbook cannot put script into the page.
var md = goldmark.New(
	goldmark.WithExtensions(extension.Table, extension.Strikethrough, extension.TaskList),
	goldmark.WithParserOptions(parser.WithAutoHeadingID()),
)

// renderMarkdown turns a runbook body into HTML that is safe to embed.
func renderMarkdown(body string) (template.HTML, error) {
	var b bytes.Buffer
	if err := md.Convert([]byte(body), &b); err != nil {
		return "", err
	}
	// The renderer escapes text and omits raw HTML (no WithUnsafe), which
	// is what makes this conversion sound.
	return template.HTML(b.String()), nil //nolint:gosec // see above
}

// SearchResults is how many hits the index page shows for ?q=.
const SearchResults = 10

// Handler serves the knowledge base read-only as HTML: GET /kb/ lists the
// runbooks (and searches them with ?q=words), GET /kb/{slug} shows one
// (GET /kb/{slug}.md redirects there, so links between runbook files work
// both here and in a Git web UI). An unknown slug is 404; other methods
// are 405. Mount it at "/kb/".
func (kb *KB) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /kb/{$}", kb.serveIndex)
	mux.HandleFunc("GET /kb/{slug}", kb.serveRunbook)
	return securityHeaders(mux)
}

// securityHeaders forbids scripts, frames and sniffing on every answer:
// even if a runbook smuggled markup through, the browser would not run it.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

type indexEntry struct {
	Slug, Title, Excerpt string
	Tags                 []string
}

type indexPage struct {
	Query   string
	Entries []indexEntry
	Total   int
}

type runbookPage struct {
	Runbook Runbook
	Link    string
	Body    template.HTML
	// Fixes are the newest resolution notes of the runbook's causes.
	Fixes    []store.Note
	FixesErr bool
}

func (kb *KB) serveIndex(w http.ResponseWriter, r *http.Request) {
	s := kb.cur.Load()
	p := indexPage{Query: strings.TrimSpace(r.URL.Query().Get("q")), Total: len(s.runbooks)}
	if p.Query != "" {
		for _, h := range s.index.search(s.runbooks, p.Query, SearchResults) {
			p.Entries = append(p.Entries, indexEntry{Slug: h.Runbook.Slug, Title: h.Runbook.Title, Tags: h.Runbook.Tags, Excerpt: h.Excerpt})
		}
	} else {
		for _, rb := range s.runbooks {
			p.Entries = append(p.Entries, indexEntry{Slug: rb.Slug, Title: rb.Title, Tags: rb.Tags})
		}
	}
	render(w, http.StatusOK, "index", p)
}

func (kb *KB) serveRunbook(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if base, ok := strings.CutSuffix(slug, ".md"); ok && validSlug(base) {
		http.Redirect(w, r, base, http.StatusMovedPermanently)
		return
	}
	s := kb.cur.Load()
	i, ok := s.bySlug[slug]
	if !ok {
		render(w, http.StatusNotFound, "notfound", struct{ Slug string }{slug})
		return
	}
	rb := s.runbooks[i]
	p := runbookPage{Runbook: rb, Link: kb.Link(rb.Slug), Body: s.html[i]}
	p.Fixes, p.FixesErr = kb.fixesOf(r.Context(), rb)
	render(w, http.StatusOK, "runbook", p)
}

// fixesOf gathers the newest resolution notes of rb's causes, newest
// first. A store failure is logged and shown as such: the runbook itself
// must still be served when Redis is not.
func (kb *KB) fixesOf(ctx context.Context, rb Runbook) (notes []store.Note, failed bool) {
	for _, c := range rb.AppliesTo.Causes {
		n, err := kb.PreviousFixes(ctx, c)
		if err != nil {
			kb.log.Warn("runbook page: previous fixes unavailable", "runbook", rb.Slug, "err", err)
			failed = true
			continue
		}
		notes = append(notes, n...)
	}
	slices.SortStableFunc(notes, func(a, b store.Note) int { return b.Time.Compare(a.Time) })
	if len(notes) > kb.opts.PreviousFixes {
		notes = notes[:kb.opts.PreviousFixes]
	}
	return notes, failed
}

func render(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · vmtriage runbooks</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;color:#222}
pre{background:#f4f4f4;padding:.75rem;overflow-x:auto}code{font-size:.92em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem}
.tags span{background:#eef;border-radius:.25rem;padding:0 .35rem;margin-right:.25rem;font-size:.85em}
.meta{color:#555;font-size:.9em}nav a{margin-right:1rem}
</style></head><body>
<nav><a href="/kb/">All runbooks</a></nav>
{{end}}
{{define "foot"}}</body></html>
{{end}}
{{define "tags"}}{{if .}}<span class="tags">{{range .}}<span>{{.}}</span>{{end}}</span>{{end}}{{end}}

{{define "index"}}{{template "head" "Runbooks"}}
<h1>Runbooks</h1>
<form method="get" action="/kb/"><input type="search" name="q" value="{{.Query}}" placeholder="ecc memory, libvirtd down…" size="40"> <button>Search</button></form>
{{if .Query}}<p class="meta">{{len .Entries}} result(s) for “{{.Query}}” among {{.Total}} runbooks.</p>{{end}}
<ul>
{{range .Entries}}<li><a href="/kb/{{.Slug}}">{{.Title}}</a> <code>{{.Slug}}</code> {{template "tags" .Tags}}{{if .Excerpt}}<br><span class="meta">{{.Excerpt}}</span>{{end}}</li>
{{end}}</ul>
{{template "foot"}}{{end}}

{{define "runbook"}}{{template "head" .Runbook.Title}}
<h1>{{.Runbook.Title}}</h1>
<p class="meta"><code>{{.Runbook.Slug}}</code> {{template "tags" .Runbook.Tags}}</p>
{{with .Runbook.AppliesTo}}<p class="meta">Applies to:
{{- if .Rules}} rules {{range $i, $v := .Rules}}{{if $i}}, {{end}}<code>{{$v}}</code>{{end}};{{end}}
{{- if .Causes}} causes {{range $i, $v := .Causes}}{{if $i}}, {{end}}<code>{{$v}}</code>{{end}};{{end}}
{{- if .Events}} events {{range $i, $v := .Events}}{{if $i}}, {{end}}<code>{{$v}}</code>{{end}};{{end}}
{{- if .Components}} components {{range $i, $v := .Components}}{{if $i}}, {{end}}<code>{{$v}}</code>{{end}};{{end}}
</p>{{end}}
<article>
{{.Body}}
</article>
{{if or .Fixes .FixesErr}}<section>
<h2 id="how-this-was-fixed-before">How this was fixed before</h2>
{{if .FixesErr}}<p class="meta">The resolution notes cannot be read right now.</p>{{end}}
<ul>
{{range .Fixes}}<li>{{.Text}} <span class="meta">— {{.Author}}, {{.Incident}} ({{.Cause}}), {{.Time.Format "2006-01-02 15:04 MST"}}</span></li>
{{end}}</ul>
</section>{{end}}
<p class="meta">Link: <a href="{{.Link}}">{{.Link}}</a></p>
{{template "foot"}}{{end}}

{{define "notfound"}}{{template "head" "Not found"}}
<h1>No runbook “{{.Slug}}”</h1>
<p>See <a href="/kb/">all runbooks</a>.</p>
{{template "foot"}}{{end}}
`))
