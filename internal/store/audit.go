package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxAuditEntries bounds the refusal audit stream; older entries are
// trimmed (approximately) as new ones arrive.
const MaxAuditEntries = 100_000

// AuditEntry is one refused command: who tried what, from where, and why
// they were refused. Remedies keep their own audit trail (remedies.go).
type AuditEntry struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	User    string    `json:"user"`
	Channel string    `json:"channel,omitempty"`
	Origin  string    `json:"origin,omitempty"`
	Command string    `json:"command"`
	Group   string    `json:"group,omitempty"`
	Reason  string    `json:"reason"`
}

// auditKey is the stream of refusals:
//
//	{vt}:audit               stream   refused commands (audit.go)
func (k keys) audit() string { return k.base + "audit" }

// AppendAudit records a refusal. Its ID is given by Redis.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.clock.Now()
	}
	e.At = e.At.UTC()
	e.ID = ""
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("append audit: encode: %w", err)
	}
	err = s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: s.k.audit(), MaxLen: MaxAuditEntries, Approx: true,
		Values: map[string]any{"e": doc},
	}).Err()
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// Audit returns up to limit refusals, newest first, stopping at the first
// one older than since (entries are appended in time order; their time is
// the service clock's, not Redis's).
func (s *Store) Audit(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.k.audit(), "+", "-", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	out := make([]AuditEntry, 0, len(msgs))
	for _, m := range msgs {
		raw, _ := m.Values["e"].(string)
		var e AuditEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("read audit entry %s: %w", m.ID, err)
		}
		if e.At.Before(since) {
			break
		}
		e.ID = m.ID
		out = append(out, e)
	}
	return out, nil
}
