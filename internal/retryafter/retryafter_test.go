package retryafter_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/retryafter"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"99999999999999", 5 * time.Minute},
		{"3600", 5 * time.Minute},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Retry-After", tc.header)
		}
		if got := retryafter.Parse(h, now, 5*time.Minute); got != tc.want {
			t.Errorf("Parse(%q) = %s, want %s", tc.header, got, tc.want)
		}
	}
}
