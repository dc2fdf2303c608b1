package model

import (
	"encoding/json"
	"time"
)

// Status is where an incident is in its life.
type Status string

// Incident statuses. Pending means the condition holds but not yet for the
// rule's "for" duration; firing means people are told; resolved means the
// condition cleared (after the resolve delay).
const (
	StatusPending  Status = "pending"
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Severity orders incidents by urgency.
type Severity string

// Severities, most urgent first.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
)

// Rank orders severities: critical is 0, low is 3, anything else 4.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 0
	case SeverityHigh:
		return 1
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 3
	}
	return 4
}

// Valid reports whether s is one of the four severities.
func (s Severity) Valid() bool { return s.Rank() < 4 }

// Trigger is who set the chain of events off: the platform, the VM's user,
// or the guest inside the VM. It decides whose fault the downtime is.
type Trigger string

// Triggers, as the contract spells them.
const (
	TriggerPlatform Trigger = "platform"
	TriggerUser     Trigger = "user"
	TriggerVM       Trigger = "vm"
)

// Valid reports whether t is one of the three triggers.
func (t Trigger) Valid() bool {
	return t == TriggerPlatform || t == TriggerUser || t == TriggerVM
}

// Action is the remedy vmtriage proposes for an incident.
type Action string

// Actions, from harmless to risky.
const (
	ActionNone           Action = "none"
	ActionNotify         Action = "notify"
	ActionRestartVM      Action = "restart-vm"
	ActionRestartService Action = "restart-service"
	ActionMigrateHost    Action = "migrate-host"
)

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	switch a {
	case ActionNone, ActionNotify, ActionRestartVM, ActionRestartService, ActionMigrateHost:
		return true
	}
	return false
}

// Approval is where an incident's action stands with respect to a person's
// approval.
type Approval string

// Approval states. NotRequired is used when the action runs without one.
const (
	ApprovalNotRequired Approval = "not-required"
	ApprovalPending     Approval = "pending"
	ApprovalApproved    Approval = "approved"
	ApprovalDenied      Approval = "denied"
	ApprovalExpired     Approval = "expired"
)

// Incident is one classified problem, as GET /v1/incidents lists it. A host
// incident lists every affected VM in VMs; a VM incident lists its one VM.
type Incident struct {
	ID          string   `json:"id"`
	Fingerprint string   `json:"fingerprint"`
	Rule        string   `json:"rule"`
	Status      Status   `json:"status"`
	Severity    Severity `json:"severity"`
	Cause       string   `json:"cause"`
	Trigger     Trigger  `json:"trigger"`
	Action      Action   `json:"action"`
	Approval    Approval `json:"approval"`
	// Kind and Subject name what the incident is about: the VM, host,
	// service ("host-007/libvirtd"), site or source.
	Kind    Kind     `json:"kind"`
	Subject string   `json:"subject"`
	Host    string   `json:"host,omitempty"`
	Site    string   `json:"site,omitempty"`
	VMs     []string `json:"vms"`
	// Summary is one human sentence: what happened, where, why.
	Summary string `json:"summary"`
	// HostState is the host's derived state in the collection period that
	// decided the classification (healthy, degraded, failed), if known.
	HostState string `json:"host_state,omitempty"`
	// Event is the platform event or annotation behind the incident, if any.
	Event      string    `json:"event,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FiringAt   time.Time `json:"firing_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at"`
	Level      int       `json:"level"`
	AckedBy    string    `json:"acked_by"`
	AckedAt    time.Time `json:"acked_at,omitzero"`
	Ticket     string    `json:"ticket"`
	TicketURL  string    `json:"ticket_url,omitempty"`
	// TicketError is why Jira refused the incident's ticket (or an update
	// of it) in words that say what to change; set by the ticket worker,
	// cleared once a ticket is created or an update goes through.
	TicketError string   `json:"ticket_error,omitempty"`
	Runbooks    []string `json:"runbooks"`
	// Services lists the services the incident's VMs belong to and how
	// badly each is hit, worst first, from the inventory and the current
	// placement; empty when no VM of it is in the inventory.
	Services []ServiceImpact `json:"services,omitempty"`
	// Silenced is true while a silence matches; the incident is still
	// recorded and counted, only not notified.
	Silenced bool `json:"silenced"`
	// InhibitedBy is the id of the host incident that mutes this one.
	InhibitedBy string `json:"inhibited_by,omitempty"`
	// Reopened counts recurrences folded into this incident.
	Reopened int `json:"reopened,omitempty"`
	// PlatformRecovery is true while the platform itself is recovering the
	// incident's VMs (e.g. planned maintenance): remedies must refuse a
	// manual restart or migration, which would fight the platform's.
	PlatformRecovery bool `json:"platform_recovery,omitempty"`
	// Remedy says in one line where the incident's remedy stands (its id,
	// state, approvals, plan or result); the remedy path writes it.
	Remedy string `json:"remedy,omitempty"`
	// Escalation names the escalation policy; Targets are the recipients of
	// the current Level, as "kind:value" (channel:#ops, usergroup:S0PAY,
	// user:U123, jira-priority:Highest).
	Escalation string   `json:"escalation,omitempty"`
	Targets    []string `json:"targets,omitempty"`
	// Version increases with every change so consumers (Slack, Jira) can
	// drop stale updates.
	Version int64 `json:"version"`
}

// Open reports whether the incident is pending or firing.
func (i *Incident) Open() bool { return i.Status == StatusPending || i.Status == StatusFiring }

// MarshalJSON writes the contract's shape: unset times and names are null,
// and lists are [] rather than null.
func (i Incident) MarshalJSON() ([]byte, error) {
	type plain Incident // drops the methods, so no recursion
	w := struct {
		plain
		ResolvedAt *time.Time `json:"resolved_at"`
		AckedBy    *string    `json:"acked_by"`
		Ticket     *string    `json:"ticket"`
		VMs        []string   `json:"vms"`
		Runbooks   []string   `json:"runbooks"`
	}{plain: plain(i), VMs: i.VMs, Runbooks: i.Runbooks}
	if !i.ResolvedAt.IsZero() {
		w.ResolvedAt = &i.ResolvedAt
	}
	if i.AckedBy != "" {
		w.AckedBy = &i.AckedBy
	}
	if i.Ticket != "" {
		w.Ticket = &i.Ticket
	}
	if w.VMs == nil {
		w.VMs = []string{}
	}
	if w.Runbooks == nil {
		w.Runbooks = []string{}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (i *Incident) UnmarshalJSON(b []byte) error {
	type plain Incident
	var w struct {
		plain
		ResolvedAt *time.Time `json:"resolved_at"`
		AckedBy    *string    `json:"acked_by"`
		Ticket     *string    `json:"ticket"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*i = Incident(w.plain)
	if w.ResolvedAt != nil {
		i.ResolvedAt = *w.ResolvedAt
	}
	if w.AckedBy != nil {
		i.AckedBy = *w.AckedBy
	}
	if w.Ticket != nil {
		i.Ticket = *w.Ticket
	}
	return nil
}

// IncidentFilter selects incidents for listing. Zero fields match anything.
type IncidentFilter struct {
	Status   Status
	Site     string
	Severity Severity
	Host     string
	VM       string
	// Limit caps the result; 0 means the store's default.
	Limit int
}

// Match reports whether inc passes the filter.
func (f IncidentFilter) Match(inc *Incident) bool {
	if f.Status != "" && inc.Status != f.Status {
		return false
	}
	if f.Site != "" && inc.Site != f.Site {
		return false
	}
	if f.Severity != "" && inc.Severity != f.Severity {
		return false
	}
	if f.Host != "" && inc.Host != f.Host {
		return false
	}
	if f.VM != "" {
		found := false
		for _, v := range inc.VMs {
			if v == f.VM {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
