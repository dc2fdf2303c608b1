package latency

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Handler serves GET /v1/latency: the tracker's Report as JSON. The
// optional ?source= narrows it to one source.
func Handler(t *Tracker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "use GET"})
			return
		}
		q := r.URL.Query()
		for name := range q {
			if name != "source" {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "unknown parameter " + quote(name) + "; only source is understood"})
				return
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(t.Report(q.Get("source")))
	})
}

// quote quotes a user-supplied name for an error message, cut to 64
// characters.
func quote(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "…"
	}
	return `"` + strings.ReplaceAll(strings.ToValidUTF8(s, "?"), `"`, `\"`) + `"`
}
