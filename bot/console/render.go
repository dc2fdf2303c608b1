package console

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/model"
)

// ANSI styles, used only when colour is on.
const (
	reset   = "\x1b[0m"
	bold    = "\x1b[1m"
	dim     = "\x1b[2m"
	red     = "\x1b[31m"
	green   = "\x1b[32m"
	yellow  = "\x1b[33m"
	cyan    = "\x1b[36m"
	boldRed = "\x1b[1;31m"
)

type painter bool

// paint wraps s in an ANSI style when colour is on. s must already be clean.
func (p painter) paint(style, s string) string {
	if !p || style == "" || s == "" {
		return s
	}
	return style + s + reset
}

// clean makes a string from outside safe to print on a terminal: control
// characters (which could move the cursor, retitle the window or fake a
// line) and bidirectional overrides are shown escaped; newlines and tabs
// become spaces so a message keeps its shape.
func clean(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			b.WriteByte(' ')
		case r == utf8.RuneError:
			b.WriteRune('�')
		case unsafeRune(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	switch {
	case r == utf8.RuneError:
		return true
	case unicode.IsControl(r):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f:
		return true
	}
	return false
}

// pad right-pads s (already clean) to width characters.
func pad(s string, width int) string {
	if n := utf8.RuneCountInString(s); n < width {
		return s + strings.Repeat(" ", width-n)
	}
	return s
}

func toneStyle(t bot.Tone) string {
	switch t {
	case bot.ToneOK:
		return green
	case bot.ToneWarning:
		return yellow
	case bot.ToneError, bot.ToneRefused:
		return red
	}
	return ""
}

func toneMark(t bot.Tone) string {
	switch t {
	case bot.ToneOK:
		return "✓ "
	case bot.ToneWarning:
		return "! "
	case bot.ToneError, bot.ToneRefused:
		return "✗ "
	}
	return ""
}

// RenderReply renders a reply for a terminal: a headline, then each section
// indented with its fields aligned, long lists collapsed, and buttons shown
// as the commands they would run. Every string is cleaned of control
// characters; colour is used only when color is true.
func RenderReply(r bot.Reply, color bool) string {
	p := painter(color)
	var b strings.Builder
	b.WriteString(p.paint(bold+toneStyle(r.Tone), toneMark(r.Tone)+clean(r.Title)))
	b.WriteByte('\n')
	for i, sec := range r.Sections {
		if i > 0 && (sec.Heading != "" || len(sec.Fields) > 0) {
			b.WriteByte('\n')
		}
		if sec.Heading != "" {
			b.WriteString("  " + p.paint(bold, clean(sec.Heading)) + "\n")
		}
		writeFields(&b, p, "  ", sec.Fields)
		for _, l := range sec.Lines {
			b.WriteString("  " + clean(l) + "\n")
		}
		if sec.List != nil {
			items, more := sec.List.Shown()
			for _, it := range items {
				b.WriteString("  - " + clean(it) + "\n")
			}
			if more > 0 {
				b.WriteString("  " + p.paint(dim, bot.MoreText(more)) + "\n")
			}
		}
	}
	if len(r.Actions) > 0 {
		b.WriteByte('\n')
		for _, a := range r.Actions {
			label := p.paint(dim, "["+clean(a.Label)+"]")
			switch {
			case a.Command != "":
				b.WriteString("  " + label + " " + bot.Prefix + " " + clean(a.Command) + "\n")
			case a.URL != "":
				b.WriteString("  " + label + " " + clean(a.URL) + "\n")
			}
		}
	}
	return b.String()
}

func writeFields(b *strings.Builder, p painter, indent string, fields []bot.Field) {
	width := 0
	for _, f := range fields {
		width = max(width, utf8.RuneCountInString(clean(f.Key)))
	}
	for _, f := range fields {
		b.WriteString(indent + p.paint(dim, pad(clean(f.Key), width)) + "  " + clean(f.Value) + "\n")
	}
}

// labelWidth fits the longest notification label, "[UNSILENCED]".
const labelWidth = 12

func severityStyle(s model.Severity) string {
	switch s {
	case model.SeverityCritical:
		return boldRed
	case model.SeverityHigh:
		return red
	case model.SeverityMedium:
		return yellow
	}
	return cyan
}

// RenderNotification renders an incident change for people reading a
// terminal, at time at. A new incident gets its headline and aligned lines
// for why, what to do, the VMs and links; later changes get one line each
// (acknowledged, escalated, resolved, ...).
//
//	10:02:05 [CRITICAL]   host-007 (pod-a): host hardware fault — 12 VMs down  inc-42
//	                      why  set off by the platform; host-007 was failed in that period
//	                      do   migrate every VM off host-007 (needs approval)
func RenderNotification(n bot.Notification, at time.Time, color bool) string {
	p := painter(color)
	v := n.View
	stamp := at.UTC().Format("15:04:05") + " "
	indent := strings.Repeat(" ", len(stamp)+labelWidth+1)
	id := p.paint(dim, clean(v.ID))
	line := func(label, style, text string) string {
		return p.paint(dim, stamp) + p.paint(style, pad(label, labelWidth)) + " " + text + "  " + id + "\n"
	}
	headline := clean(v.Headline)
	var b strings.Builder
	for _, c := range n.Changes {
		switch c {
		case bot.ChangeOpened:
			b.WriteString(line("["+bot.SeverityLabel(v.Severity)+"]", severityStyle(v.Severity), p.paint(bold, headline)))
			writeDetails(&b, p, indent, v)
		case bot.ChangeResolved:
			text := headline + " — resolved"
			if v.Lasted > 0 {
				text += " after " + bot.FormatDuration(v.Lasted.Truncate(time.Minute))
			}
			b.WriteString(line("[RESOLVED]", green, text))
		case bot.ChangeEscalated:
			text := fmt.Sprintf("level %d: %s", v.Level, headline)
			if v.AckedBy == "" {
				text += " — nobody has acknowledged it"
			}
			b.WriteString(line("[ESCALATED]", yellow, text))
		case bot.ChangeAcked:
			b.WriteString(line("[ACKED]", green, "acknowledged by "+clean(v.AckedBy)+": "+headline))
		case bot.ChangeApproval:
			text := clean(v.Proposal)
			if v.ApprovalText != "" {
				text += ": " + clean(v.ApprovalText)
			}
			if text == "" {
				text = "approval: " + clean(string(v.Incident.Approval))
			}
			b.WriteString(line("[APPROVAL]", cyan, text))
		case bot.ChangeTicket:
			text := "ticket " + clean(v.Ticket)
			if v.TicketURL != "" {
				text += " " + clean(v.TicketURL)
			}
			b.WriteString(line("[TICKET]", "", text))
		case bot.ChangeTicketError:
			b.WriteString(line("[TICKET]", red, clean(v.TicketProblem())+" — fix it, then "+bot.Prefix+" "+clean(bot.CommandText("ticket", v.ID))))
		case bot.ChangeSilenced:
			why := "silenced"
			if v.Incident.InhibitedBy != "" {
				why = "muted by " + clean(v.Incident.InhibitedBy)
			}
			b.WriteString(line("[SILENCED]", dim, headline+" — "+why))
		case bot.ChangeUnsilenced:
			b.WriteString(line("[UNSILENCED]", "", headline+" — notifications resume"))
		case bot.ChangeReopened:
			b.WriteString(line("[REOPENED]", severityStyle(v.Severity), headline+fmt.Sprintf(" — recurred %d×", v.Incident.Reopened)))
		default:
			b.WriteString(line("[UPDATE]", "", headline))
		}
	}
	return b.String()
}

// maxServicesShown is how many services hit a new incident lists, as the
// Slack message does.
const maxServicesShown = 5

// serviceFields lists the services an incident hits, worst first, with
// their owning teams: "payments-api: 3 of 6 instances down (team-pay)",
// then how many more there are.
func serviceFields(services []model.ServiceImpact) []bot.Field {
	shown := services[:min(len(services), maxServicesShown)]
	fields := make([]bot.Field, 0, len(shown)+1)
	for _, s := range shown {
		text := s.String()
		if s.Team != "" {
			text += " (" + s.Team + ")"
		}
		fields = append(fields, bot.Field{Key: "service", Value: text})
	}
	if more := len(services) - len(shown); more > 0 {
		fields = append(fields, bot.Field{Key: "service", Value: bot.MoreText(more)})
	}
	return fields
}

func writeDetails(b *strings.Builder, p painter, indent string, v bot.IncidentView) {
	var fields []bot.Field
	if v.Summary != "" {
		fields = append(fields, bot.Field{Key: "what", Value: v.Summary})
	}
	if why := v.Why(); why != "" {
		fields = append(fields, bot.Field{Key: "why", Value: why})
	}
	if todo := v.Todo(); todo != "" {
		fields = append(fields, bot.Field{Key: "do", Value: todo})
	}
	if items, more := v.VMs.Shown(); len(items) > 1 || (len(items) == 1 && !strings.HasPrefix(v.Where, items[0])) {
		s := strings.Join(items, ", ")
		if more > 0 {
			s += ", " + bot.MoreText(more)
		}
		fields = append(fields, bot.Field{Key: "VMs", Value: s})
	}
	fields = append(fields, serviceFields(v.Incident.Services)...)
	var see []string
	see = append(see, v.Runbooks...)
	if v.Ticket != "" {
		see = append(see, v.Ticket)
	}
	if len(see) > 0 {
		fields = append(fields, bot.Field{Key: "see", Value: strings.Join(see, " · ")})
	}
	if p := v.TicketProblem(); p != "" {
		fields = append(fields, bot.Field{Key: "jira", Value: p})
	}
	for _, f := range v.PreviousFixes {
		fields = append(fields, bot.Field{Key: "fixed before", Value: f.Line()})
	}
	for _, note := range v.Notes {
		fields = append(fields, bot.Field{Key: "note", Value: note})
	}
	if v.AckedBy == "" && v.Incident.Open() {
		fields = append(fields, bot.Field{Key: "ack", Value: bot.Prefix + " " + bot.CommandText("ack", v.ID)})
	}
	writeFields(b, p, indent, fields)
}
