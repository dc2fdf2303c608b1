package bot

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Visibility says who sees a reply.
type Visibility string

// Visibilities. The zero value is Ephemeral: only the person who asked sees
// the answer, which is right for lookups; changes the team should know of
// (an ack, a silence) are InChannel.
const (
	Ephemeral Visibility = ""
	InChannel Visibility = "in_channel"
)

// Tone colours a reply or a notification without markup: renderers map it to
// a colour, an emoji or nothing.
type Tone string

// Tones.
const (
	ToneInfo    Tone = ""
	ToneOK      Tone = "ok"
	ToneWarning Tone = "warning"
	ToneError   Tone = "error"
	// ToneRefused marks a permission refusal.
	ToneRefused Tone = "refused"
)

// Reply is the neutral answer to a command. Every string in it is plain
// text, never markup: it may hold user-controlled data (a silence reason, an
// ID typed by someone), which a renderer must escape for its medium.
type Reply struct {
	// Title is the headline, one line; chat adapters also use it as the
	// notification's fallback text.
	Title string
	Tone  Tone
	// Sections follow the title in order.
	Sections []Section
	// Actions are buttons; each carries a command text or a link.
	Actions    []Action
	Visibility Visibility
}

// Section is a block of structured text under an optional heading.
type Section struct {
	Heading string
	// Fields are key/value pairs, shown aligned.
	Fields []Field
	// Lines are free lines of plain text, shown after the fields.
	Lines []string
	// List, if set, is shown after the lines and collapses when long.
	List *List
}

// Field is one key/value pair of a section.
type Field struct {
	Key, Value string
}

// DefaultListLimit is how many items a List shows when its Limit is zero.
const DefaultListLimit = 10

// List is a list of items that collapses when long: only the first Limit
// items are shown, followed by "and N more".
type List struct {
	Items []string
	// Limit is how many items to show; 0 means DefaultListLimit and a
	// negative value shows every item.
	Limit int
}

// Shown returns the items to show and how many are hidden. When hiding
// would save a single item, that item is shown instead of "and 1 more".
func (l *List) Shown() (items []string, more int) {
	if l == nil {
		return nil, 0
	}
	limit := l.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 0 || len(l.Items) <= limit+1 {
		return l.Items, 0
	}
	return l.Items[:limit], len(l.Items) - limit
}

// MoreText is the line that stands for hidden items: "and 37 more".
func MoreText(more int) string {
	return fmt.Sprintf("and %d more", more)
}

// Style is how a button looks.
type Style string

// Button styles, as chat platforms name them.
const (
	StyleDefault Style = ""
	StylePrimary Style = "primary"
	StyleDanger  Style = "danger"
)

// Action is a button. It either runs a command (Command holds the command
// text, exactly as typed after "/triage", so a click goes through the same
// router and permission check as the typed form) or opens a link (URL).
type Action struct {
	// Label is the button text.
	Label   string
	Command string
	URL     string
	Style   Style
	// Confirm, if set, is a question the user must confirm before the
	// command runs; risky actions have one.
	Confirm string
}

// ErrorReply turns an error into a reply: a *UserError's text is shown, any
// other error gets only the generic message (the Router logs it with the
// reference first; see Router.Handle).
func ErrorReply(err error, ref string) Reply {
	if ue, ok := asUserError(err); ok {
		r := Reply{Title: ue.Msg, Tone: ToneWarning}
		if ue.Hint != "" {
			r.Sections = []Section{{Lines: []string{ue.Hint}}}
		}
		return r
	}
	return Reply{Title: "Something went wrong; logged as " + ref + ".", Tone: ToneError}
}

// EscapeMrkdwn escapes text for Slack's mrkdwn and plain message text: per
// Slack's rules only &, < and > are control characters, replaced by &amp;,
// &lt; and &gt;. Escaping is what stops user text from forming links or
// mentions (<!channel>, <@U123>, <https://evil|innocent>).
func EscapeMrkdwn(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Truncate shortens s to at most max characters (runes, not bytes: chat and
// ticket limits count characters), ending with "…" when it cut anything.
func Truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	runes := []rune(s)
	return string(runes[:max-1]) + "…"
}
