// Package remedy acts on the fleet for an incident, after a person approved
// it when the incident's rule asks for approval: it restarts a crashed VM,
// restarts a service, or moves every VM off a failing host.
//
// A remedy is a record in Redis (store.SaveRemedy) that only moves forward
// through compare-and-set transitions: awaiting-approval, then approved or
// denied or expired, then running, then done or failed. Two replicas, or
// two clicks on one button, can therefore never approve, run or finish it
// twice. Every transition appends to the remedy's audit trail in the same
// atomic step, and the incident's Approval and Remedy fields follow, so the
// incident's chat thread tells the story.
//
// The Manager creates remedies when incidents fire and takes approvals and
// denials; the Executor runs approved remedies through an Actuator: DryRun
// (the default: it only says what it would do), Simulator (the demo's
// fleet) or Libvirt.
package remedy
