// Package retryafter reads the Retry-After header that throttling HTTP
// APIs (Azure Resource Manager, Jira) send with a 429 or 503.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse reads h's Retry-After, given in seconds or as an HTTP date relative
// to now, and caps it at limit. It is 0 when the header is absent, unreadable
// or in the past.
func Parse(h http.Header, now time.Time, limit time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs > int64(limit/time.Second) {
			return limit
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), limit)
}
