package model

import "time"

// RemedyState is where a remedy stands. A remedy moves only forward:
// awaiting-approval → approved → running → done or failed, or
// awaiting-approval → denied or expired. Actions that need no approval are
// created approved.
type RemedyState string

// Remedy states.
const (
	RemedyAwaiting RemedyState = "awaiting-approval"
	RemedyApproved RemedyState = "approved"
	RemedyDenied   RemedyState = "denied"
	RemedyExpired  RemedyState = "expired"
	RemedyRunning  RemedyState = "running"
	RemedyDone     RemedyState = "done"
	RemedyFailed   RemedyState = "failed"
)

// Final reports whether nothing more will happen to a remedy in state s.
func (s RemedyState) Final() bool {
	return s == RemedyDenied || s == RemedyExpired || s == RemedyDone || s == RemedyFailed
}

// StepState is where one step of a remedy stands.
type StepState string

// Step states. Started is written before the actuator is called, so a
// replica that dies mid-step leaves a trace; such a step is never retried
// blindly (its outcome is unknown) but marked failed by whoever takes over.
const (
	StepPending StepState = "pending"
	StepStarted StepState = "started"
	StepDone    StepState = "done"
	StepFailed  StepState = "failed"
	StepSkipped StepState = "skipped"
)

// Step verbs: what one step does.
const (
	StepRestartVM       = "restart-vm"
	StepRestartService  = "restart-service"
	StepMigrateVM       = "migrate-vm"
	StepHostMaintenance = "host-maintenance"
)

// RemedyStep is one thing a remedy does to the fleet: restart a VM, move
// it to Target, put a host into maintenance.
type RemedyStep struct {
	Do      string    `json:"do"`
	VM      string    `json:"vm,omitempty"`
	Host    string    `json:"host,omitempty"`
	Service string    `json:"service,omitempty"`
	Target  string    `json:"target,omitempty"`
	State   StepState `json:"state"`
	// Detail says why a step was skipped or failed, or what it did.
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// Decision is one person's approval or denial.
type Decision struct {
	User   string    `json:"user"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Remedy is one proposed change to the fleet for an incident, with its
// approvals and its execution, as GET /v1/remedies lists it.
type Remedy struct {
	ID       string      `json:"id"`
	Incident string      `json:"incident"`
	Action   Action      `json:"action"`
	State    RemedyState `json:"state"`
	// Subject is the VM, host or service ("host-007/libvirtd") acted on.
	Subject string `json:"subject"`
	Host    string `json:"host,omitempty"`
	Site    string `json:"site,omitempty"`
	// RequestedBy is who asked for it: "vmtriage" when an incident's rule
	// proposed it.
	RequestedBy string `json:"requested_by"`
	// Approvals needed (0 for actions that run without one) and given.
	ApprovalsNeeded int        `json:"approvals_needed"`
	Approvals       []Decision `json:"approvals,omitempty"`
	Denial          *Decision  `json:"denial,omitempty"`
	// Steps is the plan: for migrate-host, maintenance first, then one
	// move per VM (a VM that fits nowhere is a skipped step saying so).
	Steps     []RemedyStep `json:"steps"`
	CreatedAt time.Time    `json:"created_at"`
	ExpiresAt time.Time    `json:"expires_at,omitzero"`
	UpdatedAt time.Time    `json:"updated_at,omitzero"`
	// Owner is the executor running it, until LeaseUntil; another takes
	// over once the lease ran out.
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// Result is the final summary ("3 moved, 1 failed, 1 skipped").
	Result  string `json:"result,omitempty"`
	Version int64  `json:"version"`
}

// AuditEntry is one line of a remedy's audit trail: who did what, when,
// and what came of it. Entries are appended, never rewritten.
type AuditEntry struct {
	Remedy   string    `json:"remedy"`
	Incident string    `json:"incident"`
	At       time.Time `json:"at"`
	Who      string    `json:"who"`
	What     string    `json:"what"`
	Result   string    `json:"result,omitempty"`
}
