package tickets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// maxTicketError bounds the refusal kept on an incident, in characters:
// enough for Jira's field messages and the hint, not a whole response.
const maxTicketError = 500

// updateIncident applies change to inc and saves it with the version
// check, reloading and reapplying when another writer (the rules engine)
// saved it in between. change reports whether anything needs saving; inc
// ends as the stored copy.
func (t *Tickets) updateIncident(ctx context.Context, inc *model.Incident, change func(*model.Incident) bool) error {
	for range 10 {
		if !change(inc) {
			return nil
		}
		err := t.opts.Store.SaveIncident(ctx, inc)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		cur, gerr := t.opts.Store.Incident(ctx, inc.ID)
		if gerr != nil {
			return gerr
		}
		*inc = cur
	}
	return fmt.Errorf("%w ten times in a row", store.ErrConflict)
}

// showError puts Jira's refusal on the incident (TicketError), so that
// Slack, the console and GET /v1/incidents say why the ticket is missing
// or behind; text "" clears it. It saves only when the text changes: the
// save is itself an incident change, which the follower reads back. It
// works on a copy, so the caller's snapshot (what the ticket reflects)
// stays as it was. A failure is logged: the refusal is on the ticket
// record and in the log anyway.
func (t *Tickets) showError(ctx context.Context, log *slog.Logger, inc model.Incident, text string) {
	text = truncate(text, maxTicketError)
	err := t.updateIncident(ctx, &inc, func(i *model.Incident) bool {
		if i.TicketError == text {
			return false
		}
		i.TicketError = text
		return true
	})
	if err != nil {
		log.Warn("show the ticket error on the incident", "err", err)
		return
	}
	if text != "" {
		t.ownErrorSaves.Store(inc.ID, inc.Version)
	}
}

// ownErrorSave reports whether inc is the version this process saved to
// show a refusal of its ticket creation, with nothing else changed since:
// running the refused creation again for it would only be refused again.
func (t *Tickets) ownErrorSave(inc *model.Incident, rec *TicketRecord) bool {
	v, ok := t.ownErrorSaves.Load(inc.ID)
	return ok && v.(int64) == inc.Version && rec.Error != "" && inc.TicketError == truncate(rec.Error, maxTicketError)
}
