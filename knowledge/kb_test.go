package knowledge

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// writeRunbook writes a runbook file and stamps it with the fake clock's
// time, so reload detection does not depend on the file system's clock.
func writeRunbook(t *testing.T, clk *clock.Fake, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, clk.Now(), clk.Now()); err != nil {
		t.Fatal(err)
	}
}

func runbookText(title, body string) string {
	return "---\ntitle: " + title + "\ntags: [test]\napplies_to:\n  causes: [guest-crash]\n---\n" + body + "\n"
}

func TestLink(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	writeRunbook(t, clk, dir, "hw/host-hardware-fault.md", runbookText("HW", "text"))
	tests := []struct {
		name string
		opts Options
		slug string
		want string
	}{
		{"this server, relative", Options{}, "host-hardware-fault", "/kb/host-hardware-fault"},
		{"this server, absolute", Options{ServerURL: "https://vmtriage.example.com/"}, "host-hardware-fault", "https://vmtriage.example.com/kb/host-hardware-fault"},
		{"Git web UI, file in a folder", Options{BaseURL: "https://git.example.com/ops/runbooks/src/branch/main/"},
			"host-hardware-fault", "https://git.example.com/ops/runbooks/src/branch/main/hw/host-hardware-fault.md"},
		{"Git web UI, slug not loaded", Options{BaseURL: "https://git.example.com/rb"}, "new-runbook", "https://git.example.com/rb/new-runbook.md"},
		{"base URL wins over server URL", Options{BaseURL: "https://docs.example.com", ServerURL: "https://vmtriage.example.com"},
			"host-hardware-fault", "https://docs.example.com/hw/host-hardware-fault.md"},
		{"odd slug is escaped", Options{}, "a b/c", "/kb/a%20b%2Fc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Path = dir
			kb, err := New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := kb.Link(tt.slug); got != tt.want {
				t.Fatalf("Link(%q) = %q, want %q", tt.slug, got, tt.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "one.md")
	if err := os.WriteFile(file, []byte(runbookText("T", "x")), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "bad.md"), []byte("---\ntitle: T\nowner: x\n---\ntext"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"missing folder", Options{Path: filepath.Join(dir, "nope")}, "no such file or directory"},
		{"a file, not a folder", Options{Path: file}, "is not a folder"},
		{"bad runbook", Options{Path: bad}, "bad.md:3: owner: unknown key"},
		{"relative base URL", Options{BaseURL: "git.example.com/x"}, `base URL "git.example.com/x" is not an absolute http(s) URL`},
		{"javascript server URL", Options{ServerURL: "javascript:alert(1)"}, "server URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kb, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want an error containing %q", kb, err, tt.want)
			}
		})
	}
}

func TestCheckReloadsAndKeepsOldSetOnError(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	writeRunbook(t, clk, dir, "guest-crash.md", runbookText("Guest crash", "Restart the VM."))
	kb, err := New(Options{Path: dir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if st := kb.Status(); st.Runbooks != 1 || !st.LoadedAt.Equal(t0) || st.Err != nil {
		t.Fatalf("Status after New = %+v", st)
	}
	check := func(wantChanged bool, wantErr string) {
		t.Helper()
		changed, err := kb.Check()
		if changed != wantChanged {
			t.Fatalf("Check changed = %v, want %v", changed, wantChanged)
		}
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("Check: %v", err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Fatalf("Check error = %v, want one containing %q", err, wantErr)
		}
	}
	check(false, "")

	// A new file is picked up and searchable.
	clk.Advance(time.Minute)
	writeRunbook(t, clk, dir, "service-down.md", runbookText("Service down", "Restart libvirtd."))
	check(true, "")
	if hits := kb.Search("libvirtd", 1); len(hits) != 1 || hits[0].Runbook.Slug != "service-down" {
		t.Fatalf("Search(libvirtd) after reload = %v", hits)
	}
	if st := kb.Status(); st.Runbooks != 2 || !st.LoadedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Status after reload = %+v", st)
	}

	// An edit with the same size is seen through the modification time.
	clk.Advance(time.Minute)
	writeRunbook(t, clk, dir, "service-down.md", runbookText("Service down", "Restart nova-cpu."))
	check(true, "")
	if hits := kb.Search("nova", 1); len(hits) != 1 {
		t.Fatalf("edit not reloaded: Search(nova) = %v", hits)
	}

	// A bad file is refused: the old runbooks stay, the error is kept.
	clk.Advance(time.Minute)
	writeRunbook(t, clk, dir, "broken.md", "---\ntitle: Broken\ntags: [a\n---\ntext")
	check(true, "broken.md:3: invalid YAML")
	if got := len(kb.Runbooks()); got != 2 {
		t.Fatalf("after a refused reload %d runbooks are in force, want the old 2", got)
	}
	st := kb.Status()
	var le *LoadError
	if !errors.As(st.Err, &le) || !st.ErrAt.Equal(t0.Add(3*time.Minute)) || st.Runbooks != 2 {
		t.Fatalf("Status after refusal = %+v", st)
	}
	check(false, "") // nothing changed since: not reported again

	// Fixing it loads it and clears the error.
	clk.Advance(time.Minute)
	writeRunbook(t, clk, dir, "broken.md", runbookText("Fixed", "text"))
	check(true, "")
	if st := kb.Status(); st.Err != nil || st.Runbooks != 3 {
		t.Fatalf("Status after fix = %+v", st)
	}

	// A removed file disappears.
	if err := os.Remove(filepath.Join(dir, "broken.md")); err != nil {
		t.Fatal(err)
	}
	check(true, "")
	if _, ok := kb.Runbook("broken"); ok {
		t.Fatal("removed runbook still served")
	}
}

func TestStarterSetNeverReloads(t *testing.T) {
	kb, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := kb.Check(); changed || err != nil {
		t.Fatalf("Check on the embedded set = %v, %v", changed, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	kb.Run(ctx, time.Millisecond) // returns at once: nothing to watch
}

type fakeNotes struct {
	cause string
	n     int
	notes []store.Note
	err   error
}

func (f *fakeNotes) Notes(_ context.Context, cause string, n int) ([]store.Note, error) {
	f.cause, f.n = cause, n
	return f.notes, f.err
}

func TestPreviousFixes(t *testing.T) {
	notes := &fakeNotes{notes: []store.Note{{Incident: "inc-3", Cause: "service-down", Text: "restarted libvirtd"}}}
	kb, err := New(Options{Notes: notes})
	if err != nil {
		t.Fatal(err)
	}
	got, err := kb.PreviousFixes(context.Background(), "service-down")
	if err != nil || len(got) != 1 || got[0].Text != "restarted libvirtd" || notes.cause != "service-down" || notes.n != 3 {
		t.Fatalf("PreviousFixes = %v, %v (asked for %q, %d)", got, err, notes.cause, notes.n)
	}
	notes.err = errors.New("redis down")
	if _, err := kb.PreviousFixes(context.Background(), "service-down"); err == nil || err.Error() != "previous fixes of service-down: redis down" {
		t.Fatalf("PreviousFixes error = %v", err)
	}
	bare, _ := New(Options{})
	if got, err := bare.PreviousFixes(context.Background(), "service-down"); got != nil || err != nil {
		t.Fatalf("PreviousFixes without notes = %v, %v", got, err)
	}
}

// Lookups read one snapshot while a reload swaps it; run with -race.
func TestConcurrentReadsDuringReload(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	writeRunbook(t, clk, dir, "service-down.md", runbookText("Service down", "Restart libvirtd."))
	kb, err := New(Options{Path: dir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	h := kb.Handler()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			clk.Advance(time.Second)
			writeRunbook(t, clk, dir, "service-down.md", runbookText("Service down", strings.Repeat("Restart libvirtd. ", i+1)))
			if _, err := kb.Check(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			if i == 0 {
				t.Log("reloads finished before the first read")
			}
			return
		default:
		}
		if hits := kb.Search("libvirtd", 3); len(hits) != 1 {
			t.Fatalf("Search during reload = %v", hits)
		}
		kb.Match(model.Incident{Cause: "guest-crash"})
		if res, _ := get(t, h, "GET", "/kb/service-down"); res.StatusCode != 200 {
			t.Fatalf("page during reload: %d", res.StatusCode)
		}
		_ = kb.Status()
	}
}
