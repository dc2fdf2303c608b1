package store

import (
	"crypto/tls"
	"time"
)

// URLOptions is what a parsed Redis URL configures, for tests.
type URLOptions struct {
	Kind     string
	Addrs    []string
	DB       int
	Master   string
	Username string
	Password string
	// SentinelPassword is the sentinels' own password.
	SentinelPassword string
	TLS              bool
	PoolSize         int
}

// ParseURLForTest parses url as Connect does, without connecting.
func ParseURLForTest(url string) (URLOptions, error) {
	ep, err := parseURL(url)
	if err != nil {
		return URLOptions{}, ep.redact(err)
	}
	o := URLOptions{Kind: ep.kind, Addrs: ep.addrs()}
	var tc *tls.Config
	switch {
	case ep.single != nil:
		o.DB, o.Username, o.Password, tc, o.PoolSize = ep.single.DB, ep.single.Username, ep.single.Password, ep.single.TLSConfig, ep.single.PoolSize
	case ep.cluster != nil:
		o.Username, o.Password, tc, o.PoolSize = ep.cluster.Username, ep.cluster.Password, ep.cluster.TLSConfig, ep.cluster.PoolSize
	case ep.failover != nil:
		f := ep.failover
		o.DB, o.Master, o.Username, o.Password, o.SentinelPassword, tc, o.PoolSize = f.DB, f.MasterName, f.Username, f.Password, f.SentinelPassword, f.TLSConfig, f.PoolSize
	}
	o.TLS = tc != nil
	return o, nil
}

// SetMaxIncidents changes how many incidents s keeps, so trimming can be
// tested with a handful.
func SetMaxIncidents(s *Store, n int) { s.maxIncidents = n }

// Keys names some of s's keys, for tests that inspect Redis directly.
type Keys struct{ s *Store }

// KeysOf returns s's key names.
func KeysOf(s *Store) Keys { return Keys{s} }

// Period is the key of a host's facts in the period starting at start.
func (k Keys) Period(host string, start time.Time) string { return k.s.k.period(host, start) }

// Observations is the observation stream.
func (k Keys) Observations() string { return k.s.k.observations() }

// Incidents is the incident change stream.
func (k Keys) Incidents() string { return k.s.k.incidentStream() }
