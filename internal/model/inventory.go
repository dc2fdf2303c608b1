package model

import (
	"fmt"
	"strings"
	"time"
)

// ServiceImpact is how badly a fault hits one service: how many of its
// instances (the VMs the inventory assigns to it) are down, how many of
// those the fault itself took down, and in which sites it took down the
// last instance still running.
type ServiceImpact struct {
	Service string `json:"service"`
	// Team is the owning team, if the inventory names one.
	Team string `json:"team,omitempty"`
	// Instances counts the service's VMs; Down those not running,
	// including the ones the fault hit; Hit the ones the fault hit.
	Instances int `json:"instances"`
	Down      int `json:"down"`
	Hit       int `json:"hit"`
	// LastInSites lists the sites where the fault took down the service's
	// last running instance.
	LastInSites []string `json:"last_in_sites,omitempty"`
}

// Fraction is the share of the service's instances that are down, 0 to 1.
func (s ServiceImpact) Fraction() float64 {
	if s.Instances == 0 {
		return 0
	}
	return float64(s.Down) / float64(s.Instances)
}

// String is one line for people: "payments-api: 3 of 6 instances down;
// last instance in site pod-a".
func (s ServiceImpact) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d instance%s down", s.Service, s.Down, s.Instances, plural(s.Instances))
	if s.Down == s.Instances && s.Instances > 0 {
		b.WriteString(" (all)")
	}
	if len(s.LastInSites) > 0 {
		fmt.Fprintf(&b, "; last instance in site%s %s", plural(len(s.LastInSites)), strings.Join(s.LastInSites, ", "))
	}
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// InventoryRelation is one fact of the inventory as one source states it:
// the Field of the Kind entry called Name has Value. Kind is "vm" (field
// "service"), "service" (field "team") or "team" (fields "slack_channel",
// "slack_usergroup", "jira_component", "jira_assignee").
type InventoryRelation struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Field string `json:"field"`
	Value string `json:"value"`
}

// InventoryChange records one change of a relation in one source's layer:
// what changed (Old to New; an empty side means absent), from which source,
// when, and who or what made it.
type InventoryChange struct {
	// Seq orders changes; it increases with every applied update.
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	Actor  string    `json:"actor"`
	Kind   string    `json:"kind"`
	Name   string    `json:"name"`
	Field  string    `json:"field"`
	Old    string    `json:"old"`
	New    string    `json:"new"`
}
