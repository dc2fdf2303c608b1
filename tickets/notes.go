package tickets

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// NoteKeeper keeps resolution notes under an incident's cause (the state
// store does), for "how this was fixed before" on the next incident of
// that cause. It is optional.
type NoteKeeper interface {
	AddNote(ctx context.Context, n store.Note) error
}

// FixPrefixes start a Jira comment that says what fixed the incident
// ("Fix: replaced DIMM B2"). When the incident resolves, the newest such
// comment on its ticket is kept as its resolution note. Matching ignores
// case; vmtriage's own comments never start so.
var FixPrefixes = []string{"fix:", "fixed:", "resolution:"}

// fixComment returns the note in a comment that starts with one of
// FixPrefixes (after optional wiki emphasis), or "".
func fixComment(body string) string {
	s := strings.TrimLeft(strings.TrimSpace(body), "*_")
	for _, p := range FixPrefixes {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(s[len(p):]), "*_ "))
		}
	}
	return ""
}

// keepFixNote reads the ticket's comments once the incident resolved and
// keeps the newest "Fix: …" one as the incident's resolution note. It is
// best effort: a failure is logged, and the ticket work goes on.
func (t *Tickets) keepFixNote(ctx context.Context, log *slog.Logger, inc *model.Incident, key string) {
	if t.opts.Notes == nil || inc.Cause == "" || key == "" {
		return
	}
	comments, err := t.jira.commentsWithIDs(ctx, key)
	if err != nil {
		log.Warn("read the ticket's comments for a resolution note", "ticket", key, "err", err)
		return
	}
	// Jira numbers comments in the order they were made; the order of
	// the answer is not relied on.
	best, bestID := "", int64(-1)
	for _, c := range comments {
		if text := fixComment(c.Body); text != "" && c.ID > bestID {
			best, bestID = text, c.ID
		}
	}
	if best == "" {
		return
	}
	n := store.Note{Incident: inc.ID, Cause: inc.Cause, Text: truncate(best, store.MaxNoteLen), Author: "Jira " + key}
	if err := t.opts.Notes.AddNote(ctx, n); err != nil {
		log.Warn("keep the ticket's resolution note", "ticket", key, "err", err)
		return
	}
	log.Info("resolution note kept from the ticket", "ticket", key)
}

// jiraComment is a comment's id and body.
type jiraComment struct {
	ID   int64
	Body string
}

// commentsWithIDs reads the newest 200 comments of key with their ids.
func (c *client) commentsWithIDs(ctx context.Context, key string) ([]jiraComment, error) {
	req, err := c.jc.NewRequestWithContext(ctx, http.MethodGet, "rest/api/2/issue/"+url.PathEscape(key)+"/comment?orderBy=-created&maxResults=200", nil)
	if err != nil {
		return nil, fmt.Errorf("read comments of %s: %w", key, err)
	}
	var out struct {
		Comments []struct {
			ID   string `json:"id"`
			Body string `json:"body"`
		} `json:"comments"`
	}
	resp, err := c.jc.Do(req, &out)
	if err != nil {
		return nil, c.fail("read comments of "+key, resp, err)
	}
	list := make([]jiraComment, 0, len(out.Comments))
	for _, cm := range out.Comments {
		id, err := strconv.ParseInt(cm.ID, 10, 64)
		if err != nil {
			continue
		}
		list = append(list, jiraComment{ID: id, Body: cm.Body})
	}
	return list, nil
}
