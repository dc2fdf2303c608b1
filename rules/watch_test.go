package rules

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	write := func(body string) {
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rules:\n  - name: r1\n" + okRule)
	w := NewWatcher(dir)
	if _, changed, _ := w.Check(); changed {
		t.Fatal("changed without a change")
	}
	// An edit is loaded once a second check sees the same files.
	write("rules:\n  - name: r2\n" + okRule)
	if _, changed, _ := w.Check(); changed {
		t.Fatal("loaded at the first sight of an edit, which may be half-written")
	}
	s, changed, err := w.Check()
	if !changed || err != nil || s.Rule("r2") == nil {
		t.Fatalf("after an edit: changed %v err %v set %v", changed, err, s)
	}
	// A file caught truncated, then written in full: only the full one
	// is loaded.
	write("")
	if _, changed, _ := w.Check(); changed {
		t.Fatal("a truncated file was loaded")
	}
	write("rules:\n  - name: r5\n" + okRule)
	if _, changed, _ := w.Check(); changed {
		t.Fatal("loaded an edit seen once")
	}
	if s, changed, err := w.Check(); !changed || err != nil || s.Rule("r5") == nil {
		t.Fatalf("after the full write: changed %v err %v set %v", changed, err, s)
	}
	write("rules:\n  - name: r3\n    scope: nowhere\n")
	w.Check()
	if _, changed, err := w.Check(); !changed || err == nil {
		t.Fatalf("bad edit: changed %v err %v, want a load error", changed, err)
	}
	if _, changed, _ := w.Check(); changed {
		t.Fatal("the same bad file reported twice")
	}
	// A new file in the folder is a change too.
	if err := os.WriteFile(filepath.Join(dir, "more.yaml"), []byte("# empty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.Check()
	if _, changed, _ := w.Check(); !changed {
		t.Fatal("a new file went unnoticed")
	}
}

func TestWatcherRun(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(file, []byte("rules:\n  - name: r1\n"+okRule), 0o644); err != nil {
		t.Fatal(err)
	}
	w := NewWatcher(dir)
	if err := os.WriteFile(file, []byte("rules:\n  - name: r2\n"+okRule), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	loaded := make(chan *Set, 1)
	done := make(chan struct{})
	go func() {
		w.Run(ctx, time.Millisecond, func(s *Set) { loaded <- s }, nil)
		close(done)
	}()
	if s := <-loaded; s.Rule("r2") == nil {
		t.Fatalf("loaded %v", s.Rules)
	}
	cancel()
	<-done
}
