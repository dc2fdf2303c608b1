package outage

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseWindow: whatever from and to hold, ParseWindow either gives a
// period that ends after it starts, at most MaxPeriod long and starting
// before now, or a *ParamError naming from or to.
func FuzzParseWindow(f *testing.F) {
	for _, s := range [][2]string{{"", ""}, {"2026-11-01", "2026-11-22"}, {"2026-11-22T10:00:00Z", ""},
		{"yesterday", ""}, {"", "2026-13-01"}, {"2020-01-01", ""}, {"2026-11-22T10:00:00+02:00", "2026-11-22T12:00:00.5Z"}} {
		f.Add(s[0], s[1])
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, from, to string) {
		a, b, err := ParseWindow(from, to, now)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || (pe.Param != "from" && pe.Param != "to") || !strings.HasPrefix(err.Error(), pe.Param+": ") {
				t.Fatalf("ParseWindow(%q, %q) error %v does not name from or to", from, to, err)
			}
			return
		}
		if !a.Before(b) || b.Sub(a) > MaxPeriod || !a.Before(now) {
			t.Fatalf("ParseWindow(%q, %q) = %s, %s: not a valid period before %s", from, to, a, b, now)
		}
	})
}
