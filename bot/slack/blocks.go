package slack

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/model"
)

// Block Kit limits, in characters (Slack counts characters, not bytes).
const (
	maxBlocks          = 50
	maxHeaderText      = 150
	maxSectionText     = 3000
	maxFields          = 10
	maxFieldText       = 2000
	maxContextElements = 10
	maxButtonText      = 75
	maxButtonValue     = 2000
	maxButtonURL       = 3000
	maxActionElements  = 25
	maxConfirmTitle    = 100
	maxConfirmText     = 300
	maxConfirmButton   = 30
	// maxFallbackText keeps the notification text short; Slack cuts
	// message text at 40,000 characters but notifications show far less.
	maxFallbackText = 3000
)

// Action and block IDs of the buttons this package renders, besides
// CommandActionPrefix (declared with the inbound half, which runs a command
// button's value through the router): a link button's action_id starts
// with linkActionPrefix, it only opens its URL and carries no command.
const (
	linkActionPrefix = "vmtriage:link:"
	actionsBlockID   = "vmtriage:actions"
)

// cutNote marks text shortened to fit a Slack limit, so a reader knows more
// exists (the full text is in the API and the console).
const cutNote = " (cut to fit Slack)"

// cut shortens s, which is already escaped mrkdwn or plain text, to at most
// max characters. When it cuts, it never leaves half a link, mention or
// entity ("<https://…", "&am") behind, and it ends with "…" and note.
func cut(s string, max int, note string) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	keep := max - utf8.RuneCountInString(note)
	if keep < 2 {
		return bot.Truncate(s, max)
	}
	t := strings.TrimSuffix(bot.Truncate(s, keep), "…")
	if i := strings.LastIndexByte(t, '<'); i >= 0 && !strings.Contains(t[i:], ">") {
		t = t[:i]
	}
	if i := strings.LastIndexByte(t, '&'); i >= 0 && !strings.Contains(t[i:], ";") {
		t = t[:i]
	}
	return t + "…" + note
}

// esc escapes outside text for mrkdwn. No text Slack takes is longer than
// a section, so only the first maxSectionText+1 characters are escaped: a
// longer string is cut anyway, and a huge one costs no more than that.
func esc(s string) string { return bot.EscapeMrkdwn(head(s, maxSectionText+1)) }

// head returns the first n characters of s.
func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

func mrkdwn(s string) *goslack.TextBlockObject {
	return goslack.NewTextBlockObject(goslack.MarkdownType, s, false, false)
}

func plain(s string, emoji bool) *goslack.TextBlockObject {
	return goslack.NewTextBlockObject(goslack.PlainTextType, s, emoji, false)
}

func toneEmoji(t bot.Tone) string {
	switch t {
	case bot.ToneOK:
		return ":large_green_circle:"
	case bot.ToneWarning:
		return ":large_yellow_circle:"
	case bot.ToneError:
		return ":red_circle:"
	case bot.ToneRefused:
		return ":no_entry:"
	}
	return ":large_blue_circle:"
}

// safeURL returns u ready to sit inside a mrkdwn link ("<u|text>"), or false
// when u is not a plain http(s) URL: anything else (javascript:, a "|" that
// would change the link text, whitespace) is shown as escaped text instead.
func safeURL(u string) (string, bool) {
	if u == "" || utf8.RuneCountInString(u) > maxButtonURL {
		return "", false
	}
	if strings.ContainsAny(u, "|<> \t\r\n") || strings.ContainsFunc(u, unicode.IsControl) {
		return "", false
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", false
	}
	return strings.ReplaceAll(u, "&", "&amp;"), true
}

// link renders a mrkdwn link to u showing text (u itself when text is
// empty); a URL that is not safe to link is shown as escaped text.
func link(u, text string) string {
	su, ok := safeURL(u)
	if !ok {
		if text == "" {
			return esc(u)
		}
		return esc(text) + " (" + esc(u) + ")"
	}
	if text == "" {
		return "<" + su + ">"
	}
	return "<" + su + "|" + esc(text) + ">"
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// userRef shows a person: a Slack user ID becomes a mention (Slack shows
// the name), anything else is escaped text.
func userRef(s string) string {
	if slackUserID.MatchString(s) {
		return "<@" + s + ">"
	}
	return esc(s)
}

// slackTime shows t in each reader's own time zone, with the UTC time as
// the fallback for clients that cannot.
func slackTime(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short} {time_secs}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// sectionText is a mrkdwn section block, cut to the section limit.
func sectionText(s string) *goslack.SectionBlock {
	return goslack.NewSectionBlock(mrkdwn(cut(s, maxSectionText, cutNote)), nil, nil)
}

// field is one mrkdwn field: a bold key over its value. key and value are
// already escaped.
func field(key, value string) *goslack.TextBlockObject {
	return mrkdwn(cut("*"+key+"*\n"+value, maxFieldText, cutNote))
}

// fieldSections puts fields in sections of at most ten, the first with
// heading as its text (if any).
func fieldSections(heading string, fields []*goslack.TextBlockObject) []goslack.Block {
	var out []goslack.Block
	for i := 0; i < len(fields); i += maxFields {
		var text *goslack.TextBlockObject
		if i == 0 && heading != "" {
			text = mrkdwn(cut(heading, maxSectionText, cutNote))
		}
		out = append(out, goslack.NewSectionBlock(text, fields[i:min(i+maxFields, len(fields))], nil))
	}
	return out
}

// lineSections packs mrkdwn lines into as few sections as the section limit
// allows; a single line longer than the limit is cut.
func lineSections(lines []string) []goslack.Block {
	var out []goslack.Block
	var cur []string
	size := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, sectionText(strings.Join(cur, "\n")))
			cur, size = nil, 0
		}
	}
	for _, l := range lines {
		n := utf8.RuneCountInString(l)
		if len(cur) > 0 && size+1+n > maxSectionText {
			flush()
		}
		cur = append(cur, l)
		size += n + 1
	}
	flush()
	return out
}

// listLines shows a list as bullets, collapsed as the list says.
func listLines(l *bot.List) []string {
	items, more := l.Shown()
	out := make([]string, 0, len(items)+1)
	for _, it := range items {
		out = append(out, "• "+esc(it))
	}
	if more > 0 {
		out = append(out, "_"+bot.MoreText(more)+"_")
	}
	return out
}

// contextBlock is a context block of mrkdwn texts (at most ten).
func contextBlock(texts ...string) *goslack.ContextBlock {
	var els []goslack.MixedElement
	for _, t := range texts {
		if len(els) == maxContextElements {
			break
		}
		els = append(els, mrkdwn(cut(t, maxSectionText, cutNote)))
	}
	return goslack.NewContextBlock("", els...)
}

// actionBlocks renders buttons. Each gets an action_id unique in the
// message; a command button's value is the command text itself, a link
// button has its URL and no value. A button that cannot be rendered within
// Slack's limits is left out and a note says so.
func actionBlocks(acts []bot.Action) (blocks []goslack.Block, notes []string) {
	var els []goslack.BlockElement
	for i, a := range acts {
		n := strconv.Itoa(i + 1)
		label := cut(esc(a.Label), maxButtonText, "")
		if label == "" {
			label = "Run"
		}
		var b *goslack.ButtonBlockElement
		switch {
		case a.Command != "":
			if utf8.RuneCountInString(a.Command) > maxButtonValue {
				// A cut command would run something else: leave it out.
				notes = append(notes, "Button “"+label+"” left out: its command is longer than Slack allows; type it instead.")
				continue
			}
			b = goslack.NewButtonBlockElement(CommandActionPrefix+n, a.Command, plain(label, false))
		case a.URL != "":
			if _, ok := safeURL(a.URL); !ok {
				notes = append(notes, "Link “"+label+"”: "+esc(bot.Truncate(a.URL, 500)))
				continue
			}
			b = goslack.NewButtonBlockElement(linkActionPrefix+n, "", plain(label, false)).WithURL(a.URL)
		default:
			continue
		}
		switch a.Style {
		case bot.StylePrimary:
			b = b.WithStyle(goslack.StylePrimary)
		case bot.StyleDanger:
			b = b.WithStyle(goslack.StyleDanger)
		}
		if a.Confirm != "" {
			c := goslack.NewConfirmationBlockObject(
				plain(cut("Are you sure?", maxConfirmTitle, ""), false),
				plain(cut(esc(a.Confirm), maxConfirmText, ""), false),
				plain(cut(label, maxConfirmButton, ""), false),
				plain("Cancel", false))
			if a.Style == bot.StyleDanger {
				c = c.WithStyle(goslack.StyleDanger)
			}
			b = b.WithConfirm(c)
		}
		els = append(els, b)
	}
	for i := 0; i < len(els); i += maxActionElements {
		id := actionsBlockID
		if i > 0 {
			id += ":" + strconv.Itoa(i/maxActionElements+1)
		}
		blocks = append(blocks, goslack.NewActionBlock(id, els[i:min(i+maxActionElements, len(els))]...))
	}
	return blocks, notes
}

// finish joins content, notes about left-out buttons, the buttons and an
// optional footer within the 50-block limit: content that does not fit is
// dropped and a context block says how much.
func finish(content, actions []goslack.Block, notes []string, footer string) []goslack.Block {
	var tail []goslack.Block
	if len(notes) > 0 {
		tail = append(tail, contextBlock(strings.Join(notes, "\n")))
	}
	if footer != "" {
		tail = append(tail, contextBlock(footer))
	}
	room := maxBlocks - len(actions) - len(tail)
	if len(content) > room {
		dropped := len(content) - (room - 1)
		content = append(content[:room-1:room-1], contextBlock(fmt.Sprintf("_%d more blocks left out: too long for one Slack message._", dropped)))
	}
	return append(append(content, actions...), tail...)
}

// ReplyBlocks renders a neutral reply as Block Kit, with the fallback text
// Slack shows in notifications. The title is a bold line marked by the
// reply's tone; each section shows its heading, its fields side by side,
// its lines and its list (collapsed when long); buttons come last. Every
// string in the reply is escaped, and every limit is respected by cutting
// (and saying so) rather than failing.
func ReplyBlocks(r bot.Reply) ([]goslack.Block, string) {
	title := esc(r.Title)
	content := []goslack.Block{sectionText(toneEmoji(r.Tone) + " *" + title + "*")}
	for _, sec := range r.Sections {
		heading := ""
		if sec.Heading != "" {
			heading = "*" + esc(sec.Heading) + "*"
		}
		var lines []string
		if len(sec.Fields) > 0 {
			fields := make([]*goslack.TextBlockObject, 0, len(sec.Fields))
			for _, f := range sec.Fields {
				fields = append(fields, field(esc(f.Key), esc(f.Value)))
			}
			content = append(content, fieldSections(heading, fields)...)
		} else if heading != "" {
			lines = append(lines, heading)
		}
		for _, l := range sec.Lines {
			lines = append(lines, esc(l))
		}
		if sec.List != nil {
			lines = append(lines, listLines(sec.List)...)
		}
		content = append(content, lineSections(lines)...)
	}
	actions, notes := actionBlocks(r.Actions)
	return finish(content, actions, notes, ""), cut(title, maxFallbackText, cutNote)
}

// maxFixText bounds each previous fix in an incident message, so a few
// long notes cannot crowd out the incident itself; the runbook page shows
// them whole.
const maxFixText = 500

// fixLines shows previous fixes under their heading, one bullet each:
// the note (escaped, cut), then who wrote it, on which incident and when.
// Authors are shown as text, not mentions, so that every new incident of
// the cause does not ping them.
func fixLines(fixes []bot.Fix) []string {
	lines := []string{"*" + bot.FixedBeforeHeading + ":*"}
	for _, f := range fixes {
		l := "• " + cut(esc(f.Text), maxFixText, "")
		var meta []string
		if f.Author != "" {
			meta = append(meta, esc(f.Author))
		}
		if f.Incident != "" {
			meta = append(meta, "on "+esc(f.Incident))
		}
		if !f.Time.IsZero() {
			meta = append(meta, f.Time.UTC().Format("2006-01-02"))
		}
		if len(meta) > 0 {
			l += " _(" + strings.Join(meta, ", ") + ")_"
		}
		lines = append(lines, l)
	}
	return lines
}

// IncidentBlocks renders an incident as the Block Kit message that stands
// for it in a channel, with the fallback text for notifications: a header
// (severity or RESOLVED, and the headline), the rules' summary, what and
// why side by side (where, status, cause, who set it off, the host's state
// in that period, the platform event), what vmtriage proposes and whether
// it needs approval, runbook and ticket links (or why Jira refused the
// ticket), how earlier incidents of its cause were fixed, the affected VMs (collapsed
// when many), where it stands (escalation level and who is notified, who
// acknowledged, notes), the buttons, and a footer with the incident's ID
// and version.
func IncidentBlocks(v bot.IncidentView) ([]goslack.Block, string) {
	label := bot.SeverityLabel(v.Severity)
	if v.Status == model.StatusResolved {
		label = "RESOLVED"
	}
	header := toneEmoji(v.Tone) + " " + esc(label) + " · " + esc(v.Headline)
	content := []goslack.Block{goslack.NewHeaderBlock(plain(cut(header, maxHeaderText, ""), true))}
	if v.Summary != "" {
		content = append(content, sectionText(esc(v.Summary)))
	}

	status := esc(string(v.Status))
	if v.Severity != "" {
		status = esc(string(v.Severity)) + ", " + status
	}
	fields := []*goslack.TextBlockObject{
		field("Where", esc(v.Where)),
		field("Status", status),
	}
	if !v.StartedAt.IsZero() {
		fields = append(fields, field("Started", slackTime(v.StartedAt)))
	}
	if !v.ResolvedAt.IsZero() {
		r := slackTime(v.ResolvedAt)
		if v.Lasted > 0 {
			r += " (lasted " + bot.FormatDuration(v.Lasted.Truncate(time.Minute)) + ")"
		}
		fields = append(fields, field("Resolved", r))
	}
	fields = append(fields, field("Cause", esc(v.Cause)))
	if v.Trigger != "" {
		fields = append(fields, field("Set off by", esc(v.Trigger)))
	}
	if v.HostState != "" {
		h := "Host in that period"
		if v.Incident.Host != "" {
			h = esc(v.Incident.Host) + " in that period"
		}
		fields = append(fields, field(h, esc(v.HostState)))
	}
	if v.Event != "" {
		fields = append(fields, field("Platform event", esc(v.Event)))
	}
	content = append(content, fieldSections("", fields)...)

	var todo []string
	if v.Proposal != "" {
		t := "*Proposed:* " + esc(v.Proposal)
		if v.ApprovalText != "" {
			a := esc(v.ApprovalText)
			if v.NeedsApproval {
				a = "*" + a + "*"
			}
			t += " — " + a
		}
		todo = append(todo, t)
	}
	for _, rb := range v.Runbooks {
		todo = append(todo, "*Runbook:* "+link(rb, ""))
	}
	if v.Ticket != "" {
		t := esc(v.Ticket)
		if v.TicketURL != "" {
			t = link(v.TicketURL, v.Ticket)
		}
		todo = append(todo, "*Ticket:* "+t)
	}
	if p := v.TicketProblem(); p != "" {
		todo = append(todo, ":warning: "+esc(p)+" — fix what it names, then `/triage ticket "+esc(v.ID)+"`")
	}
	content = append(content, lineSections(todo)...)
	if len(v.PreviousFixes) > 0 {
		content = append(content, lineSections(fixLines(v.PreviousFixes))...)
	}

	if items, more := v.VMs.Shown(); len(items) > 1 || (len(items) == 1 && !strings.HasPrefix(v.Where, items[0])) {
		names := make([]string, len(items))
		for i, it := range items {
			names[i] = esc(it)
		}
		s := fmt.Sprintf("*Affected VMs (%d):* %s", len(v.VMs.Items), strings.Join(names, ", "))
		if more > 0 {
			s += ", _" + bot.MoreText(more) + "_"
		}
		content = append(content, sectionText(s))
	}

	content = append(content, servicesSection(v.Incident.Services)...)

	var stands []string
	if v.Level > 0 {
		s := "Escalation level " + strconv.Itoa(v.Level)
		if v.Incident.Open() {
			if m := Mentions(v.Incident.Targets); m != "" {
				s += " · notifying " + m
			}
		}
		stands = append(stands, s)
	}
	switch {
	case v.AckedBy != "":
		s := "Acknowledged by " + userRef(v.AckedBy)
		if !v.AckedAt.IsZero() {
			s += " at " + slackTime(v.AckedAt)
		}
		stands = append(stands, s)
	case v.Incident.Open():
		stands = append(stands, "Not acknowledged yet")
	}
	for _, n := range v.Notes {
		stands = append(stands, esc(n))
	}
	if len(stands) > 0 {
		content = append(content, contextBlock(strings.Join(stands, " · ")))
	}

	actions, notes := actionBlocks(v.Actions)
	footer := esc(v.ID)
	if v.Incident.Rule != "" {
		footer += " · rule " + esc(v.Incident.Rule)
	}
	footer += " · version " + strconv.FormatInt(v.Version, 10)
	return finish(content, actions, notes, footer), cut(esc(v.Text()), maxFallbackText, cutNote)
}

// maxServicesShown is how many services hit an incident message lists.
const maxServicesShown = 5

// servicesSection lists the services an incident hits, worst first, with
// their owning teams: "payments-api: 3 of 6 instances down (team-pay)".
func servicesSection(services []model.ServiceImpact) []goslack.Block {
	if len(services) == 0 {
		return nil
	}
	shown := services[:min(len(services), maxServicesShown)]
	lines := make([]string, 0, len(shown)+2)
	lines = append(lines, fmt.Sprintf("*Services hit (%d):*", len(services)))
	for _, s := range shown {
		l := "• " + esc(s.String())
		if s.Team != "" {
			l += " (" + esc(s.Team) + ")"
		}
		lines = append(lines, l)
	}
	if more := len(services) - len(shown); more > 0 {
		lines = append(lines, "_"+bot.MoreText(more)+"_")
	}
	return []goslack.Block{sectionText(strings.Join(lines, "\n"))}
}
