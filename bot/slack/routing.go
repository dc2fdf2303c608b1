package slack

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/vmtriage/vmtriage/internal/model"
)

// routes decides which channels an incident is posted to.
type routes struct {
	def        string
	sites      map[string]string
	severities map[model.Severity]string
	// owners, if set, names more channels for an incident: those of the
	// teams owning the services it hits.
	owners func(inc *model.Incident) []string
}

// newRoutes checks the channel settings: the default channel is required,
// channel IDs hold no spaces, and severity keys are the four severities.
func newRoutes(def string, sites, severities map[string]string) (routes, error) {
	r := routes{def: strings.TrimSpace(def), sites: map[string]string{}, severities: map[model.Severity]string{}}
	if r.def == "" {
		return r, fmt.Errorf("slack routing: DefaultChannel is required (a channel ID such as C0123456789)")
	}
	if err := checkChannel("DefaultChannel", r.def); err != nil {
		return r, err
	}
	for _, site := range sortedKeys(sites) {
		ch := strings.TrimSpace(sites[site])
		if strings.TrimSpace(site) == "" {
			return r, fmt.Errorf("slack routing: SiteChannels has an empty site name")
		}
		if err := checkChannel(fmt.Sprintf("SiteChannels[%q]", site), ch); err != nil {
			return r, err
		}
		r.sites[site] = ch
	}
	for _, sev := range sortedKeys(severities) {
		s := model.Severity(strings.ToLower(strings.TrimSpace(sev)))
		if !s.Valid() {
			return r, fmt.Errorf("slack routing: SeverityChannels has %q, which is not a severity (critical, high, medium, low)", sev)
		}
		ch := strings.TrimSpace(severities[sev])
		if err := checkChannel(fmt.Sprintf("SeverityChannels[%q]", sev), ch); err != nil {
			return r, err
		}
		r.severities[s] = ch
	}
	return r, nil
}

func checkChannel(name, ch string) error {
	switch {
	case ch == "":
		return fmt.Errorf("slack routing: %s is empty", name)
	case strings.ContainsFunc(ch, func(r rune) bool { return r <= ' ' || r == '<' || r == '>' || r == '|' }):
		return fmt.Errorf("slack routing: %s %q is not a channel ID or name (no spaces or <>| allowed)", name, ch)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// channels returns where inc is posted: its site's channel and its
// severity's channel (each once, site first), or the default channel when
// neither is configured; then the owning teams' channels, each once. Each
// channel gets its own message, kept up to date on its own, so a team
// channel that appears at a later version gets its first post then.
func (r routes) channels(inc *model.Incident) []string {
	var out []string
	if ch, ok := r.sites[inc.Site]; ok && inc.Site != "" {
		out = append(out, ch)
	}
	if ch, ok := r.severities[inc.Severity]; ok && !slices.Contains(out, ch) {
		out = append(out, ch)
	}
	if len(out) == 0 {
		out = append(out, r.def)
	}
	if r.owners != nil {
		for _, ch := range r.owners(inc) {
			ch = strings.TrimSpace(ch)
			if checkChannel("owner channel", ch) == nil && !slices.Contains(out, ch) {
				out = append(out, ch)
			}
		}
	}
	return out
}

var slackID = regexp.MustCompile(`^[A-Z0-9]{2,}$`)

// Mention turns one escalation target ("kind:value", as model.Incident
// carries them) into the mrkdwn that notifies it: usergroup:S0PAY becomes
// <!subteam^S0PAY>, user:U123 becomes <@U123>, channel:C123 becomes
// <#C123>. A value that is not a Slack ID (a "#ops" channel name) is shown
// as escaped text, which cannot ping anyone; targets that are not for chat
// (jira-priority) give "".
func Mention(target string) string {
	kind, value, ok := strings.Cut(target, ":")
	value = strings.TrimSpace(value)
	if !ok || value == "" {
		return ""
	}
	id := slackID.MatchString(value)
	switch kind {
	case "usergroup":
		if id {
			return "<!subteam^" + value + ">"
		}
		return "@" + esc(strings.TrimPrefix(value, "@"))
	case "user":
		if id {
			return "<@" + value + ">"
		}
		return "@" + esc(strings.TrimPrefix(value, "@"))
	case "channel":
		if id {
			return "<#" + value + ">"
		}
		return "#" + esc(strings.TrimPrefix(value, "#"))
	}
	return ""
}

// Mentions joins the mentions of targets with spaces, skipping those that
// are not for chat and duplicates.
func Mentions(targets []string) string {
	var out []string
	for _, t := range targets {
		if m := Mention(t); m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return strings.Join(out, " ")
}
