package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// isRedisError reports whether err is a Redis error reply starting with
// code, such as "BUSYGROUP" or "NOGROUP".
func isRedisError(err error, code string) bool {
	return err != nil && strings.HasPrefix(err.Error(), code)
}

// createGroup creates a consumer group reading stream from its start, and
// the stream itself if missing. A group that exists already is fine.
func (s *Store) createGroup(ctx context.Context, stream, group string) error {
	err := s.rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !isRedisError(err, "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", group, stream, err)
	}
	return nil
}

// readGroup reads new entries for consumer. The group is created on demand:
// the first read that finds no group creates it and tries again. A block of
// zero or less does not block (go-redis would send BLOCK 0, which waits
// forever). A timeout returns nil, nil.
func (s *Store) readGroup(ctx context.Context, stream, group, consumer string, count int, block time.Duration) ([]redis.XMessage, error) {
	if block <= 0 {
		block = -1
	}
	if count <= 0 {
		count = 1
	}
	args := &redis.XReadGroupArgs{
		Group:    group,
		Consumer: consumer,
		Streams:  []string{stream, ">"},
		Count:    int64(count),
		Block:    block,
	}
	for attempt := 0; ; attempt++ {
		res, err := s.rdb.XReadGroup(ctx, args).Result()
		switch {
		case err == nil:
			if len(res) == 0 {
				return nil, nil
			}
			return res[0].Messages, nil
		case errors.Is(err, redis.Nil):
			return nil, nil
		case isRedisError(err, "NOGROUP") && attempt == 0:
			if err := s.createGroup(ctx, stream, group); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("read %s as %s/%s: %w", stream, group, consumer, err)
		}
	}
}

// claimGroup moves up to count entries that have been pending (delivered
// but not acknowledged) for at least minIdle to consumer, with XAUTOCLAIM.
// Redis measures idle time with its own wall clock.
func (s *Store) claimGroup(ctx context.Context, stream, group, consumer string, minIdle time.Duration, count int) ([]redis.XMessage, error) {
	if count <= 0 {
		count = 100
	}
	var out []redis.XMessage
	start := "0-0"
	for range s.claimIterations {
		msgs, next, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream:   stream,
			Group:    group,
			Consumer: consumer,
			MinIdle:  minIdle,
			Start:    start,
			Count:    int64(count - len(out)),
		}).Result()
		if isRedisError(err, "NOGROUP") {
			// Nothing can be pending in a group that does not exist yet.
			return nil, s.createGroup(ctx, stream, group)
		}
		if err != nil {
			return nil, fmt.Errorf("claim stale entries of %s for %s/%s: %w", stream, group, consumer, err)
		}
		out = append(out, msgs...)
		if next == "0-0" || next == "" || len(out) >= count {
			break
		}
		start = next
	}
	return out, nil
}

// ackGroup acknowledges ids in group; with del it also deletes the entries,
// which is right when the group is the stream's only reader.
func (s *Store) ackGroup(ctx context.Context, stream, group string, del bool, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, stream, group, ids...)
		if del {
			p.XDel(ctx, stream, ids...)
		}
		return nil
	})
	if err != nil && !isRedisError(err, "NOGROUP") {
		return fmt.Errorf("acknowledge %d entries of %s for %s: %w", len(ids), stream, group, err)
	}
	return nil
}
