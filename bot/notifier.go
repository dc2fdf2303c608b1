package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Event is one entry of the incidents stream: the stream entry's ID and the
// incident snapshot it holds.
type Event struct {
	ID       string
	Incident model.Incident
}

// EventSource is the incidents stream, read through a consumer group. The
// state store implements it (through a small adapter from its own event
// type). Read and Claim return nil, nil when nothing is waiting.
type EventSource interface {
	ReadIncidentEvents(ctx context.Context, group, consumer string, count int, block time.Duration) ([]Event, error)
	ClaimIncidentEvents(ctx context.Context, group, consumer string, minIdle time.Duration, count int) ([]Event, error)
	AckIncidentEvents(ctx context.Context, group string, ids ...string) error
}

// Change is one thing that changed in an incident since it was last posted.
// A Slack poster updates the incident's message in place and posts the
// changes that deserve it in the message's thread.
type Change string

// Changes, as Changes reports them.
const (
	ChangeOpened    Change = "opened"    // first time posted
	ChangeEscalated Change = "escalated" // Level went up
	ChangeAcked     Change = "acked"     // AckedBy set
	ChangeApproval  Change = "approval"  // Approval changed
	ChangeTicket    Change = "ticket"    // Ticket set or changed
	// ChangeTicketError: Jira refused the ticket or an update of it
	// (TicketError set or changed).
	ChangeTicketError Change = "ticket-error"
	ChangeSilenced    Change = "silenced"   // Silenced or inhibited
	ChangeUnsilenced  Change = "unsilenced" // no longer silenced nor inhibited
	ChangeReopened    Change = "reopened"   // Reopened went up
	ChangeResolved    Change = "resolved"   // Status became resolved
	ChangeUpdated     Change = "updated"    // anything else (more VMs, a new runbook)
)

// Changes lists what changed from prev (the version last posted, nil when
// none is known) to cur. It never returns an empty list.
func Changes(prev *model.Incident, cur model.Incident) []Change {
	if prev == nil {
		if cur.Status == model.StatusResolved {
			return []Change{ChangeResolved}
		}
		return []Change{ChangeOpened}
	}
	var out []Change
	if cur.Reopened > prev.Reopened {
		out = append(out, ChangeReopened)
	}
	if cur.Level > prev.Level {
		out = append(out, ChangeEscalated)
	}
	if cur.AckedBy != "" && cur.AckedBy != prev.AckedBy {
		out = append(out, ChangeAcked)
	}
	if cur.Approval != prev.Approval || cur.Remedy != prev.Remedy {
		out = append(out, ChangeApproval)
	}
	if cur.Ticket != "" && cur.Ticket != prev.Ticket {
		out = append(out, ChangeTicket)
	}
	if cur.TicketError != "" && cur.TicketError != prev.TicketError {
		out = append(out, ChangeTicketError)
	}
	muted := func(i *model.Incident) bool { return i.Silenced || i.InhibitedBy != "" }
	switch {
	case muted(&cur) && !muted(prev):
		out = append(out, ChangeSilenced)
	case !muted(&cur) && muted(prev):
		out = append(out, ChangeUnsilenced)
	}
	if cur.Status == model.StatusResolved && prev.Status != model.StatusResolved {
		out = append(out, ChangeResolved)
	}
	if len(out) == 0 {
		out = append(out, ChangeUpdated)
	}
	return out
}

// Has reports whether c is in changes.
func Has(changes []Change, c Change) bool { return slices.Contains(changes, c) }

// Notification is one incident change handed to a Poster.
type Notification struct {
	// View is the incident prepared for people; View.Incident is the
	// snapshot and View.Version its version.
	View IncidentView
	// Previous is the version this process last posted of the incident, or
	// nil when it knows none (first post, or after a restart). A poster
	// that keeps its own record (Slack's incident→message mapping in Redis)
	// should trust that record over this.
	Previous *model.Incident
	// Changes says what changed since Previous.
	Changes []Change
}

// Poster delivers incident notifications: the console prints them; a chat
// poster posts the first one and then updates that message in place,
// putting follow-ups in its thread. Post must be idempotent for one incident
// version (a restart may deliver it again) and must not let an older version
// overwrite a newer one that another process posted. An error that
// implements RetryAfterError sets the wait before the retry; one that
// implements PermanentError is not retried.
type Poster interface {
	Post(ctx context.Context, n Notification) error
}

// NotifierOptions configures a Notifier. Events and Poster are required.
type NotifierOptions struct {
	Events EventSource
	Poster Poster
	// Group is the consumer group (default "bot"): each group sees every
	// incident change once, so the console and Slack use different groups.
	Group string
	// Consumer names this process within the group (default host-pid).
	Consumer string
	// Batch is how many events to read at once (default 50).
	Batch int
	// Block is how long a read waits for new events (default 5s; must be
	// positive, a zero block would wait forever).
	Block time.Duration
	// ClaimIdle is how long an event may stay unacknowledged by another
	// consumer before this one takes it over (default 1m); ClaimEvery is
	// how often to look for such events (default 30s).
	ClaimIdle, ClaimEvery time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries of a failed
	// post or read (defaults 1s and 1m); the wait doubles each attempt.
	MinBackoff, MaxBackoff time.Duration
	// Fixes, if set, gives each posted incident how earlier incidents of
	// its cause were fixed (IncidentView.PreviousFixes). A failed look-up
	// is logged and the incident posted without them.
	Fixes FixSource
	// ShouldPost decides whether a change is worth posting; see
	// DefaultShouldPost, the default.
	ShouldPost func(prev *model.Incident, cur model.Incident) bool
	// Forget is how long a resolved incident's last posted version is
	// remembered, to drop late duplicates (default 24h).
	Forget time.Duration
	// Sleep waits d or until ctx ends; tests replace it so retries happen
	// without waiting. Default: a timer.
	Sleep  func(ctx context.Context, d time.Duration) error
	Clock  clock.Clock  // default clock.Real{}
	Logger *slog.Logger // default discards
}

// DefaultShouldPost posts what people need to hear about: an incident once
// it fires (not while pending), unless it is silenced or muted by its host's
// incident; and every later change of an incident already posted, so its
// message shows that it was acknowledged, silenced or resolved. An incident
// that resolved without ever firing is not posted.
func DefaultShouldPost(prev *model.Incident, cur model.Incident) bool {
	if prev != nil {
		return true
	}
	switch {
	case cur.Status == model.StatusPending:
		return false
	case cur.Silenced || cur.InhibitedBy != "":
		return false
	case cur.Status == model.StatusResolved && cur.FiringAt.IsZero():
		return false
	}
	return true
}

// Notifier reads incident changes from the stream and posts them, in order,
// acknowledging each event only once its post succeeded. A failed post is
// retried with backoff until it succeeds or the context ends, so a chat
// outage delays notifications and loses none. Several versions of one
// incident read together are posted once, as the newest; a version older
// than one already posted is dropped.
type Notifier struct {
	opts NotifierOptions
	log  *slog.Logger

	// known holds what this process last saw of each incident: the newest
	// version seen and the last snapshot posted.
	known     map[string]*seen
	lastClaim time.Time
	// unacked are event IDs whose acknowledgement failed; retried with the
	// next acknowledgement.
	unacked []string
}

type seen struct {
	version int64
	posted  *model.Incident
	// done is when the incident was seen resolved; zero while open.
	done time.Time
}

// NewNotifier returns a Notifier; call Run to start it.
func NewNotifier(opts NotifierOptions) (*Notifier, error) {
	if opts.Events == nil || opts.Poster == nil {
		return nil, errors.New("new notifier: Options.Events and Options.Poster are required")
	}
	if opts.Group == "" {
		opts.Group = "bot"
	}
	if opts.Consumer == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "bot"
		}
		opts.Consumer = host + "-" + strconv.Itoa(os.Getpid())
	}
	if opts.Batch <= 0 {
		opts.Batch = 50
	}
	if opts.Block <= 0 {
		opts.Block = 5 * time.Second
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = time.Minute
	}
	if opts.ClaimEvery <= 0 {
		opts.ClaimEvery = 30 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(time.Minute, opts.MinBackoff)
	}
	if opts.ShouldPost == nil {
		opts.ShouldPost = DefaultShouldPost
	}
	if opts.Forget <= 0 {
		opts.Forget = 24 * time.Hour
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{
		opts:  opts,
		log:   log.With("group", opts.Group, "consumer", opts.Consumer),
		known: map[string]*seen{},
	}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Run reads and posts until ctx ends, then returns nil. Read errors are
// logged and retried with backoff; they never stop the loop.
func (n *Notifier) Run(ctx context.Context) error {
	failures := 0
	for ctx.Err() == nil {
		if err := n.Step(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			wait := n.backoff(failures)
			n.log.Warn("read incident events", "err", err, "attempt", failures, "retry_in", wait.String())
			if n.opts.Sleep(ctx, wait) != nil {
				break
			}
			continue
		}
		failures = 0
	}
	return nil
}

// Step does one round: it takes over stale events when due, reads new
// ones, and posts and acknowledges them. It returns an error only when the
// stream could not be read; post failures are retried within the step
// until they succeed or ctx ends. Run calls Step in a loop; tests may call
// it directly.
func (n *Notifier) Step(ctx context.Context) error {
	now := n.opts.Clock.Now()
	if n.lastClaim.IsZero() || now.Sub(n.lastClaim) >= n.opts.ClaimEvery {
		evs, err := n.opts.Events.ClaimIncidentEvents(ctx, n.opts.Group, n.opts.Consumer, n.opts.ClaimIdle, n.opts.Batch)
		if err != nil {
			return fmt.Errorf("claim stale incident events: %w", err)
		}
		n.lastClaim = now
		n.forget(now)
		if len(evs) > 0 {
			n.log.Info("took over stale incident events", "count", len(evs))
			if err := n.handle(ctx, evs); err != nil {
				return nil // ctx ended mid-post; the events stay pending
			}
		}
	}
	evs, err := n.opts.Events.ReadIncidentEvents(ctx, n.opts.Group, n.opts.Consumer, n.opts.Batch, n.opts.Block)
	if err != nil {
		return fmt.Errorf("read incident events: %w", err)
	}
	if len(evs) > 0 {
		_ = n.handle(ctx, evs) // an error means ctx ended; the events stay pending
	}
	return nil
}

// handle posts a batch: per incident, only the newest version, in the order
// of the batch. Each incident's events are acknowledged once its post
// succeeded or was skipped.
func (n *Notifier) handle(ctx context.Context, evs []Event) error {
	type group struct {
		newest Event
		pos    int // index of newest in evs
		ids    []string
	}
	var order []string
	groups := map[string]*group{}
	for i, ev := range evs {
		id := ev.Incident.ID
		g, ok := groups[id]
		if !ok {
			g = &group{newest: ev, pos: i}
			groups[id] = g
			order = append(order, id)
		}
		g.ids = append(g.ids, ev.ID)
		if ev.Incident.Version > g.newest.Incident.Version {
			g.newest, g.pos = ev, i
		}
	}
	// Post in the order the newest versions arrived, so the batch keeps
	// the stream's order of changes.
	slices.SortStableFunc(order, func(a, b string) int { return groups[a].pos - groups[b].pos })
	for _, id := range order {
		g := groups[id]
		if err := n.deliver(ctx, g.newest.Incident); err != nil {
			return err
		}
		n.ack(ctx, g.ids)
	}
	return nil
}

// deliver posts one incident version unless it is stale or not worth
// posting. It returns an error only when ctx ended before the post
// succeeded.
func (n *Notifier) deliver(ctx context.Context, inc model.Incident) error {
	log := n.log.With("incident", inc.ID, "version", inc.Version)
	k := n.known[inc.ID]
	if k != nil && inc.Version <= k.version {
		log.Debug("skip stale or duplicate incident version", "newest_seen", k.version)
		return nil
	}
	if k == nil {
		k = &seen{}
		n.known[inc.ID] = k
	}
	if !n.opts.ShouldPost(k.posted, inc) {
		log.Debug("incident change not posted", "status", string(inc.Status), "silenced", inc.Silenced, "inhibited_by", inc.InhibitedBy)
		n.remember(k, inc, false)
		return nil
	}
	view := NewIncidentView(inc)
	fixes, err := previousFixes(ctx, n.opts.Fixes, inc.ID, inc.Cause)
	if err != nil {
		log.Warn("previous fixes unavailable; posting without them", "cause", inc.Cause, "err", err)
	}
	view.PreviousFixes = fixes
	note := Notification{View: view, Previous: k.posted, Changes: Changes(k.posted, inc)}
	for attempt := 1; ; attempt++ {
		err := n.opts.Poster.Post(ctx, note)
		if err == nil {
			log.Debug("incident posted", "changes", fmt.Sprint(note.Changes))
			n.remember(k, inc, true)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if isPermanent(err) {
			log.Error("post incident failed for good; dropped", "err", err)
			n.remember(k, inc, false)
			return nil
		}
		wait, hinted := retryAfter(err)
		if !hinted {
			wait = n.backoff(attempt)
		}
		log.Warn("post incident failed; will retry", "err", err, "attempt", attempt, "retry_in", wait.String(), "retry_after_hint", hinted)
		if err := n.opts.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (n *Notifier) remember(k *seen, inc model.Incident, posted bool) {
	k.version = inc.Version
	if posted {
		snap := inc
		k.posted = &snap
	}
	if inc.Status == model.StatusResolved {
		k.done = n.opts.Clock.Now()
	} else {
		k.done = time.Time{}
	}
}

// forget drops resolved incidents seen longer ago than Forget, so the map
// holds only open incidents and recent history.
func (n *Notifier) forget(now time.Time) {
	for id, k := range n.known {
		if !k.done.IsZero() && now.Sub(k.done) > n.opts.Forget {
			delete(n.known, id)
		}
	}
}

// ack acknowledges ids, together with any whose acknowledgement failed
// before. A failure is logged and retried later: the worst outcome is that
// the events are delivered again and dropped as duplicates.
func (n *Notifier) ack(ctx context.Context, ids []string) {
	all := append(n.unacked, ids...)
	if err := n.opts.Events.AckIncidentEvents(ctx, n.opts.Group, all...); err != nil {
		n.log.Warn("ack incident events", "err", err, "count", len(all))
		if len(all) > maxUnacked {
			all = all[len(all)-maxUnacked:]
		}
		n.unacked = all
		return
	}
	n.unacked = nil
}

// maxUnacked bounds the acknowledgements kept for retry; older ones are
// given up on (their events come back through a claim and are dropped as
// duplicates).
const maxUnacked = 10000

func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.opts.MinBackoff
	for i := 1; i < attempt && d < n.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, n.opts.MaxBackoff)
}
