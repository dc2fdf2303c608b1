package tickets

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Label is on every ticket vmtriage opens, so people can find them all.
const Label = "vmtriage"

// FingerprintLabel is the label that ties a ticket to the incident's
// fingerprint (the hash of its rule and group labels, stable across
// recurrences): "vmtriage-" and 16 hex digits of SHA-256, far below Jira's
// 255 characters and without spaces. Tickets are looked up by it before
// one is created, so retries, restarts and replicas never open a second
// ticket, and a recurrence finds the ticket to reopen. An incident without
// fingerprint is keyed by its id.
func FingerprintLabel(inc *model.Incident) string {
	key := inc.Fingerprint
	if key == "" {
		key = "id:" + inc.ID
	}
	return Label + "-" + shortHash(key)
}

// IncidentLabel tells one incident's ticket from a recurrence's: the hash
// covers the fingerprint, the id and the start, so it is unique even when
// ids restart with a fresh Redis.
func IncidentLabel(inc *model.Incident) string {
	return Label + "-inc-" + shortHash(inc.Fingerprint+"\x00"+inc.ID+"\x00"+strconv.FormatInt(inc.StartedAt.UnixMilli(), 10))
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// QuoteJQL quotes s as a JQL string literal: in double quotes, with
// backslashes and double quotes escaped, so no value can change the
// query's meaning.
func QuoteJQL(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// lookupJQL finds the tickets carrying label in project, newest first.
func lookupJQL(project, label string) string {
	return "project = " + QuoteJQL(project) + " AND labels = " + QuoteJQL(label) + " ORDER BY created DESC"
}
