// Package tickets opens and maintains one Jira ticket per incident that
// matters, with go-jira against Jira Cloud (e-mail and API token) or
// Server/Data Center (personal access token).
//
// Which incidents: those of the configured severities (critical and high
// by default) once they fire, unless silenced or muted by their host's
// incident; any other on demand ("/triage ticket <incident>", CreateNow).
//
// One ticket per incident, whatever fails: every ticket carries the label
// "vmtriage", a fingerprint label ("vmtriage-" and 16 hex digits of the
// SHA-256 of the incident's fingerprint) and an incident label. Before
// creating, the fingerprint label is looked up with JQL (Cloud's
// /rest/api/2/search/jql, Server's /rest/api/2/search), and all work on one
// incident's ticket happens under a Redis lock, so retries after a lost
// answer, restarts and several replicas never create a second ticket. A
// new incident with the fingerprint of a ticket still open, or resolved
// within the reopen window, reuses (and reopens) that ticket.
//
// The ticket follows the incident: escalation levels, acknowledgements,
// approvals and notes (Note: an action's result) become comments; the
// resolution is commented with the outage duration and transitions the
// ticket (configured transition names, executed by id); a reopening
// transitions it back. The key and URL are stored on the incident.
//
// Nothing is lost when Jira is slow or down: Run follows the incidents
// change stream in its own consumer group and queues operations on a Redis
// stream with a consumer group, acknowledged only once Jira did them. A 429
// waits for Retry-After, 5xx and timeouts back off exponentially, and a 4xx
// (a bad field, a missing permission) is not retried: the error, with what
// to change, is kept on the ticket record (Status) and logged. Errors never
// contain the token.
//
// Summary and description come from text/template templates (see
// TicketData); descriptions and comments are Jira wiki markup with every
// incident-provided string escaped.
package tickets
