package knowledge

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed runbooks/*.md
var starterFS embed.FS

// Starter returns the runbooks shipped in the binary (knowledge/runbooks):
// one per default rule.
func Starter() ([]Runbook, error) {
	sub, err := fs.Sub(starterFS, "runbooks")
	if err != nil {
		return nil, fmt.Errorf("read embedded runbooks: %w", err)
	}
	return LoadFS(sub)
}

// LoadFS reads every runbook under fsys: the "*.md" files of the folder
// and its subfolders, except README.md files and names starting with "."
// or "_" (so a Git checkout of a runbook repository loads as it is). Any
// problem in any file refuses the whole set with a *LoadError listing all
// of them; two files with one slug are a problem.
func LoadFS(fsys fs.FS) ([]Runbook, error) {
	files, err := runbookFiles(fsys)
	if err != nil {
		return nil, err
	}
	var (
		probs []Problem
		out   = make([]Runbook, 0, len(files))
		seen  = map[string]string{}
	)
	for _, name := range files {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			probs = append(probs, Problem{File: name, Message: "cannot read: " + err.Error()})
			continue
		}
		before := len(probs)
		rb := parse(name, data, &probs)
		if prev, dup := seen[rb.Slug]; dup {
			probs = append(probs, Problem{File: name, Message: fmt.Sprintf("slug %q is also the slug of %s; runbook file names must be unique", rb.Slug, prev)})
			continue
		}
		seen[rb.Slug] = name
		if len(probs) == before {
			out = append(out, rb)
		}
	}
	if len(probs) > 0 {
		return nil, &LoadError{Problems: probs}
	}
	return out, nil
}

// runbookFiles lists the runbook files under fsys in lexical order.
func runbookFiles(fsys fs.FS) ([]string, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := path.Base(p)
		if p != "." && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(base, ".md") || strings.EqualFold(base, "README.md") {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list runbooks: %w", err)
	}
	sort.Strings(files)
	return files, nil
}
