package store

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
)

//go:embed lua/save_incident.lua
var saveIncidentSource string

var saveIncidentScript = redis.NewScript(saveIncidentSource)

// incidentField is the incidents stream field holding the snapshot JSON.
const incidentField = "incident"

// NextIncidentID returns a new, never used incident id "inc-<n>".
func (s *Store) NextIncidentID(ctx context.Context) (string, error) {
	n, err := s.rdb.Incr(ctx, s.k.incidentSeq()).Result()
	if err != nil {
		return "", fmt.Errorf("allocate incident id: %w", err)
	}
	return "inc-" + strconv.FormatInt(n, 10), nil
}

// SaveIncident stores inc if the stored incident still has inc.Version (a
// new incident has version 0), else it returns an error wrapping
// ErrConflict and leaves inc unchanged. On success inc.Version is one more
// and inc.UpdatedAt is now, and in one atomic step the incident, its
// fingerprint, the open and time-ordered indexes and a snapshot on the
// incidents stream are written. Beyond MaxIncidents, the oldest resolved
// incidents are deleted.
func (s *Store) SaveIncident(ctx context.Context, inc *model.Incident) error {
	if inc.ID == "" {
		return errors.New("save incident: id is required")
	}
	prevVersion, prevUpdated := inc.Version, inc.UpdatedAt
	now := s.clock.Now()
	inc.Version++
	inc.UpdatedAt = now
	restore := func() { inc.Version, inc.UpdatedAt = prevVersion, prevUpdated }
	doc, err := json.Marshal(inc)
	if err != nil {
		restore()
		return fmt.Errorf("save incident %s: encode: %w", inc.ID, err)
	}
	open := "0"
	if inc.Open() {
		open = "1"
	}
	started := inc.StartedAt
	if started.IsZero() {
		started = now
	}
	res, err := saveIncidentScript.Run(ctx, s.rdb,
		[]string{
			s.k.incident(inc.ID), s.k.fingerprint(inc.Fingerprint),
			s.k.openIncidents(), s.k.allIncidents(), s.k.incidentStream(),
		},
		inc.ID, prevVersion, inc.Version, doc, inc.Fingerprint, open,
		started.UnixMilli(), s.incMaxLen, s.maxIncidents,
		s.k.incident(""), s.k.fingerprint(""),
	).Int64Slice()
	if err != nil {
		restore()
		return fmt.Errorf("save incident %s: %w", inc.ID, err)
	}
	if len(res) != 2 || res[0] != 1 {
		restore()
		stored := int64(-1)
		if len(res) == 2 {
			stored = res[1]
		}
		return fmt.Errorf("save incident %s at version %d (stored version %d): %w", inc.ID, prevVersion, stored, ErrConflict)
	}
	return nil
}

// deleteIncidentScript removes an incident that never became one (see
// DeleteIncident) if its stored version is still ARGV[2]. KEYS are the
// incident hash, the open set, the all zset and the stream; ARGV the id,
// the expected and the new version, the final snapshot (JSON), the
// stream's maximum length and the fingerprint key prefix. It returns
// {1, new version}, {1, 0} when nothing was stored, or {0, stored version}.
var deleteIncidentScript = redis.NewScript(`
local incK, openK, allK, streamK = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, expected = ARGV[1], ARGV[2]
local cur = redis.call('HGET', incK, 'v')
if not cur then
  if expected == '0' then return {1, 0} end
  return {0, 0}
end
if cur ~= expected then return {0, tonumber(cur)} end
local fp = redis.call('HGET', incK, 'fp')
if fp and fp ~= '' and redis.call('GET', ARGV[6] .. fp) == id then
  redis.call('DEL', ARGV[6] .. fp)
end
redis.call('DEL', incK)
redis.call('SREM', openK, id)
redis.call('ZREM', allK, id)
redis.call('XADD', streamK, 'MAXLEN', '~', ARGV[5], '*', 'id', id, 'version', ARGV[3], 'incident', ARGV[4], 'deleted', '1')
return {1, tonumber(ARGV[3])}
`)

// deletedField marks an incidents stream entry whose incident was deleted.
const deletedField = "deleted"

// DeleteIncident removes an incident that never became one: the rule
// engine stores a pending incident as soon as its condition holds, and
// when the condition clears (or another rule takes the subject over)
// before the rule's "for" ran out, nothing ever fired, so it must not be
// listed, not even as resolved. It deletes the incident, its indexes and
// its fingerprint (if it is the latest for it) in one atomic step, if the
// stored version is still inc.Version (else an error wrapping
// ErrConflict), and appends inc as a last snapshot, marked deleted, to the
// incidents stream so that consumers forget it. Deleting an incident that
// was never saved (version 0, nothing stored) does nothing.
func (s *Store) DeleteIncident(ctx context.Context, inc *model.Incident) error {
	if inc.ID == "" {
		return errors.New("delete incident: id is required")
	}
	prevVersion, prevUpdated := inc.Version, inc.UpdatedAt
	inc.Version++
	inc.UpdatedAt = s.clock.Now()
	restore := func() { inc.Version, inc.UpdatedAt = prevVersion, prevUpdated }
	doc, err := json.Marshal(inc)
	if err != nil {
		restore()
		return fmt.Errorf("delete incident %s: encode: %w", inc.ID, err)
	}
	res, err := deleteIncidentScript.Run(ctx, s.rdb,
		[]string{s.k.incident(inc.ID), s.k.openIncidents(), s.k.allIncidents(), s.k.incidentStream()},
		inc.ID, prevVersion, inc.Version, doc, s.incMaxLen, s.k.fingerprint(""),
	).Int64Slice()
	if err != nil {
		restore()
		return fmt.Errorf("delete incident %s: %w", inc.ID, err)
	}
	if len(res) != 2 || res[0] != 1 {
		restore()
		stored := int64(-1)
		if len(res) == 2 {
			stored = res[1]
		}
		return fmt.Errorf("delete incident %s at version %d (stored version %d): %w", inc.ID, prevVersion, stored, ErrConflict)
	}
	if res[1] == 0 {
		restore() // nothing was stored, nothing changed
	}
	return nil
}

// Incident returns one incident by id.
func (s *Store) Incident(ctx context.Context, id string) (model.Incident, error) {
	doc, err := s.rdb.HGet(ctx, s.k.incident(id), "json").Result()
	if errors.Is(err, redis.Nil) {
		return model.Incident{}, fmt.Errorf("read incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return model.Incident{}, fmt.Errorf("read incident %s: %w", id, err)
	}
	var inc model.Incident
	if err := json.Unmarshal([]byte(doc), &inc); err != nil {
		return model.Incident{}, fmt.Errorf("decode incident %s: %w", id, err)
	}
	return inc, nil
}

// IncidentByFingerprint returns the latest incident created with the
// fingerprint fp.
func (s *Store) IncidentByFingerprint(ctx context.Context, fp string) (model.Incident, error) {
	id, err := s.rdb.Get(ctx, s.k.fingerprint(fp)).Result()
	if errors.Is(err, redis.Nil) {
		return model.Incident{}, fmt.Errorf("find incident by fingerprint %s: %w", fp, ErrNotFound)
	}
	if err != nil {
		return model.Incident{}, fmt.Errorf("find incident by fingerprint %s: %w", fp, err)
	}
	inc, err := s.Incident(ctx, id)
	if err != nil {
		return model.Incident{}, fmt.Errorf("find incident by fingerprint %s: %w", fp, err)
	}
	return inc, nil
}

// Incidents lists the incidents that f matches, newest (by start) first, at
// most f.Limit of them (default 500).
func (s *Store) Incidents(ctx context.Context, f model.IncidentFilter) ([]model.Incident, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultIncidentLimit
	}
	if f.Status == model.StatusPending || f.Status == model.StatusFiring {
		// only open incidents can match: the open set is the smaller walk
		open, err := s.OpenIncidents(ctx)
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		out := make([]model.Incident, 0, min(limit, len(open)))
		for i := range open {
			if f.Match(&open[i]) {
				out = append(out, open[i])
				if len(out) == limit {
					break
				}
			}
		}
		return out, nil
	}
	var out []model.Incident
	page := int64(s.incidentPage)
	for start := int64(0); ; start += page {
		ids, err := s.rdb.ZRevRange(ctx, s.k.allIncidents(), start, start+page-1).Result()
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		incs, err := s.incidents(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		for i := range incs {
			if f.Match(&incs[i]) {
				out = append(out, incs[i])
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if int64(len(ids)) < page {
			return out, nil
		}
	}
}

// OpenIncidents returns every pending or firing incident, newest first.
func (s *Store) OpenIncidents(ctx context.Context) ([]model.Incident, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.openIncidents()).Result()
	if err != nil {
		return nil, fmt.Errorf("list open incidents: %w", err)
	}
	incs, err := s.incidents(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list open incidents: %w", err)
	}
	slices.SortFunc(incs, func(a, b model.Incident) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return incs, nil
}

// incidents reads ids in one pipelined round trip, in order, skipping any
// deleted meanwhile.
func (s *Store) incidents(ctx context.Context, ids []string) ([]model.Incident, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, s.k.incident(id), "json")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read %d incidents: %w", len(ids), err)
	}
	out := make([]model.Incident, 0, len(ids))
	for i, c := range cmds {
		doc, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read incident %s: %w", ids[i], err)
		}
		var inc model.Incident
		if err := json.Unmarshal([]byte(doc), &inc); err != nil {
			s.log.Error("undecodable incident skipped", "incident", ids[i], "err", err)
			continue
		}
		out = append(out, inc)
	}
	return out, nil
}

// IncidentEvent is one incident change from the incidents stream: the full
// snapshot after the change. Acknowledge it by ID with AckIncidentEvents.
//
// An entry that cannot be decoded is delivered with a zero Incident (empty
// Incident.ID) and logged at error level; the consumer should acknowledge
// it and move on, so that it cannot wedge the group.
type IncidentEvent struct {
	ID       string
	Incident model.Incident
	// Deleted is true when the incident was withdrawn (DeleteIncident):
	// it never fired, is no longer stored, and consumers should forget it.
	Deleted bool
}

// ReadIncidentEvents reads up to count new incident changes for consumer in
// group (created on demand, reading from the start of the stream so that no
// change is missed), waiting up to block for one; a block of zero or less
// returns at once. It returns nil, nil when nothing arrived in time.
func (s *Store) ReadIncidentEvents(ctx context.Context, group, consumer string, count int, block time.Duration) ([]IncidentEvent, error) {
	msgs, err := s.readGroup(ctx, s.k.incidentStream(), group, consumer, count, block)
	if err != nil {
		return nil, err
	}
	return s.incidentEvents(msgs), nil
}

// ClaimIncidentEvents takes over up to count changes that another consumer
// of group read but did not acknowledge within minIdle.
func (s *Store) ClaimIncidentEvents(ctx context.Context, group, consumer string, minIdle time.Duration, count int) ([]IncidentEvent, error) {
	msgs, err := s.claimGroup(ctx, s.k.incidentStream(), group, consumer, minIdle, count)
	if err != nil {
		return nil, err
	}
	return s.incidentEvents(msgs), nil
}

// AckIncidentEvents acknowledges changes that group has handled. The entries
// stay on the stream for other groups (it is capped by length).
func (s *Store) AckIncidentEvents(ctx context.Context, group string, ids ...string) error {
	return s.ackGroup(ctx, s.k.incidentStream(), group, false, ids...)
}

func (s *Store) incidentEvents(msgs []redis.XMessage) []IncidentEvent {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]IncidentEvent, 0, len(msgs))
	for _, m := range msgs {
		ev := IncidentEvent{ID: m.ID}
		if d, ok := m.Values[deletedField].(string); ok && d == "1" {
			ev.Deleted = true
		}
		doc, ok := m.Values[incidentField].(string)
		if !ok {
			s.log.Error("incident event without snapshot; delivering it empty so that it is acknowledged",
				"stream", s.k.incidentStream(), "entry", m.ID)
		} else if err := json.Unmarshal([]byte(doc), &ev.Incident); err != nil {
			ev.Incident = model.Incident{}
			s.log.Error("undecodable incident event; delivering it empty so that it is acknowledged",
				"stream", s.k.incidentStream(), "entry", m.ID, "err", err)
		}
		out = append(out, ev)
	}
	return out
}
