package bot

import (
	"slices"
	"strings"
	"testing"
	"unicode"
)

// FuzzParseCommand feeds arbitrary chat text to the parser: it must never
// panic, must answer with a *UserError or a command, and the command's text
// (what a button carries) must parse back to the same arguments.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"/triage status vm-0042", `silence host-007 2h "disk swap"`, "silence a 1h 'x y'", "“quoted”",
		`ack "inc-42`, "\x00\xff", "/triage", "  ", `a "b\"c" d`, "help me", "silence x 1d1h2m",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmd, err := ParseCommand(text)
		if err != nil {
			if _, ok := asUserError(err); !ok {
				t.Fatalf("ParseCommand(%q) returned a %T, not a *UserError: %v", text, err, err)
			}
			return
		}
		if cmd.Verb == "" || strings.HasPrefix(cmd.Verb, Prefix) || strings.ContainsFunc(cmd.Verb, func(r rune) bool {
			return isQuote(r) || r == '\\' || unicode.IsSpace(r)
		}) {
			return
		}
		again, err := ParseCommand(cmd.Text())
		if err != nil {
			if strings.Contains(err.Error(), "characters long") {
				return // quoting made it longer than the limit
			}
			t.Fatalf("text %q of %q does not parse: %v", cmd.Text(), text, err)
		}
		if !slices.Equal(again.Args, cmd.Args) {
			t.Fatalf("round trip of %q: args %q became %q (via %q)", text, cmd.Args, again.Args, cmd.Text())
		}
	})
}
