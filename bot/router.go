package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"unicode/utf8"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// IncidentReader reads incidents. The state store implements it.
type IncidentReader interface {
	// Incidents lists incidents matching f, newest first.
	Incidents(ctx context.Context, f model.IncidentFilter) ([]model.Incident, error)
	// Incident returns one incident, or an error matching Options.NotFound.
	Incident(ctx context.Context, id string) (model.Incident, error)
}

// FleetReader reads the current state of VMs, hosts and sites. The state
// store implements it. Lookups of something that does not exist return an
// error matching Options.NotFound.
type FleetReader interface {
	VM(ctx context.Context, id string) (model.VMStatus, error)
	// Host returns a host with its most recent periods, newest first.
	Host(ctx context.Context, id string, periods int) (model.HostStatus, error)
	// ListVMs lists the VMs of a site and/or host ("" matches any).
	ListVMs(ctx context.Context, site, host string) ([]model.VMStatus, error)
	Sites(ctx context.Context) ([]string, error)
}

// HostStateReader, when the FleetReader also implements it, gives the
// derived state of many hosts in one read; the site status uses it to show
// degraded and failed hosts. Without it the router asks Host once per host.
// The state store implements it.
type HostStateReader interface {
	// HostStates returns the hosts of ids that exist, by ID, with Site,
	// Reported, State and Since set.
	HostStates(ctx context.Context, ids []string) (map[string]model.HostStatus, error)
}

// ActionTaker changes incident and silence state on a user's behalf. The
// rules engine implements the first three methods and the store Silences;
// the application combines them.
type ActionTaker interface {
	// Ack acknowledges an incident for user and returns it as saved.
	Ack(ctx context.Context, id, user string) (model.Incident, error)
	// AddSilence saves a silence and returns it with its ID.
	AddSilence(ctx context.Context, s model.Silence) (model.Silence, error)
	// ExpireSilence ends a silence now, on user's behalf.
	ExpireSilence(ctx context.Context, id, user string) error
	// Silences lists silences, including recently ended ones.
	Silences(ctx context.Context) ([]model.Silence, error)
}

// Options configures a Router. Incidents, Fleet and Actions are required.
type Options struct {
	Incidents IncidentReader
	Fleet     FleetReader
	Actions   ActionTaker
	// Permissions are the allow-lists per verb group.
	Permissions Permissions
	// Membership, if set, resolves allow-list entries that name groups of
	// users.
	Membership Membership
	// Auditor, if set, is told about every refusal.
	Auditor Auditor
	// NotFound reports whether an error from the interfaces above means
	// "does not exist". Default: errors.Is(err, ErrNotFound).
	NotFound func(error) bool
	// Periods is how many recent host periods status shows; default 5.
	Periods int
	Clock   clock.Clock  // default clock.Real{}
	Logger  *slog.Logger // default discards
}

// Handler runs one verb. Errors of type *UserError are shown to the user;
// any other error is logged and answered generically.
type Handler func(ctx context.Context, cmd Command) (Reply, error)

// Verb describes one command: how it is typed, who may run it, how its
// arguments are checked and what runs it.
type Verb struct {
	// Name is the lower-case verb ("status").
	Name string
	// Args is the argument part of the usage line ("<vm|host|site>").
	Args string
	// Help is one line on what the verb does.
	Help string
	// Example is a full example without the prefix ("status vm-0042").
	Example string
	// Group is the permission the verb needs.
	Group Group
	// MinArgs and MaxArgs bound the number of arguments; a negative
	// MaxArgs means no limit.
	MinArgs, MaxArgs int
	// Check, if set, validates the arguments further once their number is
	// right; it returns a *UserError.
	Check func(args []string) error
	// Run runs the verb.
	Run Handler
}

// Usage is the verb's usage line: "/triage silence <vm|host|site> <duration> [reason]".
func (v *Verb) Usage() string {
	if v.Args == "" {
		return Prefix + " " + v.Name
	}
	return Prefix + " " + v.Name + " " + v.Args
}

func (v *Verb) checkArgs(args []string) error {
	if len(args) < v.MinArgs || (v.MaxArgs >= 0 && len(args) > v.MaxArgs) {
		msg := "usage: " + v.Usage()
		if len(args) < v.MinArgs {
			msg = "missing arguments; " + msg
		} else {
			msg = "too many arguments; " + msg
		}
		ue := Userf("%s", msg)
		if v.Example != "" {
			ue.Hint = "e.g. " + Prefix + " " + v.Example
		}
		return ue
	}
	if v.Check != nil {
		return v.Check(args)
	}
	return nil
}

// Router runs commands: it checks the arguments and the user's permission
// once, whatever the command came from, runs the verb and turns every
// outcome into a Reply. It is safe for concurrent use.
type Router struct {
	opts  Options
	clock clock.Clock
	log   *slog.Logger

	mu    sync.RWMutex
	verbs map[string]*Verb
	order []string
}

// NewRouter returns a Router with the built-in verbs: help, status,
// incidents, ack, silence, silences and unsilence.
func NewRouter(opts Options) (*Router, error) {
	switch {
	case opts.Incidents == nil:
		return nil, errors.New("new router: Options.Incidents is required")
	case opts.Fleet == nil:
		return nil, errors.New("new router: Options.Fleet is required")
	case opts.Actions == nil:
		return nil, errors.New("new router: Options.Actions is required")
	}
	if opts.NotFound == nil {
		opts.NotFound = func(err error) bool { return errors.Is(err, ErrNotFound) }
	}
	if opts.Periods <= 0 {
		opts.Periods = 5
	}
	r := &Router{opts: opts, clock: opts.Clock, log: opts.Logger, verbs: map[string]*Verb{}}
	if r.clock == nil {
		r.clock = clock.Real{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	handlers := map[string]Handler{
		"help":      r.help,
		"status":    r.status,
		"incidents": r.incidents,
		"ack":       r.ack,
		"silence":   r.silence,
		"silences":  r.silences,
		"unsilence": r.unsilence,
	}
	for _, v := range builtinVerbs {
		v.Run = handlers[v.Name]
		if err := r.Register(v); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds a verb (kb, report, approve, deny, ...) or replaces one of
// the same name. Help lists verbs in registration order.
func (r *Router) Register(v Verb) error {
	if v.Name == "" || v.Run == nil {
		return fmt.Errorf("register verb %q: name and Run are required", v.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.verbs[v.Name]; !ok {
		r.order = append(r.order, v.Name)
	}
	r.verbs[v.Name] = &v
	return nil
}

func (r *Router) verb(name string) (*Verb, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.verbs[name]
	return v, ok
}

// HandleText parses text (as typed, with or without "/triage") and runs it
// as from: from's User, Channel, Origin and ResponseURL are kept, its Verb
// and Args are replaced. A parse error is answered with the reason.
func (r *Router) HandleText(ctx context.Context, text string, from Command) Reply {
	cmd, err := ParseCommand(text)
	if err != nil {
		return ErrorReply(err, "")
	}
	cmd.User, cmd.Channel, cmd.Origin, cmd.ResponseURL = from.User, from.Channel, from.Origin, from.ResponseURL
	return r.Handle(ctx, cmd)
}

// Handle runs cmd and answers it. An unknown verb is answered with help; a
// user without the verb's permission gets the reason (and the Auditor is
// told); errors for the user are shown, and any other error is logged with a
// reference and answered with that reference only.
func (r *Router) Handle(ctx context.Context, cmd Command) Reply {
	log := r.log.With("verb", cmd.Verb, "user", cmd.User, "channel", cmd.Channel, "origin", string(cmd.Origin))
	v, ok := r.verb(cmd.Verb)
	if !ok {
		log.Debug("unknown verb")
		reply, err := r.helpFor(ctx, cmd.User)
		if err != nil {
			return r.failed(log, cmd, err)
		}
		reply.Title = fmt.Sprintf("Unknown command %q. These are the commands you can run:", Truncate(cmd.Verb, 40))
		reply.Tone = ToneWarning
		return reply
	}
	if err := v.checkArgs(cmd.Args); err != nil {
		return ErrorReply(err, "")
	}
	ok, why, err := r.opts.Permissions.allowed(ctx, r.opts.Membership, v.Group, cmd.User)
	if err != nil {
		return r.failed(log, cmd, err)
	}
	if !ok {
		ref := Refusal{At: r.clock.Now(), User: cmd.User, Channel: cmd.Channel, Origin: cmd.Origin,
			Command: cmd.Text(), Group: v.Group, Reason: why}
		log.Info("command refused", "reason", why)
		if r.opts.Auditor != nil {
			r.opts.Auditor.Refused(ctx, ref)
		}
		return Reply{Title: fmt.Sprintf("You may not run %s: %s.", v.Name, why), Tone: ToneRefused}
	}
	reply, err := v.Run(ctx, cmd)
	if err != nil {
		if _, isUser := asUserError(err); isUser {
			log.Debug("command answered with a user error", "err", err)
			return ErrorReply(err, "")
		}
		return r.failed(log, cmd, err)
	}
	log.Debug("command done")
	return reply
}

// failed logs an internal error under a fresh reference and answers with the
// reference only: the error text may hold addresses or other internals.
func (r *Router) failed(log *slog.Logger, cmd Command, err error) Reply {
	ref := newRef()
	log.Error("command failed", "error_id", ref, "command", Truncate(cmd.Text(), 200), "err", err)
	return ErrorReply(err, ref)
}

func newRef() string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "err-unknown"
	}
	return "err-" + hex.EncodeToString(b[:])
}

// builtinVerbs describes the built-in verbs; NewRouter binds their
// handlers. ParseCommand checks arguments against the same descriptions.
var builtinVerbs = []Verb{
	{Name: "help", Help: "list the commands you can run", MaxArgs: -1},
	{Name: "status", Args: "<vm|host|site>", Help: "current state, since when, last event, the host's recent periods and open incidents",
		Example: "status vm-0042", MinArgs: 1, MaxArgs: 1},
	{Name: "incidents", Args: "[site|severity|status]", Help: "open incidents, optionally of one site, severity (critical, high, medium, low) or status (open, firing, pending, resolved, all)",
		Example: "incidents pod-a critical", MaxArgs: 3},
	{Name: "ack", Args: "<incident>", Help: "acknowledge an incident: you are on it, and its escalation stops",
		Example: "ack inc-42", Group: GroupAck, MinArgs: 1, MaxArgs: 1},
	{Name: "silence", Args: "<vm|host|site> <duration> [reason]", Help: "stop notifications for a while (30m, 2h, 1d); incidents are still recorded",
		Example: `silence host-007 2h "disk swap"`, Group: GroupAck, MinArgs: 2, MaxArgs: -1, Check: checkSilenceArgs},
	{Name: "silences", Help: "list active silences", MaxArgs: 0},
	{Name: "unsilence", Args: "<silence>", Help: "end a silence now", Example: "unsilence sil-3", Group: GroupAck, MinArgs: 1, MaxArgs: 1},
}

func builtinVerb(name string) (*Verb, bool) {
	for i := range builtinVerbs {
		if builtinVerbs[i].Name == name {
			return &builtinVerbs[i], true
		}
	}
	return nil, false
}

// MaxReasonLen is the longest silence reason accepted, in characters.
const MaxReasonLen = 500

func checkSilenceArgs(args []string) error {
	d, err := ParseDuration(args[1])
	if err != nil {
		return err
	}
	if d < MinSilence || d > MaxSilence {
		return Userf("a silence lasts from %s to %s, not %s", FormatDuration(MinSilence), FormatDuration(MaxSilence), FormatDuration(d))
	}
	reason := joinArgs(args[2:])
	if n := utf8.RuneCountInString(reason); n > MaxReasonLen {
		return Userf("the reason is %d characters long; keep it under %d", n, MaxReasonLen)
	}
	return nil
}
