package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
)

// IngestGroup is the consumer group that applies observations.
const IngestGroup = "ingest"

// maxChunk is how many observations one stream entry (and one Apply
// script) holds at most.
const maxChunk = 500

// obsField is the stream entry field holding a JSON array of observations.
const obsField = "obs"

// Delivery is one observation stream entry handed to a consumer. Acknowledge
// it by ID once its observations are applied and evaluated.
//
// An entry whose payload cannot be decoded (written by an incompatible
// version, or damaged) is delivered with no Observations, and the store logs
// it at error level with its ID: the consumer acknowledges it like any other
// so that it cannot wedge the group by coming back forever.
type Delivery struct {
	ID           string
	Observations []model.Observation
}

// AppendObservations makes obs durable on the observation stream, in
// entries of at most 500 observations, in one pipelined round trip. When it
// returns nil every observation is in Redis.
func (s *Store) AppendObservations(ctx context.Context, obs []model.Observation) error {
	if len(obs) == 0 {
		return nil
	}
	stream := s.k.observations()
	payloads := make([][]byte, 0, (len(obs)+maxChunk-1)/maxChunk)
	for chunk := range slices.Chunk(obs, maxChunk) {
		b, err := json.Marshal(chunk)
		if err != nil {
			return fmt.Errorf("encode %d observations: %w", len(chunk), err)
		}
		payloads = append(payloads, b)
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range payloads {
			p.XAdd(ctx, &redis.XAddArgs{
				Stream: stream,
				MaxLen: s.obsMaxLen,
				Approx: true,
				Values: []any{obsField, b},
			})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d observations to %s: %w", len(obs), stream, err)
	}
	return nil
}

// ReadObservations reads up to count new entries (of up to 500 observations
// each) for consumer in the "ingest" group (created on demand, reading from
// the start of the stream), waiting up to block for one to arrive;
// a block of zero or less returns at once. It returns nil, nil when nothing
// arrived in time.
func (s *Store) ReadObservations(ctx context.Context, consumer string, count int, block time.Duration) ([]Delivery, error) {
	msgs, err := s.readGroup(ctx, s.k.observations(), IngestGroup, consumer, count, block)
	if err != nil {
		return nil, err
	}
	return s.deliveries(msgs), nil
}

// ClaimStaleObservations takes over up to count entries that another
// consumer read but did not acknowledge within minIdle (it died or hangs),
// so that they are applied after all.
func (s *Store) ClaimStaleObservations(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]Delivery, error) {
	msgs, err := s.claimGroup(ctx, s.k.observations(), IngestGroup, consumer, minIdle, count)
	if err != nil {
		return nil, err
	}
	return s.deliveries(msgs), nil
}

// AckObservations acknowledges entries and deletes them from the stream
// ("ingest" is its only reader), which keeps the stream as short as the
// backlog.
func (s *Store) AckObservations(ctx context.Context, ids ...string) error {
	return s.ackGroup(ctx, s.k.observations(), IngestGroup, true, ids...)
}

// Backlog reports the entries delivered but not yet acknowledged (pending)
// and those not yet delivered (lag). Acknowledged entries are deleted, so
// lag is the stream length minus pending.
func (s *Store) Backlog(ctx context.Context) (pending int64, lag int64, err error) {
	stream := s.k.observations()
	var xlen *redis.IntCmd
	var xpend *redis.XPendingCmd
	// Errors are read per command below: a missing group is not one.
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		xlen = p.XLen(ctx, stream)
		xpend = p.XPending(ctx, stream, IngestGroup)
		return nil
	})
	length, lenErr := xlen.Result()
	if lenErr != nil && !errors.Is(lenErr, redis.Nil) {
		return 0, 0, fmt.Errorf("measure backlog of %s: %w", stream, lenErr)
	}
	pend, pendErr := xpend.Result()
	switch {
	case pendErr == nil:
		pending = pend.Count
	case errors.Is(pendErr, redis.Nil) || isRedisError(pendErr, "NOGROUP"):
		// No group yet: everything is lag.
	default:
		return 0, 0, fmt.Errorf("measure backlog of %s: %w", stream, pendErr)
	}
	return pending, max(length-pending, 0), nil
}

func (s *Store) deliveries(msgs []redis.XMessage) []Delivery {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]Delivery, 0, len(msgs))
	for _, m := range msgs {
		d := Delivery{ID: m.ID}
		obs, err := decodeEntry(m)
		if err != nil {
			s.log.Error("undecodable observation entry; delivering it empty so that it is acknowledged",
				"stream", s.k.observations(), "entry", m.ID, "err", err)
		} else {
			d.Observations = obs
		}
		out = append(out, d)
	}
	return out
}

func decodeEntry(m redis.XMessage) ([]model.Observation, error) {
	raw, ok := m.Values[obsField].(string)
	if !ok {
		return nil, fmt.Errorf("entry has no %q field", obsField)
	}
	var obs []model.Observation
	if err := json.Unmarshal([]byte(raw), &obs); err != nil {
		return nil, fmt.Errorf("decode observations: %w", err)
	}
	return obs, nil
}
