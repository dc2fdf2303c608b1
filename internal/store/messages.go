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

// Chat messages: where each incident's message lives in each channel, so
// that an incident gets one message, updated in place, whatever replica
// posts it and however often a notification is delivered.
//
//	{vt}:msg:<incident>   hash   per channel <ch>:
//	                             ts:<ch>    the message's ts ("" until posted)
//	                             v:<ch>     highest incident version rendered in the message
//	                             tv:<ch>    highest version whose follow-ups are in the thread
//	                             snap:<ch>  the incident (JSON) as of tv
//	                             own:<ch>   lease holder, until:<ch> lease end (unix ms)
//
// Channel IDs hold no ':', so "<field>:<ch>" cannot collide.
func (k keys) messages(incidentID string) string { return k.base + "msg:" + incidentID }

// MessageTTL is how long an incident's message record is kept after its
// last change: long enough for a late update or a recurrence to find the
// message, short enough that Redis does not keep every incident forever.
const MessageTTL = 30 * 24 * time.Hour

// ErrLeaseLost is returned (wrapped) by SaveMessage when the caller's lease
// ended and another holder took over. What the caller saved is still merged
// (versions only go up, a stored ts is never replaced), so the record stays
// right; the caller should log it, since both may have talked to Slack.
var ErrLeaseLost = errors.New("message lease lost")

// Message is what the store knows of one incident's message in one
// channel.
type Message struct {
	Channel string
	// TS is the message's Slack timestamp, "" until it is posted.
	TS string
	// Version is the highest incident version the message shows.
	Version int64
	// ThreadVersion is the highest incident version whose follow-ups were
	// posted in the message's thread.
	ThreadVersion int64
	// Incident is the snapshot as of ThreadVersion, from which the next
	// version's follow-ups are worked out; nil until the first post.
	Incident *model.Incident
}

// ClaimStatus says what ClaimMessage decided.
type ClaimStatus int

// Claim outcomes.
const (
	// ClaimGranted: the caller holds the lease and may post or update.
	ClaimGranted ClaimStatus = iota + 1
	// ClaimBusy: another holder's lease runs until MessageClaim.Until; try
	// again then.
	ClaimBusy
	// ClaimDone: this version, or a newer one, is already in the message
	// and its thread; there is nothing to do.
	ClaimDone
)

// MessageClaim is ClaimMessage's answer: the record as stored, and the
// decision.
type MessageClaim struct {
	Message
	Status ClaimStatus
	// Until is when the lease ends: the caller's when granted, the other
	// holder's when busy.
	Until time.Time
}

// claimMessageScript decides, in one step, whether the caller may work on
// an incident's message in a channel: not if the version is already done
// (the stored message shows it or a newer one), not while another holder's
// lease runs; otherwise the caller takes the lease.
//
// KEYS[1] the hash; ARGV: channel, owner, version, now (ms), until (ms),
// ttl (s). Returns {status, ts, v, tv, snap, until}.
var claimMessageScript = redis.NewScript(`
local ch, owner, ver, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local r = redis.call('HMGET', KEYS[1], 'ts:'..ch, 'v:'..ch, 'tv:'..ch, 'snap:'..ch, 'own:'..ch, 'until:'..ch)
local ts, snap = r[1] or '', r[4] or ''
local v, tv = tonumber(r[2]) or 0, tonumber(r[3]) or 0
if v > ver or (v == ver and tv >= ver) then
  return {'done', ts, v, tv, snap, '0'}
end
local own, untl = r[5], r[6] or '0'
if own and own ~= owner and tonumber(untl) > now then
  return {'busy', ts, v, tv, snap, untl}
end
redis.call('HSET', KEYS[1], 'own:'..ch, owner, 'until:'..ch, ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return {'granted', ts, v, tv, snap, ARGV[5]}
`)

// saveMessageScript merges what the caller did: the ts is set only if none
// is stored (the first message wins) unless the lease holder replaces it,
// versions only go up, the snapshot follows the thread version. Returns 1
// if the caller still held the lease, else 0.
//
// KEYS[1] the hash; ARGV: channel, owner, ts, version, thread version,
// snapshot, ttl (s), replace ("1" to replace the ts).
var saveMessageScript = redis.NewScript(`
local ch, owner = ARGV[1], ARGV[2]
local held = redis.call('HGET', KEYS[1], 'own:'..ch) == owner
if ARGV[3] ~= '' then
  if ARGV[8] == '1' and held then
    redis.call('HSET', KEYS[1], 'ts:'..ch, ARGV[3])
  else
    redis.call('HSETNX', KEYS[1], 'ts:'..ch, ARGV[3])
  end
end
local ver, tver = tonumber(ARGV[4]), tonumber(ARGV[5])
if ver > (tonumber(redis.call('HGET', KEYS[1], 'v:'..ch)) or 0) then
  redis.call('HSET', KEYS[1], 'v:'..ch, ARGV[4])
end
if tver > (tonumber(redis.call('HGET', KEYS[1], 'tv:'..ch)) or 0) then
  redis.call('HSET', KEYS[1], 'tv:'..ch, ARGV[5])
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'snap:'..ch, ARGV[6]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[7])
if held then return 1 end
return 0
`)

// releaseMessageScript drops the caller's lease, and only the caller's.
var releaseMessageScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'own:'..ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], 'own:'..ARGV[1], 'until:'..ARGV[1])
  return 1
end
return 0
`)

func checkMessageArgs(op, incidentID, channel, owner string) error {
	switch {
	case incidentID == "":
		return fmt.Errorf("%s: incident id is required", op)
	case channel == "":
		return fmt.Errorf("%s for %s: channel is required", op, incidentID)
	case owner == "":
		return fmt.Errorf("%s for %s in %s: owner is required", op, incidentID, channel)
	}
	for _, c := range channel {
		if c == ':' || c <= ' ' {
			return fmt.Errorf("%s for %s: channel %q holds a ':' or a space", op, incidentID, channel)
		}
	}
	return nil
}

// ClaimMessage asks to work on incident incidentID's message in channel for
// the given incident version, as owner (a token unique to the caller's
// attempt). Granted, the caller holds a lease for lease (default 1m) and
// should post or update, SaveMessage what it did, and ReleaseMessage. Busy,
// another holder is at work: wait until Until. Done, nothing is left to do
// for this version. The decision and the lease are one atomic step, so two
// replicas never both post an incident's first message, and a version
// older than the one shown is never granted.
func (s *Store) ClaimMessage(ctx context.Context, incidentID, channel, owner string, version int64, lease time.Duration) (MessageClaim, error) {
	const op = "claim message"
	if err := checkMessageArgs(op, incidentID, channel, owner); err != nil {
		return MessageClaim{}, err
	}
	if version < 1 {
		return MessageClaim{}, fmt.Errorf("%s for %s in %s: version %d: versions start at 1", op, incidentID, channel, version)
	}
	if lease <= 0 {
		lease = time.Minute
	}
	now := s.clock.Now()
	until := now.Add(lease)
	res, err := claimMessageScript.Run(ctx, s.rdb, []string{s.k.messages(incidentID)},
		channel, owner, version, now.UnixMilli(), until.UnixMilli(), int64(MessageTTL/time.Second)).Slice()
	if err != nil {
		return MessageClaim{}, fmt.Errorf("%s for %s in %s: %w", op, incidentID, channel, err)
	}
	if len(res) != 6 {
		return MessageClaim{}, fmt.Errorf("%s for %s in %s: unexpected reply %v", op, incidentID, channel, res)
	}
	c := MessageClaim{Message: Message{Channel: channel, TS: replyString(res[1]), Version: replyInt(res[2]), ThreadVersion: replyInt(res[3])}}
	switch replyString(res[0]) {
	case "granted":
		c.Status = ClaimGranted
	case "busy":
		c.Status = ClaimBusy
	case "done":
		c.Status = ClaimDone
	default:
		return MessageClaim{}, fmt.Errorf("%s for %s in %s: unexpected status %v", op, incidentID, channel, res[0])
	}
	if ms, _ := strconv.ParseInt(replyString(res[5]), 10, 64); ms > 0 {
		c.Until = time.UnixMilli(ms).UTC()
	}
	if snap := replyString(res[4]); snap != "" {
		var inc model.Incident
		if err := json.Unmarshal([]byte(snap), &inc); err != nil {
			// A bad snapshot only loses the follow-ups' detail: the caller
			// falls back on what its notification says changed.
			s.log.Warn("undecodable message snapshot", "incident", incidentID, "channel", channel, "err", err)
		} else {
			c.Incident = &inc
		}
	}
	return c, nil
}

// MessageUpdate is what a lease holder did to an incident's message.
type MessageUpdate struct {
	// TS is the message's ts after a first post; "" keeps the stored one.
	// A stored ts is replaced only with ReplaceTS, and only while the
	// caller holds the lease (the old message was deleted in Slack and a
	// new one posted).
	TS        string
	ReplaceTS bool
	// Version is the incident version the message now shows (0: unchanged).
	Version int64
	// ThreadVersion is the version whose follow-ups are now in the thread
	// (0: unchanged); Incident, its snapshot, is stored with it.
	ThreadVersion int64
	Incident      *model.Incident
}

// SaveMessage records u for incident incidentID's message in channel,
// merging it so the record only moves forward. It returns an error wrapping
// ErrLeaseLost when owner no longer holds the lease; u is merged anyway.
func (s *Store) SaveMessage(ctx context.Context, incidentID, channel, owner string, u MessageUpdate) error {
	const op = "save message"
	if err := checkMessageArgs(op, incidentID, channel, owner); err != nil {
		return err
	}
	var snap []byte
	if u.Incident != nil && u.ThreadVersion > 0 {
		var err error
		if snap, err = json.Marshal(u.Incident); err != nil {
			return fmt.Errorf("%s for %s in %s: encode snapshot: %w", op, incidentID, channel, err)
		}
	}
	replace := "0"
	if u.ReplaceTS {
		replace = "1"
	}
	held, err := saveMessageScript.Run(ctx, s.rdb, []string{s.k.messages(incidentID)},
		channel, owner, u.TS, u.Version, u.ThreadVersion, snap, int64(MessageTTL/time.Second), replace).Int64()
	if err != nil {
		return fmt.Errorf("%s for %s in %s: %w", op, incidentID, channel, err)
	}
	if held != 1 {
		return fmt.Errorf("%s for %s in %s: %w", op, incidentID, channel, ErrLeaseLost)
	}
	return nil
}

// ReleaseMessage ends owner's lease on incident incidentID's message in
// channel, if owner still holds it, so another replica need not wait for it
// to run out.
func (s *Store) ReleaseMessage(ctx context.Context, incidentID, channel, owner string) error {
	const op = "release message"
	if err := checkMessageArgs(op, incidentID, channel, owner); err != nil {
		return err
	}
	if err := releaseMessageScript.Run(ctx, s.rdb, []string{s.k.messages(incidentID)}, channel, owner).Err(); err != nil {
		return fmt.Errorf("%s for %s in %s: %w", op, incidentID, channel, err)
	}
	return nil
}

// Messages returns what the store knows of an incident's messages, one per
// channel, sorted by channel; none when it was never posted.
func (s *Store) Messages(ctx context.Context, incidentID string) ([]Message, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.messages(incidentID)).Result()
	if err != nil {
		return nil, fmt.Errorf("messages of %s: %w", incidentID, err)
	}
	byCh := map[string]*Message{}
	get := func(ch string) *Message {
		m := byCh[ch]
		if m == nil {
			m = &Message{Channel: ch}
			byCh[ch] = m
		}
		return m
	}
	for f, val := range h {
		kind, ch, ok := strings.Cut(f, ":")
		if !ok || ch == "" {
			continue
		}
		switch kind {
		case "ts":
			get(ch).TS = val
		case "v":
			get(ch).Version, _ = strconv.ParseInt(val, 10, 64)
		case "tv":
			get(ch).ThreadVersion, _ = strconv.ParseInt(val, 10, 64)
		case "snap":
			var inc model.Incident
			if json.Unmarshal([]byte(val), &inc) == nil {
				get(ch).Incident = &inc
			}
		}
	}
	out := make([]Message, 0, len(byCh))
	for _, m := range byCh {
		if m.TS != "" || m.Version > 0 {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b Message) int { return strings.Compare(a.Channel, b.Channel) })
	return out, nil
}

func replyString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

func replyInt(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}
