// Package store keeps vmtriage's shared state in Redis: the durable stream
// of incoming observations, the current state of every VM, host and service,
// the incidents with their change stream, silences and the escalation
// schedule. Nothing lives only in one process, so several replicas can run
// against one Redis (standalone, Sentinel or Cluster).
//
// Every key carries the hash tag "{"+Prefix+"}" (see keys.go), so all keys
// of one deployment share one Cluster slot and every multi-key operation
// (Lua scripts, MULTI) is legal on Redis Cluster. Writes that must be atomic
// are single Lua scripts: Apply writes a whole batch of observations in one
// round trip, SaveIncident compares-and-sets the incident version and
// appends the change to the incidents stream in the same step.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/clock"
)

// ErrNotFound is returned (wrapped) when a VM, host, incident or silence is
// not in the store.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned (wrapped) by SaveIncident when the stored incident
// has a different version than the one the caller changed: someone else
// saved it in between. Reload and retry.
var ErrConflict = errors.New("version conflict")

// Defaults applied by New to zero Options fields.
const (
	DefaultPrefix          = "vt"
	DefaultPeriod          = time.Minute
	DefaultPeriodRetention = 32
	// DefaultObservationStreamMaxLen caps the observation stream
	// (approximately). Acknowledged entries are deleted, so only a consumer
	// outage of this many entries could reach it.
	DefaultObservationStreamMaxLen = 1_000_000
	// DefaultIncidentStreamMaxLen caps the incidents change stream
	// (approximately).
	DefaultIncidentStreamMaxLen = 100_000
	// DefaultIncidentLimit is how many incidents Incidents returns when the
	// filter sets no limit.
	DefaultIncidentLimit = 500
	// MaxIncidents is how many incidents the time-ordered index keeps; the
	// oldest resolved ones beyond it are deleted. Open incidents are never
	// deleted.
	MaxIncidents = 50_000
	// SilenceKeep is how long after its end a silence is still listed.
	SilenceKeep = 24 * time.Hour
)

// Options configure a Store. Only Client is required.
type Options struct {
	// Client is the Redis connection, from Connect or storetest.Client.
	Client redis.UniversalClient
	// Prefix names the deployment: every key is "{"+Prefix+"}:...".
	// Default "vt". Tests use a unique prefix each.
	Prefix string
	// Clock stamps TimeStored, UpdatedAt and silence expiry. Default the
	// wall clock.
	Clock clock.Clock
	// Period is the length of a collection period. Default 1m; at least 1s
	// (periods are keyed by their start in Unix seconds).
	Period time.Duration
	// PeriodRetention is how many periods of host facts are kept. Default 32.
	PeriodRetention int
	// StreamMaxLen, if set, caps both streams (approximately). By default
	// the observation stream is capped at 1,000,000 entries and the
	// incidents stream at 100,000.
	StreamMaxLen int64
	// Logger receives what the store cannot return as an error, such as an
	// undecodable stream entry. Default: discard.
	Logger *slog.Logger
}

// Store reads and writes vmtriage's state in Redis. It is safe for
// concurrent use.
type Store struct {
	rdb             redis.UniversalClient
	k               keys
	clock           clock.Clock
	period          time.Duration
	retention       int
	obsMaxLen       int64
	incMaxLen       int64
	maxIncidents    int
	log             *slog.Logger
	incidentPage    int
	applyChunk      int
	claimIterations int
}

// New returns a Store on opts.Client, filling in defaults.
func New(opts Options) *Store {
	s := &Store{
		rdb:             opts.Client,
		k:               newKeys(opts.Prefix),
		clock:           opts.Clock,
		period:          opts.Period,
		retention:       opts.PeriodRetention,
		obsMaxLen:       DefaultObservationStreamMaxLen,
		incMaxLen:       DefaultIncidentStreamMaxLen,
		maxIncidents:    MaxIncidents,
		log:             opts.Logger,
		incidentPage:    500,
		applyChunk:      maxChunk,
		claimIterations: 10,
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	switch {
	case s.period <= 0:
		s.period = DefaultPeriod
	case s.period < time.Second:
		s.period = time.Second
	}
	if s.retention <= 0 {
		s.retention = DefaultPeriodRetention
	}
	if opts.StreamMaxLen > 0 {
		s.obsMaxLen, s.incMaxLen = opts.StreamMaxLen, opts.StreamMaxLen
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// tsLayout is a fixed-width UTC timestamp. Fixed width makes the strings
// sort like the times they stand for, so Lua compares them as strings
// (Lua's doubles cannot hold Unix nanoseconds exactly).
const tsLayout = "2006-01-02T15:04:05.000000000Z"

// formatTime formats t for storage; the zero time is "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(tsLayout)
}

// parseTime reads what formatTime wrote; "" and garbage are the zero time.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(tsLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
