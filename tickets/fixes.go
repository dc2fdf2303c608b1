package tickets

import (
	"context"
	"log/slog"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// maxFixes is how many previous fixes a description lists.
const maxFixes = 3

// previousFixes returns how earlier incidents of inc's cause were fixed,
// leaving out notes made on inc itself. A failed look-up is logged and
// gives none: the ticket matters more than its history.
func (t *Tickets) previousFixes(ctx context.Context, log *slog.Logger, inc *model.Incident) []Fix {
	if t.opts.Fixes == nil || inc.Cause == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	notes, err := t.opts.Fixes.PreviousFixes(ctx, inc.Cause)
	if err != nil {
		log.Warn("previous fixes unavailable for the ticket", "cause", inc.Cause, "err", err)
		return nil
	}
	var out []Fix
	for _, n := range notes {
		if n.Incident == inc.ID || len(out) == maxFixes {
			continue
		}
		out = append(out, n)
	}
	return out
}
