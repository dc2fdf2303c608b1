package slack

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/model"
)

// ourMarkup is the only mrkdwn markup the renderer adds around outside
// text in these messages: Slack dates.
var ourMarkup = regexp.MustCompile(`<!date\^\d+\^\{date_short\} \{time_secs\}\|[^<>]*>`)

// Whatever text comes from outside, the rendered message stays within
// Slack's limits, is valid JSON, and holds no markup but the renderer's own
// (no mention, link or channel ping made of outside text).
func FuzzBlocks(f *testing.F) {
	for _, s := range []string{"vm-0042", "<!channel>", "<@U123|x>", "a&b<c>d", strings.Repeat("é", 3100),
		"<https://evil|ok>", "&lt;", "<", "x\u202ey", ":red_circle: *bold* _it_ `code`"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = (n%40+40)%40 + 1
		vms := make([]string, n)
		for i := range vms {
			vms[i] = s + string(rune('a'+i%26))
		}
		inc := model.Incident{ID: s, Rule: s, Status: model.StatusFiring, Severity: model.Severity(s), Cause: s,
			Kind: model.KindHost, Subject: s, Host: s, Site: s, VMs: vms, Summary: s, HostState: s, Event: s,
			Ticket: s, Action: model.ActionMigrateHost, Approval: model.ApprovalPending, Level: n, Version: int64(n),
			StartedAt: bottest.Now, AckedBy: "user " + s, Targets: []string{"channel:#" + s}}
		var sections []bot.Section
		for range n {
			sections = append(sections, bot.Section{Heading: s, Fields: []bot.Field{{Key: s, Value: s}, {Key: s, Value: s}},
				Lines: []string{s, s}, List: &bot.List{Items: vms}})
		}
		reply := bot.Reply{Title: s, Sections: sections, Actions: []bot.Action{{Label: s, Command: s, Confirm: s}, {Label: s, URL: s}}}

		check := func(name string, blocks []goslack.Block, text string) {
			checkLimits(t, blocks, text)
			if _, err := json.Marshal(blocks); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			rest := ourMarkup.ReplaceAllString(allText(t, blocks, text), "")
			if strings.ContainsAny(rest, "<>") {
				t.Errorf("%s: markup made of outside text %q:\n%s", name, s, rest)
			}
		}
		b, text := IncidentBlocks(bot.NewIncidentView(inc))
		check("incident", b, text)
		inc.TicketError = s
		v := bot.NewIncidentView(inc)
		for i := range n % 5 {
			v.PreviousFixes = append(v.PreviousFixes, bot.Fix{Incident: s, Text: strings.Repeat(s, i+1), Author: s, Time: bottest.Now})
		}
		b, text = IncidentBlocks(v)
		check("incident with ticket error and fixes", b, text)
		check("ticket error follow-up", lineSections(strings.Split(func() string {
			t, _ := followUpText(v, []bot.Change{bot.ChangeTicketError})
			return t
		}(), "\n")), "")
		b, text = ReplyBlocks(reply)
		check("reply", b, text)
	})
}
