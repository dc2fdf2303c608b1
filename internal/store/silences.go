package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
)

// NextSilenceID returns a new, never used silence id "sil-<n>".
func (s *Store) NextSilenceID(ctx context.Context) (string, error) {
	n, err := s.rdb.Incr(ctx, s.k.silenceSeq()).Result()
	if err != nil {
		return "", fmt.Errorf("allocate silence id: %w", err)
	}
	return "sil-" + strconv.FormatInt(n, 10), nil
}

// SaveSilence stores sil, replacing any silence with its id.
func (s *Store) SaveSilence(ctx context.Context, sil model.Silence) error {
	if sil.ID == "" {
		return errors.New("save silence: id is required")
	}
	doc, err := json.Marshal(sil)
	if err != nil {
		return fmt.Errorf("save silence %s: encode: %w", sil.ID, err)
	}
	if err := s.rdb.HSet(ctx, s.k.silences(), sil.ID, doc).Err(); err != nil {
		return fmt.Errorf("save silence %s: %w", sil.ID, err)
	}
	return nil
}

// Silences returns the silences that are active, still to come, or ended
// less than 24 hours ago, sorted by id (sil-2 before sil-10). Older ones
// are deleted on the way.
func (s *Store) Silences(ctx context.Context) ([]model.Silence, error) {
	all, err := s.rdb.HGetAll(ctx, s.k.silences()).Result()
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	cutoff := s.clock.Now().Add(-SilenceKeep)
	out := make([]model.Silence, 0, len(all))
	var old []string
	for id, doc := range all {
		var sil model.Silence
		if err := json.Unmarshal([]byte(doc), &sil); err != nil {
			s.log.Error("undecodable silence skipped", "silence", id, "err", err)
			continue
		}
		if !sil.EndsAt.IsZero() && sil.EndsAt.Before(cutoff) {
			old = append(old, id)
			continue
		}
		out = append(out, sil)
	}
	if len(old) > 0 {
		if err := s.rdb.HDel(ctx, s.k.silences(), old...).Err(); err != nil {
			// The list is right either way; the next call tries again.
			s.log.Warn("delete old silences", "count", len(old), "err", err)
		}
	}
	slices.SortFunc(out, func(a, b model.Silence) int { return compareIDs(a.ID, b.ID) })
	return out, nil
}

// ExpireSilence ends the silence id at at.
func (s *Store) ExpireSilence(ctx context.Context, id string, at time.Time) error {
	key := s.k.silences()
	for attempt := 0; attempt < 10; attempt++ {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			doc, err := tx.HGet(ctx, key, id).Result()
			if errors.Is(err, redis.Nil) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			var sil model.Silence
			if err := json.Unmarshal([]byte(doc), &sil); err != nil {
				return fmt.Errorf("decode: %w", err)
			}
			sil.EndsAt = at
			b, err := json.Marshal(sil)
			if err != nil {
				return fmt.Errorf("encode: %w", err)
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, key, id, b)
				return nil
			})
			return err
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // changed meanwhile: read again
		}
		if err != nil {
			return fmt.Errorf("expire silence %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("expire silence %s: silences kept changing, gave up", id)
}

// compareIDs orders ids naturally: "sil-2" before "sil-10", by the text
// before the trailing digits, then by the number they make.
func compareIDs(a, b string) int {
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	if c := strings.Compare(pa, pb); c != 0 {
		return c
	}
	if len(na) != len(nb) { // no leading zeros from INCR: longer is larger
		return len(na) - len(nb)
	}
	return strings.Compare(na, nb)
}

func splitNumber(s string) (prefix, digits string) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	return s[:i], s[i:]
}
