package knowledge

import (
	"context"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/store"
)

// NoteReader lists the resolution notes kept for a cause, newest first.
// internal/store implements it.
type NoteReader interface {
	Notes(ctx context.Context, cause string, n int) ([]store.Note, error)
}

var _ NoteReader = (*store.Store)(nil)

// Options configure a KB. All fields are optional.
type Options struct {
	// Path is the folder of runbooks (VMTRIAGE_KB_PATH); empty uses the
	// starter set embedded in the binary.
	Path string
	// BaseURL, if set, makes links BaseURL + "/" + the runbook's path under
	// Path ("https://git.example.com/ops/runbooks/src/branch/main/" +
	// "host-hardware-fault.md"): the runbook's home in a Git web UI or docs
	// site (VMTRIAGE_KB_BASE_URL).
	BaseURL string
	// ServerURL is this server's public URL ("https://vmtriage.example.com");
	// without BaseURL, links are ServerURL + "/kb/" + slug. Empty gives
	// links relative to this server ("/kb/host-hardware-fault").
	ServerURL string
	// MaxLinks caps how many runbook links an incident gets; default 3.
	MaxLinks int
	// Notes, if set, gives PreviousFixes its notes.
	Notes NoteReader
	// PreviousFixes is how many notes PreviousFixes returns; default 3.
	PreviousFixes int
	// Clock stamps loads and refusals; default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger // default discards
}

// KB is a loaded knowledge base. It is safe for concurrent use: every
// lookup reads one immutable snapshot, and a reload swaps the snapshot.
type KB struct {
	opts Options
	fsys fs.FS // nil for the embedded starter set
	log  *slog.Logger
	cur  atomic.Pointer[snapshot]

	// mu serialises Check; stamp is the folder's listing at the last
	// check, status what the last load did.
	mu     sync.Mutex
	stamp  string
	status Status
}

// snapshot is one load of the knowledge base.
type snapshot struct {
	runbooks []Runbook
	bySlug   map[string]int
	index    *index
	applies  map[appliesKey][]int
	html     []template.HTML
}

// Status says which runbooks are in force and whether the last reload was
// refused.
type Status struct {
	// Runbooks is how many runbooks are in force; LoadedAt when they were
	// loaded.
	Runbooks int
	LoadedAt time.Time
	// Err is the last reload's refusal (a *LoadError or a read error), nil
	// when the files in force are the files on disk; ErrAt is when it
	// happened.
	Err   error
	ErrAt time.Time
}

// New loads the knowledge base. A bad runbook fails it with a *LoadError
// naming every problem's file and line.
func New(opts Options) (*KB, error) {
	kb, err := newKB(opts)
	if err != nil {
		return nil, err
	}
	var rbs []Runbook
	if opts.Path == "" {
		rbs, err = Starter()
	} else {
		st, serr := os.Stat(opts.Path)
		switch {
		case serr != nil:
			return nil, fmt.Errorf("knowledge base: %w", serr)
		case !st.IsDir():
			return nil, fmt.Errorf("knowledge base: %s is not a folder", opts.Path)
		}
		kb.fsys = os.DirFS(opts.Path)
		kb.stamp = listing(kb.fsys)
		rbs, err = LoadFS(kb.fsys)
	}
	if err != nil {
		return nil, fmt.Errorf("knowledge base %s: %w", kb.where(), err)
	}
	if err := kb.install(rbs); err != nil {
		return nil, fmt.Errorf("knowledge base %s: %w", kb.where(), err)
	}
	return kb, nil
}

// newKB checks opts and fills in defaults; the caller installs runbooks.
func newKB(opts Options) (*KB, error) {
	if opts.MaxLinks <= 0 {
		opts.MaxLinks = 3
	}
	if opts.PreviousFixes <= 0 {
		opts.PreviousFixes = 3
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	kb := &KB{opts: opts, log: opts.Logger}
	if kb.log == nil {
		kb.log = slog.New(slog.DiscardHandler)
	}
	for _, u := range []struct{ name, val string }{{"base URL", opts.BaseURL}, {"server URL", opts.ServerURL}} {
		if u.val == "" {
			continue
		}
		p, err := url.Parse(u.val)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("knowledge base: %s %q is not an absolute http(s) URL", u.name, u.val)
		}
	}
	kb.opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	kb.opts.ServerURL = strings.TrimRight(opts.ServerURL, "/")
	return kb, nil
}

func (kb *KB) where() string {
	if kb.opts.Path == "" {
		return "(built-in starter set)"
	}
	return kb.opts.Path
}

// install builds the snapshot of rbs and puts it in force.
func (kb *KB) install(rbs []Runbook) error {
	s := &snapshot{runbooks: rbs, bySlug: make(map[string]int, len(rbs)), html: make([]template.HTML, len(rbs))}
	for i, rb := range rbs {
		s.bySlug[rb.Slug] = i
		h, err := renderMarkdown(rb.Body)
		if err != nil {
			return fmt.Errorf("render %s: %w", rb.Path, err)
		}
		s.html[i] = h
	}
	s.index = buildIndex(rbs)
	s.applies = appliesIndex(rbs)
	kb.cur.Store(s)
	kb.status = Status{Runbooks: len(rbs), LoadedAt: kb.opts.Clock.Now()}
	return nil
}

// Check reloads the folder if any runbook file was added, removed, or
// changed its size or modification time since the last check. A folder
// with a bad runbook is refused: the runbooks in force stay, and the error
// is returned and kept in Status until a later load succeeds. changed is
// false when nothing changed (and always for the embedded starter set).
func (kb *KB) Check() (changed bool, err error) {
	if kb.fsys == nil {
		return false, nil
	}
	kb.mu.Lock()
	defer kb.mu.Unlock()
	stamp := listing(kb.fsys)
	if stamp == kb.stamp {
		return false, nil
	}
	kb.stamp = stamp
	rbs, err := LoadFS(kb.fsys)
	if err == nil {
		err = kb.install(rbs)
	}
	if err != nil {
		kb.status.Err, kb.status.ErrAt = err, kb.opts.Clock.Now()
		return true, fmt.Errorf("reload knowledge base %s: %w", kb.opts.Path, err)
	}
	return true, nil
}

// Run checks the folder every interval (default 5s) until ctx ends,
// logging each reload and each refusal. It polls file sizes and times
// rather than watching with inotify, which misses a ConfigMap's symlink
// swap.
func (kb *KB) Run(ctx context.Context, interval time.Duration) {
	if kb.fsys == nil {
		return
	}
	if interval <= 0 {
		interval = 5 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := kb.Check()
		switch {
		case err != nil:
			kb.log.Error("runbooks refused; the previous runbooks stay in force", "path", kb.opts.Path, "err", err)
		case changed:
			kb.log.Info("runbooks reloaded", "path", kb.opts.Path, "runbooks", len(kb.cur.Load().runbooks))
		}
	}
}

// Status tells what is loaded and whether the last reload was refused.
func (kb *KB) Status() Status {
	kb.mu.Lock()
	defer kb.mu.Unlock()
	return kb.status
}

// listing describes the runbook files of fsys by name, size and
// modification time; a change in it means a reload is due.
func listing(fsys fs.FS) string {
	files, err := runbookFiles(fsys)
	if err != nil {
		return "!" + err.Error()
	}
	var b strings.Builder
	for _, f := range files {
		st, err := fs.Stat(fsys, f)
		if err != nil {
			fmt.Fprintf(&b, "%s !%v\n", f, err)
			continue
		}
		fmt.Fprintf(&b, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
	}
	return b.String()
}

// Runbooks lists the runbooks in force, in file order.
func (kb *KB) Runbooks() []Runbook {
	return kb.cur.Load().runbooks
}

// Runbook returns the runbook with slug.
func (kb *KB) Runbook(slug string) (Runbook, bool) {
	s := kb.cur.Load()
	i, ok := s.bySlug[slug]
	if !ok {
		return Runbook{}, false
	}
	return s.runbooks[i], true
}

// Link is the runbook's stable link: BaseURL plus its path when a base URL
// is configured, else this server's /kb/{slug}. A slug not loaded (yet)
// still gets a link, to where it would be.
func (kb *KB) Link(slug string) string {
	if kb.opts.BaseURL != "" {
		p := slug + ".md"
		if rb, ok := kb.Runbook(slug); ok {
			p = rb.Path
		}
		return kb.opts.BaseURL + "/" + escapePath(p)
	}
	return kb.opts.ServerURL + "/kb/" + url.PathEscape(slug)
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// Search ranks the runbooks for query with BM25 over titles, tags and
// bodies, and returns the best n with a one-line excerpt each. Words are
// lowercased and stemmed; common English words are ignored. Runbooks that
// share no word with the query are left out.
func (kb *KB) Search(query string, n int) []Hit {
	s := kb.cur.Load()
	return s.index.search(s.runbooks, query, n)
}

// PreviousFixes returns how incidents of cause were fixed before: the
// newest resolution notes kept for it (Options.PreviousFixes of them).
// Without Options.Notes there are none.
func (kb *KB) PreviousFixes(ctx context.Context, cause string) ([]store.Note, error) {
	if kb.opts.Notes == nil || cause == "" {
		return nil, nil
	}
	notes, err := kb.opts.Notes.Notes(ctx, cause, kb.opts.PreviousFixes)
	if err != nil {
		return nil, fmt.Errorf("previous fixes of %s: %w", cause, err)
	}
	return notes, nil
}
