package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/store"
)

// auditStore is what the refusal audit needs of the store.
type auditStore interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	Audit(ctx context.Context, since time.Time, limit int) ([]store.AuditEntry, error)
}

// auditor records every command the router refuses, in Redis (shared by
// replicas) and in the log.
type auditor struct {
	st  auditStore
	log *slog.Logger
}

// Refused implements bot.Auditor.
func (a auditor) Refused(ctx context.Context, r bot.Refusal) {
	a.log.Info("command refused", "user", r.User, "channel", r.Channel, "origin", string(r.Origin),
		"command", r.Command, "reason", r.Reason)
	err := a.st.AppendAudit(ctx, store.AuditEntry{At: r.At, User: r.User, Channel: r.Channel, Origin: string(r.Origin),
		Command: r.Command, Group: string(r.Group), Reason: r.Reason})
	if err != nil {
		a.log.Error("could not record a refused command in the audit trail", "user", r.User, "err", err)
	}
}

// maxAuditLimit bounds one GET /v1/audit answer.
const maxAuditLimit = 1000

// auditHandler serves GET /v1/audit?since=RFC3339&limit=N: refused
// commands, newest first.
func auditHandler(st auditStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var since time.Time
		if v := q.Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				httpError(w, http.StatusBadRequest, "since: "+strconv.Quote(v)+" is not an RFC 3339 time such as 2026-11-22T10:00:00Z")
				return
			}
			since = t
		}
		limit := 100
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxAuditLimit {
				httpError(w, http.StatusBadRequest, "limit: "+strconv.Quote(v)+" is not a number from 1 to "+strconv.Itoa(maxAuditLimit))
				return
			}
			limit = n
		}
		entries, err := st.Audit(r.Context(), since, limit)
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, "the audit trail cannot be read now")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"refusals": entries})
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
