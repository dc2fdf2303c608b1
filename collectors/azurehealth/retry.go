package azurehealth

import (
	"fmt"
	"net/http"
	"time"

	"github.com/vmtriage/vmtriage/internal/retryafter"
)

// httpError is a failed call to Azure: the status (0 for a transport
// error), whether trying again may help, and how long Azure asked to wait.
type httpError struct {
	op         string
	status     int
	retryAfter time.Duration
	// api is true for calls to the management endpoint, false for the
	// token endpoint (whose 401 means a bad secret, not a stale token).
	api bool
	err error
}

func (e *httpError) Error() string {
	if e.status == 0 {
		return fmt.Sprintf("%s: %v", e.op, e.err)
	}
	return fmt.Sprintf("%s: HTTP %d: %v", e.op, e.status, e.err)
}

func (e *httpError) Unwrap() error { return e.err }

// Temporary reports whether the same request may succeed later: transport
// errors, throttling (429), request timeouts and server-side failures.
// Everything else (400, 403, 404, ...) needs a person.
func (e *httpError) Temporary() bool { return retryable(e.status) }

// retryable is the one mapping from an HTTP status to retry or not; 0
// stands for a transport error.
func retryable(status int) bool {
	switch status {
	case 0, http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// maxRetryAfter caps what a server may make a poll wait for one page.
const maxRetryAfter = 5 * time.Minute

// retryAfter reads a Retry-After header (seconds or an HTTP date, relative
// to now), capped at maxRetryAfter; 0 when absent or unreadable. Azure
// Resource Manager also sends x-ms-ratelimit-reset-after style hints in
// seconds, which are not relied on.
func retryAfter(h http.Header, now time.Time) time.Duration {
	return retryafter.Parse(h, now, maxRetryAfter)
}

// backoff is the wait before attempt n+1 (n from 1) when the server gave
// no Retry-After: 1s, 2s, 4s, ... capped at 30s.
func backoff(n int) time.Duration {
	d := time.Second << min(n-1, 5)
	return min(d, 30*time.Second)
}
