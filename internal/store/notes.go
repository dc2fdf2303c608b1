package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Note is a resolution note: what fixed an incident, kept with the
// incident's cause so the next incident of that cause can show "how this
// was fixed before".
type Note struct {
	Incident string    `json:"incident"`
	Cause    string    `json:"cause"`
	Text     string    `json:"text"`
	Author   string    `json:"author"`
	Time     time.Time `json:"time"`
}

// Limits of resolution notes.
const (
	// MaxNoteLen is the longest note text, in characters.
	MaxNoteLen = 2000
	// MaxNotesPerCause is how many notes are kept per cause; older ones
	// are dropped when a new one is added.
	MaxNotesPerCause = 100
)

// Note keys (see keys.go for the others):
//
//	{vt}:notes:<cause>      zset  note id ("<incident> <author>"), score = time (ms)
//	{vt}:notetext:<cause>   hash  note id -> note JSON
func (k keys) notes(cause string) string    { return k.base + "notes:" + cause }
func (k keys) noteText(cause string) string { return k.base + "notetext:" + cause }

// addNoteScript writes a note and drops the oldest ones beyond the limit,
// atomically, so the index and the texts never disagree.
var addNoteScript = redis.NewScript(`
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
  redis.call('HDEL', KEYS[2], unpack(old))
end
return 1
`)

// AddNote keeps n under its cause. A note is identified by its incident and
// author: the same person noting the same incident again (a retried
// command, a correction) replaces their note, while a Slack note and a Jira
// resolution comment on one incident are both kept. A zero Time is now.
func (s *Store) AddNote(ctx context.Context, n Note) error {
	n.Incident = strings.TrimSpace(n.Incident)
	n.Cause = strings.TrimSpace(n.Cause)
	n.Author = strings.TrimSpace(n.Author)
	n.Text = strings.TrimSpace(n.Text)
	switch {
	case n.Incident == "":
		return errors.New("add note: the incident is required")
	case n.Cause == "":
		return fmt.Errorf("add note for %s: the cause is required", n.Incident)
	case n.Text == "":
		return fmt.Errorf("add note for %s: the text is empty: say what fixed it", n.Incident)
	case utf8.RuneCountInString(n.Text) > MaxNoteLen:
		return fmt.Errorf("add note for %s: the text is %d characters long; keep it under %d",
			n.Incident, utf8.RuneCountInString(n.Text), MaxNoteLen)
	}
	if n.Time.IsZero() {
		n.Time = s.clock.Now()
	}
	n.Time = n.Time.UTC()
	doc, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("add note for %s: encode: %w", n.Incident, err)
	}
	id := n.Incident + " " + n.Author
	err = addNoteScript.Run(ctx, s.rdb, []string{s.k.notes(n.Cause), s.k.noteText(n.Cause)},
		id, n.Time.UnixMilli(), doc, MaxNotesPerCause).Err()
	if err != nil {
		return fmt.Errorf("add note for %s: %w", n.Incident, err)
	}
	return nil
}

// Notes returns the newest limit notes kept for cause, newest first (at
// most MaxNotesPerCause; limit ≤ 0 means all of them).
func (s *Store) Notes(ctx context.Context, cause string, limit int) ([]Note, error) {
	if limit <= 0 || limit > MaxNotesPerCause {
		limit = MaxNotesPerCause
	}
	ids, err := s.rdb.ZRevRange(ctx, s.k.notes(cause), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list notes of %s: %w", cause, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	docs, err := s.rdb.HMGet(ctx, s.k.noteText(cause), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("list notes of %s: %w", cause, err)
	}
	out := make([]Note, 0, len(docs))
	for i, d := range docs {
		str, ok := d.(string)
		if !ok {
			continue // dropped by a concurrent AddNote between the two reads
		}
		var n Note
		if err := json.Unmarshal([]byte(str), &n); err != nil {
			s.log.Error("undecodable note skipped", "cause", cause, "note", ids[i], "err", err)
			continue
		}
		out = append(out, n)
	}
	return out, nil
}
