// Package outage keeps vmtriage's books: every period a VM is not running
// is an outage interval with a start, an end (or none while it lasts) and an
// attribution — the platform's (unplanned, or planned maintenance), the
// user's, the guest's, or unknown — taken from the classification of the
// incidents that explain it. The books live in Redis (store.Outage), are
// fed by the incidents stream in their own consumer group and by the VMs'
// current state, and answer availability reports per VM, host, site and
// fleet.
//
// # Attribution and precedence
//
// An incident explains an interval when it names the VM (its subject or one
// of its VMs) and its window [started_at, resolved_at or now] overlaps the
// interval. Its trigger gives the attribution: platform is planned
// maintenance when the cause is planned-maintenance or the platform event
// names planned maintenance, else platform-unplanned; user is user; vm is
// guest. Several incidents may explain one interval; the interval takes the
// attribution of highest precedence:
//
//	platform-planned > platform-unplanned > user > guest > unknown
//
// A planned-maintenance annotation is the most specific statement there is
// about a period — the platform says it took the VM down on purpose — so
// it wins even when it arrives after the outage started (it re-attributes
// the interval, open or closed). Otherwise the platform is held to account
// before the customer: a guest that crashed on a failing host is the
// platform's downtime, which is what the rules already say and what a
// customer would claim credits for. A user's operation explains a guest's
// state, so user beats guest. Silenced incidents count like any other:
// silencing mutes notifications, not the books.
package outage

import (
	"strings"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Attribution says whose fault an outage interval is.
type Attribution string

// Attributions, in order of precedence.
const (
	PlatformPlanned   Attribution = "platform-planned"
	PlatformUnplanned Attribution = "platform-unplanned"
	User              Attribution = "user"
	Guest             Attribution = "guest"
	Unknown           Attribution = "unknown"
)

// Attributions lists every attribution in order of precedence; reports and
// CSV columns follow this order.
var Attributions = []Attribution{PlatformPlanned, PlatformUnplanned, User, Guest, Unknown}

// Rank orders attributions by precedence: 0 wins.
func (a Attribution) Rank() int {
	switch a {
	case PlatformPlanned:
		return 0
	case PlatformUnplanned:
		return 1
	case User:
		return 2
	case Guest:
		return 3
	}
	return 4
}

// Platform reports whether the platform is responsible (planned or not).
func (a Attribution) Platform() bool { return a == PlatformPlanned || a == PlatformUnplanned }

// Of returns the attribution an incident's classification gives.
func Of(inc *model.Incident) Attribution {
	switch inc.Trigger {
	case model.TriggerPlatform:
		if planned(inc) {
			return PlatformPlanned
		}
		return PlatformUnplanned
	case model.TriggerUser:
		return User
	case model.TriggerVM:
		return Guest
	}
	return Unknown
}

// planned reports whether a platform incident is planned maintenance: its
// cause says so, or the platform's own event name does (Azure's
// ...ForPlannedMaintenance and PlannedFreeze... annotations).
func planned(inc *model.Incident) bool {
	if inc.Cause == "planned-maintenance" {
		return true
	}
	ev := strings.ToLower(inc.Event)
	return strings.Contains(ev, "plannedmaintenance") || strings.Contains(ev, "plannedfreeze")
}

// VMsOf returns the VMs an incident names: its subject when it is about a
// VM, and its VMs list, without duplicates.
func VMsOf(inc *model.Incident) []string {
	out := make([]string, 0, len(inc.VMs)+1)
	if inc.Kind == model.KindVM && inc.Subject != "" {
		out = append(out, inc.Subject)
	}
	for _, v := range inc.VMs {
		if v != "" && !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
