package bot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Origin says how a command reached the bot. The Router treats every origin
// alike (one permission check); the origin is kept for logs and audit.
type Origin string

// The ways a command arrives.
const (
	// OriginTyped is a slash command typed in a chat.
	OriginTyped Origin = "typed"
	// OriginButton is a click on a button that carries a command text.
	OriginButton Origin = "button"
	// OriginConsole is a line typed in the demo's terminal chat.
	OriginConsole Origin = "console"
)

// Prefix is the slash command the bot answers to. ParseCommand accepts text
// with or without it.
const Prefix = "/triage"

// Limits on command text, so a pasted novel gets a clear answer rather than
// a slow one.
const (
	// MaxCommandLen is the longest command text accepted, in characters.
	MaxCommandLen = 2000
	// MaxArgs is the most arguments a command may carry.
	MaxArgs = 32
)

// Command is one neutral request to the bot, whatever it came from.
type Command struct {
	// Verb is the lower-case command name ("status", "ack", ...).
	Verb string
	// Args are the words after the verb, with quotes removed.
	Args []string
	// User and Channel identify who asked and where, in the adapter's own
	// terms (Slack user and channel IDs, or the console's user name).
	User, Channel string
	// Origin is how the command arrived.
	Origin Origin
	// ResponseURL is where a delayed answer may be sent, if the adapter
	// has one (Slack's response_url); the Router does not use it.
	ResponseURL string
}

// Text returns the command as it would be typed, without the "/triage"
// prefix and with arguments quoted where needed. Buttons carry this text, so
// ParseCommand(c.Text()) gives back the same Verb and Args.
func (c Command) Text() string {
	return CommandText(c.Verb, c.Args...)
}

// CommandText builds command text from a verb and its arguments, quoting any
// argument that holds spaces or quotes.
func CommandText(verb string, args ...string) string {
	var b strings.Builder
	b.WriteString(verb)
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(quoteArg(a))
	}
	return b.String()
}

func quoteArg(a string) string {
	if a != "" && !strings.ContainsFunc(a, func(r rune) bool {
		return unicode.IsSpace(r) || isQuote(r) || r == '\\'
	}) {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range a {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// ParseCommand reads command text such as `/triage silence host-007 2h "disk
// swap"`. The "/triage" prefix is optional; empty text means help. Arguments
// may be quoted with double or single quotes, including the curly quotes chat
// clients substitute; a backslash escapes the next character inside double
// quotes. For the built-in verbs the number of arguments and the silence
// duration are checked; an unknown verb is not an error (the Router answers
// it with help). Every error is a *UserError whose text can be shown as is.
// User, Channel and Origin are left for the adapter to fill in.
func ParseCommand(text string) (Command, error) {
	if !utf8.ValidString(text) {
		return Command{}, Userf("the command is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > MaxCommandLen {
		return Command{}, Userf("the command is %d characters long; the limit is %d", n, MaxCommandLen)
	}
	text = strings.TrimSpace(text)
	if rest, ok := strings.CutPrefix(text, Prefix); ok {
		if rest == "" || unicode.IsSpace(rune(rest[0])) {
			text = strings.TrimSpace(rest)
		}
	}
	words, err := splitWords(text)
	if err != nil {
		return Command{}, err
	}
	if len(words) == 0 {
		return Command{Verb: "help"}, nil
	}
	if len(words)-1 > MaxArgs {
		return Command{}, Userf("too many arguments (%d); the limit is %d", len(words)-1, MaxArgs)
	}
	cmd := Command{Verb: strings.ToLower(words[0]), Args: words[1:]}
	if len(cmd.Args) == 0 {
		cmd.Args = nil
	}
	if v, ok := builtinVerb(cmd.Verb); ok {
		if err := v.checkArgs(cmd.Args); err != nil {
			return Command{}, err
		}
	}
	return cmd, nil
}

func isQuote(r rune) bool {
	switch r {
	case '"', '\'', '“', '”', '‘', '’':
		return true
	}
	return false
}

// closingQuote returns the quote that ends a quoted argument opened by r.
// Chat clients turn "x" into “x”, so a curly opening quote closes with its
// curly partner, and a straight one with itself.
func closingQuote(r rune) rune {
	switch r {
	case '“':
		return '”'
	case '‘':
		return '’'
	}
	return r
}

// splitWords splits text on white space, honouring quotes. A quote only
// opens an argument at the start of a word, so "it's" stays one word.
func splitWords(text string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		quote   rune // closing quote while inside a quoted part, else 0
		escaped bool
	)
	for _, r := range text {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote != 0 && r == '\\' && quote == '"':
			escaped = true
		case quote != 0 && (r == quote || quote == '”' && r == '"'):
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case isQuote(r) && !inWord:
			quote = closingQuote(r)
			inWord = true
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, Userf("a quote is not closed (missing %c)", quote).withHint(`quote a reason with spaces like this: "disk swap"`)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// Silence durations are bounded: shorter than a minute is a typo, longer
// than MaxSilence should be a change of the rules, not a silence.
const (
	MinSilence = time.Minute
	MaxSilence = 30 * 24 * time.Hour
)

// ParseDuration reads a duration as people type it in chat: a number and a
// unit, or several in a row ("30m", "2h", "1d", "1h30m", "1w"). Units are s,
// m, h, d (24h) and w (7d). Errors are *UserError.
func ParseDuration(s string) (time.Duration, error) {
	bad := func() error {
		return Userf("%q is not a duration", s).withHint("use a number and a unit, e.g. 30m, 2h, 1d")
	}
	if s == "" {
		return 0, bad()
	}
	var total time.Duration
	rest := strings.ToLower(s)
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || i > 6 {
			return 0, bad()
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil {
			return 0, bad()
		}
		var unit time.Duration
		switch rest[i] {
		case 's':
			unit = time.Second
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		case 'w':
			unit = 7 * 24 * time.Hour
		default:
			return 0, bad()
		}
		total += time.Duration(n) * unit
		if total > 100*MaxSilence {
			return 0, bad()
		}
		rest = rest[i+1:]
	}
	return total, nil
}

// FormatDuration writes d the way ParseDuration reads it, dropping zero
// parts and anything below a second: 90m is "1h30m", 36h is "1d12h".
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d < time.Second {
		return "0s"
	}
	var b strings.Builder
	parts := []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	for _, p := range parts {
		if n := d / p.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, p.name)
			d -= n * p.unit
		}
	}
	return b.String()
}

// roughDuration is FormatDuration with only the two largest parts, for
// "12m ago" and "3d4h ago" where seconds are noise.
func roughDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return FormatDuration(d.Truncate(time.Second))
	case d < time.Hour:
		return FormatDuration(d.Truncate(time.Minute))
	case d < 24*time.Hour:
		return FormatDuration(d.Truncate(time.Minute))
	}
	return FormatDuration(d.Truncate(time.Hour))
}
