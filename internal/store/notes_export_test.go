package store

import "context"

// NoteTextCount counts the note texts kept for cause, so a test can see
// that trimming drops texts as well as index entries.
func NoteTextCount(ctx context.Context, s *Store, cause string) (int64, error) {
	return s.rdb.HLen(ctx, s.k.noteText(cause)).Result()
}
