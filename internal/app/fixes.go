package app

import (
	"context"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/knowledge"
	"github.com/vmtriage/vmtriage/tickets"
)

// kbFixes gives the notifier the resolution notes the knowledge base keeps
// per cause, as "how this was fixed before" on the next incident of that
// cause.
type kbFixes struct{ kb *knowledge.KB }

var _ bot.FixSource = kbFixes{}

// PreviousFixes turns the knowledge base's notes into the bot's fixes.
func (f kbFixes) PreviousFixes(ctx context.Context, cause string) ([]bot.Fix, error) {
	notes, err := f.kb.PreviousFixes(ctx, cause)
	if err != nil {
		return nil, err
	}
	out := make([]bot.Fix, 0, len(notes))
	for _, n := range notes {
		out = append(out, bot.Fix{Incident: n.Incident, Text: n.Text, Author: n.Author, Time: n.Time})
	}
	return out, nil
}

// ticketFixes gives the ticket worker the resolution notes of a cause
// straight from the store, where the knowledge base keeps them and reads
// them the same way. It asks for one more than a ticket lists, since the
// incident's own note is left out.
type ticketFixes struct{ st *store.Store }

var _ tickets.FixReader = ticketFixes{}

// PreviousFixes returns the newest notes kept for cause.
func (f ticketFixes) PreviousFixes(ctx context.Context, cause string) ([]store.Note, error) {
	return f.st.Notes(ctx, cause, 4)
}
