package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// IncidentView is an incident prepared for people: every field a renderer
// needs, already in words, so the console and Slack say the same thing.
// Strings are plain text and may hold data from outside (IDs, user names,
// runbook links); renderers escape them.
type IncidentView struct {
	// Incident is the snapshot the view was built from.
	Incident model.Incident

	ID       string
	Version  int64
	Status   model.Status
	Severity model.Severity
	Tone     Tone

	// What happened, and where.

	// Headline is one line: where, what, impact
	// ("host-007 (pod-a): host hardware fault — 12 VMs down").
	Headline string
	// Where names the subject and its place ("vm-0042 on host-007 (pod-a)").
	Where string
	// Impact is how much is down ("12 VMs down"), if known.
	Impact string
	// VMs lists the affected VMs; it collapses when long.
	VMs List
	// Summary is the rules' own sentence, if they wrote one.
	Summary string

	// Why.

	// Cause is the classification in words ("host hardware fault").
	Cause string
	// Trigger says who set it off ("the platform", "the VM's user", "the
	// guest OS"); empty when unknown.
	Trigger string
	// HostState is the host's state in the collection period that decided
	// the classification ("failed"), if known.
	HostState string
	// Event is the platform event behind it, if any.
	Event string

	// What to do.

	// Proposal is the proposed remedy in words ("migrate every VM off
	// host-007"); empty when there is nothing to do.
	Proposal string
	// NeedsApproval is true while the remedy waits for a person.
	NeedsApproval bool
	// ApprovalText says where the remedy stands ("needs approval",
	// "approved", "runs without approval"); empty when there is none.
	ApprovalText string
	Runbooks     []string
	Ticket       string
	TicketURL    string
	// TicketError is Jira's last refusal of the incident's ticket (a bad
	// priority or component, a missing permission), in words that say what
	// to change; empty when there is none. See TicketProblem.
	TicketError string
	// PreviousFixes are how earlier incidents of the same cause were
	// fixed, newest first, as people noted when resolving them. The
	// Notifier fills them in from its FixSource; NewIncidentView leaves
	// them empty.
	PreviousFixes []Fix

	// Where it stands.

	Level   int
	AckedBy string
	AckedAt time.Time
	// Notes are remarks such as "silenced" or "muted by inc-40".
	Notes      []string
	StartedAt  time.Time
	FiringAt   time.Time
	ResolvedAt time.Time
	// Lasted is how long the incident lasted, once resolved.
	Lasted time.Duration

	// Actions are the buttons an incident message offers.
	Actions []Action
}

// SilenceButtonDuration is how long the "Silence" button on an incident
// message silences for.
const SilenceButtonDuration = "1h"

var causeWords = map[string]string{
	"host-hardware-fault":  "host hardware fault",
	"guest-fault":          "guest fault",
	"guest-crash":          "guest crash",
	"storage-unreachable":  "external storage unreachable",
	"network-unreachable":  "external network unreachable",
	"service-down":         "service down",
	"planned-maintenance":  "planned maintenance by the platform",
	"platform-maintenance": "maintenance by the platform",
	"user-restart":         "restarted by its user",
	"user-initiated":       "started by its user",
	"heartbeat-lost":       "heartbeats lost",
	"stopped-reporting":    "source stopped reporting",
}

// CauseText turns a cause slug into words: known causes have a phrase,
// others have their dashes replaced by spaces.
func CauseText(cause string) string {
	if w, ok := causeWords[cause]; ok {
		return w
	}
	if cause == "" {
		return "unclassified"
	}
	return strings.ReplaceAll(cause, "-", " ")
}

// TriggerText says who set an incident off, in words.
func TriggerText(t model.Trigger) string {
	switch t {
	case model.TriggerPlatform:
		return "the platform"
	case model.TriggerUser:
		return "the VM's user"
	case model.TriggerVM:
		return "the guest OS"
	}
	return string(t)
}

// NewIncidentView prepares inc for people.
func NewIncidentView(inc model.Incident) IncidentView {
	v := IncidentView{
		Incident:    inc,
		ID:          inc.ID,
		Version:     inc.Version,
		Status:      inc.Status,
		Severity:    inc.Severity,
		Summary:     inc.Summary,
		Cause:       CauseText(inc.Cause),
		Trigger:     TriggerText(inc.Trigger),
		HostState:   inc.HostState,
		Event:       inc.Event,
		Runbooks:    inc.Runbooks,
		Ticket:      inc.Ticket,
		TicketURL:   inc.TicketURL,
		TicketError: inc.TicketError,
		Level:       inc.Level,
		AckedBy:     inc.AckedBy,
		AckedAt:     inc.AckedAt,
		StartedAt:   inc.StartedAt,
		FiringAt:    inc.FiringAt,
		ResolvedAt:  inc.ResolvedAt,
		VMs:         List{Items: inc.VMs, Limit: 8},
	}
	v.Tone = incidentTone(&inc)
	v.Where = where(&inc)
	if inc.Kind == model.KindHost || len(inc.VMs) > 1 {
		v.Impact = plural(len(inc.VMs), "VM", "VMs") + " down"
		if len(inc.VMs) == 0 {
			v.Impact = ""
		}
	}
	v.Headline = v.Where + ": " + v.Cause
	if v.Impact != "" {
		v.Headline += " — " + v.Impact
	}
	v.Proposal = proposal(&inc)
	v.NeedsApproval = inc.Approval == model.ApprovalPending
	v.ApprovalText = approvalText(&inc)
	if inc.Remedy != "" {
		v.ApprovalText = inc.Remedy
	}
	if inc.Status == model.StatusResolved && !inc.ResolvedAt.IsZero() && !inc.StartedAt.IsZero() {
		v.Lasted = inc.ResolvedAt.Sub(inc.StartedAt)
	}
	if inc.Silenced {
		v.Notes = append(v.Notes, "silenced: recorded but not notified while the silence lasts")
	}
	if inc.InhibitedBy != "" {
		v.Notes = append(v.Notes, "muted by "+inc.InhibitedBy+" (the host's incident)")
	}
	if inc.Reopened > 0 {
		v.Notes = append(v.Notes, "recurred "+plural(inc.Reopened, "time", "times"))
	}
	v.Actions = incidentActions(&inc, v.Proposal)
	return v
}

func incidentTone(inc *model.Incident) Tone {
	if inc.Status == model.StatusResolved {
		return ToneOK
	}
	switch inc.Severity {
	case model.SeverityCritical, model.SeverityHigh:
		return ToneError
	case model.SeverityMedium:
		return ToneWarning
	}
	return ToneInfo
}

// subject returns what the incident is about, falling back on its host, its
// one VM or its ID when the rules left Subject empty.
func subject(inc *model.Incident) string {
	switch {
	case inc.Subject != "":
		return inc.Subject
	case inc.Kind == model.KindHost && inc.Host != "":
		return inc.Host
	case len(inc.VMs) == 1:
		return inc.VMs[0]
	case inc.Host != "":
		return inc.Host
	}
	return inc.ID
}

func where(inc *model.Incident) string {
	s := subject(inc)
	if inc.Kind == model.KindVM && inc.Host != "" && inc.Host != s {
		s += " on " + inc.Host
	}
	if inc.Site != "" && inc.Site != s {
		s += " (" + inc.Site + ")"
	}
	return s
}

func proposal(inc *model.Incident) string {
	switch inc.Action {
	case model.ActionMigrateHost:
		host := inc.Host
		if host == "" {
			host = subject(inc)
		}
		return "migrate every VM off " + host
	case model.ActionRestartVM:
		vm := subject(inc)
		if inc.Kind != model.KindVM && len(inc.VMs) == 1 {
			vm = inc.VMs[0]
		}
		return "restart " + vm
	case model.ActionRestartService:
		return "restart " + subject(inc)
	case model.ActionNotify:
		return "investigate (no automatic remedy)"
	}
	return ""
}

func approvalText(inc *model.Incident) string {
	switch inc.Approval {
	case model.ApprovalPending:
		return "needs approval"
	case model.ApprovalApproved:
		return "approved"
	case model.ApprovalDenied:
		return "denied"
	case model.ApprovalExpired:
		return "approval expired"
	case model.ApprovalNotRequired:
		if inc.Action == model.ActionRestartVM || inc.Action == model.ActionRestartService || inc.Action == model.ActionMigrateHost {
			return "runs without approval"
		}
	}
	return ""
}

func incidentActions(inc *model.Incident, proposal string) []Action {
	var acts []Action
	if inc.Open() {
		if inc.AckedBy == "" {
			acts = append(acts, Action{Label: "Acknowledge", Command: CommandText("ack", inc.ID), Style: StylePrimary})
		}
		switch {
		case inc.Kind == model.KindVM && len(inc.VMs) <= 1:
			acts = append(acts, Action{Label: "Silence VM " + SilenceButtonDuration, Command: CommandText("silence", subject(inc), SilenceButtonDuration, "from "+inc.ID)})
		case inc.Host != "":
			acts = append(acts, Action{Label: "Silence host " + SilenceButtonDuration, Command: CommandText("silence", inc.Host, SilenceButtonDuration, "from "+inc.ID)})
		}
		if inc.Approval == model.ApprovalPending && proposal != "" {
			acts = append(acts,
				Action{Label: "Approve", Command: CommandText("approve", inc.ID), Style: StyleDanger,
					Confirm: "Approve for " + inc.ID + ": " + proposal + "?"},
				Action{Label: "Deny", Command: CommandText("deny", inc.ID)})
		}
	}
	if len(inc.Runbooks) > 0 {
		acts = append(acts, Action{Label: "Open runbook", URL: inc.Runbooks[0]})
	}
	if inc.TicketURL != "" && inc.Ticket != "" {
		acts = append(acts, Action{Label: "Open " + inc.Ticket, URL: inc.TicketURL})
	}
	return acts
}

// TicketProblem is the ticket error as a sentence for people ("Jira
// refused the ticket: …"), or "" when there is none.
func (v IncidentView) TicketProblem() string {
	if v.TicketError == "" {
		return ""
	}
	if v.Ticket == "" {
		return "Jira refused the ticket: " + v.TicketError
	}
	return "Jira refused an update of " + v.Ticket + ": " + v.TicketError
}

// FixedBeforeHeading heads the list of previous fixes wherever an incident
// shows them.
const FixedBeforeHeading = "How this was fixed before"

// Why is one plain sentence on the cause: who set it off and the host's
// state at the time.
func (v IncidentView) Why() string {
	var parts []string
	if v.Trigger != "" {
		parts = append(parts, "set off by "+v.Trigger)
	}
	if v.HostState != "" {
		h := v.Incident.Host
		if h == "" {
			h = "the host"
		}
		parts = append(parts, h+" was "+v.HostState+" in that period")
	}
	if v.Event != "" {
		parts = append(parts, "event "+v.Event)
	}
	return strings.Join(parts, "; ")
}

// Todo is the proposed remedy with its approval state
// ("migrate every VM off host-007 (needs approval)"), or "".
func (v IncidentView) Todo() string {
	if v.Proposal == "" {
		return ""
	}
	if v.ApprovalText == "" {
		return v.Proposal
	}
	return v.Proposal + " (" + v.ApprovalText + ")"
}

// Text is the view in one plain line, for notification fallbacks and logs:
// "[CRITICAL] host-007 (pod-a): host hardware fault — 12 VMs down. Proposed:
// migrate every VM off host-007 (needs approval). inc-42".
func (v IncidentView) Text() string {
	var b strings.Builder
	if v.Status == model.StatusResolved {
		b.WriteString("[RESOLVED] " + v.Headline)
		if v.Lasted > 0 {
			b.WriteString(" — lasted " + roughDuration(v.Lasted))
		}
		b.WriteString(". " + v.ID)
		return b.String()
	}
	fmt.Fprintf(&b, "[%s] %s.", SeverityLabel(v.Severity), v.Headline)
	if t := v.Todo(); t != "" {
		b.WriteString(" Proposed: " + t + ".")
	}
	b.WriteString(" " + v.ID)
	return b.String()
}

// SeverityLabel is the upper-case severity ("CRITICAL"), or "INCIDENT" when
// the severity is unset.
func SeverityLabel(s model.Severity) string {
	if s == "" {
		return "INCIDENT"
	}
	return strings.ToUpper(string(s))
}

// Reply presents the whole incident as a neutral reply: what, why, what to
// do, where it stands, and its buttons.
func (v IncidentView) Reply() Reply {
	r := Reply{Title: v.Text(), Tone: v.Tone, Actions: v.Actions}
	what := Section{Heading: "What happened"}
	what.Fields = append(what.Fields,
		Field{"incident", v.ID},
		Field{"severity", string(v.Severity)},
		Field{"status", string(v.Status)},
		Field{"where", v.Where})
	if !v.StartedAt.IsZero() {
		what.Fields = append(what.Fields, Field{"started", formatTime(v.StartedAt)})
	}
	if !v.ResolvedAt.IsZero() {
		what.Fields = append(what.Fields, Field{"resolved", formatTime(v.ResolvedAt) + " (lasted " + roughDuration(v.Lasted) + ")"})
	}
	if v.Summary != "" {
		what.Lines = append(what.Lines, v.Summary)
	}
	if len(v.VMs.Items) > 0 {
		what.Fields = append(what.Fields, Field{"VMs", plural(len(v.VMs.Items), "VM", "VMs")})
		l := v.VMs
		what.List = &l
	}
	r.Sections = append(r.Sections, what)

	why := Section{Heading: "Why", Fields: []Field{{"cause", v.Cause}}}
	if v.Trigger != "" {
		why.Fields = append(why.Fields, Field{"set off by", v.Trigger})
	}
	if v.HostState != "" {
		why.Fields = append(why.Fields, Field{"host in that period", v.HostState})
	}
	if v.Event != "" {
		why.Fields = append(why.Fields, Field{"event", v.Event})
	}
	r.Sections = append(r.Sections, why)

	todo := Section{Heading: "What to do"}
	if t := v.Todo(); t != "" {
		todo.Fields = append(todo.Fields, Field{"proposed", t})
	}
	for _, rb := range v.Runbooks {
		todo.Fields = append(todo.Fields, Field{"runbook", rb})
	}
	if v.Ticket != "" {
		t := v.Ticket
		if v.TicketURL != "" {
			t += " " + v.TicketURL
		}
		todo.Fields = append(todo.Fields, Field{"ticket", t})
	}
	if p := v.TicketProblem(); p != "" {
		todo.Fields = append(todo.Fields, Field{"ticket problem", p})
	}
	if len(todo.Fields) > 0 {
		r.Sections = append(r.Sections, todo)
	}
	if len(v.PreviousFixes) > 0 {
		fixed := Section{Heading: FixedBeforeHeading}
		for _, f := range v.PreviousFixes {
			fixed.Lines = append(fixed.Lines, f.Line())
		}
		r.Sections = append(r.Sections, fixed)
	}

	state := Section{Heading: "Where it stands"}
	if v.Level > 0 {
		state.Fields = append(state.Fields, Field{"escalation level", fmt.Sprint(v.Level)})
	}
	if v.AckedBy != "" {
		a := v.AckedBy
		if !v.AckedAt.IsZero() {
			a += " at " + formatTime(v.AckedAt)
		}
		state.Fields = append(state.Fields, Field{"acknowledged by", a})
	} else if v.Incident.Open() {
		state.Fields = append(state.Fields, Field{"acknowledged by", "nobody yet"})
	}
	state.Lines = v.Notes
	if len(state.Fields)+len(state.Lines) > 0 {
		r.Sections = append(r.Sections, state)
	}
	return r
}

// IncidentLine is an incident in one line for lists:
// "inc-42 critical firing · host-007 (pod-a): host hardware fault — 12 VMs
// down · acked by U1 · 14m".
func IncidentLine(inc model.Incident, now time.Time) string {
	v := NewIncidentView(inc)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s · %s", inc.ID, inc.Severity, inc.Status, v.Headline)
	if inc.AckedBy != "" {
		b.WriteString(" · acked by " + inc.AckedBy)
	}
	if inc.Silenced {
		b.WriteString(" · silenced")
	}
	if inc.InhibitedBy != "" {
		b.WriteString(" · muted by " + inc.InhibitedBy)
	}
	switch {
	case inc.Status == model.StatusResolved && !inc.ResolvedAt.IsZero():
		b.WriteString(" · lasted " + roughDuration(v.Lasted))
	case !inc.StartedAt.IsZero():
		b.WriteString(" · " + roughDuration(now.Sub(inc.StartedAt)))
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// formatTime writes an absolute time in UTC, with the date only when it is
// not obvious from context.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatSince writes t relative to now: "10:00:00 UTC (12m ago)", with the
// date when t is not today.
func formatSince(t, now time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	t, now = t.UTC(), now.UTC()
	layout := "15:04:05 UTC"
	if t.YearDay() != now.YearDay() || t.Year() != now.Year() {
		layout = "2006-01-02 15:04 UTC"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return t.Format(layout) + " (in " + roughDuration(d) + ")"
	case d < time.Second:
		return t.Format(layout) + " (now)"
	}
	return t.Format(layout) + " (" + roughDuration(d) + " ago)"
}
