package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimDueScript pops the members due by ARGV[1] (at most ARGV[2]) in one
// atomic step, so two replicas never claim the same one.
var claimDueScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
`)

// ScheduleEscalation sets when the incident's next escalation is due,
// replacing any earlier schedule for it.
func (s *Store) ScheduleEscalation(ctx context.Context, incidentID string, due time.Time) error {
	err := s.rdb.ZAdd(ctx, s.k.escalations(), redis.Z{Score: float64(due.UnixMilli()), Member: incidentID}).Err()
	if err != nil {
		return fmt.Errorf("schedule escalation of %s at %s: %w", incidentID, due.Format(time.RFC3339), err)
	}
	return nil
}

// CancelEscalation drops the incident's scheduled escalation, if any.
func (s *Store) CancelEscalation(ctx context.Context, incidentID string) error {
	if err := s.rdb.ZRem(ctx, s.k.escalations(), incidentID).Err(); err != nil {
		return fmt.Errorf("cancel escalation of %s: %w", incidentID, err)
	}
	return nil
}

// ClaimDueEscalations removes and returns up to limit (default 100)
// incidents whose escalation is due at now, earliest first. A claimed
// escalation belongs to the caller alone: no other replica gets it. The
// caller reschedules the next level if there is one.
func (s *Store) ClaimDueEscalations(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 100
	}
	ids, err := claimDueScript.Run(ctx, s.rdb, []string{s.k.escalations()}, now.UnixMilli(), limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("claim due escalations: %w", err)
	}
	return ids, nil
}
