package store

import (
	"strconv"
	"time"
)

// keys names every Redis key of one Store; nothing else builds key names
// (the Lua scripts receive the names or prefixes from here).
//
// Every key starts with the hash tag "{prefix}:" so that all of them hash to
// one Cluster slot. The variable part (an id, a name) always comes last and
// follows a fixed word, so an id containing ':' cannot collide with another
// key: "{vt}:hostvms:h1" can never be the key of some host's hash.
//
//	{vt}:obs                 stream   observation chunks (group "ingest")
//	{vt}:vm:<id>             hash     current VM state
//	{vt}:vms                 set      all VM ids
//	{vt}:host:<id>           hash     host reported state, stamps, derived state
//	{vt}:hosts               set      all host ids
//	{vt}:hostfacts:<id>      hash     latest hardware facts (v:<name>=json, t:<name>=generated)
//	{vt}:hostvms:<id>        set      VMs last seen on the host
//	{vt}:hostsvcs:<id>       set      service names seen on the host
//	{vt}:hostperiods:<id>    zset     period starts (unix seconds) with data
//	{vt}:period:<unix>:<id>  hash     facts and derived state of one period (TTL)
//	{vt}:svc:<host>/<name>   hash     current service state (model.Observation.Key)
//	{vt}:sites               set      all sites
//	{vt}:sitevms:<site>      set      VMs of a site
//	{vt}:sitehosts:<site>    set      hosts of a site
//	{vt}:inc:<id>            hash     incident: v (version), json, fp
//	{vt}:incfp:<fp>          string   id of the latest incident with that fingerprint
//	{vt}:incopen             set      ids of open (pending, firing) incidents
//	{vt}:incall              zset     all incident ids, score = started_at (ms)
//	{vt}:incidents           stream   incident change snapshots
//	{vt}:seq:inc             string   incident id counter
//	{vt}:silences            hash     silence id -> json
//	{vt}:seq:sil             string   silence id counter
//	{vt}:esc                 zset     incident id, score = escalation due (ms)
//	{vt}:msg:<incident>      hash     chat message per channel: ts, versions, lease (messages.go)
type keys struct {
	prefix string // without braces
	base   string // "{prefix}:"
}

func newKeys(prefix string) keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return keys{prefix: prefix, base: "{" + prefix + "}:"}
}

func (k keys) observations() string          { return k.base + "obs" }
func (k keys) vm(id string) string           { return k.base + "vm:" + id }
func (k keys) vms() string                   { return k.base + "vms" }
func (k keys) host(id string) string         { return k.base + "host:" + id }
func (k keys) hosts() string                 { return k.base + "hosts" }
func (k keys) hostFacts(id string) string    { return k.base + "hostfacts:" + id }
func (k keys) hostVMs(id string) string      { return k.base + "hostvms:" + id }
func (k keys) hostServices(id string) string { return k.base + "hostsvcs:" + id }
func (k keys) hostPeriods(id string) string  { return k.base + "hostperiods:" + id }
func (k keys) period(host string, start time.Time) string {
	return k.base + "period:" + strconv.FormatInt(start.Unix(), 10) + ":" + host
}
func (k keys) service(key string) string    { return k.base + "svc:" + key }
func (k keys) sites() string                { return k.base + "sites" }
func (k keys) siteVMs(site string) string   { return k.base + "sitevms:" + site }
func (k keys) siteHosts(site string) string { return k.base + "sitehosts:" + site }
func (k keys) incident(id string) string    { return k.base + "inc:" + id }
func (k keys) fingerprint(fp string) string { return k.base + "incfp:" + fp }
func (k keys) openIncidents() string        { return k.base + "incopen" }
func (k keys) allIncidents() string         { return k.base + "incall" }
func (k keys) incidentStream() string       { return k.base + "incidents" }
func (k keys) incidentSeq() string          { return k.base + "seq:inc" }
func (k keys) silences() string             { return k.base + "silences" }
func (k keys) silenceSeq() string           { return k.base + "seq:sil" }
func (k keys) escalations() string          { return k.base + "esc" }

// pattern matches every key of the prefix, for SCAN in tests and tools.
func (k keys) pattern() string { return k.base + "*" }
