package rules

import (
	"context"
	"crypto/sha256"
	"hash"
	"os"
	"time"
)

// Watcher notices when rule files change. It remembers a digest of the
// files' names and contents.
//
// It polls rather than using inotify: rule files change a few times a
// day, and a poll also sees files replaced by a ConfigMap's symlink swap,
// which inotify watches on the old inode miss.
//
// A change is loaded once two checks in a row see the same files, so a
// file caught half-written (an editor truncates, then writes) is not
// loaded: an empty or cut-off file can be a valid rule file that drops
// rules.
type Watcher struct {
	paths []string
	last  [32]byte
	// seen is the digest of the latest check, waiting to be confirmed.
	seen [32]byte
}

// NewWatcher takes the digest of the files as they are now (which the
// caller has loaded already).
func NewWatcher(paths ...string) *Watcher {
	d := digest(paths)
	return &Watcher{paths: paths, last: d, seen: d}
}

// Check loads the files if they changed since they were last loaded and
// are the same as at the previous check. changed is false when they were
// not loaded; otherwise exactly one of set and err is set.
func (w *Watcher) Check() (set *Set, changed bool, err error) {
	cur := digest(w.paths)
	prev := w.seen
	w.seen = cur
	if cur == w.last || cur != prev {
		return nil, false, nil
	}
	w.last = cur
	set, err = LoadFiles(w.paths...)
	return set, true, err
}

// Run checks every interval (default 5s) until ctx ends, calling onLoad
// with each new set and onError when changed files are refused (the caller
// keeps its old rules).
func (w *Watcher) Run(ctx context.Context, interval time.Duration, onLoad func(*Set), onError func(error)) {
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
		set, changed, err := w.Check()
		switch {
		case !changed:
		case err != nil:
			if onError != nil {
				onError(err)
			}
		case onLoad != nil:
			onLoad(set)
		}
	}
}

// Watch is NewWatcher(paths...).Run(ctx, interval, onLoad, onError).
func Watch(ctx context.Context, paths []string, interval time.Duration, onLoad func(*Set), onError func(error)) {
	NewWatcher(paths...).Run(ctx, interval, onLoad, onError)
}

// digest hashes the names and contents of the rule files under paths;
// unreadable paths hash as such, so their appearance counts as a change.
func digest(paths []string) [32]byte {
	h := sha256.New()
	for _, p := range paths {
		files, err := expandPath(p)
		if err != nil {
			h.Write([]byte("!" + p + "\x00"))
			continue
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				h.Write([]byte(f + "\x00!\x00"))
				continue
			}
			writeSource(h, source{name: f, data: b})
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// digestSources is digest of files already read: the same value digest
// gives while the files are unchanged.
func digestSources(srcs []source) [32]byte {
	h := sha256.New()
	for _, s := range srcs {
		writeSource(h, s)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func writeSource(h hash.Hash, s source) {
	h.Write([]byte(s.name + "\x00"))
	h.Write(s.data)
	h.Write([]byte{0})
}

// WatchFiles reloads the engine's rules whenever the files under paths
// change, until ctx ends. A refused file is logged and counted in
// vmtriage_rule_reloads_total{result="failure"}; the rules in force stay.
// SIGHUP handling stays with the caller, which can call ReloadFiles.
//
// Changes are judged against the files the rules in force were loaded
// from (when LoadFiles built them), so an edit made between that load and
// the start of the watch is not missed.
func (e *Engine) WatchFiles(ctx context.Context, paths []string, interval time.Duration) {
	w := NewWatcher(paths...)
	if d := e.Rules().digest; d != ([32]byte{}) {
		w.last = d
	}
	w.Run(ctx, interval, e.Reload, func(err error) {
		e.ReloadFailed()
		e.log.Error("rule files refused; the previous rules stay in force", "err", err)
	})
}
