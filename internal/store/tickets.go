package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Keys of the ticket follower (kept here, next to their only users):
//
//	{vt}:tickets              stream   ticket operations (group "tickets")
//	{vt}:ticket:<incident>    string   TicketRecord JSON of one incident (TTL)
//	{vt}:ticketlock:<inc>     string   owner of the incident's ticket lock (TTL)
func (k keys) ticketOps() string             { return k.base + "tickets" }
func (k keys) ticketRecord(id string) string { return k.base + "ticket:" + id }
func (k keys) ticketLock(id string) string   { return k.base + "ticketlock:" + id }

// TicketGroup is the consumer group that runs ticket operations. It is the
// only reader of the ticket stream, so handled entries are deleted.
const TicketGroup = "tickets"

// TicketRecordTTL is how long a ticket record outlives its last change:
// long enough to follow any incident and its reopen window.
const TicketRecordTTL = 30 * 24 * time.Hour

// ticketOpsMaxLen caps the ticket stream (approximately). Handled entries
// are deleted, so only a Jira outage of this many operations could reach it.
const ticketOpsMaxLen = 1_000_000

// TicketOp asks the ticket worker to bring an incident's ticket up to date
// with the incident. Operations are idempotent: the worker compares the
// incident with what the ticket already shows, so duplicates cost a read.
type TicketOp struct {
	// ID is the stream entry; acknowledge it with AckTicketOps.
	ID string
	// Incident is the incident id; empty for an undecodable entry, which
	// the consumer should acknowledge and drop.
	Incident string
	// Force creates a ticket whatever the incident's severity (the
	// "/triage ticket" command).
	Force bool
	// Reason says what asked for the operation ("change", "command",
	// "note"), for logs.
	Reason string
	// Note, if set, is a comment to add to the incident's ticket (an
	// action's result), once the ticket exists.
	Note string
}

// EnqueueTicketOp appends op (its ID is ignored) to the ticket stream.
// When it returns nil the operation is durable in Redis.
func (s *Store) EnqueueTicketOp(ctx context.Context, op TicketOp) error {
	if op.Incident == "" {
		return errors.New("enqueue ticket operation: incident id is required")
	}
	f := "0"
	if op.Force {
		f = "1"
	}
	values := []any{"incident", op.Incident, "force", f, "reason", op.Reason}
	if op.Note != "" {
		values = append(values, "note", op.Note)
	}
	err := s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: s.k.ticketOps(),
		MaxLen: ticketOpsMaxLen,
		Approx: true,
		Values: values,
	}).Err()
	if err != nil {
		return fmt.Errorf("enqueue ticket operation for %s: %w", op.Incident, err)
	}
	return nil
}

// ReadTicketOps reads up to count new ticket operations for consumer,
// waiting up to block for one (zero or less: no wait). It returns nil, nil
// when nothing arrived in time.
func (s *Store) ReadTicketOps(ctx context.Context, consumer string, count int, block time.Duration) ([]TicketOp, error) {
	msgs, err := s.readGroup(ctx, s.k.ticketOps(), TicketGroup, consumer, count, block)
	if err != nil {
		return nil, err
	}
	return ticketOps(msgs), nil
}

// ClaimTicketOps takes over up to count operations that another consumer
// read but did not acknowledge within minIdle (it died, or Jira kept it
// busy that long).
func (s *Store) ClaimTicketOps(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]TicketOp, error) {
	msgs, err := s.claimGroup(ctx, s.k.ticketOps(), TicketGroup, consumer, minIdle, count)
	if err != nil {
		return nil, err
	}
	return ticketOps(msgs), nil
}

// AckTicketOps acknowledges and deletes handled operations.
func (s *Store) AckTicketOps(ctx context.Context, ids ...string) error {
	return s.ackGroup(ctx, s.k.ticketOps(), TicketGroup, true, ids...)
}

// TicketBacklog counts the ticket operations not yet handled: handled
// entries are deleted, so it is the stream's length.
func (s *Store) TicketBacklog(ctx context.Context) (int64, error) {
	n, err := s.rdb.XLen(ctx, s.k.ticketOps()).Result()
	if err != nil {
		return 0, fmt.Errorf("ticket backlog: %w", err)
	}
	return n, nil
}

func ticketOps(msgs []redis.XMessage) []TicketOp {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]TicketOp, 0, len(msgs))
	for _, m := range msgs {
		op := TicketOp{ID: m.ID}
		op.Incident, _ = m.Values["incident"].(string)
		f, _ := m.Values["force"].(string)
		op.Force = f == "1"
		op.Reason, _ = m.Values["reason"].(string)
		op.Note, _ = m.Values["note"].(string)
		out = append(out, op)
	}
	return out
}

// TicketRecord is what the ticket worker remembers of one incident's
// ticket between operations and across restarts.
type TicketRecord struct {
	Incident string `json:"incident"`
	// Key and URL name the ticket ("OPS-123"); empty until it exists.
	Key string `json:"key,omitempty"`
	URL string `json:"url,omitempty"`
	// Forced is true once someone asked for the ticket by command: it is
	// then followed whatever the severity.
	Forced bool `json:"forced,omitempty"`
	// Synced is the incident as the ticket last fully reflected it; the
	// next changes are worked out against it.
	Synced *model.Incident `json:"synced,omitempty"`
	// Done lists the operations of the update in progress that already
	// succeeded, so a retry does not repeat them.
	Done []string `json:"done,omitempty"`
	// Error is the last error that retrying cannot fix, in words that say
	// what to change; ErrorAt is when it happened. Both clear on success.
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
	// UpdatedAt is when the record was last saved.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// TicketRecord returns the ticket record of incident, or an error wrapping
// ErrNotFound when there is none.
func (s *Store) TicketRecord(ctx context.Context, incident string) (TicketRecord, error) {
	doc, err := s.rdb.Get(ctx, s.k.ticketRecord(incident)).Result()
	if errors.Is(err, redis.Nil) {
		return TicketRecord{}, fmt.Errorf("read ticket record of %s: %w", incident, ErrNotFound)
	}
	if err != nil {
		return TicketRecord{}, fmt.Errorf("read ticket record of %s: %w", incident, err)
	}
	var rec TicketRecord
	if err := json.Unmarshal([]byte(doc), &rec); err != nil {
		return TicketRecord{}, fmt.Errorf("decode ticket record of %s: %w", incident, err)
	}
	return rec, nil
}

// SaveTicketRecord stores rec (stamping UpdatedAt) for TicketRecordTTL.
// Writers serialise through LockTicket; the record has no version of its
// own.
func (s *Store) SaveTicketRecord(ctx context.Context, rec *TicketRecord) error {
	if rec.Incident == "" {
		return errors.New("save ticket record: incident id is required")
	}
	rec.UpdatedAt = s.clock.Now()
	doc, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode ticket record of %s: %w", rec.Incident, err)
	}
	if err := s.rdb.Set(ctx, s.k.ticketRecord(rec.Incident), doc, TicketRecordTTL).Err(); err != nil {
		return fmt.Errorf("save ticket record of %s: %w", rec.Incident, err)
	}
	return nil
}

// LockTicket takes the lock on incident's ticket for owner, for at most
// ttl (Redis's clock), and reports whether it got it. Taking a lock owner
// already holds extends it. Holding it is what makes "look up, else create"
// safe across workers and replicas.
func (s *Store) LockTicket(ctx context.Context, incident, owner string, ttl time.Duration) (bool, error) {
	if owner == "" || ttl <= 0 {
		return false, errors.New("lock ticket: owner and a positive ttl are required")
	}
	n, err := lockScript.Run(ctx, s.rdb, []string{s.k.ticketLock(incident)}, owner, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lock ticket of %s: %w", incident, err)
	}
	return n == 1, nil
}

// UnlockTicket releases the lock if owner still holds it.
func (s *Store) UnlockTicket(ctx context.Context, incident, owner string) error {
	if err := unlockScript.Run(ctx, s.rdb, []string{s.k.ticketLock(incident)}, owner).Err(); err != nil {
		return fmt.Errorf("unlock ticket of %s: %w", incident, err)
	}
	return nil
}

var lockScript = redis.NewScript(`
local cur = redis.call("GET", KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0`)

var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)
