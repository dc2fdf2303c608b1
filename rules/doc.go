// Package rules is the brain of vmtriage: it decides why a VM went down and
// what to do about it.
//
// Rules live in strict YAML files (see Parse for the format). Each rule is an
// expr-lang expression compiled once, at load, against a typed environment
// (Env): the VM, its host in the collection period that matters, the
// period, and cheap history helpers such as host_held("failed", 3). The same
// files derive every host's state per collection period (host_states),
// declare which incidents mute which (inhibit), and how unacknowledged
// incidents escalate (escalation).
//
// The Engine keeps an in-memory index of the fleet, evaluates the rules
// incrementally for each observation, and drives the incident lifecycle:
// pending → firing → resolved (a pending incident that clears before it
// fires is withdrawn: it never was one), with anti-flap resolve delays,
// reopening within a window, inhibition, silences and up to five
// escalation levels.
// Every incident change is persisted through the IncidentStore before
// Observe returns, so an observation is acknowledged only once its
// consequences are durable.
package rules
