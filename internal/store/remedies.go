package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Remedy keys (kept here, next to their only users):
//
//	{vt}:remedy:<id>          hash    v (version), json (model.Remedy)
//	{vt}:remedyinc:<incident> string  id of the incident's remedy (one per incident)
//	{vt}:remedyq              zset    remedies to run, score = when (ms); running ones score their lease end
//	{vt}:remedyexp            zset    remedies awaiting approval, score = expiry (ms)
//	{vt}:remedyaudit:<id>     list    audit entries (JSON), appended only
//	{vt}:seq:remedy           string  remedy id counter
//	{vt}:remedylock:<subject> string  owner of the per-VM/per-host lock (TTL)
func (k keys) remedy(id string) string           { return k.base + "remedy:" + id }
func (k keys) remedyOfIncident(id string) string { return k.base + "remedyinc:" + id }
func (k keys) remedyQueue() string               { return k.base + "remedyq" }
func (k keys) remedyExpiry() string              { return k.base + "remedyexp" }
func (k keys) remedyAudit(id string) string      { return k.base + "remedyaudit:" + id }
func (k keys) remedySeq() string                 { return k.base + "seq:remedy" }
func (k keys) remedyLock(subject string) string  { return k.base + "remedylock:" + subject }

// ErrRemedyExists is returned (wrapped) by SaveRemedy when a new remedy's
// incident already has one.
var ErrRemedyExists = errors.New("the incident already has a remedy")

// saveRemedyScript stores a remedy if its stored version is the expected
// one, and in the same step indexes it by incident (new ones only, refused
// when the incident has one), puts it on or takes it off the run queue and
// the expiry index, and appends its audit entries.
// The audit entries also go to the audit stream (audit.go), capped at
// about MaxAuditEntries.
// KEYS: remedy hash, incident index, queue, expiry, audit list, audit stream.
// ARGV: id, expected version, new version, json, queue score ("" = remove),
// expiry score ("" = remove), stream cap, then per audit entry its list
// JSON and its stream JSON...
// Returns {1, new version}, {0, stored version} or {-1, 0} (exists).
var saveRemedyScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v') or '0'
if cur ~= ARGV[2] then return {0, tonumber(cur)} end
if ARGV[2] == '0' then
  if redis.call('SET', KEYS[2], ARGV[1], 'NX') == false then return {-1, 0} end
end
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'json', ARGV[4])
if ARGV[5] == '' then redis.call('ZREM', KEYS[3], ARGV[1]) else redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1]) end
if ARGV[6] == '' then redis.call('ZREM', KEYS[4], ARGV[1]) else redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1]) end
for i = 8, #ARGV, 2 do
  redis.call('RPUSH', KEYS[5], ARGV[i])
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[7], '*', 'e', ARGV[i+1])
end
return {1, tonumber(ARGV[3])}
`)

// NextRemedyID returns a new, never used remedy id "rem-<n>".
func (s *Store) NextRemedyID(ctx context.Context) (string, error) {
	n, err := s.rdb.Incr(ctx, s.k.remedySeq()).Result()
	if err != nil {
		return "", fmt.Errorf("allocate remedy id: %w", err)
	}
	return "rem-" + strconv.FormatInt(n, 10), nil
}

// SaveRemedy stores r if the stored remedy still has r.Version (a new one
// has version 0), else it returns an error wrapping ErrConflict and leaves
// r unchanged: that is how every transition is made at most once, whoever
// tries it at the same time. In the same atomic step the remedy is queued
// to run (approved, or running until its lease ends) or taken off the
// queue, indexed for expiry while it awaits approval, and audit is
// appended to its trail and to the audit stream. On success r.Version is one more and r.UpdatedAt
// is now.
func (s *Store) SaveRemedy(ctx context.Context, r *model.Remedy, audit ...model.AuditEntry) error {
	if r.ID == "" || r.Incident == "" {
		return errors.New("save remedy: id and incident are required")
	}
	prevV, prevU := r.Version, r.UpdatedAt
	now := s.clock.Now()
	r.Version++
	r.UpdatedAt = now
	restore := func() { r.Version, r.UpdatedAt = prevV, prevU }
	doc, err := json.Marshal(r)
	if err != nil {
		restore()
		return fmt.Errorf("save remedy %s: encode: %w", r.ID, err)
	}
	queue, expiry := "", ""
	switch r.State {
	case model.RemedyApproved:
		queue = strconv.FormatInt(now.UnixMilli(), 10)
	case model.RemedyRunning:
		queue = strconv.FormatInt(r.LeaseUntil.UnixMilli(), 10)
	case model.RemedyAwaiting:
		expiry = strconv.FormatInt(r.ExpiresAt.UnixMilli(), 10)
	}
	args := []any{r.ID, prevV, r.Version, doc, queue, expiry, MaxAuditEntries}
	for _, a := range audit {
		a.Remedy, a.Incident = r.ID, r.Incident
		if a.At.IsZero() {
			a.At = now
		}
		b, err := json.Marshal(a)
		if err != nil {
			restore()
			return fmt.Errorf("save remedy %s: encode audit: %w", r.ID, err)
		}
		sb, err := json.Marshal(remedyAuditEntry(r, a))
		if err != nil {
			restore()
			return fmt.Errorf("save remedy %s: encode audit: %w", r.ID, err)
		}
		args = append(args, b, sb)
	}
	res, err := saveRemedyScript.Run(ctx, s.rdb, []string{
		s.k.remedy(r.ID), s.k.remedyOfIncident(r.Incident), s.k.remedyQueue(), s.k.remedyExpiry(), s.k.remedyAudit(r.ID),
		s.k.audit(),
	}, args...).Int64Slice()
	if err != nil {
		restore()
		return fmt.Errorf("save remedy %s: %w", r.ID, err)
	}
	switch {
	case len(res) == 2 && res[0] == 1:
		return nil
	case len(res) == 2 && res[0] == -1:
		restore()
		return fmt.Errorf("save remedy %s for %s: %w", r.ID, r.Incident, ErrRemedyExists)
	}
	restore()
	return fmt.Errorf("save remedy %s at version %d: %w", r.ID, prevV, ErrConflict)
}

// Remedy returns one remedy, or an error wrapping ErrNotFound.
func (s *Store) Remedy(ctx context.Context, id string) (model.Remedy, error) {
	doc, err := s.rdb.HGet(ctx, s.k.remedy(id), "json").Result()
	if errors.Is(err, redis.Nil) {
		return model.Remedy{}, fmt.Errorf("remedy %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return model.Remedy{}, fmt.Errorf("read remedy %s: %w", id, err)
	}
	var r model.Remedy
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return model.Remedy{}, fmt.Errorf("decode remedy %s: %w", id, err)
	}
	return r, nil
}

// RemedyForIncident returns the incident's remedy, or an error wrapping
// ErrNotFound when it has none.
func (s *Store) RemedyForIncident(ctx context.Context, incident string) (model.Remedy, error) {
	id, err := s.rdb.Get(ctx, s.k.remedyOfIncident(incident)).Result()
	if errors.Is(err, redis.Nil) {
		return model.Remedy{}, fmt.Errorf("remedy of %s: %w", incident, ErrNotFound)
	}
	if err != nil {
		return model.Remedy{}, fmt.Errorf("read remedy of %s: %w", incident, err)
	}
	return s.Remedy(ctx, id)
}

// RemedyAudit returns a remedy's audit trail, oldest first.
func (s *Store) RemedyAudit(ctx context.Context, id string) ([]model.AuditEntry, error) {
	docs, err := s.rdb.LRange(ctx, s.k.remedyAudit(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read audit of remedy %s: %w", id, err)
	}
	out := make([]model.AuditEntry, 0, len(docs))
	for _, d := range docs {
		var a model.AuditEntry
		if err := json.Unmarshal([]byte(d), &a); err != nil {
			s.log.Error("undecodable audit entry skipped", "remedy", id, "err", err)
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// DueRemedies returns up to limit ids of remedies queued to run at or
// before now: approved ones, and running ones whose lease ran out.
func (s *Store) DueRemedies(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return s.due(ctx, s.k.remedyQueue(), now, limit)
}

// ExpiredRemedies returns up to limit ids of remedies whose approval
// window ended at or before now.
func (s *Store) ExpiredRemedies(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return s.due(ctx, s.k.remedyExpiry(), now, limit)
}

func (s *Store) due(ctx context.Context, key string, now time.Time, limit int) ([]string, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: key, Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read due remedies: %w", err)
	}
	return ids, nil
}

// LockSubject takes the remedy lock of a VM or host for owner until ttl
// ends; it reports false when another owner holds it. Taking a lock one
// already holds extends it.
func (s *Store) LockSubject(ctx context.Context, subject, owner string, ttl time.Duration) (bool, error) {
	// lockScript (tickets.go) sets the key unless another owner holds it.
	n, err := lockScript.Run(ctx, s.rdb, []string{s.k.remedyLock(subject)}, owner, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", subject, err)
	}
	return n == 1, nil
}

// UnlockSubject releases the lock of subject if owner holds it.
func (s *Store) UnlockSubject(ctx context.Context, subject, owner string) error {
	if err := unlockScript.Run(ctx, s.rdb, []string{s.k.remedyLock(subject)}, owner).Err(); err != nil {
		return fmt.Errorf("unlock %s: %w", subject, err)
	}
	return nil
}

// SiteHosts lists the hosts seen in a site, sorted.
func (s *Store) SiteHosts(ctx context.Context, site string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.siteHosts(site)).Result()
	if err != nil {
		return nil, fmt.Errorf("list hosts of site %s: %w", site, err)
	}
	slices.Sort(ids)
	return ids, nil
}
