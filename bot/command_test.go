package bot

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		verb    string
		args    []string
		wantErr string // substring of the *UserError text; "" means no error
	}{
		{name: "with prefix", text: "/triage status vm-0042", verb: "status", args: []string{"vm-0042"}},
		{name: "without prefix", text: "status vm-0042", verb: "status", args: []string{"vm-0042"}},
		{name: "extra spaces and case", text: "  /triage   STATUS\tvm-0042  ", verb: "status", args: []string{"vm-0042"}},
		{name: "empty is help", text: "", verb: "help"},
		{name: "prefix alone is help", text: "/triage", verb: "help"},
		{name: "prefix glued to a word is not stripped", text: "/triagestatus", verb: "/triagestatus"},
		{name: "unknown verb is not an error", text: "/triage frobnicate now", verb: "frobnicate", args: []string{"now"}},
		{name: "double-quoted reason", text: `silence host-007 2h "disk swap on slot 3"`, verb: "silence",
			args: []string{"host-007", "2h", "disk swap on slot 3"}},
		{name: "single-quoted reason", text: `silence host-007 2h 'disk swap'`, verb: "silence",
			args: []string{"host-007", "2h", "disk swap"}},
		{name: "curly quotes from a chat client", text: `silence host-007 2h “disk swap”`, verb: "silence",
			args: []string{"host-007", "2h", "disk swap"}},
		{name: "unquoted reason stays words", text: `silence pod-a 1d network work`, verb: "silence",
			args: []string{"pod-a", "1d", "network", "work"}},
		{name: "escaped quote inside quotes", text: `silence vm-1 30m "the \"big\" one"`, verb: "silence",
			args: []string{"vm-1", "30m", `the "big" one`}},
		{name: "apostrophe inside a word", text: `silence vm-1 30m it's fine`, verb: "silence",
			args: []string{"vm-1", "30m", "it's", "fine"}},
		{name: "empty quoted argument", text: `silence vm-1 30m ""`, verb: "silence", args: []string{"vm-1", "30m", ""}},
		{name: "unclosed quote", text: `silence host-007 2h "disk swap`, wantErr: "quote is not closed"},
		{name: "status without target", text: "/triage status", wantErr: "missing arguments; usage: /triage status <vm|host|site>"},
		{name: "status with two targets", text: "/triage status a b", wantErr: "too many arguments"},
		{name: "ack without incident", text: "ack", wantErr: "usage: /triage ack <incident>"},
		{name: "silence without duration", text: "silence host-007", wantErr: "usage: /triage silence"},
		{name: "bad duration", text: "silence host-007 soon", wantErr: `"soon" is not a duration`},
		{name: "duration without unit", text: "silence host-007 30", wantErr: `"30" is not a duration`},
		{name: "duration too short", text: "silence host-007 30s", wantErr: "a silence lasts from 1m to 30d"},
		{name: "duration too long", text: "silence host-007 60d", wantErr: "a silence lasts from 1m to 30d"},
		{name: "reason too long", text: "silence host-007 1h " + strings.Repeat("x", MaxReasonLen+1), wantErr: "keep it under 500"},
		{name: "silences takes no arguments", text: "silences now", wantErr: "too many arguments"},
		{name: "too long", text: strings.Repeat("a", MaxCommandLen+1), wantErr: "the limit is 2000"},
		{name: "invalid UTF-8", text: "status \xff", wantErr: "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := ParseCommand(tt.text)
			if tt.wantErr != "" {
				var ue *UserError
				if !errors.As(err, &ue) {
					t.Fatalf("ParseCommand(%q) error = %v, want a *UserError", tt.text, err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCommand(%q) error = %q, want it to contain %q", tt.text, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.text, err)
			}
			if cmd.Verb != tt.verb || !slices.Equal(cmd.Args, tt.args) {
				t.Fatalf("ParseCommand(%q) = %q %q, want %q %q", tt.text, cmd.Verb, cmd.Args, tt.verb, tt.args)
			}
		})
	}
}

// A button carries Command.Text; parsing it must give the command back.
func TestCommandTextRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		verb string
		args []string
	}{
		{name: "plain", verb: "ack", args: []string{"inc-42"}},
		{name: "reason with spaces", verb: "silence", args: []string{"host-007", "1h", "from inc-42"}},
		{name: "quotes and backslashes", verb: "silence", args: []string{"vm-1", "2h", `say "hi" \ bye`}},
		{name: "single quote", verb: "silence", args: []string{"vm-1", "2h", "it's"}},
		{name: "empty argument", verb: "silence", args: []string{"vm-1", "2h", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := Command{Verb: tt.verb, Args: tt.args}.Text()
			got, err := ParseCommand(Prefix + " " + text)
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", text, err)
			}
			if got.Verb != tt.verb || !slices.Equal(got.Args, tt.args) {
				t.Fatalf("round trip of %q gave %q %q", text, got.Verb, got.Args)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{name: "minutes", in: "30m", want: 30 * time.Minute},
		{name: "hours", in: "2h", want: 2 * time.Hour},
		{name: "days", in: "1d", want: 24 * time.Hour},
		{name: "weeks", in: "1w", want: 7 * 24 * time.Hour},
		{name: "combined", in: "1h30m", want: 90 * time.Minute},
		{name: "upper case", in: "2H", want: 2 * time.Hour},
		{name: "empty", in: "", wantErr: true},
		{name: "no unit", in: "30", wantErr: true},
		{name: "no number", in: "h", wantErr: true},
		{name: "unknown unit", in: "3y", wantErr: true},
		{name: "negative", in: "-1h", wantErr: true},
		{name: "fraction", in: "1.5h", wantErr: true},
		{name: "huge", in: "9999999d", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseDuration(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("ParseDuration(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{name: "zero", in: 0, want: "0s"},
		{name: "minutes", in: 30 * time.Minute, want: "30m"},
		{name: "hour and a half", in: 90 * time.Minute, want: "1h30m"},
		{name: "day and a half", in: 36 * time.Hour, want: "1d12h"},
		{name: "drops sub-second", in: 1500 * time.Millisecond, want: "1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatDuration(tt.in); got != tt.want {
				t.Fatalf("FormatDuration(%s) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEscapeMrkdwn(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain text unchanged", in: "disk swap on host-007", want: "disk swap on host-007"},
		{name: "ampersand", in: "R&D", want: "R&amp;D"},
		{name: "already escaped is escaped again", in: "&amp;", want: "&amp;amp;"},
		{name: "channel mention", in: "<!channel> wake up", want: "&lt;!channel&gt; wake up"},
		{name: "user mention", in: "<@U123>", want: "&lt;@U123&gt;"},
		{name: "disguised link", in: "<https://evil.example|click>", want: "&lt;https://evil.example|click&gt;"},
		{name: "formatting is not touched", in: "*bold* _it_ `code`", want: "*bold* _it_ `code`"},
		{name: "unicode kept", in: "naïve <ü>", want: "naïve &lt;ü&gt;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EscapeMrkdwn(tt.in); got != tt.want {
				t.Fatalf("EscapeMrkdwn(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{name: "short", in: "abc", max: 5, want: "abc"},
		{name: "exact", in: "abcde", max: 5, want: "abcde"},
		{name: "cut", in: "abcdef", max: 5, want: "abcd…"},
		{name: "counts characters not bytes", in: "ééééé", max: 5, want: "ééééé"},
		{name: "cuts characters not bytes", in: "éééééé", max: 3, want: "éé…"},
		{name: "zero", in: "abc", max: 0, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Truncate(tt.in, tt.max); got != tt.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestListShown(t *testing.T) {
	items := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "x"
		}
		return out
	}
	tests := []struct {
		name     string
		list     *List
		shown    int
		more     int
		wantMore string
	}{
		{name: "nil list", list: nil, shown: 0, more: 0},
		{name: "short", list: &List{Items: items(3)}, shown: 3},
		{name: "one over the limit shows all", list: &List{Items: items(DefaultListLimit + 1)}, shown: DefaultListLimit + 1},
		{name: "long collapses", list: &List{Items: items(47)}, shown: DefaultListLimit, more: 37, wantMore: "and 37 more"},
		{name: "own limit", list: &List{Items: items(10), Limit: 3}, shown: 3, more: 7},
		{name: "negative shows all", list: &List{Items: items(100), Limit: -1}, shown: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shown, more := tt.list.Shown()
			if len(shown) != tt.shown || more != tt.more {
				t.Fatalf("Shown() = %d items, %d more; want %d, %d", len(shown), more, tt.shown, tt.more)
			}
			if tt.wantMore != "" && MoreText(more) != tt.wantMore {
				t.Fatalf("MoreText(%d) = %q, want %q", more, MoreText(more), tt.wantMore)
			}
		})
	}
}
