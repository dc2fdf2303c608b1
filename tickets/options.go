package tickets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// Flavor is the kind of Jira: Cloud and Server/Data Center differ in
// authentication, in how users are named and in the search endpoint.
type Flavor string

// Flavors.
const (
	// Cloud authenticates with an e-mail and an API token (Basic), names
	// users by account id, and searches with /rest/api/2/search/jql (the
	// old /rest/api/2/search answers 410 on Cloud).
	Cloud Flavor = "cloud"
	// Server is Jira Server or Data Center: a personal access token
	// (Bearer), users by name, search with /rest/api/2/search.
	Server Flavor = "server"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultIssueType      = "Incident"
	DefaultReopenWindow   = 24 * time.Hour
	DefaultBackfill       = 24 * time.Hour
	DefaultMaxDescription = 30000
	DefaultGroup          = "tickets"
	DefaultHTTPTimeout    = 30 * time.Second
)

// Default lists, copied by New when the option is empty.
var (
	DefaultSeverities         = []model.Severity{model.SeverityCritical, model.SeverityHigh}
	DefaultResolveTransitions = []string{"Done", "Resolve Issue", "Close Issue"}
	DefaultReopenTransitions  = []string{"Reopen", "To Do"}
	// DefaultPriorities maps severities onto Jira's default priority
	// scheme.
	DefaultPriorities = map[model.Severity]string{
		model.SeverityCritical: "Highest", model.SeverityHigh: "High",
		model.SeverityMedium: "Medium", model.SeverityLow: "Low",
	}
)

// Store is what Tickets needs of the state store (internal/store
// implements it): incidents with their change stream, the ticket
// operation stream, the per-incident ticket record and its lock.
type Store interface {
	Incident(ctx context.Context, id string) (model.Incident, error)
	SaveIncident(ctx context.Context, inc *model.Incident) error
	ReadIncidentEvents(ctx context.Context, group, consumer string, count int, block time.Duration) ([]IncidentEvent, error)
	ClaimIncidentEvents(ctx context.Context, group, consumer string, minIdle time.Duration, count int) ([]IncidentEvent, error)
	AckIncidentEvents(ctx context.Context, group string, ids ...string) error

	EnqueueTicketOp(ctx context.Context, op TicketOp) error
	ReadTicketOps(ctx context.Context, consumer string, count int, block time.Duration) ([]TicketOp, error)
	ClaimTicketOps(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]TicketOp, error)
	AckTicketOps(ctx context.Context, ids ...string) error
	TicketRecord(ctx context.Context, incident string) (TicketRecord, error)
	SaveTicketRecord(ctx context.Context, rec *TicketRecord) error
	LockTicket(ctx context.Context, incident, owner string, ttl time.Duration) (bool, error)
	UnlockTicket(ctx context.Context, incident, owner string) error
}

// HostReader gives the host's recent collection periods, so the ticket can
// say what state the host was in when the incident started. The state
// store implements it; it is optional.
type HostReader interface {
	Host(ctx context.Context, id string, periods int) (model.HostStatus, error)
}

// FixReader gives how incidents of a cause were fixed before (the
// knowledge base's resolution notes), newest first; it is optional.
type FixReader interface {
	PreviousFixes(ctx context.Context, cause string) ([]store.Note, error)
}

// Options configure Tickets. BaseURL, Token, Project and Store are
// required.
type Options struct {
	// BaseURL is Jira's base URL ("https://example.atlassian.net").
	BaseURL string
	// User is the account's e-mail on Cloud; empty means Token is a
	// personal access token (Server/Data Center).
	User string
	// Token is the API token (Cloud) or personal access token. It is sent
	// only in the Authorization header and never appears in errors or logs.
	Token config.Secret
	// Flavor says Cloud or Server; empty means Cloud when User is set and
	// Server otherwise.
	Flavor Flavor
	// Project is the project key tickets are created in ("OPS").
	Project string
	// IssueType is the issue type's name (default "Incident").
	IssueType string
	// Severities get a ticket as soon as they fire (default critical and
	// high); others only on "/triage ticket".
	Severities []model.Severity
	// Priorities maps severity to the priority's name (default
	// DefaultPriorities). A severity missing from the map leaves the
	// priority to the project's default.
	Priorities map[model.Severity]string
	// Components and Assignees map an incident's cause to a component name
	// and to an assignee (account id on Cloud, user name on Server).
	Components, Assignees map[string]string
	// Owner, if set, gives the component and assignee of the team owning
	// the services an incident hits (inventory.Manager's JiraOwner); a
	// value it gives wins over the cause's in Components and Assignees,
	// an empty one leaves the cause's.
	Owner func(inc *model.Incident) (component, assignee string)
	// ResolveTransitions and ReopenTransitions are transition names tried
	// in order (case-insensitive) when the incident resolves or recurs.
	ResolveTransitions, ReopenTransitions []string
	// ReopenWindow: a new incident with the fingerprint of one whose
	// ticket was resolved less than this ago reopens that ticket instead of
	// creating another (default 24h; negative disables).
	ReopenWindow time.Duration
	// Backfill bounds automatic tickets for incidents already resolved
	// when first seen (Jira was down, or tickets were just switched on and
	// the change stream holds history): only those resolved less than this
	// ago get one (default 24h; negative: none).
	Backfill time.Duration
	// SummaryTemplate and DescriptionTemplate replace the built-in
	// text/template sources (see TicketData for what they see).
	SummaryTemplate, DescriptionTemplate string
	// MaxDescription caps the description, in characters (default 30000;
	// Jira's limit is 32767). Longer ones are cut with a note.
	MaxDescription int

	Store Store
	// Hosts, if set, adds the host's period facts to the description.
	Hosts HostReader
	// Fixes, if set, adds how earlier incidents of the same cause were
	// fixed to the description.
	Fixes FixReader
	// Notes, if set, keeps the ticket's "Fix: …" comment as the
	// incident's resolution note when it resolves (see FixPrefixes).
	Notes NoteKeeper
	// HTTPClient carries the requests (default: 30s timeout). Its
	// transport gets the authentication wrapped around it.
	HTTPClient *http.Client

	// Group is the incidents-stream consumer group (default "tickets");
	// Consumer names this process in it and in the ticket stream's group
	// (default host-pid).
	Group, Consumer string
	// Batch is how many entries to read at once (default 20); Block how
	// long a read waits (default 5s).
	Batch int
	Block time.Duration
	// ClaimIdle is how long an entry may stay unacknowledged by another
	// consumer before this one takes it over (default 5m, more than one
	// attempt can take); ClaimEvery how often to look (default 30s).
	ClaimIdle, ClaimEvery time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries when Jira
	// failed without a Retry-After (defaults 1s and 5m, doubling).
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt at an incident's ticket (default
	// 2m); LockTTL is how long its lock lasts (default 5m, at least twice
	// AttemptTimeout).
	AttemptTimeout, LockTTL time.Duration
	// Sleep waits d or until ctx ends; tests replace it so retries happen
	// without waiting. Default: a timer.
	Sleep  func(ctx context.Context, d time.Duration) error
	Clock  clock.Clock  // default clock.Real{}
	Logger *slog.Logger // default discards
	// Registerer, if set, receives the vmtriage_ticket* metrics.
	Registerer prometheus.Registerer
}

// withDefaults validates o and fills in defaults. Errors name the option.
func (o Options) withDefaults() (Options, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	u, err := url.Parse(o.BaseURL)
	switch {
	case o.BaseURL == "":
		bad("BaseURL is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		bad("BaseURL %q is not an http(s) URL", o.BaseURL)
	case u.User != nil:
		// A password in the URL would end up in error messages.
		bad("BaseURL must not contain credentials; use User and Token")
	}
	if !o.Token.Set() {
		bad("Token is required")
	}
	switch o.Flavor {
	case "":
		o.Flavor = Server
		if o.User != "" {
			o.Flavor = Cloud
		}
	case Cloud, Server:
	default:
		bad("Flavor %q is neither %q nor %q", o.Flavor, Cloud, Server)
	}
	if o.Flavor == Cloud && o.User == "" {
		bad("User (the account's e-mail) is required on Jira Cloud")
	}
	if o.Project == "" {
		bad("Project is required")
	} else if strings.IndexFunc(o.Project, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		bad("Project %q must be a project key, without spaces", o.Project)
	}
	if o.Store == nil {
		bad("Store is required")
	}
	if o.IssueType == "" {
		o.IssueType = DefaultIssueType
	}
	if len(o.Severities) == 0 {
		o.Severities = slices.Clone(DefaultSeverities)
	}
	for _, s := range o.Severities {
		if !s.Valid() {
			bad("Severities: %q is not critical, high, medium or low", s)
		}
	}
	if o.Priorities == nil {
		o.Priorities = DefaultPriorities
	}
	for s := range o.Priorities {
		if !s.Valid() {
			bad("Priorities: %q is not critical, high, medium or low", s)
		}
	}
	if len(o.ResolveTransitions) == 0 {
		o.ResolveTransitions = slices.Clone(DefaultResolveTransitions)
	}
	if len(o.ReopenTransitions) == 0 {
		o.ReopenTransitions = slices.Clone(DefaultReopenTransitions)
	}
	if o.ReopenWindow == 0 {
		o.ReopenWindow = DefaultReopenWindow
	}
	if o.Backfill == 0 {
		o.Backfill = DefaultBackfill
	}
	if o.MaxDescription <= 0 {
		o.MaxDescription = DefaultMaxDescription
	}
	if o.MaxDescription > maxText {
		bad("MaxDescription %d is over Jira's limit of %d characters", o.MaxDescription, maxText)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.Batch <= 0 {
		o.Batch = 20
	}
	if o.Block <= 0 {
		o.Block = 5 * time.Second
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = 5 * time.Minute
	}
	if o.ClaimEvery <= 0 {
		o.ClaimEvery = 30 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Minute, o.MinBackoff)
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 2 * time.Minute
	}
	if o.LockTTL < 2*o.AttemptTimeout {
		o.LockTTL = max(5*time.Minute, 2*o.AttemptTimeout)
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(problems) > 0 {
		return o, errors.New("tickets: " + strings.Join(problems, "; "))
	}
	return o, nil
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
