package tickets

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

//go:embed templates/summary.tmpl
var defaultSummary string

//go:embed templates/description.tmpl
var defaultDescription string

// TicketData is what the summary and description templates see. The
// templates are text/template with these functions: wiki (escape text for
// Jira wiki markup), wikijoin (escape and join a list), upper, date
// (2006-01-02 15:04:05), dur (a rough duration), trigger, action,
// hostState, runbook (a wiki link), first (the first n items), sub, fix
// (a previous fix on one line: the note, who, on which incident, when).
type TicketData struct {
	Incident model.Incident
	// Title is the incident's sentence (its rule's summary), or one made
	// of cause, subject and VM count when the rule gave none.
	Title string
	// Period is the host's collection period in which the incident
	// started, when a HostReader knows it.
	Period *model.HostPeriod
	// Timeline lists what happened so far, oldest first.
	Timeline []Moment
	// Outage is the outage's length in words: "27m" once resolved,
	// "10m so far" while open.
	Outage string
	// PreviousFixes are how earlier incidents of the same cause were
	// fixed, newest first, when a FixReader knows any.
	PreviousFixes []Fix
	// Labels are the ticket's labels, space separated.
	Labels string
	// Now is when the ticket is written.
	Now time.Time
}

// Fix is a resolution note of an earlier incident: what fixed it, who
// noted it, on which incident and when.
type Fix = store.Note

// maxFixText bounds each previous fix in a description, in characters.
const maxFixText = 500

// fixLine writes a previous fix on one line of wiki markup: the note
// (escaped, whitespace collapsed, cut), then who noted it, on which
// incident and when.
func fixLine(f Fix) string {
	s := escapeWiki(truncate(strings.Join(strings.Fields(f.Text), " "), maxFixText))
	var meta []string
	if f.Author != "" {
		meta = append(meta, escapeWiki(f.Author))
	}
	if f.Incident != "" {
		meta = append(meta, "on "+escapeWiki(f.Incident))
	}
	if !f.Time.IsZero() {
		meta = append(meta, f.Time.UTC().Format("2006-01-02"))
	}
	if len(meta) > 0 {
		s += " — _" + strings.Join(meta, ", ") + "_"
	}
	return s
}

// Moment is one line of an incident's timeline.
type Moment struct {
	At   time.Time
	What string
}

// renderer holds the parsed templates; it is safe for concurrent use.
type renderer struct {
	summary, description *template.Template
	maxDescription       int
}

func newRenderer(summarySrc, descriptionSrc string, maxDescription int) (*renderer, error) {
	if summarySrc == "" {
		summarySrc = defaultSummary
	}
	if descriptionSrc == "" {
		descriptionSrc = defaultDescription
	}
	s, err := template.New("summary").Funcs(funcs).Option("missingkey=error").Parse(summarySrc)
	if err != nil {
		return nil, fmt.Errorf("tickets: summary template: %w", err)
	}
	d, err := template.New("description").Funcs(funcs).Option("missingkey=error").Parse(descriptionSrc)
	if err != nil {
		return nil, fmt.Errorf("tickets: description template: %w", err)
	}
	return &renderer{summary: s, description: d, maxDescription: maxDescription}, nil
}

// Summary renders the one-line summary: whitespace collapsed (Jira
// refuses newlines) and cut to 255 characters.
func (r *renderer) Summary(d *TicketData) (string, error) {
	var b bytes.Buffer
	if err := r.summary.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render summary of %s: %w", d.Incident.ID, err)
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	if s == "" {
		s = d.Incident.ID
	}
	return truncate(s, maxSummary), nil
}

// Description renders the description, cut to the configured number of
// characters with a note saying so.
func (r *renderer) Description(d *TicketData) (string, error) {
	var b bytes.Buffer
	if err := r.description.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render description of %s: %w", d.Incident.ID, err)
	}
	return trimText(strings.TrimSpace(b.String()), r.maxDescription,
		"see vmtriage for the full incident "+escapeWiki(d.Incident.ID)), nil
}

// truncate cuts s to max characters, ending with "…" when it cut.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// trimText cuts wiki text to max characters at a line break, adding a note
// that says how much was left out.
func trimText(s string, max int, where string) string {
	n := utf8.RuneCountInString(s)
	if n <= max {
		return s
	}
	r := []rune(s)
	for budget := max - 160; budget > 0; budget -= 40 {
		keep := string(r[:budget])
		if i := strings.LastIndexByte(keep, '\n'); i > len(keep)/2 {
			keep = keep[:i]
		}
		note := fmt.Sprintf("\n\n_(Trimmed: %d of %d characters left out; %s.)_", n-utf8.RuneCountInString(keep), n, where)
		if out := keep + note; utf8.RuneCountInString(out) <= max {
			return out
		}
	}
	return truncate(s, max)
}

// escapeWiki makes text literal in Jira wiki markup: markup characters get
// a backslash and line breaks become spaces, so an incident's text can
// neither format nor link nor break a table.
func escapeWiki(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch r {
		case '\\', '{', '}', '[', ']', '|', '*', '_', '!', '^', '~', '+', '#':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// runbookLink is a wiki link to a runbook, named by the last path
// segment. Characters that would end the link are percent-encoded.
func runbookLink(u string) string {
	name := u
	if p, err := url.Parse(u); err == nil && p.Path != "" && p.Path != "/" {
		name = path.Base(strings.TrimRight(p.Path, "/"))
	}
	safe := strings.NewReplacer("|", "%7C", "]", "%5D", "[", "%5B", " ", "%20", "\n", "", "\r", "").Replace(u)
	if !strings.HasPrefix(safe, "http://") && !strings.HasPrefix(safe, "https://") {
		return escapeWiki(u)
	}
	return "[" + escapeWiki(name) + "|" + safe + "]"
}

// roughDuration says d in at most two units: "45s", "27m", "2h 5m", "3d 4h".
func roughDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm %ds", m, s)
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, h)
}

const dateLayout = "2006-01-02 15:04:05"

func formatDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(dateLayout)
}

var funcs = template.FuncMap{
	"wiki": func(v any) string { return escapeWiki(fmt.Sprint(v)) },
	"wikijoin": func(ss []string) string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = escapeWiki(s)
		}
		return strings.Join(out, ", ")
	},
	"upper":   func(v any) string { return strings.ToUpper(fmt.Sprint(v)) },
	"date":    formatDate,
	"dur":     roughDuration,
	"runbook": runbookLink,
	"first": func(ss []string, n int) []string {
		if len(ss) > n {
			return ss[:n]
		}
		return ss
	},
	"sub": func(a, b int) int { return a - b },
	"fix": fixLine,
	"trigger": func(t model.Trigger) string {
		switch t {
		case model.TriggerPlatform:
			return "the platform"
		case model.TriggerUser:
			return "the VM's user"
		case model.TriggerVM:
			return "the guest (inside the VM)"
		}
		return "unknown"
	},
	"action":    actionText,
	"hostState": hostStateText,
}

func actionText(i model.Incident) string {
	a := escapeWiki(string(i.Action))
	if a == "" {
		a = "none"
	}
	switch i.Approval {
	case model.ApprovalPending:
		return a + " (awaiting approval in chat)"
	case model.ApprovalApproved, model.ApprovalDenied, model.ApprovalExpired:
		return a + " (" + string(i.Approval) + ")"
	}
	return a
}

func hostStateText(d *TicketData) string {
	i := d.Incident
	if i.Host == "" {
		return "This incident has no host."
	}
	host := escapeWiki(i.Host)
	if p := d.Period; p != nil {
		s := fmt.Sprintf("%s was *%s* in the collection period starting %s UTC", host, escapeWiki(string(p.State)), formatDate(p.Start))
		if len(p.Reasons) > 0 {
			rs := make([]string, len(p.Reasons))
			for k, r := range p.Reasons {
				rs[k] = escapeWiki(r)
			}
			s += ": " + strings.Join(rs, ", ")
		}
		return s + "."
	}
	if i.HostState != "" {
		return fmt.Sprintf("%s was *%s* in the collection period that decided the classification.", host, escapeWiki(i.HostState))
	}
	return fmt.Sprintf("No hardware facts of %s were known for that period.", host)
}

// title is the incident's sentence, or one made from its fields.
func title(i *model.Incident) string {
	if s := strings.TrimSpace(i.Summary); s != "" {
		return s
	}
	cause := i.Cause
	if cause == "" {
		cause = i.Rule
	}
	s := cause + " on " + i.Subject
	if i.Kind != model.KindHost && i.Host != "" && i.Host != i.Subject && !strings.HasPrefix(i.Subject, i.Host+"/") {
		s += " (host " + i.Host + ")"
	}
	switch n := len(i.VMs); {
	case i.Kind == model.KindVM && n <= 1:
	case n == 1:
		s += ": 1 VM affected"
	case n > 1:
		s += fmt.Sprintf(": %d VMs affected", n)
	}
	return s
}

// timeline lists the incident's moments known from its fields.
func timeline(i *model.Incident) []Moment {
	var out []Moment
	add := func(t time.Time, what string) {
		if !t.IsZero() {
			out = append(out, Moment{At: t, What: what})
		}
	}
	add(i.StartedAt, "the condition started ("+i.Rule+")")
	add(i.FiringAt, "firing: the on-call team was told")
	if i.AckedBy != "" {
		add(i.AckedAt, "acknowledged by "+i.AckedBy)
	}
	add(i.ResolvedAt, "resolved")
	slices.SortStableFunc(out, func(a, b Moment) int { return a.At.Compare(b.At) })
	return out
}

// outage is the outage's length in words.
func outage(i *model.Incident, now time.Time) string {
	if i.StartedAt.IsZero() {
		return ""
	}
	if !i.ResolvedAt.IsZero() {
		return roughDuration(i.ResolvedAt.Sub(i.StartedAt))
	}
	if now.Before(i.StartedAt) {
		return ""
	}
	return roughDuration(now.Sub(i.StartedAt)) + " so far"
}

// ticketData prepares what the templates see.
func ticketData(i model.Incident, period *model.HostPeriod, labels []string, now time.Time) *TicketData {
	return &TicketData{
		Incident: i, Title: title(&i), Period: period, Timeline: timeline(&i),
		Outage: outage(&i, now), Labels: strings.Join(labels, " "), Now: now,
	}
}
