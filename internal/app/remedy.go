package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/collectors/azurehealth"
	"github.com/vmtriage/vmtriage/collectors/libvirt"
	"github.com/vmtriage/vmtriage/collectors/simulate"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/remedy"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/inventory"
	"github.com/vmtriage/vmtriage/tickets"
)

// remedies is one replica's remedy path: the manager that turns firing
// incidents into remedies and takes approvals, the executor that runs
// approved ones, their bot verbs and their HTTP route.
type remedies struct {
	mgr  *remedy.Manager
	exec *remedy.Executor
	st   *store.Store
}

// remedyDeps are what newRemedies takes from Serve.
type remedyDeps struct {
	Store      *store.Store
	Recovery   remedy.Recovery
	Membership bot.Membership
	// Actuator overrides VMTRIAGE_REMEDY_ACTUATOR (the demo's simulator).
	Actuator remedy.Actuator
	Replica  string
	// Notes, if set, gets a comment on the incident's ticket for each
	// saved change of a remedy (ticketNotes(tk) when Jira is configured).
	Notes remedyNotes
	// Services, if set, names each VM's service so migration plans spread
	// a service's instances (inventoryServices(inv)).
	Services remedy.Services
	Clock    clock.Clock
	Logger   *slog.Logger
}

// inventoryServices is the inventory in force as remedy.Services.
type inventoryServices struct{ m *inventory.Manager }

// ServiceOf returns the service vm is an instance of, "" when none.
func (s inventoryServices) ServiceOf(vm string) string {
	if s.m == nil {
		return ""
	}
	inv := s.m.Inventory()
	if inv == nil {
		return ""
	}
	svc, _ := inv.ServiceOf(vm)
	return svc
}

// remedyNotes is where a remedy's changes are told, as text, to whoever
// follows the incident elsewhere: tickets.Tickets.Note.
type remedyNotes interface {
	Note(ctx context.Context, incidentID, text string) error
}

// ticketNotes is tk as remedyNotes, nil (not a typed nil) without Jira.
func ticketNotes(tk *tickets.Tickets) remedyNotes {
	if tk == nil {
		return nil
	}
	return tk
}

// notingStore is the remedy path's store that also tells notes of every
// change it saved. A change is saved at most once (SaveRemedy is a
// compare-and-set on the remedy's version), so each one is told once
// whichever replica saved it; tickets.Note then adds it as one comment,
// retried without doubling. A change whose note cannot be queued is
// logged, not retried: the audit stream still holds it.
type notingStore struct {
	remedy.Store
	notes remedyNotes
	log   *slog.Logger
}

// SaveRemedy saves r and, once saved, tells notes of the audit entries.
func (n notingStore) SaveRemedy(ctx context.Context, r *model.Remedy, audit ...model.AuditEntry) error {
	if err := n.Store.SaveRemedy(ctx, r, audit...); err != nil {
		return err
	}
	if text := remedyNote(*r, audit); text != "" {
		if err := n.notes.Note(ctx, r.Incident, text); err != nil {
			n.log.Warn("could not queue a ticket comment for a remedy", "remedy", r.ID, "incident", r.Incident, "err", err)
		}
	}
	return nil
}

// remedyNote is the ticket comment for one saved change of r: its audit
// entries, one after the other, with the plan when it was just requested and the
// summary when it finished. Refused attempts are left to the audit
// stream; a change without entries (a lease renewal) says nothing.
func remedyNote(r model.Remedy, audit []model.AuditEntry) string {
	var lines []string
	for _, a := range audit {
		if strings.HasSuffix(a.What, " refused") {
			continue
		}
		line := fmt.Sprintf("%s (%s): %s", r.ID, a.Who, a.What)
		if a.Result != "" {
			line += " — " + a.Result
		}
		lines = append(lines, line)
		if strings.HasPrefix(a.What, "requested") && r.Action == model.ActionMigrateHost {
			lines = append(lines, "Plan: "+remedy.PlanText(r.Steps))
		}
	}
	if len(lines) > 0 && r.State.Final() && r.Result != "" {
		lines = append(lines, "Summary: "+r.Result)
	}
	// tickets.Note flattens line breaks (Jira wiki markup), so the lines
	// are joined as sentences.
	return strings.Join(lines, "; ")
}

// newRemedies builds the remedy path from the configuration.
func newRemedies(cfg config.Config, d remedyDeps) (*remedies, error) {
	act := d.Actuator
	if act == nil {
		var err error
		if act, err = newActuator(cfg, d.Logger); err != nil {
			return nil, err
		}
	}
	var membership remedy.Membership
	if d.Membership != nil {
		membership = d.Membership
	}
	var rst remedy.Store = d.Store
	if d.Notes != nil {
		rst = notingStore{Store: d.Store, notes: d.Notes, log: d.Logger}
	}
	mgr, err := remedy.NewManager(remedy.Options{
		Store: rst, Approvers: cfg.Approvers, Membership: membership, Recovery: d.Recovery, Services: d.Services,
		ApprovalTimeout: cfg.RemedyApprovalTimeout, TwoApprovers: cfg.RemedyTwoApprovers,
		Consumer: d.Replica, Clock: d.Clock, Logger: d.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("start remedies: %w", err)
	}
	exec, err := remedy.NewExecutor(remedy.ExecutorOptions{
		Store: rst, Actuator: act, Recovery: d.Recovery, Owner: d.Replica,
		Concurrency: cfg.RemedyConcurrency, Clock: d.Clock, Logger: d.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("start remedies: %w", err)
	}
	return &remedies{mgr: mgr, exec: exec, st: d.Store}, nil
}

// newActuator builds the actuator VMTRIAGE_REMEDY_ACTUATOR names.
func newActuator(cfg config.Config, log *slog.Logger) (remedy.Actuator, error) {
	switch cfg.RemedyActuator {
	case "", "dryrun":
		return &remedy.DryRun{Logger: log}, nil
	case "libvirt":
		targets, err := libvirt.ParseTargets(cfg.LibvirtURIs)
		if err != nil {
			return nil, fmt.Errorf("VMTRIAGE_LIBVIRT_URIS: %w", err)
		}
		uris := map[string]string{}
		for _, t := range targets {
			host := t.Host
			if host == "" {
				if u, err := url.Parse(t.URI); err == nil {
					host = u.Hostname()
				}
			}
			if host == "" {
				return nil, fmt.Errorf("VMTRIAGE_LIBVIRT_URIS: %q names no host; write host=uri", t.URI)
			}
			uris[host] = t.URI
		}
		a, err := remedy.NewLibvirt(remedy.LibvirtOptions{URIs: uris, Timeout: cfg.LibvirtRPCTimeout})
		if err != nil {
			return nil, fmt.Errorf("VMTRIAGE_REMEDY_ACTUATOR=libvirt needs VMTRIAGE_LIBVIRT_URIS: %w", err)
		}
		return a, nil
	case "nova":
		tok := cfg.NovaToken
		if !tok.Set() {
			return nil, errors.New("VMTRIAGE_REMEDY_ACTUATOR=nova needs VMTRIAGE_NOVA_TOKEN")
		}
		a, err := remedy.NewNova(remedy.NovaOptions{URL: cfg.NovaURL,
			Token: func(context.Context) (string, error) { return tok.Reveal(), nil }})
		if err != nil {
			return nil, fmt.Errorf("VMTRIAGE_NOVA_URL: %w", err)
		}
		return a, nil
	case "azure":
		if cfg.AzureTenantID == "" || cfg.AzureClientID == "" || !cfg.AzureClientSecret.Set() {
			return nil, errors.New("VMTRIAGE_REMEDY_ACTUATOR=azure needs VMTRIAGE_AZURE_TENANT_ID, VMTRIAGE_AZURE_CLIENT_ID and VMTRIAGE_AZURE_CLIENT_SECRET")
		}
		ep := strings.TrimRight(cfg.AzureEndpoint, "/")
		a, err := remedy.NewAzure(remedy.AzureOptions{Subscriptions: cfg.AzureSubscriptions, Endpoint: ep,
			Token: azurehealth.NewTokenSource(cfg.AzureLoginEndpoint, cfg.AzureTenantID, cfg.AzureClientID,
				cfg.AzureClientSecret, ep+"/.default", nil, nil)})
		if err != nil {
			return nil, fmt.Errorf("VMTRIAGE_AZURE_SUBSCRIPTIONS: %w", err)
		}
		return a, nil
	}
	return nil, fmt.Errorf("VMTRIAGE_REMEDY_ACTUATOR: %q is not dryrun, libvirt, nova or azure", cfg.RemedyActuator)
}

// runners are the remedy path's long-running parts.
func (r *remedies) runners() []runner {
	return []runner{
		{name: "remedy manager", run: func(ctx context.Context) error { return r.mgr.Run(ctx, time.Second) }},
		{name: "remedy executor", run: r.exec.Run},
	}
}

// verbs are `/triage approve`, `/triage deny`, `/triage remedy` and
// `/triage audit`.
func (r *remedies) verbs() []bot.Verb {
	return []bot.Verb{
		auditVerb(r.st),
		{Name: "approve", Args: "<incident>", Help: "approve an incident's remedy (shows its plan)", Example: "approve inc-42",
			Group: bot.GroupApprove, MinArgs: 1, MaxArgs: 1,
			Run: func(ctx context.Context, cmd bot.Command) (bot.Reply, error) {
				return r.decide(ctx, cmd, remedy.Approve, "")
			}},
		{Name: "deny", Args: "<incident> <reason>", Help: "deny an incident's remedy; the reason is required", Example: `deny inc-42 "sensor glitch, host is fine"`,
			Group: bot.GroupApprove, MinArgs: 1, MaxArgs: -1,
			Run: func(ctx context.Context, cmd bot.Command) (bot.Reply, error) {
				return r.decide(ctx, cmd, remedy.Deny, strings.Join(cmd.Args[1:], " "))
			}},
		{Name: "remedy", Args: "<incident>", Help: "an incident's remedy: plan, approvals, progress and audit trail", Example: "remedy inc-42",
			MinArgs: 1, MaxArgs: 1,
			Run: func(ctx context.Context, cmd bot.Command) (bot.Reply, error) {
				rem, err := r.mgr.Find(ctx, cmd.Args[0])
				if err != nil {
					return bot.Reply{}, userError(err)
				}
				audit, err := r.st.RemedyAudit(ctx, rem.ID)
				if err != nil {
					return bot.Reply{}, err
				}
				return remedyReply(rem, audit), nil
			}},
	}
}

// decide runs an approval or denial; the same path serves the buttons,
// which send the same command text.
func (r *remedies) decide(ctx context.Context, cmd bot.Command, kind, reason string) (bot.Reply, error) {
	rem, err := r.mgr.Decide(ctx, cmd.Args[0], kind, cmd.User, reason)
	if err != nil {
		return bot.Reply{}, userError(err)
	}
	reply := remedyReply(rem, nil)
	reply.Visibility = bot.InChannel
	switch rem.State {
	case model.RemedyDenied:
		reply.Title = fmt.Sprintf("%s denied by %s for %s", rem.ID, cmd.User, rem.Incident)
		reply.Tone = bot.ToneWarning
	case model.RemedyAwaiting:
		reply.Title = fmt.Sprintf("%s approved by %s (%d of %d): waiting for another approver", rem.ID, cmd.User, len(rem.Approvals), rem.ApprovalsNeeded)
	default:
		reply.Title = fmt.Sprintf("%s approved by %s: it runs now", rem.ID, cmd.User)
		reply.Tone = bot.ToneOK
	}
	return reply, nil
}

func userError(err error) error {
	var re *remedy.RefusedError
	if errors.As(err, &re) {
		return bot.Userf("%s", re.Msg)
	}
	return err
}

// remedyReply shows a remedy: what it does, where it stands, its plan and
// (when given) its audit trail.
func remedyReply(rem model.Remedy, audit []model.AuditEntry) bot.Reply {
	r := bot.Reply{Title: remedy.Summary(rem)}
	sec := bot.Section{Fields: []bot.Field{
		{Key: "remedy", Value: rem.ID}, {Key: "incident", Value: rem.Incident},
		{Key: "action", Value: string(rem.Action) + " " + rem.Subject}, {Key: "state", Value: string(rem.State)},
	}}
	if rem.ApprovalsNeeded > 0 {
		sec.Fields = append(sec.Fields, bot.Field{Key: "approvals", Value: fmt.Sprintf("%d of %d", len(rem.Approvals), rem.ApprovalsNeeded)})
	}
	if rem.Result != "" {
		sec.Fields = append(sec.Fields, bot.Field{Key: "result", Value: rem.Result})
	}
	r.Sections = append(r.Sections, sec)
	plan := &bot.List{Limit: 20}
	for _, s := range rem.Steps {
		plan.Items = append(plan.Items, stepLine(s))
	}
	r.Sections = append(r.Sections, bot.Section{Heading: "Plan", List: plan})
	if len(audit) > 0 {
		l := &bot.List{Limit: 20}
		for _, a := range audit {
			line := a.At.UTC().Format("15:04:05") + " " + a.Who + " " + a.What
			if a.Result != "" {
				line += " — " + a.Result
			}
			l.Items = append(l.Items, line)
		}
		r.Sections = append(r.Sections, bot.Section{Heading: "Audit", List: l})
	}
	return r
}

func stepLine(s model.RemedyStep) string {
	var what string
	switch s.Do {
	case model.StepMigrateVM:
		if s.Target == "" {
			what = "move " + s.VM
		} else {
			what = "move " + s.VM + " → " + s.Target
		}
	case model.StepRestartVM:
		what = "restart " + s.VM
	case model.StepRestartService:
		what = "restart " + s.Service + " on " + s.Host
	case model.StepHostMaintenance:
		what = "put " + s.Host + " into maintenance"
	default:
		what = s.Do
	}
	line := what + ": " + string(s.State)
	if s.Detail != "" {
		line += " (" + s.Detail + ")"
	}
	return line
}

// remedyReader is what GET /v1/remedies reads.
type remedyReader interface {
	Remedy(ctx context.Context, id string) (model.Remedy, error)
	RemedyForIncident(ctx context.Context, incident string) (model.Remedy, error)
	RemedyAudit(ctx context.Context, id string) ([]model.AuditEntry, error)
}

// remedyResponse is GET /v1/remedies' answer.
type remedyResponse struct {
	Remedy model.Remedy       `json:"remedy"`
	Audit  []model.AuditEntry `json:"audit"`
}

// remediesHandler serves GET /v1/remedies?incident=<id> (or ?id=<remedy>):
// the remedy with its audit trail.
func remediesHandler(st remedyReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fail := func(code int, msg string) {
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		}
		q := r.URL.Query()
		for name := range q {
			if name != "incident" && name != "id" {
				fail(http.StatusBadRequest, fmt.Sprintf("unknown parameter %q; use incident= or id=", bot.Truncate(name, 64)))
				return
			}
		}
		inc, id := q.Get("incident"), q.Get("id")
		var rem model.Remedy
		var err error
		switch {
		case id != "":
			rem, err = st.Remedy(r.Context(), id)
		case inc != "":
			rem, err = st.RemedyForIncident(r.Context(), inc)
		default:
			fail(http.StatusBadRequest, "incident= (an incident id) or id= (a remedy id) is required")
			return
		}
		if errors.Is(err, store.ErrNotFound) {
			fail(http.StatusNotFound, "no such remedy")
			return
		}
		if err != nil {
			fail(http.StatusInternalServerError, "could not read the remedy")
			return
		}
		audit, err := st.RemedyAudit(r.Context(), rem.ID)
		if err != nil {
			fail(http.StatusInternalServerError, "could not read the audit trail")
			return
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(remedyResponse{Remedy: rem, Audit: audit})
	})
}

// demoUser is who types in the demo's console; the demo makes them an
// approver when none is configured, so a migration can be approved there.
const demoUser = "you"

// newDemoSimulator builds the simulator actuator for the demo's fleet.
func newDemoSimulator(fleet *simulate.Fleet) *remedy.Simulator {
	vms := fleet.VMs()
	targets := make([]remedy.Target, len(vms))
	for i, v := range vms {
		targets[i] = remedy.Target{VM: v.ID, Host: v.Host, Site: v.Site}
	}
	sites := map[string]string{}
	for _, h := range fleet.Hosts() {
		sites[h.ID] = h.Site
	}
	return remedy.NewSimulator(targets, sites)
}
