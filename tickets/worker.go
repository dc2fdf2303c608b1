package tickets

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Run follows incidents until ctx ends, then returns nil. It runs two
// loops:
//
//   - the follower reads the incidents change stream in its own consumer
//     group (Options.Group, "tickets") and turns every change of an
//     incident that has or should get a ticket into an operation on the
//     ticket stream, acknowledging the change once the operation is
//     durable;
//   - the worker reads the ticket stream and brings each incident's ticket
//     in line with the incident, acknowledging an operation only once Jira
//     did it or refused it for good. While Jira is slow or down the
//     operations wait in Redis (a replica that dies leaves them pending for
//     another to claim); 429 waits for Retry-After, 5xx and timeouts back
//     off, 4xx are recorded on the ticket record and logged.
func (t *Tickets) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { t.loop(ctx, "follow incident changes", t.FollowStep) })
	wg.Go(func() { t.loop(ctx, "run ticket operations", t.WorkStep) })
	wg.Wait()
	return nil
}

func (t *Tickets) loop(ctx context.Context, what string, step func(context.Context) error) {
	failures := 0
	for ctx.Err() == nil {
		if err := step(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			wait := t.backoff(failures)
			t.log.Warn(what, "err", err, "attempt", failures, "retry_in", wait.String())
			if t.opts.Sleep(ctx, wait) != nil {
				return
			}
			continue
		}
		failures = 0
	}
}

func (t *Tickets) backoff(attempt int) time.Duration {
	d := t.opts.MinBackoff
	for i := 1; i < attempt && d < t.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, t.opts.MaxBackoff)
}

// follower state lives on Tickets: one Run per Tickets.
type stepState struct {
	mu                     sync.Mutex
	lastFollowClaim        time.Time
	lastWorkClaim          time.Time
	followClaimed, claimed bool
}

// FollowStep does one round of the follower: take over stale incident
// changes when due, read new ones, queue ticket operations for those that
// matter and acknowledge them. Run calls it in a loop; tests may call it
// directly.
func (t *Tickets) FollowStep(ctx context.Context) error {
	now := t.opts.Clock.Now()
	t.state.mu.Lock()
	due := !t.state.followClaimed || now.Sub(t.state.lastFollowClaim) >= t.opts.ClaimEvery
	t.state.mu.Unlock()
	if due {
		evs, err := t.opts.Store.ClaimIncidentEvents(ctx, t.opts.Group, t.opts.Consumer, t.opts.ClaimIdle, t.opts.Batch)
		if err != nil {
			return fmt.Errorf("claim stale incident changes: %w", err)
		}
		t.state.mu.Lock()
		t.state.lastFollowClaim, t.state.followClaimed = now, true
		t.state.mu.Unlock()
		if err := t.queue(ctx, evs); err != nil {
			return err
		}
	}
	evs, err := t.opts.Store.ReadIncidentEvents(ctx, t.opts.Group, t.opts.Consumer, t.opts.Batch, t.opts.Block)
	if err != nil {
		return fmt.Errorf("read incident changes: %w", err)
	}
	return t.queue(ctx, evs)
}

// queue turns incident changes into ticket operations, one per incident
// of the batch, and acknowledges the changes once those are in Redis.
func (t *Tickets) queue(ctx context.Context, evs []IncidentEvent) error {
	if len(evs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(evs))
	queued := map[string]bool{}
	for _, ev := range evs {
		ids = append(ids, ev.ID)
		inc := &ev.Incident
		if inc.ID == "" || queued[inc.ID] {
			continue
		}
		if inc.Ticket == "" && !t.Automatic(inc) {
			continue
		}
		if err := t.opts.Store.EnqueueTicketOp(ctx, TicketOp{Incident: inc.ID, Reason: "change"}); err != nil {
			return err // nothing acknowledged: the changes come back
		}
		t.m.queuedOps.Inc()
		queued[inc.ID] = true
	}
	if err := t.opts.Store.AckIncidentEvents(ctx, t.opts.Group, ids...); err != nil {
		return fmt.Errorf("acknowledge incident changes: %w", err)
	}
	return nil
}

// WorkStep does one round of the worker: take over operations another
// consumer left pending when due, read new ones, and run them. It returns
// an error only when the stream could not be read; failed operations are
// retried within the step until they succeed, are refused for good, or ctx
// ends (then they stay pending). Run calls it in a loop; tests may call it
// directly.
func (t *Tickets) WorkStep(ctx context.Context) error {
	now := t.opts.Clock.Now()
	t.state.mu.Lock()
	due := !t.state.claimed || now.Sub(t.state.lastWorkClaim) >= t.opts.ClaimEvery
	t.state.mu.Unlock()
	if due {
		ops, err := t.opts.Store.ClaimTicketOps(ctx, t.opts.Consumer, t.opts.ClaimIdle, t.opts.Batch)
		if err != nil {
			return fmt.Errorf("claim stale ticket operations: %w", err)
		}
		t.state.mu.Lock()
		t.state.lastWorkClaim, t.state.claimed = now, true
		t.state.mu.Unlock()
		if len(ops) > 0 {
			t.log.Info("took over stale ticket operations", "count", len(ops))
		}
		if err := t.work(ctx, ops); err != nil {
			return nil // ctx ended; the operations stay pending
		}
	}
	ops, err := t.opts.Store.ReadTicketOps(ctx, t.opts.Consumer, t.opts.Batch, t.opts.Block)
	if err != nil {
		return fmt.Errorf("read ticket operations: %w", err)
	}
	_ = t.work(ctx, ops) // an error means ctx ended; the operations stay pending
	return nil
}

// work runs a batch: the operations of one incident are merged (one
// update brings the ticket to the incident's latest state; notes are kept
// apart, in order) and acknowledged together once done.
func (t *Tickets) work(ctx context.Context, ops []TicketOp) error {
	type group struct {
		op    TicketOp
		notes []TicketOp
		ids   []string
	}
	var order []string
	groups := map[string]*group{}
	var junk []string
	for _, op := range ops {
		if op.Incident == "" {
			junk = append(junk, op.ID)
			continue
		}
		g, ok := groups[op.Incident]
		if !ok {
			g = &group{op: TicketOp{Incident: op.Incident, Reason: op.Reason}}
			groups[op.Incident] = g
			order = append(order, op.Incident)
		}
		g.op.Force = g.op.Force || op.Force
		if op.Note != "" {
			g.notes = append(g.notes, op)
		}
		g.ids = append(g.ids, op.ID)
	}
	if len(junk) > 0 {
		t.log.Error("undecodable ticket operations dropped", "count", len(junk))
		t.ack(ctx, junk)
	}
	for _, id := range order {
		g := groups[id]
		if err := t.run(ctx, g.op); err != nil {
			return err
		}
		for _, n := range g.notes {
			n.Force = false
			if err := t.run(ctx, n); err != nil {
				return err
			}
		}
		t.ack(ctx, g.ids)
	}
	return nil
}

// run tries one operation until it is done or refused for good; it
// returns an error only when ctx ended first.
func (t *Tickets) run(ctx context.Context, op TicketOp) error {
	log := t.log.With("incident", op.Incident, "reason", op.Reason)
	for attempt := 1; ; attempt++ {
		err := t.attempt(ctx, op)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrNotFound):
			log.Info("ticket operation for an incident that no longer exists; dropped")
			return nil
		case !temporary(err):
			// Recorded on the ticket record and logged by attempt.
			return nil
		}
		wait, hinted := t.wait(err, attempt)
		if errors.Is(err, errBusy) {
			log.Debug("incident's ticket is locked by another worker; waiting", "retry_in", wait.String())
		} else {
			log.Warn("ticket operation failed; will retry", "err", err, "attempt", attempt,
				"retry_in", wait.String(), "retry_after_hint", hinted)
		}
		if err := t.opts.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// wait is how long to wait before the next attempt: what Jira asked for,
// else exponential backoff.
func (t *Tickets) wait(err error, attempt int) (time.Duration, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter, true
	}
	if errors.Is(err, errBusy) {
		return t.opts.MinBackoff, false
	}
	return t.backoff(attempt), false
}

func (t *Tickets) ack(ctx context.Context, ids []string) {
	if err := t.opts.Store.AckTicketOps(ctx, ids...); err != nil {
		// The operations come back through a claim and are idempotent.
		t.log.Warn("acknowledge ticket operations", "err", err, "count", len(ids))
	}
}
