package app

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// auditStore is what the audit trail needs of the store.
type auditStore interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	AuditQuery(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
}

// auditRecorder is what recording a refusal needs of the store: the
// stream, and what it takes to tell which incident, VMs and host the
// refused command named.
type auditRecorder interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	Incident(ctx context.Context, id string) (model.Incident, error)
	VM(ctx context.Context, id string) (model.VMStatus, error)
	Host(ctx context.Context, id string, periods int) (model.HostStatus, error)
}

// auditor records every command the router refuses, in Redis (shared by
// replicas) and in the log.
type auditor struct {
	st  auditRecorder
	log *slog.Logger
}

// Refused implements bot.Auditor.
func (a auditor) Refused(ctx context.Context, r bot.Refusal) {
	a.log.Info("command refused", "user", r.User, "channel", r.Channel, "origin", string(r.Origin),
		"command", r.Command, "reason", r.Reason)
	e := store.AuditEntry{At: r.At, Kind: store.AuditRefused, User: r.User, Channel: r.Channel, Origin: string(r.Origin),
		Command: r.Command, Group: string(r.Group), Reason: r.Reason}
	a.subjects(ctx, &e)
	if err := a.st.AppendAudit(ctx, e); err != nil {
		a.log.Error("could not record a refused command in the audit trail", "user", r.User, "err", err)
	}
}

// subjects fills in what the refused command's first argument names: an
// incident (with its VMs and host), a VM (with its host) or a host.
// Anything else (a free text) is recorded as the command only.
func (a auditor) subjects(ctx context.Context, e *store.AuditEntry) {
	words := strings.Fields(strings.TrimPrefix(strings.TrimSpace(e.Command), "/triage"))
	if len(words) < 2 {
		return
	}
	arg := words[1]
	if inc, err := a.st.Incident(ctx, arg); err == nil {
		e.Incident, e.VMs, e.Host = inc.ID, inc.VMs, inc.Host
		return
	}
	if vm, err := a.st.VM(ctx, arg); err == nil && vm.ID != "" {
		e.VMs, e.Host = []string{vm.ID}, vm.Host
		return
	}
	if _, err := a.st.Host(ctx, arg, 0); err == nil {
		e.Host = arg
	}
}

// maxAuditLimit bounds one GET /v1/audit answer.
const maxAuditLimit = 1000

// auditParams are the parameters GET /v1/audit takes.
var auditParams = []string{"since", "limit", "kind", "incident", "vm", "host"}

// auditHandler serves GET /v1/audit?since=RFC3339&limit=N&kind=&incident=&vm=&host=:
// the audit stream (refused commands and every step of every remedy),
// newest first. "entries" holds them all; "refusals" repeats the refused
// commands among them, as before remedies joined the stream.
func auditHandler(st auditStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for name := range q {
			if !slices.Contains(auditParams, name) {
				httpError(w, http.StatusBadRequest, "unknown parameter "+strconv.Quote(bot.Truncate(name, 64))+"; use "+strings.Join(auditParams, "=, ")+"=")
				return
			}
		}
		f := store.AuditFilter{Limit: 100, Incident: q.Get("incident"), VM: q.Get("vm"), Host: q.Get("host")}
		if v := q.Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				httpError(w, http.StatusBadRequest, "since: "+strconv.Quote(bot.Truncate(v, 64))+" is not an RFC 3339 time such as 2026-11-22T10:00:00Z")
				return
			}
			f.Since = t
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxAuditLimit {
				httpError(w, http.StatusBadRequest, "limit: "+strconv.Quote(bot.Truncate(v, 64))+" is not a number from 1 to "+strconv.Itoa(maxAuditLimit))
				return
			}
			f.Limit = n
		}
		switch v := q.Get("kind"); v {
		case "", store.AuditRefused, store.AuditRemedy:
			f.Kind = v
		default:
			httpError(w, http.StatusBadRequest, "kind: "+strconv.Quote(bot.Truncate(v, 64))+" is not "+store.AuditRefused+" or "+store.AuditRemedy)
			return
		}
		entries, err := st.AuditQuery(r.Context(), f)
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, "the audit trail cannot be read now")
			return
		}
		refusals := []store.AuditEntry{}
		for _, e := range entries {
			if e.Kind == store.AuditRefused {
				refusals = append(refusals, e)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"entries": entries, "refusals": refusals})
	})
}

// auditVerbLimit bounds what `/triage audit` shows.
const auditVerbLimit = 20

// auditVerb is `/triage audit <vm|host|incident>`: the newest audit
// entries about a VM, a host or an incident (whichever the name is).
func auditVerb(st auditStore) bot.Verb {
	return bot.Verb{Name: "audit", Args: "<vm|host|incident>", Help: "who did or tried what to a VM, host or incident, newest first",
		Example: "audit host-007", MinArgs: 1, MaxArgs: 1,
		Run: func(ctx context.Context, cmd bot.Command) (bot.Reply, error) {
			name := cmd.Args[0]
			entries, err := auditAbout(ctx, st, name, auditVerbLimit+1)
			if err != nil {
				return bot.Reply{}, err
			}
			if len(entries) == 0 {
				return bot.Reply{Title: "Nothing in the audit trail about " + name}, nil
			}
			l := &bot.List{Limit: auditVerbLimit}
			for _, e := range entries {
				l.Items = append(l.Items, auditLine(e))
			}
			return bot.Reply{Title: "Audit trail of " + name + ", newest first", Sections: []bot.Section{{List: l}}}, nil
		}}
}

// auditAbout returns up to limit entries naming name as incident, VM or
// host, newest first.
func auditAbout(ctx context.Context, st auditStore, name string, limit int) ([]store.AuditEntry, error) {
	var all []store.AuditEntry
	seen := map[string]bool{}
	for _, f := range []store.AuditFilter{{Incident: name}, {VM: name}, {Host: name}} {
		f.Limit = limit
		es, err := st.AuditQuery(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if !seen[e.ID] {
				seen[e.ID] = true
				all = append(all, e)
			}
		}
	}
	slices.SortStableFunc(all, func(a, b store.AuditEntry) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return compareStreamIDs(b.ID, a.ID)
	})
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// compareStreamIDs orders two Redis stream ids ("ms-seq").
func compareStreamIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	an, _ := strconv.ParseUint(am, 10, 64)
	bn, _ := strconv.ParseUint(bm, 10, 64)
	if an != bn {
		return cmp.Compare(an, bn)
	}
	ai, _ := strconv.ParseUint(as, 10, 64)
	bi, _ := strconv.ParseUint(bs, 10, 64)
	return cmp.Compare(ai, bi)
}

// auditLine is one entry as `/triage audit` shows it.
func auditLine(e store.AuditEntry) string {
	line := e.At.UTC().Format("2006-01-02 15:04:05") + " " + e.User
	if e.Kind == store.AuditRefused {
		line += " was refused " + strconv.Quote(bot.Truncate(e.Command, 80))
		if e.Reason != "" {
			line += ": " + e.Reason
		}
		return line
	}
	line += " " + e.Command
	if e.Remedy != "" {
		line += " (" + e.Remedy + ", " + e.Incident + ")"
	}
	if e.Outcome != "" {
		line += " — " + bot.Truncate(e.Outcome, 200)
	}
	return line
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
