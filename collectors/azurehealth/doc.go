// Package azurehealth polls Azure Resource Health for the VMs of the
// configured subscriptions and turns what it reads into observations.
//
// Every Interval it lists
// /subscriptions/{s}/providers/Microsoft.ResourceHealth/availabilityStatuses
// (with $expand=recommendedactions, following nextLink) for each
// subscription, keeps the VM records (single VMs and scale-set VMs), maps
// availabilityState onto a VM state (Available and Degraded: running,
// Unavailable: unavailable, or shutoff when the annotation says the user
// stopped it, Unknown: unknown), the annotation name onto the observation's
// event, and reasonType, reasonChronicity, context, category and the health
// event fields onto attrs. The time generated is occuredTime, falling back
// to reportedTime when occuredTime is older than what was already sent.
//
// The first poll is the baseline: it is sent whole, so that downstream
// starts from a complete picture and a VM that went down while vmtriage was
// stopped is not missed (Options.QuietBaseline keeps it to the collector
// instead). After it, only records that changed are sent. Because a VM whose
// record never changes would otherwise look silent to the stopped-reporting
// rule, every KeepAlive each VM still listed gets a heartbeat: a VM
// observation without a state, which proves it is alive and changes nothing
// else. A VM that drops out of the listing stops getting them and is
// reported as stopped reporting.
//
// A throttled (429, honouring Retry-After) or failed (5xx, network) page is
// retried; when its attempts run out, what was read before it is kept and
// sent, and the rest waits for the next poll. A record that cannot be read
// is counted, logged with the reason and skipped; it never ends the poll.
//
// Authentication is the OAuth2 client-credentials flow of a service
// principal against Microsoft Entra ID, written out here (one form POST)
// rather than taken from azidentity: it keeps the Azure SDK's dependency
// tree out of the binary, and lets the token's expiry follow the injected
// clock, so refresh-before-expiry is tested without sleeping.
package azurehealth
