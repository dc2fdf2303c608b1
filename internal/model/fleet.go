package model

import "time"

// HostState is a host's running state in one collection period, derived by
// the rules from that period's hardware facts and service states.
type HostState string

// Host states. Unknown means no hardware facts arrived for the period.
const (
	HostHealthy  HostState = "healthy"
	HostDegraded HostState = "degraded"
	HostFailed   HostState = "failed"
	HostUnknown  HostState = "unknown"
)

// Stamps are the three times of a record: generated at the source,
// received by vmtriage, and stored (applied to the state store).
type Stamps struct {
	Generated time.Time `json:"time_generated"`
	Received  time.Time `json:"time_received,omitzero"`
	Stored    time.Time `json:"time_stored,omitzero"`
}

// StampsOf returns the three times of an observation.
func StampsOf(o *Observation) Stamps {
	return Stamps{Generated: o.TimeGenerated, Received: o.TimeReceived, Stored: o.TimeStored}
}

// VMStatus is the current state of one VM as the store knows it.
type VMStatus struct {
	ID     string         `json:"id"`
	Host   string         `json:"host,omitempty"`
	Site   string         `json:"site,omitempty"`
	State  State          `json:"state"`
	Event  string         `json:"event,omitempty"`
	Source string         `json:"source"`
	Attrs  map[string]any `json:"attrs,omitempty"`
	// Since is when the VM entered State (time generated at the source).
	Since time.Time `json:"since"`
	// Last holds the stamps of the latest record applied.
	Last Stamps `json:"last"`
}

// HostPeriod is what is known of a host in one collection period.
type HostPeriod struct {
	// Start is the beginning of the period; periods are aligned to
	// multiples of the period length since the Unix epoch.
	Start time.Time      `json:"start"`
	State HostState      `json:"state"`
	Facts map[string]any `json:"facts,omitempty"`
	// Reasons says which facts made the state what it is.
	Reasons []string `json:"reasons,omitempty"`
}

// ServiceStatus is the current state of a service component on a host.
type ServiceStatus struct {
	Host  string    `json:"host,omitempty"`
	Name  string    `json:"name"`
	State State     `json:"state"`
	Since time.Time `json:"since"`
	Last  Stamps    `json:"last"`
}

// HostStatus is the current state of one host as the store knows it.
type HostStatus struct {
	ID   string `json:"id"`
	Site string `json:"site,omitempty"`
	// Reported is the state the host itself last reported (up, down, ...).
	Reported State `json:"reported,omitempty"`
	// State is the derived state of the latest period known.
	State HostState      `json:"state"`
	Facts map[string]any `json:"facts,omitempty"`
	Since time.Time      `json:"since"`
	Last  Stamps         `json:"last"`
	// VMs lists the VMs last seen on this host.
	VMs      []string        `json:"vms"`
	Services []ServiceStatus `json:"services"`
	// Periods holds the most recent periods, newest first.
	Periods []HostPeriod `json:"periods"`
}

// PeriodStart aligns t to the start of its collection period: a multiple
// of length since the Unix epoch, as the rules engine counts periods. (Go's
// Truncate counts from year 1, which differs for lengths that do not divide
// a day, such as 7m, and would put facts in another period than the rules.)
func PeriodStart(t time.Time, length time.Duration) time.Time {
	if length <= 0 {
		return t
	}
	return time.Unix(0, t.UnixNano()/int64(length)*int64(length)).UTC()
}

// Silence mutes notifications for what it matches until it ends. Silenced
// incidents are still recorded and counted in the outage books.
type Silence struct {
	ID string `json:"id"`
	// Matchers: every non-empty field must equal the incident's.
	VM        string    `json:"vm,omitempty"`
	Host      string    `json:"host,omitempty"`
	Site      string    `json:"site,omitempty"`
	Rule      string    `json:"rule,omitempty"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Author    string    `json:"author"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Active reports whether the silence is in force at now.
func (s *Silence) Active(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// Matches reports whether the silence covers inc.
func (s *Silence) Matches(inc *Incident) bool {
	if s.Host != "" && inc.Host != s.Host {
		return false
	}
	if s.Site != "" && inc.Site != s.Site {
		return false
	}
	if s.Rule != "" && inc.Rule != s.Rule {
		return false
	}
	if s.VM != "" {
		found := false
		for _, v := range inc.VMs {
			if v == s.VM {
				found = true
				break
			}
		}
		if !found && !(inc.Kind == KindVM && inc.Subject == s.VM) {
			return false
		}
	}
	return s.VM != "" || s.Host != "" || s.Site != "" || s.Rule != ""
}
