package slack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// MessageStore keeps where each incident's message lives, per channel, and
// leases the right to post or update it. *store.Store implements it.
type MessageStore interface {
	ClaimMessage(ctx context.Context, incidentID, channel, owner string, version int64, lease time.Duration) (store.MessageClaim, error)
	SaveMessage(ctx context.Context, incidentID, channel, owner string, u store.MessageUpdate) error
	ReleaseMessage(ctx context.Context, incidentID, channel, owner string) error
}

var (
	_ MessageStore = (*store.Store)(nil)
	_ bot.Poster   = (*Poster)(nil)
)

// DefaultLease is how long one replica may hold an incident's message while
// it talks to Slack. It must be longer than the Slack client's HTTP
// timeout, or a slow call could outlive the lease and race another replica.
const DefaultLease = 2 * time.Minute

// PosterOptions configures a Poster. Client, Store and DefaultChannel are
// required.
type PosterOptions struct {
	// Client talks to Slack's Web API (give it an HTTP client with a
	// timeout shorter than Lease).
	Client *goslack.Client
	// Store keeps the incident → message mapping; *store.Store.
	Store MessageStore
	// DefaultChannel gets every incident no other channel is set for.
	DefaultChannel string
	// SiteChannels maps a site to its channel; SeverityChannels maps a
	// severity (critical, high, medium, low) to its channel. An incident
	// goes to its site's and its severity's channels (one message in each),
	// or to DefaultChannel when neither is set.
	SiteChannels, SeverityChannels map[string]string
	// OwnerChannels, if set, names more channels for an incident: those of
	// the teams owning the services it hits (inventory.Manager's
	// OwnerChannels). Each gets its own message too, kept in step.
	OwnerChannels func(inc *model.Incident) []string
	// OwnerGroups, if set, gives the Slack user-group IDs of the teams
	// owning the services an incident hits (inventory.Manager's
	// OwnerGroups). An escalation level whose targets name the user group
	// "owners" (usergroup: owners in the rules) mentions those groups.
	OwnerGroups func(inc *model.Incident) []string
	// Lease is how long one replica may hold an incident's message (default
	// DefaultLease).
	Lease  time.Duration
	Clock  clock.Clock  // default clock.Real{}
	Logger *slog.Logger // default discards
}

// Poster posts incident notifications to Slack: the first as a message,
// later versions as chat.update of that same message, and follow-ups
// (escalation with its targets' mentions, acknowledgement, approval,
// ticket, silence, recurrence, resolution) in its thread. It is a
// bot.Poster, safe for concurrent use and across replicas: each step is
// recorded in the MessageStore under a lease, so a version is posted once
// and an older version never replaces a newer one.
type Poster struct {
	client *goslack.Client
	store  MessageStore
	routes routes
	groups func(inc *model.Incident) []string
	lease  time.Duration
	clock  clock.Clock
	log    *slog.Logger
}

// NewPoster checks opts and returns a Poster.
func NewPoster(opts PosterOptions) (*Poster, error) {
	if opts.Client == nil {
		return nil, errors.New("new slack poster: Client is required")
	}
	if opts.Store == nil {
		return nil, errors.New("new slack poster: Store is required")
	}
	r, err := newRoutes(opts.DefaultChannel, opts.SiteChannels, opts.SeverityChannels)
	if err != nil {
		return nil, fmt.Errorf("new slack poster: %w", err)
	}
	r.owners = opts.OwnerChannels
	p := &Poster{client: opts.Client, store: opts.Store, routes: r, groups: opts.OwnerGroups, lease: opts.Lease, clock: opts.Clock, log: opts.Logger}
	if p.lease <= 0 {
		p.lease = DefaultLease
	}
	if p.clock == nil {
		p.clock = clock.Real{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Post delivers n to every channel the incident is routed to. It is
// idempotent per incident version: a version already in a channel's message
// and thread is skipped. An error says whether to retry (see Error).
func (p *Poster) Post(ctx context.Context, n bot.Notification) error {
	inc := n.View.Incident
	if inc.ID == "" || inc.Version < 1 {
		return &Error{Op: "post incident", Incident: inc.ID, permanent: true,
			hint: fmt.Sprintf("an incident needs an id and a version of at least 1 (got %q, %d)", inc.ID, inc.Version)}
	}
	n.View.Incident.Targets = p.expandOwners(&inc)
	// Every channel is tried, so one refusing channel does not starve the
	// others. Any retryable failure makes the whole post retryable (the
	// channels already done are skipped on retry); only when every failure
	// is permanent is the post given up.
	var retry, permanent error
	for _, ch := range p.routes.channels(&inc) {
		err := p.postTo(ctx, n, ch)
		var pe bot.PermanentError
		switch {
		case err == nil:
		case errors.As(err, &pe) && pe.Permanent():
			if permanent == nil {
				permanent = err
			}
		case retry == nil:
			retry = err
		}
	}
	if retry != nil {
		return retry
	}
	return permanent
}

// postTo brings the incident's message in ch up to n's version: first post,
// or update, then the thread follow-up; each step is recorded as it
// succeeds, so a retry resumes where the last attempt stopped.
func (p *Poster) postTo(ctx context.Context, n bot.Notification, ch string) error {
	inc := n.View.Incident
	log := p.log.With("incident", inc.ID, "version", inc.Version, "channel", ch)
	owner := newOwner()
	claim, err := p.store.ClaimMessage(ctx, inc.ID, ch, owner, inc.Version, p.lease)
	if err != nil {
		return &Error{Op: "claim incident message", Incident: inc.ID, Channel: ch, Err: err}
	}
	switch claim.Status {
	case store.ClaimDone:
		log.Debug("incident version already in slack", "shown", claim.Version)
		return nil
	case store.ClaimBusy:
		wait := min(max(claim.Until.Sub(p.clock.Now()), time.Second), p.lease)
		log.Debug("another replica holds the incident message; will retry", "retry_in", wait.String())
		return &Error{Op: "claim incident message", Incident: inc.ID, Channel: ch, retryAfter: wait,
			hint: "another replica is posting it"}
	}
	// Store calls outlive a Slack call that timed out: what was done must
	// be recorded, and the lease released, whatever happened to ctx.
	storeCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	}
	defer func() {
		rctx, cancel := storeCtx()
		defer cancel()
		if err := p.store.ReleaseMessage(rctx, inc.ID, ch, owner); err != nil {
			log.Warn("release incident message lease; it will run out", "err", err)
		}
	}()
	// Slack calls must end well within the lease, whatever the client's
	// own timeout, or another replica could take over mid-call.
	ctx, cancel := context.WithTimeout(ctx, p.lease*3/4)
	defer cancel()
	save := func(u store.MessageUpdate) error {
		sctx, cancel := storeCtx()
		defer cancel()
		err := p.store.SaveMessage(sctx, inc.ID, ch, owner, u)
		if errors.Is(err, store.ErrLeaseLost) {
			// Merged anyway; only a Slack call slower than the lease gets
			// here, so say it loudly.
			log.Warn("incident message lease ran out during a slack call; raise the lease or lower the client timeout", "err", err)
			return nil
		}
		if err != nil {
			return &Error{Op: "record incident message", Incident: inc.ID, Channel: ch, Err: err}
		}
		return nil
	}
	snap := inc
	blocks, text := IncidentBlocks(n.View)
	msg := []goslack.MsgOption{goslack.MsgOptionText(text, false), goslack.MsgOptionBlocks(blocks...)}

	// post posts a new message for the incident. The first message shows
	// everything: no follow-up is owed for this version. Saving is retried
	// within the attempt, since a retry of the whole post would post a
	// second message.
	post := func(replace bool) error {
		_, ts, err := p.client.PostMessageContext(ctx, ch, msg...)
		if err != nil {
			return slackError("post incident", inc.ID, ch, err)
		}
		log.Info("incident posted to slack", "ts", ts)
		u := store.MessageUpdate{TS: ts, ReplaceTS: replace, Version: inc.Version, ThreadVersion: inc.Version, Incident: &snap}
		for attempt := 1; ; attempt++ {
			err := save(u)
			if err == nil || attempt == 3 {
				return err
			}
			log.Warn("record posted incident message; retrying", "err", err, "attempt", attempt)
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
	}
	if claim.TS == "" {
		return post(false)
	}

	if claim.Version < inc.Version {
		if _, _, _, err := p.client.UpdateMessageContext(ctx, ch, claim.TS, msg...); err != nil {
			se := slackError("update incident message", inc.ID, ch, err)
			if se.Code == "message_not_found" {
				// Someone deleted the message in Slack: post a new one
				// rather than lose the incident's updates.
				log.Warn("incident message was deleted in slack; posting a new one", "old_ts", claim.TS)
				return post(true)
			}
			return se
		}
		log.Debug("incident message updated", "ts", claim.TS, "was", claim.Version)
		if err := save(store.MessageUpdate{Version: inc.Version}); err != nil {
			return err
		}
	}

	if claim.ThreadVersion < inc.Version {
		changes := n.Changes
		if claim.Incident != nil {
			changes = bot.Changes(claim.Incident, inc)
		}
		if text, broadcast := followUpText(n.View, changes); text != "" {
			opts := []goslack.MsgOption{goslack.MsgOptionTS(claim.TS), goslack.MsgOptionText(cut(text, maxFallbackText, cutNote), false),
				goslack.MsgOptionBlocks(lineSections(strings.Split(text, "\n"))...)}
			if broadcast {
				opts = append(opts, goslack.MsgOptionBroadcast())
			}
			if _, _, err := p.client.PostMessageContext(ctx, ch, opts...); err != nil {
				return slackError("reply in incident thread", inc.ID, ch, err)
			}
			log.Debug("incident follow-up posted", "changes", fmt.Sprint(changes))
		}
		if err := save(store.MessageUpdate{ThreadVersion: inc.Version, Incident: &snap}); err != nil {
			return err
		}
	}
	return nil
}

func newOwner() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// followUpText is the thread reply for changes, one line per change worth
// telling; "" when none is. broadcast is true when the channel should see
// it too (an escalation nobody acknowledged, a recurrence).
func followUpText(v bot.IncidentView, changes []bot.Change) (text string, broadcast bool) {
	var lines []string
	inc := &v.Incident
	for _, c := range changes {
		switch c {
		case bot.ChangeReopened:
			lines = append(lines, fmt.Sprintf(":repeat: *Recurred* (%d× so far): %s", inc.Reopened, esc(v.Headline)))
			broadcast = true
		case bot.ChangeEscalated:
			l := fmt.Sprintf(":rotating_light: *Escalated to level %d*", v.Level)
			if v.AckedBy == "" && inc.Open() {
				l += " — nobody has acknowledged it yet"
				broadcast = true
			}
			if m := Mentions(inc.Targets); m != "" {
				l += ". " + m
			}
			lines = append(lines, l)
		case bot.ChangeAcked:
			lines = append(lines, ":eyes: *Acknowledged* by "+userRef(v.AckedBy)+".")
		case bot.ChangeApproval:
			what := esc(v.Proposal)
			if what == "" {
				what = "The remedy"
			}
			state := esc(v.ApprovalText)
			if state == "" {
				state = esc(string(inc.Approval))
			}
			lines = append(lines, ":ballot_box_with_check: *"+capitalize(what)+"*: "+state+".")
		case bot.ChangeTicket:
			t := esc(v.Ticket)
			if v.TicketURL != "" {
				t = link(v.TicketURL, v.Ticket)
			}
			lines = append(lines, ":ticket: Ticket "+t+".")
		case bot.ChangeTicketError:
			lines = append(lines, ":warning: "+esc(v.TicketProblem())+". Fix what it names, then run `/triage ticket "+esc(v.ID)+"`.")
		case bot.ChangeSilenced:
			if inc.InhibitedBy != "" {
				lines = append(lines, ":mute: Muted by "+esc(inc.InhibitedBy)+" (the host's incident).")
			} else {
				lines = append(lines, ":mute: Silenced: recorded, not notified while the silence lasts.")
			}
		case bot.ChangeUnsilenced:
			lines = append(lines, ":loud_sound: No longer silenced: notifications resume.")
		case bot.ChangeResolved:
			l := ":large_green_circle: *Resolved*"
			if v.Lasted > 0 {
				l += " after " + bot.FormatDuration(v.Lasted.Truncate(time.Minute))
			}
			lines = append(lines, l+".")
		}
	}
	return strings.Join(lines, "\n"), broadcast
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Error is a failed post to Slack, or a failed step around it. It tells
// the Notifier whether to retry (bot.RetryAfterError, bot.PermanentError)
// and says what to fix when retrying cannot help. It never holds a token.
type Error struct {
	// Op is what was being done ("post incident", "update incident message").
	Op       string
	Incident string
	Channel  string
	// Code is Slack's error code ("channel_not_found"), if Slack gave one.
	Code string
	// Err is the underlying error, if any.
	Err        error
	retryAfter time.Duration
	permanent  bool
	hint       string
}

// Error says what failed, where, and why.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("slack: " + e.Op)
	if e.Incident != "" {
		b.WriteString(" " + e.Incident)
	}
	if e.Channel != "" {
		b.WriteString(" in " + e.Channel)
	}
	switch {
	case e.Code != "":
		b.WriteString(": " + e.Code)
	case e.Err != nil:
		b.WriteString(": " + e.Err.Error())
	}
	if e.hint != "" {
		b.WriteString(" (" + e.hint + ")")
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// RetryAfter is how long to wait before retrying, when Slack said (429) or
// another replica holds the message; 0 leaves it to the caller's backoff.
func (e *Error) RetryAfter() time.Duration { return e.retryAfter }

// Permanent reports that retrying cannot help.
func (e *Error) Permanent() bool { return e.permanent }

// slackCodes are Slack error codes worth a clearer word. Every code is
// permanent except the few in transientCodes: a request Slack refused as
// such would be refused again, and retrying it forever would hold up every
// later notification.
var slackCodes = map[string]string{
	"invalid_blocks":         "Slack refused the message's blocks; this is a bug in vmtriage's rendering",
	"invalid_blocks_format":  "Slack refused the message's blocks; this is a bug in vmtriage's rendering",
	"msg_too_long":           "the message is too long for Slack",
	"no_text":                "the message has no text",
	"invalid_arguments":      "Slack refused the request's arguments",
	"channel_not_found":      "no such channel, or the bot cannot see it: check the channel ID in VMTRIAGE_SLACK_CHANNEL and the channel maps",
	"not_in_channel":         "the bot is not a member of the channel: /invite it there",
	"is_archived":            "the channel is archived",
	"restricted_action":      "the workspace does not let the bot post there",
	"invalid_auth":           "the bot token is not valid: check VMTRIAGE_SLACK_BOT_TOKEN",
	"not_authed":             "no bot token was sent: set VMTRIAGE_SLACK_BOT_TOKEN",
	"token_revoked":          "the bot token was revoked: reinstall the app",
	"token_expired":          "the bot token expired: reinstall the app",
	"account_inactive":       "the bot's account is inactive: reinstall the app",
	"missing_scope":          "the app lacks a scope (chat:write): add it and reinstall",
	"not_allowed_token_type": "the token is not a bot token (xoxb-)",
	"message_not_found":      "the incident's message was deleted in Slack",
	"cant_update_message":    "the incident's message cannot be updated (was it posted by another app?)",
	"edit_window_closed":     "the incident's message can no longer be edited",
	"thread_not_found":       "the incident's message was deleted in Slack",
}

// transientCodes are the Slack error codes that say Slack itself is in
// trouble: retried with backoff.
var transientCodes = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"ratelimited":         true,
	"team_added_to_org":   true,
}

// slackError maps a Slack client error to an *Error: rate limits carry
// Slack's Retry-After; server errors (5xx), timeouts, network failures and
// Slack's own trouble codes are retried with backoff; any other error code
// is permanent, with a hint where one helps.
func slackError(op, incident, channel string, err error) *Error {
	e := &Error{Op: op, Incident: incident, Channel: channel, Err: err}
	var rl *goslack.RateLimitedError
	var sc goslack.StatusCodeError
	var se goslack.SlackErrorResponse
	var ne net.Error
	switch {
	case errors.As(err, &rl):
		e.retryAfter = max(rl.RetryAfter, time.Second)
		e.hint = "rate limited; retry after " + e.retryAfter.String()
	case errors.As(err, &sc):
		switch {
		case sc.Code >= 500, sc.Code == 408, sc.Code == 429:
			e.hint = "Slack answered HTTP " + fmt.Sprint(sc.Code) + "; will retry"
		default:
			e.permanent = true
			e.hint = "Slack answered HTTP " + fmt.Sprint(sc.Code) + ": check VMTRIAGE_SLACK_API_URL"
		}
	case errors.As(err, &se):
		e.Code = se.Err
		switch {
		case transientCodes[se.Err]:
			e.hint = "Slack is in trouble; will retry"
		case slackCodes[se.Err] != "":
			e.permanent, e.hint = true, slackCodes[se.Err]
		default:
			e.permanent, e.hint = true, "Slack refused the request"
		}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		e.hint = "network error or timeout; will retry"
	}
	return e
}

// OwnersTarget is the escalation target that stands for the user groups of
// the teams owning the services an incident hits.
const OwnersTarget = "usergroup:owners"

// expandOwners replaces OwnersTarget in the incident's targets with the
// owning teams' user groups (dropping it when there are none, or when no
// OwnerGroups hook is set), leaving the incident itself unchanged.
func (p *Poster) expandOwners(inc *model.Incident) []string {
	if !slices.Contains(inc.Targets, OwnersTarget) {
		return inc.Targets
	}
	out := make([]string, 0, len(inc.Targets))
	for _, t := range inc.Targets {
		if t != OwnersTarget {
			out = append(out, t)
			continue
		}
		if p.groups == nil {
			continue
		}
		for _, g := range p.groups(inc) {
			if g = "usergroup:" + strings.TrimSpace(g); !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}
