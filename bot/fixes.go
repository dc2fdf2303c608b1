package bot

import (
	"context"
	"strings"
	"time"
)

// Fix is how an earlier incident was fixed, as someone noted it when it was
// resolved (`/triage resolve inc-40 replaced DIMM B2`, or the ticket's
// resolution comment). Incident messages show the fixes of earlier
// incidents of the same cause as "how this was fixed before".
type Fix struct {
	// Incident is the earlier incident the note was made on.
	Incident string
	// Text is what fixed it, in the author's words.
	Text string
	// Author is who wrote the note (a Slack user ID, a Jira user).
	Author string
	// Time is when the note was made.
	Time time.Time
}

// Line is the fix in one plain line: "replaced DIMM B2 — U0ALICE on inc-40,
// 2026-11-20".
func (f Fix) Line() string {
	var meta []string
	if f.Author != "" {
		meta = append(meta, f.Author)
	}
	if f.Incident != "" {
		meta = append(meta, "on "+f.Incident)
	}
	s := strings.Join(meta, " ")
	if !f.Time.IsZero() {
		if s != "" {
			s += ", "
		}
		s += f.Time.UTC().Format("2006-01-02")
	}
	if s == "" {
		return f.Text
	}
	return f.Text + " — " + s
}

// FixSource gives how incidents of a cause were fixed before, newest
// first. The knowledge base implements it (through a small adapter from
// its note type).
type FixSource interface {
	PreviousFixes(ctx context.Context, cause string) ([]Fix, error)
}

// fixLookupTimeout bounds the look-up of previous fixes before a post: the
// post goes out without them rather than wait on a slow store.
const fixLookupTimeout = 2 * time.Second

// previousFixes returns the fixes of earlier incidents of inc's cause,
// leaving out notes made on this very incident (its own resolution note
// is not "how it was fixed before").
func previousFixes(ctx context.Context, src FixSource, incidentID, cause string) ([]Fix, error) {
	if src == nil || cause == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, fixLookupTimeout)
	defer cancel()
	fixes, err := src.PreviousFixes(ctx, cause)
	if err != nil {
		return nil, err
	}
	out := fixes[:0:0]
	for _, f := range fixes {
		if f.Incident == incidentID || strings.TrimSpace(f.Text) == "" {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}
