package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
)

// MaxAuditEntries bounds the audit stream; older entries are trimmed
// (approximately) as new ones arrive.
const MaxAuditEntries = 100_000

// Audit entry kinds.
const (
	// AuditRefused is a command the router refused.
	AuditRefused = "refused"
	// AuditRemedy is a remedy's request, approval, denial, expiry, start,
	// step or result (written by SaveRemedy with the remedy's change).
	AuditRemedy = "remedy"
)

// AuditEntry is one line of the audit stream: who did or tried what, when,
// why and with what outcome, and what it was about (incident, VMs, host).
// Entries are appended, never rewritten.
type AuditEntry struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// Kind is AuditRefused or AuditRemedy; entries written before kinds
	// existed read as AuditRefused.
	Kind    string `json:"kind"`
	User    string `json:"user"`
	Channel string `json:"channel,omitempty"`
	Origin  string `json:"origin,omitempty"`
	// Command is what was tried (a refused command) or done ("approved").
	Command string `json:"command"`
	Group   string `json:"group,omitempty"`
	// Reason is why a command was refused.
	Reason string `json:"reason,omitempty"`
	// Outcome is what came of a remedy's step ("done", "failed: ...").
	Outcome  string   `json:"outcome,omitempty"`
	Incident string   `json:"incident,omitempty"`
	Remedy   string   `json:"remedy,omitempty"`
	VMs      []string `json:"vms,omitempty"`
	Host     string   `json:"host,omitempty"`
}

// AuditFilter selects audit entries; empty fields select everything.
type AuditFilter struct {
	// Since stops the read at the first entry older than it.
	Since time.Time
	// Limit bounds the answer (100 when not positive).
	Limit    int
	Kind     string
	Incident string
	VM       string
	Host     string
}

func (f AuditFilter) match(e AuditEntry) bool {
	return (f.Kind == "" || e.Kind == f.Kind) &&
		(f.Incident == "" || e.Incident == f.Incident) &&
		(f.VM == "" || slices.Contains(e.VMs, f.VM)) &&
		(f.Host == "" || e.Host == f.Host)
}

// maxAuditScan bounds how many stream entries one filtered read looks at.
const maxAuditScan = 20_000

// auditKey is the audit stream:
//
//	{vt}:audit               stream   refused commands and remedy audit (audit.go, remedies.go)
func (k keys) audit() string { return k.base + "audit" }

// AppendAudit records a refusal (Kind defaults to AuditRefused). Its ID
// is given by Redis.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.clock.Now()
	}
	e.At = e.At.UTC()
	e.ID = ""
	if e.Kind == "" {
		e.Kind = AuditRefused
	}
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("append audit: encode: %w", err)
	}
	err = s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: s.k.audit(), MaxLen: MaxAuditEntries, Approx: true,
		Values: map[string]any{"e": doc},
	}).Err()
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// Audit returns up to limit entries of any kind, newest first, stopping
// at the first one older than since (entries are appended in time order;
// their time is the service clock's, not Redis's).
func (s *Store) Audit(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error) {
	return s.AuditQuery(ctx, AuditFilter{Since: since, Limit: limit})
}

// AuditQuery returns up to f.Limit entries matching f, newest first. It
// reads the stream backwards in pages and looks at no more than the
// newest 20 000 entries.
func (s *Store) AuditQuery(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	// Unfiltered, the first page is the answer; filtered, larger pages
	// save round trips.
	page := int64(f.Limit)
	if f.Kind != "" || f.Incident != "" || f.VM != "" || f.Host != "" {
		page = max(page, 1000)
	}
	out := []AuditEntry{}
	end, scanned := "+", 0
	for scanned < maxAuditScan {
		msgs, err := s.rdb.XRevRangeN(ctx, s.k.audit(), end, "-", page).Result()
		if err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["e"].(string)
			var e AuditEntry
			if err := json.Unmarshal([]byte(raw), &e); err != nil {
				return nil, fmt.Errorf("read audit entry %s: %w", m.ID, err)
			}
			if e.At.Before(f.Since) {
				return out, nil
			}
			if e.Kind == "" {
				e.Kind = AuditRefused
			}
			e.ID = m.ID
			if f.match(e) {
				out = append(out, e)
				if len(out) == f.Limit {
					return out, nil
				}
			}
		}
		scanned += len(msgs)
		if int64(len(msgs)) < page {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}

// remedyAuditEntry is how one remedy audit line reads in the audit
// stream.
func remedyAuditEntry(r *model.Remedy, a model.AuditEntry) AuditEntry {
	e := AuditEntry{At: a.At.UTC(), Kind: AuditRemedy, User: a.Who, Command: a.What, Outcome: a.Result,
		Incident: r.Incident, Remedy: r.ID, Host: r.Host}
	if r.Action == model.ActionRestartVM && r.Subject != "" {
		e.VMs = append(e.VMs, r.Subject)
	}
	for _, st := range r.Steps {
		if st.VM != "" && !slices.Contains(e.VMs, st.VM) {
			e.VMs = append(e.VMs, st.VM)
		}
		if e.Host == "" && st.Host != "" {
			e.Host = st.Host
		}
	}
	if e.Host == "" && r.Action == model.ActionMigrateHost {
		e.Host = r.Subject
	}
	return e
}
