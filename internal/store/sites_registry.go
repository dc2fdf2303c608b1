package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// RegisteredSite is a site (a pod, a region) that registered itself and
// its collector endpoints with POST /v1/sites, so that vmtriage polls
// them. It is distinct from Sites, which lists the sites named by
// observations.
type RegisteredSite struct {
	Site         string         `json:"site"`
	Endpoints    []SiteEndpoint `json:"endpoints"`
	RegisteredAt time.Time      `json:"registered_at"`
}

// SiteEndpoint is one collector endpoint of a registered site: what kind
// of collector reads it and where it is (URL for HTTP kinds, URI for
// libvirt-style kinds).
type SiteEndpoint struct {
	Kind string `json:"kind"`
	URL  string `json:"url,omitempty"`
	URI  string `json:"uri,omitempty"`
}

// ID identifies the endpoint within its site: its kind and target.
func (e SiteEndpoint) ID() string {
	if e.URL != "" {
		return e.Kind + " " + e.URL
	}
	return e.Kind + " " + e.URI
}

// EndpointStatus is how the latest polls of one endpoint went.
type EndpointStatus struct {
	Site     string `json:"site"`
	Endpoint string `json:"endpoint"` // SiteEndpoint.ID
	// LastPoll and LastSuccess are the clock's times of the latest poll and
	// of the latest one that worked.
	LastPoll    time.Time `json:"last_poll,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is the latest failure's reason, empty after a success.
	LastError string `json:"last_error,omitempty"`
	// Failures counts the failed polls since the last success.
	Failures int `json:"consecutive_failures"`
}

// Registered-site keys (see keys.go for the others):
//
//	{vt}:regsites        hash  site -> RegisteredSite JSON
//	{vt}:regstatus       hash  "<site>\n<endpoint id>" -> EndpointStatus JSON
//	{vt}:reglease:<ep>   string replica polling the endpoint ("<site>\n<id>"), with a TTL
func (k keys) registeredSites() string        { return k.base + "regsites" }
func (k keys) endpointStatus() string         { return k.base + "regstatus" }
func (k keys) endpointLease(ep string) string { return k.base + "reglease:" + ep }

func statusField(site, endpoint string) string { return site + "\n" + endpoint }

// RegisterSite stores site, replacing the endpoints it registered before.
// The caller validates it. A zero RegisteredAt is now.
func (s *Store) RegisterSite(ctx context.Context, site RegisteredSite) error {
	if site.Site == "" {
		return errors.New("register site: the site name is required")
	}
	if site.RegisteredAt.IsZero() {
		site.RegisteredAt = s.clock.Now()
	}
	site.RegisteredAt = site.RegisteredAt.UTC()
	doc, err := json.Marshal(site)
	if err != nil {
		return fmt.Errorf("register site %s: encode: %w", site.Site, err)
	}
	if err := s.rdb.HSet(ctx, s.k.registeredSites(), site.Site, doc).Err(); err != nil {
		return fmt.Errorf("register site %s: %w", site.Site, err)
	}
	return nil
}

// UnregisterSite forgets a registered site and its endpoints' statuses; it
// returns ErrNotFound (wrapped) when the site is not registered.
func (s *Store) UnregisterSite(ctx context.Context, site string) error {
	n, err := s.rdb.HDel(ctx, s.k.registeredSites(), site).Result()
	if err != nil {
		return fmt.Errorf("unregister site %s: %w", site, err)
	}
	if n == 0 {
		return fmt.Errorf("unregister site %s: %w", site, ErrNotFound)
	}
	return nil
}

// RegisteredSites lists the registered sites, sorted by name. An entry
// that does not decode is logged and skipped.
func (s *Store) RegisteredSites(ctx context.Context) ([]RegisteredSite, error) {
	all, err := s.rdb.HGetAll(ctx, s.k.registeredSites()).Result()
	if err != nil {
		return nil, fmt.Errorf("list registered sites: %w", err)
	}
	out := make([]RegisteredSite, 0, len(all))
	for name, doc := range all {
		var rs RegisteredSite
		if err := json.Unmarshal([]byte(doc), &rs); err != nil {
			s.log.Error("undecodable registered site skipped", "site", name, "err", err)
			continue
		}
		out = append(out, rs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	return out, nil
}

// SaveEndpointStatus records how an endpoint's latest poll went.
func (s *Store) SaveEndpointStatus(ctx context.Context, st EndpointStatus) error {
	doc, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save status of %s %s: encode: %w", st.Site, st.Endpoint, err)
	}
	if err := s.rdb.HSet(ctx, s.k.endpointStatus(), statusField(st.Site, st.Endpoint), doc).Err(); err != nil {
		return fmt.Errorf("save status of %s %s: %w", st.Site, st.Endpoint, err)
	}
	return nil
}

// DeleteEndpointStatus forgets the status of an endpoint no longer
// registered.
func (s *Store) DeleteEndpointStatus(ctx context.Context, site, endpoint string) error {
	if err := s.rdb.HDel(ctx, s.k.endpointStatus(), statusField(site, endpoint)).Err(); err != nil {
		return fmt.Errorf("delete status of %s %s: %w", site, endpoint, err)
	}
	return nil
}

// EndpointStatuses returns every endpoint's status, by site and then by
// endpoint id.
func (s *Store) EndpointStatuses(ctx context.Context) (map[string]map[string]EndpointStatus, error) {
	all, err := s.rdb.HGetAll(ctx, s.k.endpointStatus()).Result()
	if err != nil {
		return nil, fmt.Errorf("list endpoint statuses: %w", err)
	}
	out := map[string]map[string]EndpointStatus{}
	for field, doc := range all {
		var st EndpointStatus
		if err := json.Unmarshal([]byte(doc), &st); err != nil {
			s.log.Error("undecodable endpoint status skipped", "field", field, "err", err)
			continue
		}
		if out[st.Site] == nil {
			out[st.Site] = map[string]EndpointStatus{}
		}
		out[st.Site][st.Endpoint] = st
	}
	return out, nil
}

// leaseScript takes or renews a lease: granted when the key is free or
// already held by the same owner.
var leaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// LeaseEndpoint gives owner the right to poll an endpoint for ttl, so that
// of several replicas only one polls it; the holder renews it each poll,
// and another replica takes over once a dead holder's lease runs out.
func (s *Store) LeaseEndpoint(ctx context.Context, site, endpoint, owner string, ttl time.Duration) (bool, error) {
	ok, err := leaseScript.Run(ctx, s.rdb, []string{s.k.endpointLease(statusField(site, endpoint))},
		owner, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lease %s %s: %w", site, endpoint, err)
	}
	return ok == 1, nil
}
