package tickets

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// Types shared with the state store.
type (
	// IncidentEvent is one entry of the incidents change stream.
	IncidentEvent = store.IncidentEvent
	// TicketOp is one entry of the ticket operation stream.
	TicketOp = store.TicketOp
	// TicketRecord is what is remembered of an incident's ticket.
	TicketRecord = store.TicketRecord
)

// The state store is what Tickets runs on.
var (
	_ Store      = (*store.Store)(nil)
	_ HostReader = (*store.Store)(nil)
)

// ErrNotFound is matched (errors.Is) by errors about an incident that does
// not exist.
var ErrNotFound = store.ErrNotFound

// ErrQueued is matched by CreateNow's error when Jira could not be reached
// and the request was queued: the ticket is created once Jira answers.
var ErrQueued = errors.New("queued until Jira answers")

// errBusy means another worker holds the incident's lock.
var errBusy = errors.New("another worker is updating this incident's ticket")

// Tickets opens and maintains one Jira ticket per incident that matters.
// It is safe for concurrent use; several processes may run it against one
// Redis and one Jira.
type Tickets struct {
	opts   Options
	jira   *client
	render *renderer
	log    *slog.Logger
	// owner names this process in ticket locks; attempts numbers them.
	owner    string
	attempts atomic.Uint64
	auto     map[model.Severity]bool
	state    stepState
	m        *metrics
	// ownErrorSaves maps an incident ID to the version this process saved
	// to show Jira's refusal of its ticket (see showError).
	ownErrorSaves sync.Map
}

// New checks opts and returns Tickets; call Run to follow incidents.
func New(opts Options) (*Tickets, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r, err := newRenderer(o.SummaryTemplate, o.DescriptionTemplate, o.MaxDescription)
	if err != nil {
		return nil, err
	}
	c, err := newClient(o)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	if o.Consumer == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "tickets"
		}
		o.Consumer = host + "-" + strconv.Itoa(os.Getpid())
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	t := &Tickets{
		opts: o, jira: c, render: r, m: m,
		log:   o.Logger.With("component", "tickets", "consumer", o.Consumer),
		owner: o.Consumer + "-" + hex.EncodeToString(b[:]),
		auto:  map[model.Severity]bool{},
	}
	for _, s := range o.Severities {
		t.auto[s] = true
	}
	return t, nil
}

// Automatic reports whether inc gets a ticket without anyone asking: its
// severity is configured, it fired, and it is neither silenced nor muted
// by its host's incident (which has the ticket). A resolved incident
// qualifies only within the Backfill period, so that switching tickets on
// does not open one for every incident in the stream's history.
func (t *Tickets) Automatic(inc *model.Incident) bool {
	if !t.auto[inc.Severity] || inc.Silenced || inc.InhibitedBy != "" {
		return false
	}
	switch inc.Status {
	case model.StatusFiring:
		return true
	case model.StatusResolved:
		return !inc.FiringAt.IsZero() && t.opts.Backfill > 0 && t.opts.Clock.Now().Sub(inc.ResolvedAt) <= t.opts.Backfill
	}
	return false
}

// CreateNow creates (or finds) the incident's ticket at once, whatever its
// severity, and follows the incident from then on; it is what
// "/triage ticket <incident>" runs. When Jira cannot be reached the request
// is queued and the error matches ErrQueued. A Jira refusal is an
// *APIError saying what to change; an unknown incident matches
// ErrNotFound.
func (t *Tickets) CreateNow(ctx context.Context, incidentID string) (key, url string, err error) {
	op := TicketOp{Incident: incidentID, Force: true, Reason: "command"}
	for attempt := 1; ; attempt++ {
		err = t.attempt(ctx, op)
		if !errors.Is(err, errBusy) || attempt == 25 {
			break
		}
		// Another worker is on it, probably creating this very ticket:
		// its attempt is short, so wait a little rather than queue.
		if serr := t.opts.Sleep(ctx, min(t.opts.MinBackoff, 200*time.Millisecond)); serr != nil {
			return "", "", serr
		}
	}
	if errors.Is(err, ErrNotFound) || ctx.Err() != nil {
		return "", "", err
	}
	if err == nil || !temporary(err) {
		// The ticket may exist even when a later step was refused.
		rec, rerr := t.opts.Store.TicketRecord(ctx, incidentID)
		if rerr != nil && !errors.Is(rerr, ErrNotFound) {
			return "", "", fmt.Errorf("ticket for %s: %w", incidentID, rerr)
		}
		if rec.Key == "" && err == nil {
			err = fmt.Errorf("ticket for %s: no ticket after a successful attempt", incidentID)
		}
		return rec.Key, rec.URL, err
	}
	if qerr := t.opts.Store.EnqueueTicketOp(ctx, op); qerr != nil {
		return "", "", fmt.Errorf("ticket for %s: %w (and queueing failed: %v)", incidentID, err, qerr)
	}
	t.m.queuedOps.Inc()
	t.log.Warn("ticket queued: Jira did not answer", "incident", incidentID, "err", err)
	return "", "", fmt.Errorf("ticket for %s: %w: %w", incidentID, ErrQueued, err)
}

// Note queues text as a comment on the incident's ticket (an action's
// result, say). It is added once the ticket exists; an incident without
// ticket drops it.
func (t *Tickets) Note(ctx context.Context, incidentID, text string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return errors.New("ticket note: text is empty")
	}
	if err := t.opts.Store.EnqueueTicketOp(ctx, TicketOp{Incident: incidentID, Reason: "note", Note: text}); err != nil {
		return err
	}
	t.m.queuedOps.Inc()
	return nil
}

// Status returns what is known of the incident's ticket: its key and URL,
// and the last error no retry could fix (what to change), if any.
func (t *Tickets) Status(ctx context.Context, incidentID string) (TicketRecord, error) {
	rec, err := t.opts.Store.TicketRecord(ctx, incidentID)
	if errors.Is(err, ErrNotFound) {
		return TicketRecord{Incident: incidentID}, nil
	}
	return rec, err
}

// attempt runs one operation under the incident's lock, with a time
// limit. Its error is temporary (retry later), permanent (an *APIError or
// another error with Permanent() true, already recorded on the ticket
// record), or wraps ErrNotFound.
func (t *Tickets) attempt(ctx context.Context, op TicketOp) error {
	// Each attempt is its own owner: goroutines of one process must
	// exclude each other too.
	owner := t.owner + "-" + strconv.FormatUint(t.attempts.Add(1), 10)
	ok, err := t.opts.Store.LockTicket(ctx, op.Incident, owner, t.opts.LockTTL)
	if err != nil {
		return err
	}
	if !ok {
		t.m.busy.Inc()
		return errBusy
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.opts.AttemptTimeout)
		defer cancel()
		if err := t.opts.Store.UnlockTicket(uctx, op.Incident, owner); err != nil {
			t.log.Warn("release ticket lock", "incident", op.Incident, "err", err)
		}
	}()
	actx, cancel := context.WithTimeout(ctx, t.opts.AttemptTimeout)
	defer cancel()
	err = t.sync(actx, op)
	switch {
	case err == nil:
		t.m.done.Inc()
	case errors.Is(err, ErrNotFound):
		t.m.dropped.Inc()
	case temporary(err):
		t.m.retried.Inc()
	default:
		t.m.refused.Inc()
	}
	return err
}

// sync brings the incident's ticket in line with the incident. The caller
// holds the lock.
func (t *Tickets) sync(ctx context.Context, op TicketOp) error {
	log := t.log.With("incident", op.Incident)
	inc, err := t.opts.Store.Incident(ctx, op.Incident)
	if err != nil {
		return err
	}
	rec, err := t.opts.Store.TicketRecord(ctx, inc.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		rec = TicketRecord{Incident: inc.ID}
	case err != nil:
		return err
	}
	dirty := false
	if op.Force && !rec.Forced {
		rec.Forced, dirty = true, true
	}
	if rec.Key == "" && inc.Ticket != "" {
		// The incident names a ticket this record lost (expired, or
		// written by an older version): follow that one.
		rec.Key, rec.URL, rec.Synced, dirty = inc.Ticket, inc.TicketURL, baselineKeepStatus(inc), true
	}
	if rec.Key == "" {
		if !rec.Forced && !t.Automatic(&inc) {
			if dirty {
				return t.opts.Store.SaveTicketRecord(ctx, &rec)
			}
			if op.Note != "" {
				log.Debug("note dropped: the incident has no ticket")
			}
			return nil
		}
		if !op.Force && t.ownErrorSave(&inc, &rec) {
			log.Debug("ticket creation refused for this version; waiting for a change or /triage ticket")
			return nil
		}
		if err := t.ensure(ctx, log, &inc, &rec); err != nil {
			return t.failed(ctx, log, &inc, &rec, err)
		}
	}
	if inc.Ticket != rec.Key || inc.TicketURL != rec.URL {
		if err := t.setIncidentTicket(ctx, &inc, rec.Key, rec.URL); err != nil {
			return err
		}
	}
	if err := t.follow(ctx, log, &inc, &rec); err != nil {
		return err
	}
	if dirty && op.Note == "" {
		return t.opts.Store.SaveTicketRecord(ctx, &rec)
	}
	if op.Note != "" {
		body := trimText(escapeWiki(op.Note), t.opts.MaxDescription, "the note was longer")
		err := t.once(ctx, &rec, step{id: "note-" + op.ID, comment: body})
		if err != nil && temporary(err) {
			if serr := t.opts.Store.SaveTicketRecord(ctx, &rec); serr != nil {
				log.Warn("save ticket progress", "err", serr)
			}
			return err
		}
		if err != nil {
			return t.failed(ctx, log, &inc, &rec, err)
		}
		return t.opts.Store.SaveTicketRecord(ctx, &rec)
	}
	return nil
}

// once applies a step unless rec says it is done. A comment whose earlier
// attempt failed without a clear answer (a 5xx or a timeout: Jira may have
// written it) is first looked for among the ticket's comments, so a retry
// does not post it twice.
func (t *Tickets) once(ctx context.Context, rec *TicketRecord, s step) error {
	if slices.Contains(rec.Done, s.id) {
		return nil
	}
	maybe := "?" + s.id
	if s.move == nil && slices.Contains(rec.Done, maybe) {
		bodies, err := t.jira.comments(ctx, rec.Key)
		if err != nil {
			return err
		}
		if slices.Contains(bodies, s.comment) {
			rec.Done = append(rec.Done, s.id)
			return nil
		}
	}
	err := t.apply(ctx, rec.Key, s)
	var ae *APIError
	if err != nil && errors.As(err, &ae) && ae.Temporary() && ae.Status != http.StatusTooManyRequests && !slices.Contains(rec.Done, maybe) {
		rec.Done = append(rec.Done, maybe)
	}
	if err == nil {
		rec.Done = append(rec.Done, s.id)
	}
	return err
}

// baseline is the state a new ticket's description shows, against which
// later changes are worked out. An incident already resolved is taken as
// still open, so that the resolution is commented and transitioned.
func baseline(inc model.Incident) *model.Incident {
	b := inc
	if b.Status == model.StatusResolved {
		b.Status = model.StatusFiring
		b.ResolvedAt = time.Time{}
	}
	b.VMs = slices.Clone(inc.VMs)
	return &b
}

// ensure finds the incident's ticket or creates it, and records it.
// Before creating it looks the fingerprint label up: a ticket carrying the
// incident's own label is this incident's (created by an attempt whose
// answer was lost, or by another replica), an open ticket or one resolved
// within the reopen window belongs to an earlier occurrence and is reused
// (reopened if need be).
func (t *Tickets) ensure(ctx context.Context, log *slog.Logger, inc *model.Incident, rec *TicketRecord) error {
	fpLabel, incLabel := FingerprintLabel(inc), IncidentLabel(inc)
	hits, err := t.jira.search(ctx, fpLabel)
	if err != nil {
		return err
	}
	now := t.opts.Clock.Now()
	for _, h := range hits {
		if slices.Contains(h.Labels, incLabel) {
			log.Info("ticket found by label", "ticket", h.Key)
			return t.record(ctx, rec, h.Key, inc)
		}
	}
	if len(hits) > 0 {
		newest := hits[0]
		recent := t.opts.ReopenWindow > 0 && !newest.Resolved.IsZero() && now.Sub(newest.Resolved) <= t.opts.ReopenWindow
		if !newest.Done || recent {
			// Reopen first and label last: a crash in between repeats the
			// comment rather than losing the reopening.
			if newest.Done {
				if err := t.jira.transition(ctx, newest.Key, t.opts.ReopenTransitions, false); err != nil {
					return err
				}
			}
			if err := t.jira.comment(ctx, newest.Key, recurrenceComment(inc)); err != nil {
				return err
			}
			if err := t.jira.addLabel(ctx, newest.Key, incLabel); err != nil {
				return err
			}
			t.m.reused.Inc()
			log.Info("recurrence: reusing the earlier occurrence's ticket", "ticket", newest.Key, "reopened", newest.Done)
			return t.record(ctx, rec, newest.Key, inc)
		}
	}
	labels := []string{Label, fpLabel, incLabel}
	data := ticketData(*inc, t.period(ctx, inc), labels, now)
	data.PreviousFixes = t.previousFixes(ctx, log, inc)
	summary, err := t.render.Summary(data)
	if err != nil {
		return &permanentError{msg: err.Error()}
	}
	desc, err := t.render.Description(data)
	if err != nil {
		return &permanentError{msg: err.Error()}
	}
	component, assignee := t.opts.Components[inc.Cause], t.opts.Assignees[inc.Cause]
	if t.opts.Owner != nil {
		c, a := t.opts.Owner(inc)
		component, assignee = cmp.Or(c, component), cmp.Or(a, assignee)
	}
	key, err := t.jira.create(ctx, newIssue{
		Summary: summary, Description: desc, Labels: labels,
		Priority:  t.opts.Priorities[inc.Severity],
		Component: component,
		Assignee:  assignee,
	})
	if err != nil {
		return err
	}
	t.m.created.Inc()
	log.Info("ticket created", "ticket", key)
	return t.record(ctx, rec, key, inc)
}

// record saves the ticket's key on the record and on the incident.
func (t *Tickets) record(ctx context.Context, rec *TicketRecord, key string, inc *model.Incident) error {
	rec.Key, rec.URL, rec.Synced, rec.Done = key, t.jira.URL(key), baseline(*inc), nil
	rec.Error, rec.ErrorAt = "", time.Time{}
	if err := t.opts.Store.SaveTicketRecord(ctx, rec); err != nil {
		return err
	}
	return t.setIncidentTicket(ctx, inc, rec.Key, rec.URL)
}

// setIncidentTicket stores the key and URL on the incident, and clears an
// earlier refusal (the ticket exists now), reloading and retrying when
// another writer (the rules engine) saved it in between.
func (t *Tickets) setIncidentTicket(ctx context.Context, inc *model.Incident, key, url string) error {
	err := t.updateIncident(ctx, inc, func(i *model.Incident) bool {
		if i.Ticket == key && i.TicketURL == url && i.TicketError == "" {
			return false
		}
		i.Ticket, i.TicketURL, i.TicketError = key, url, ""
		return true
	})
	if err != nil {
		return fmt.Errorf("store ticket %s on %s: %w", key, inc.ID, err)
	}
	return nil
}

// period finds the host's collection period in which the incident started.
func (t *Tickets) period(ctx context.Context, inc *model.Incident) *model.HostPeriod {
	if t.opts.Hosts == nil || inc.Host == "" || inc.StartedAt.IsZero() {
		return nil
	}
	h, err := t.opts.Hosts.Host(ctx, inc.Host, 64)
	if err != nil {
		t.log.Debug("host periods unavailable for the ticket", "incident", inc.ID, "host", inc.Host, "err", err)
		return nil
	}
	for _, p := range h.Periods { // newest first
		if !p.Start.After(inc.StartedAt) {
			return &p
		}
	}
	return nil
}

// step is one change to bring to the ticket: a comment, or a transition.
type step struct {
	id      string
	comment string
	// move, if set, transitions the ticket: true to a done status, false
	// back to an open one.
	move *bool
}

// follow comments and transitions what changed since the ticket last
// reflected the incident, step by step, remembering each step done so a
// retry does not repeat it.
func (t *Tickets) follow(ctx context.Context, log *slog.Logger, inc *model.Incident, rec *TicketRecord) error {
	prev := rec.Synced
	if prev == nil {
		rec.Synced = baseline(*inc)
		return t.opts.Store.SaveTicketRecord(ctx, rec)
	}
	steps := changes(prev, inc)
	if len(steps) == 0 && prev.Version == inc.Version {
		return nil
	}
	var permanent error
	for _, s := range steps {
		err := t.once(ctx, rec, s)
		if err != nil && temporary(err) {
			if serr := t.opts.Store.SaveTicketRecord(ctx, rec); serr != nil {
				log.Warn("save ticket progress", "err", serr)
			}
			return err
		}
		if err != nil {
			// Skip what cannot be done, say so, and go on with the rest.
			permanent = err
			t.note(log, rec, err)
			rec.Done = append(rec.Done, s.id)
		}
	}
	if inc.Status == model.StatusResolved && prev.Status != model.StatusResolved {
		t.keepFixNote(ctx, log, inc, rec.Key)
	}
	// Steps are done; notes keep their marks (they are not steps of
	// this update).
	rec.Synced = baselineKeepStatus(*inc)
	rec.Done = slices.DeleteFunc(rec.Done, func(id string) bool { return !strings.HasPrefix(strings.TrimPrefix(id, "?"), "note-") })
	if permanent == nil && len(steps) > 0 {
		// Only an update that went through ends a refusal: a change
		// with nothing to do (such as showing the refusal on the
		// incident) leaves it standing.
		rec.Error, rec.ErrorAt = "", time.Time{}
	}
	if err := t.opts.Store.SaveTicketRecord(ctx, rec); err != nil {
		return err
	}
	switch {
	case permanent != nil:
		t.showError(ctx, log, *inc, rec.Error)
	case len(steps) > 0:
		// An update went through: an earlier refusal is over.
		t.showError(ctx, log, *inc, "")
	}
	return permanent
}

func baselineKeepStatus(inc model.Incident) *model.Incident {
	b := inc
	b.VMs = slices.Clone(inc.VMs)
	return &b
}

func (t *Tickets) apply(ctx context.Context, key string, s step) error {
	if s.move == nil {
		return t.jira.comment(ctx, key, s.comment)
	}
	names := t.opts.ReopenTransitions
	if *s.move {
		names = t.opts.ResolveTransitions
	}
	return t.jira.transition(ctx, key, names, *s.move)
}

// failed records a permanent error on the ticket record and on the
// incident, and logs it; a temporary one is returned as is for a retry.
func (t *Tickets) failed(ctx context.Context, log *slog.Logger, inc *model.Incident, rec *TicketRecord, err error) error {
	if temporary(err) || errors.Is(err, ErrNotFound) {
		return err
	}
	t.note(log, rec, err)
	if serr := t.opts.Store.SaveTicketRecord(ctx, rec); serr != nil {
		log.Warn("save ticket error", "err", serr)
	}
	t.showError(ctx, log, *inc, rec.Error)
	return err
}

func (t *Tickets) note(log *slog.Logger, rec *TicketRecord, err error) {
	rec.Error, rec.ErrorAt = err.Error(), t.opts.Clock.Now()
	log.Error("Jira refused a ticket operation; not retried until the incident changes or someone runs /triage ticket",
		"ticket", rec.Key, "err", err)
}
