package tickets

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/tickets/jiratest"
)

func TestRetryable(t *testing.T) {
	tests := []struct {
		status int
		want   bool
	}{
		{0, true}, {408, true}, {429, true}, {500, true}, {502, true}, {503, true}, {504, true},
		{400, false}, {401, false}, {403, false}, {404, false}, {409, false}, {410, false}, {422, false},
	}
	for _, tc := range tests {
		if got := Retryable(tc.status); got != tc.want {
			t.Errorf("Retryable(%d) = %v; want %v", tc.status, got, tc.want)
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "7", 7 * time.Second},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"http date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"capped", "86400", MaxRetryAfter},
		{"garbage", "soon", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.value != "" {
				h.Set("Retry-After", tc.value)
			}
			if got := RetryAfter(h, now); got != tc.want {
				t.Fatalf("RetryAfter(%q) = %v; want %v", tc.value, got, tc.want)
			}
		})
	}
}

// TestErrorsNeverHoldTheToken makes every kind of failure happen and checks
// the errors and logs for the token in any encoding.
func TestErrorsNeverHoldTheToken(t *testing.T) {
	// A server that echoes the Authorization header back in its error, as
	// a badly behaved proxy might.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"errorMessages":["bad request with ` + r.Header.Get("Authorization") + `"],"errors":{}}`))
	}))
	defer echo.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	gone := jiratest.NewServer(jiratest.Options{Cloud: true, User: testUser, Token: testToken})
	defer gone.Close()

	tests := []struct {
		name   string
		url    string
		flavor Flavor
		user   string
		want   string
	}{
		{"echoing proxy, basic auth", echo.URL, Cloud, testUser, "HTTP 400"},
		{"echoing proxy, bearer", echo.URL, Server, "", "HTTP 400"},
		{"connection refused", closed.URL, Cloud, testUser, "connection refused"},
		{"server flavour against Cloud", gone.URL, Server, testUser, "set the Jira flavour to cloud"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, rec := bottest.Logger()
			o, err := Options{BaseURL: tc.url, User: tc.user, Token: config.Secret(testToken), Flavor: tc.flavor,
				Project: "OPS", Store: fakeStore{}, Logger: log}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			c, err := newClient(o)
			if err != nil {
				t.Fatal(err)
			}
			inc := model.Incident{ID: "inc-1", Fingerprint: "fp"}
			_, err = c.search(context.Background(), FingerprintLabel(&inc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want it to contain %q", err, tc.want)
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("%T is not an *APIError", err)
			}
			log.Error("search failed", "err", err)
			bottest.AssertNoSecrets(t, []string{testToken}, map[string]string{"error": err.Error(), "log": rec.String()})
		})
	}
}
