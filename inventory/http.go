package inventory

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vmtriage/vmtriage/internal/model"
)

// History limits for GET /v1/inventory/history.
const (
	DefaultHistoryLimit = 1000
	MaxHistoryLimit     = 10000
)

// Routes returns the inventory's HTTP routes, keyed as net/http patterns:
// POST /v1/inventory, GET /v1/inventory and GET /v1/inventory/history.
func (m *Manager) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /v1/inventory":        http.HandlerFunc(m.servePush),
		"GET /v1/inventory":         http.HandlerFunc(m.serveView),
		"GET /v1/inventory/history": http.HandlerFunc(m.serveHistory),
	}
}

// pushResult is the answer to an accepted push.
type pushResult struct {
	Changed int   `json:"changed"`
	Version int64 `json:"version"`
}

// errorBody is the answer to a refused request.
type errorBody struct {
	Error    string    `json:"error"`
	Problems []Problem `json:"problems,omitempty"`
}

func (m *Manager) servePush(w http.ResponseWriter, r *http.Request) {
	if !m.opts.Token.Set() {
		writeJSON(w, http.StatusForbidden, errorBody{Error: "POST /v1/inventory is off: set VMTRIAGE_INVENTORY_TOKEN to turn it on"})
		return
	}
	tokenID, ok := m.authorized(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vmtriage"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing or wrong bearer token"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, m.opts.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("body larger than %d bytes", mbe.Limit)})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "read body: " + err.Error()})
		return
	}
	rels, err := ParsePush(body)
	if err != nil {
		var ie *Error
		if errors.As(err, &ie) {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "inventory refused; nothing was applied", Problems: ie.Problems})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	actor := "token " + tokenID
	if who := cleanActor(r.Header.Get("X-Vmtriage-Actor")); who != "" {
		actor = who + " (" + actor + ")"
	}
	n, err := m.Push(r.Context(), rels, actor)
	if err != nil {
		m.log.Error("inventory push failed", "actor", actor, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the inventory could not be stored; try again"})
		return
	}
	writeJSON(w, http.StatusOK, pushResult{Changed: n, Version: m.Inventory().Version})
}

// authorized checks the bearer token in constant time and returns a short
// fingerprint of it for the history (never the token itself).
func (m *Manager) authorized(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := sha256.Sum256([]byte(m.opts.Token.Reveal()))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return "", false
	}
	return "sha256:" + hex.EncodeToString(got[:4]), true
}

// cleanActor keeps a caller-supplied name printable and short.
func cleanActor(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > 100 {
		s = string(r[:100])
	}
	return s
}

func (m *Manager) serveView(w http.ResponseWriter, r *http.Request) {
	if err := m.refresh(r.Context(), false); err != nil {
		m.log.Warn("refresh inventory", "err", err)
	}
	writeJSON(w, http.StatusOK, m.Inventory().View())
}

// HistoryFilter selects recorded changes.
type HistoryFilter struct {
	Since time.Time
	// VM selects changes of that VM's service.
	VM string
	// Service selects changes of the service's team and of VMs moving
	// into or out of it.
	Service string
	// Limit caps the result (oldest first); 0 means DefaultHistoryLimit.
	Limit int
}

// Match reports whether c passes the filter (Since aside).
func (f HistoryFilter) Match(c *model.InventoryChange) bool {
	if f.VM != "" && !(c.Kind == KindVM && c.Name == f.VM) {
		return false
	}
	if f.Service != "" && !(c.Kind == KindService && c.Name == f.Service) &&
		!(c.Kind == KindVM && (c.Old == f.Service || c.New == f.Service)) {
		return false
	}
	return true
}

// History returns the recorded changes passing f, oldest first.
func (m *Manager) History(r *http.Request, f HistoryFilter) ([]model.InventoryChange, error) {
	all, err := m.opts.Store.InventoryHistory(r.Context(), f.Since)
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		f.Limit = DefaultHistoryLimit
	}
	out := []model.InventoryChange{}
	for i := range all {
		if f.Match(&all[i]) {
			out = append(out, all[i])
			if len(out) == f.Limit {
				break
			}
		}
	}
	return out, nil
}

func (m *Manager) serveHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := HistoryFilter{VM: q.Get("vm"), Service: q.Get("service")}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("since=%q is not an RFC 3339 time (like 2026-11-22T10:00:00Z)", s)})
			return
		}
		f.Since = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("limit=%q must be a number from 1 to %d", s, MaxHistoryLimit)})
			return
		}
		f.Limit = n
	}
	changes, err := m.History(r, f)
	if err != nil {
		m.log.Error("read inventory history", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the history could not be read; try again"})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Changes []model.InventoryChange `json:"changes"`
	}{changes})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
