package slack

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares the JSON of a message (fallback text and blocks) with
// testdata/name.golden, or rewrites the file with -update.
func golden(t *testing.T, name string, blocks []goslack.Block, text string) {
	t.Helper()
	got, err := json.MarshalIndent(struct {
		Text   string          `json:"text"`
		Blocks []goslack.Block `json:"blocks"`
	}{text, blocks}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (run go test -update if the change is intended)\n--- got ---\n%s--- want ---\n%s", path, got, want)
	}
}

func with(inc model.Incident, change func(*model.Incident)) model.Incident {
	inc.VMs = append([]string(nil), inc.VMs...)
	change(&inc)
	return inc
}

// The same incidents the console's golden tests render.
func incidentCases() []struct {
	name string
	inc  model.Incident
} {
	resolved := func(i *model.Incident) {
		i.Status, i.ResolvedAt = model.StatusResolved, i.StartedAt.Add(23*time.Minute+40*time.Second)
	}
	return []struct {
		name string
		inc  model.Incident
	}{
		{"host-hardware-fault", bottest.HostFault},
		{"guest-crash", bottest.GuestCrash},
		{"storage-unreachable", bottest.StorageLoss},
		{"service-down", bottest.ServiceDown},
		{"planned-maintenance", bottest.Maintenance},
		{"user-restart", bottest.UserRestart},
		{"heartbeat-loss", bottest.HeartbeatLoss},
		{"resolved", with(bottest.Resolved, func(i *model.Incident) {})},
		{"escalated-and-resolved", with(bottest.HostFault, func(i *model.Incident) { i.Level = 2; resolved(i) })},
		{"acked", with(bottest.HostFault, func(i *model.Incident) { i.AckedBy = "U0ALICE"; i.AckedAt = bottest.Now })},
		{"escalated", with(bottest.StorageLoss, func(i *model.Incident) {
			i.Level = 3
			i.Targets = []string{"usergroup:S0STORAGE", "user:U0BOB", "channel:C0OPS", "channel:#ops-leads", "jira-priority:Highest"}
		})},
		{"approved", with(bottest.HostFault, func(i *model.Incident) { i.Approval = model.ApprovalApproved })},
		{"silenced", with(bottest.GuestCrash, func(i *model.Incident) { i.Silenced = true })},
		{"reopened", with(bottest.GuestCrash, func(i *model.Incident) { i.Reopened = 2 })},
		{"updated", with(bottest.HostFault, func(i *model.Incident) { i.VMs = append(i.VMs, "vm-0052") })},
	}
}

func TestIncidentBlocksGolden(t *testing.T) {
	for _, tt := range incidentCases() {
		t.Run(tt.name, func(t *testing.T) {
			blocks, text := IncidentBlocks(bot.NewIncidentView(tt.inc))
			checkLimits(t, blocks, text)
			golden(t, "incident-"+tt.name, blocks, text)
		})
	}
}

func newRouter(t *testing.T, perms bot.Permissions) *bot.Router {
	t.Helper()
	c := clock.NewFake(bottest.Now)
	incs := bottest.NewIncidents(c, bottest.AllIncidents()...)
	r, err := bot.NewRouter(bot.Options{Incidents: incs, Fleet: bottest.FixtureFleet(), Actions: incs, Permissions: perms, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReplyBlocksGolden(t *testing.T) {
	tests := []struct {
		name  string
		perms bot.Permissions
		text  string
	}{
		{name: "help", text: "/triage help"},
		{name: "help-read-only", perms: bot.Permissions{Ack: []string{"U1"}}, text: "/triage help"},
		{name: "unknown-verb", text: "/triage reboot everything"},
		{name: "status-vm", text: "/triage status vm-0042"},
		{name: "status-vm-healthy-host", text: "/triage status vm-0100"},
		{name: "status-host", text: "/triage status host-007"},
		{name: "status-site", text: "/triage status pod-a"},
		{name: "status-unknown", text: "/triage status vm-9999"},
		{name: "incidents", text: "/triage incidents"},
		{name: "incidents-site", text: "/triage incidents pod-b"},
		{name: "ack", text: "/triage ack inc-42"},
		{name: "ack-refused", perms: bot.Permissions{Ack: []string{"U1"}}, text: "/triage ack inc-42"},
		{name: "silence", text: `/triage silence host-007 2h "disk swap <!channel>"`},
		{name: "bad-duration", text: "/triage silence host-007 soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(t, tt.perms)
			reply := r.HandleText(context.Background(), tt.text, bot.Command{User: "U0OPS", Channel: "C0OPS", Origin: bot.OriginTyped})
			blocks, text := ReplyBlocks(reply)
			checkLimits(t, blocks, text)
			golden(t, "reply-"+tt.name, blocks, text)
		})
	}
	t.Run("error", func(t *testing.T) {
		blocks, text := ReplyBlocks(bot.ErrorReply(fmt.Errorf("redis: connection refused"), "ref-1a2b"))
		checkLimits(t, blocks, text)
		golden(t, "reply-error", blocks, text)
	})
	t.Run("incident", func(t *testing.T) {
		blocks, text := ReplyBlocks(bot.NewIncidentView(bottest.HostFault).Reply())
		checkLimits(t, blocks, text)
		golden(t, "reply-incident-host-hardware-fault", blocks, text)
	})
}

// checkLimits fails t for anything Slack would refuse: too many blocks,
// texts, fields or buttons over their limits (in characters), duplicate
// action IDs, a command button without a command.
func checkLimits(t testing.TB, blocks []goslack.Block, text string) {
	t.Helper()
	runes := utf8.RuneCountInString
	if len(blocks) > maxBlocks {
		t.Errorf("%d blocks, Slack allows %d", len(blocks), maxBlocks)
	}
	if runes(text) > maxFallbackText {
		t.Errorf("fallback text has %d characters", runes(text))
	}
	ids := map[string]bool{}
	for i, b := range blocks {
		switch b := b.(type) {
		case *goslack.HeaderBlock:
			if n := runes(b.Text.Text); n > maxHeaderText || b.Text.Type != goslack.PlainTextType {
				t.Errorf("block %d: header of %d characters (%s)", i, n, b.Text.Type)
			}
		case *goslack.SectionBlock:
			if b.Text == nil && len(b.Fields) == 0 {
				t.Errorf("block %d: empty section", i)
			}
			if b.Text != nil && runes(b.Text.Text) > maxSectionText {
				t.Errorf("block %d: section text of %d characters", i, runes(b.Text.Text))
			}
			if len(b.Fields) > maxFields {
				t.Errorf("block %d: %d fields", i, len(b.Fields))
			}
			for _, f := range b.Fields {
				if runes(f.Text) > maxFieldText {
					t.Errorf("block %d: field of %d characters", i, runes(f.Text))
				}
			}
		case *goslack.ContextBlock:
			if n := len(b.ContextElements.Elements); n == 0 || n > maxContextElements {
				t.Errorf("block %d: context with %d elements", i, n)
			}
		case *goslack.ActionBlock:
			if n := len(b.Elements.ElementSet); n == 0 || n > maxActionElements {
				t.Errorf("block %d: actions with %d elements", i, n)
			}
			for _, e := range b.Elements.ElementSet {
				btn, ok := e.(*goslack.ButtonBlockElement)
				if !ok {
					t.Errorf("block %d: %T in actions", i, e)
					continue
				}
				if ids[btn.ActionID] {
					t.Errorf("action_id %q used twice", btn.ActionID)
				}
				ids[btn.ActionID] = true
				if runes(btn.Text.Text) > maxButtonText || runes(btn.Value) > maxButtonValue {
					t.Errorf("button %q: text %d, value %d characters", btn.ActionID, runes(btn.Text.Text), runes(btn.Value))
				}
				switch {
				case strings.HasPrefix(btn.ActionID, CommandActionPrefix):
					if btn.Value == "" || btn.URL != "" {
						t.Errorf("command button %q: value %q, url %q", btn.ActionID, btn.Value, btn.URL)
					}
				case strings.HasPrefix(btn.ActionID, linkActionPrefix):
					if btn.URL == "" || btn.Value != "" {
						t.Errorf("link button %q: value %q, url %q", btn.ActionID, btn.Value, btn.URL)
					}
				default:
					t.Errorf("button with action_id %q", btn.ActionID)
				}
				if c := btn.Confirm; c != nil && (runes(c.Title.Text) > maxConfirmTitle || runes(c.Text.Text) > maxConfirmText ||
					runes(c.Confirm.Text) > maxConfirmButton || runes(c.Deny.Text) > maxConfirmButton) {
					t.Errorf("button %q: confirmation over its limits", btn.ActionID)
				}
			}
		case *goslack.DividerBlock:
		default:
			t.Errorf("block %d: unexpected %T", i, b)
		}
	}
}

// allText is every text of a rendered message that Slack parses as mrkdwn
// or shows as text, for escaping checks.
func allText(t testing.TB, blocks []goslack.Block, text string) string {
	t.Helper()
	b, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(any, string)
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(x, k)
			}
		case []any:
			for _, x := range v {
				walk(x, key)
			}
		case string:
			if key == "text" {
				out = append(out, v)
			}
		}
	}
	walk(v, "")
	return text + "\n" + strings.Join(out, "\n")
}

// Every user-controlled string is escaped, in whatever part of the message
// it lands: no mention, link or channel ping can be smuggled in.
func TestBlocksEscapeEverything(t *testing.T) {
	evil := "<!channel> <@U0EVIL> <https://evil.example|click> &amp;"
	inc := model.Incident{ID: "inc-" + evil, Rule: evil, Status: model.StatusFiring, Severity: model.SeverityHigh,
		Cause: evil, Kind: model.KindHost, Subject: evil, Host: evil, Site: evil, VMs: []string{evil, evil + "2", evil + "3"},
		Summary: evil, HostState: evil, Event: evil, AckedBy: evil, Ticket: evil, TicketURL: "javascript:alert(1)",
		Runbooks: []string{evil, "https://kb.example/a|<!here>"}, Action: model.ActionMigrateHost, Approval: model.ApprovalPending,
		Level: 1, Targets: []string{"user:" + evil, "channel:" + evil, "usergroup:" + evil}, Version: 1}
	reply := bot.Reply{Title: evil, Sections: []bot.Section{{Heading: evil, Fields: []bot.Field{{Key: evil, Value: evil}},
		Lines: []string{evil}, List: &bot.List{Items: []string{evil}}}},
		Actions: []bot.Action{{Label: evil, Command: "ack inc-1", Confirm: evil}, {Label: evil, URL: evil}}}

	for name, msg := range map[string]func() ([]goslack.Block, string){
		"incident": func() ([]goslack.Block, string) { return IncidentBlocks(bot.NewIncidentView(inc)) },
		"reply":    func() ([]goslack.Block, string) { return ReplyBlocks(reply) },
	} {
		t.Run(name, func(t *testing.T) {
			blocks, text := msg()
			checkLimits(t, blocks, text)
			all := allText(t, blocks, text)
			for _, bad := range []string{"<!channel>", "<@U0EVIL>", "<https://evil", "<!here>", "&amp;amp;amp;", "javascript:alert(1)>"} {
				if strings.Contains(all, bad) {
					t.Errorf("%q reached Slack unescaped:\n%s", bad, all)
				}
			}
			if !strings.Contains(all, "&lt;!channel&gt;") {
				t.Errorf("the escaped text is missing, so the check proves nothing:\n%s", all)
			}
		})
	}
}

// Limits are counted in characters: text of multi-byte characters is cut
// at the character limit, not the byte limit, and a cut says so.
func TestBlocksRespectLimitsInCharacters(t *testing.T) {
	long := strings.Repeat("é", 5000) // 10,000 bytes
	manyVMs := make([]string, 500)
	for i := range manyVMs {
		manyVMs[i] = fmt.Sprintf("vm-%05d", i)
	}
	inc := with(bottest.HostFault, func(i *model.Incident) {
		i.Summary = long
		i.Subject = strings.Repeat("ü", 300)
		i.VMs = manyVMs
		i.Runbooks = nil
		for j := range 100 {
			i.Runbooks = append(i.Runbooks, fmt.Sprintf("https://kb.example/%d/%s", j, strings.Repeat("x", 80)))
		}
	})
	blocks, text := IncidentBlocks(bot.NewIncidentView(inc))
	checkLimits(t, blocks, text)
	summary := blocks[1].(*goslack.SectionBlock).Text.Text
	if n := utf8.RuneCountInString(summary); n != maxSectionText {
		t.Errorf("summary cut to %d characters, want exactly %d (the limit)", n, maxSectionText)
	}
	if !strings.HasSuffix(summary, "…"+cutNote) {
		t.Errorf("a cut summary does not say so: …%s", summary[len(summary)-40:])
	}
	if h := blocks[0].(*goslack.HeaderBlock).Text.Text; utf8.RuneCountInString(h) != maxHeaderText {
		t.Errorf("header has %d characters, want it cut to %d", utf8.RuneCountInString(h), maxHeaderText)
	}
	all := allText(t, blocks, text)
	if !strings.Contains(all, "and 492 more") {
		t.Errorf("500 VMs are not collapsed to 8 and “and 492 more”")
	}

	// A reply of many sections and fields stays within 50 blocks, keeps its
	// buttons, and says what it left out.
	var r bot.Reply
	r.Title = "big"
	for i := range 80 {
		var fields []bot.Field
		for j := range 13 {
			fields = append(fields, bot.Field{Key: fmt.Sprintf("k%d", j), Value: long[:3000]})
		}
		r.Sections = append(r.Sections, bot.Section{Heading: fmt.Sprint("section ", i), Fields: fields, Lines: []string{long}})
	}
	r.Actions = []bot.Action{{Label: strings.Repeat("ß", 100), Command: "ack inc-1"}, {Label: "too long", Command: strings.Repeat("x", 2001)}}
	blocks, text = ReplyBlocks(r)
	checkLimits(t, blocks, text)
	if len(blocks) != maxBlocks {
		t.Errorf("%d blocks, want the %d Slack allows", len(blocks), maxBlocks)
	}
	last, ok := blocks[len(blocks)-2].(*goslack.ActionBlock)
	if !ok || len(last.Elements.ElementSet) != 1 {
		t.Fatalf("the buttons are not kept before the closing note: %T", blocks[len(blocks)-2])
	}
	if got := last.Elements.ElementSet[0].(*goslack.ButtonBlockElement).Value; got != "ack inc-1" {
		t.Errorf("button value %q", got)
	}
	all = allText(t, blocks, text)
	for _, want := range []string{"more blocks left out", "left out: its command is longer than Slack allows"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the message", want)
		}
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		note string
		want string
	}{
		{name: "fits", in: "héllo", max: 5, want: "héllo"},
		{name: "characters not bytes", in: "ééééé", max: 4, want: "ééé…"},
		{name: "with note", in: "abcdefghij", max: 8, note: " (cut)", want: "a… (cut)"},
		{name: "never half a link", in: "see <https://kb.example/x|runbook>", max: 15, want: "see …"},
		{name: "never half an entity", in: "a &amp; b", max: 5, want: "a …"},
		{name: "whole entity kept", in: "a &lt; b c d", max: 9, want: "a &lt; b…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cut(tt.in, tt.max, tt.note)
			if got != tt.want {
				t.Errorf("cut(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if utf8.RuneCountInString(got) > tt.max {
				t.Errorf("%q is longer than %d characters", got, tt.max)
			}
		})
	}
}

func TestIncidentButtons(t *testing.T) {
	blocks, _ := IncidentBlocks(bot.NewIncidentView(bottest.HostFault))
	var buttons []*goslack.ButtonBlockElement
	for _, b := range blocks {
		if a, ok := b.(*goslack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				buttons = append(buttons, e.(*goslack.ButtonBlockElement))
			}
		}
	}
	type btn struct{ id, value, url, style string }
	var got []btn
	for _, b := range buttons {
		got = append(got, btn{b.ActionID, b.Value, b.URL, string(b.Style)})
	}
	want := []btn{
		{"vmtriage:cmd:1", "ack inc-42", "", "primary"},
		{"vmtriage:cmd:2", `silence host-007 1h "from inc-42"`, "", ""},
		{"vmtriage:cmd:3", "approve inc-42", "", "danger"},
		{"vmtriage:cmd:4", "deny inc-42", "", ""},
		{"vmtriage:link:5", "", "https://kb.example/host-hardware-fault", ""},
		{"vmtriage:link:6", "", "https://jira.example/browse/OPS-123", ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("buttons\n got %v\nwant %v", got, want)
	}
	// Every command button's value parses as the command it stands for.
	for _, b := range buttons {
		if b.Value == "" {
			continue
		}
		if _, err := bot.ParseCommand(b.Value); err != nil {
			t.Errorf("button %s: value %q does not parse: %v", b.ActionID, b.Value, err)
		}
	}
	if c := buttons[2].Confirm; c == nil || c.Style != goslack.StyleDanger || !strings.Contains(c.Text.Text, "migrate every VM off host-007") {
		t.Errorf("Approve has no danger confirmation naming the remedy: %+v", c)
	}
}

func TestMention(t *testing.T) {
	tests := []struct {
		target, want string
	}{
		{"usergroup:S0PAY", "<!subteam^S0PAY>"},
		{"user:U0123ABC", "<@U0123ABC>"},
		{"channel:C0OPS", "<#C0OPS>"},
		{"channel:#ops", "#ops"},
		{"user:alice", "@alice"},
		{"usergroup:<!channel>", "@&lt;!channel&gt;"},
		{"jira-priority:Highest", ""},
		{"user:", ""},
		{"nonsense", ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			if got := Mention(tt.target); got != tt.want {
				t.Errorf("Mention(%q) = %q, want %q", tt.target, got, tt.want)
			}
		})
	}
	if got := Mentions([]string{"user:U1X", "user:U1X", "jira-priority:High", "usergroup:S0A"}); got != "<@U1X> <!subteam^S0A>" {
		t.Errorf("Mentions = %q", got)
	}
}

func TestHead(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"ééééé", 2, "éé"},
		{"éé", 2, "éé"},
		{"", 0, ""},
	}
	for _, tt := range tests {
		if got := head(tt.in, tt.n); got != tt.want {
			t.Errorf("head(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// The thread follow-ups for each change the console's golden tests cover.
func TestFollowUpGolden(t *testing.T) {
	resolved := func(i *model.Incident) {
		i.Status, i.ResolvedAt = model.StatusResolved, i.StartedAt.Add(23*time.Minute+40*time.Second)
	}
	tests := []struct {
		name    string
		inc     model.Incident
		changes []bot.Change
	}{
		{"resolved", bottest.Resolved, []bot.Change{bot.ChangeResolved}},
		{"escalated-and-resolved", with(bottest.HostFault, func(i *model.Incident) { i.Level = 2; resolved(i) }),
			[]bot.Change{bot.ChangeEscalated, bot.ChangeResolved}},
		{"acked", with(bottest.HostFault, func(i *model.Incident) { i.AckedBy = "U0ALICE" }), []bot.Change{bot.ChangeAcked}},
		{"acked-by-name", with(bottest.HostFault, func(i *model.Incident) { i.AckedBy = "alice <!here>" }), []bot.Change{bot.ChangeAcked}},
		{"escalated", with(bottest.StorageLoss, func(i *model.Incident) {
			i.Level = 3
			i.Targets = []string{"usergroup:S0STORAGE", "user:U0BOB", "channel:#ops-leads", "jira-priority:Highest"}
		}), []bot.Change{bot.ChangeEscalated}},
		{"approved", with(bottest.HostFault, func(i *model.Incident) { i.Approval = model.ApprovalApproved }), []bot.Change{bot.ChangeApproval}},
		{"denied", with(bottest.HostFault, func(i *model.Incident) { i.Approval = model.ApprovalDenied }), []bot.Change{bot.ChangeApproval}},
		{"ticket", bottest.HostFault, []bot.Change{bot.ChangeTicket}},
		{"silenced", with(bottest.GuestCrash, func(i *model.Incident) { i.Silenced = true }), []bot.Change{bot.ChangeSilenced}},
		{"muted-by-host", bottest.HeartbeatLoss, []bot.Change{bot.ChangeSilenced}},
		{"unsilenced", bottest.GuestCrash, []bot.Change{bot.ChangeUnsilenced}},
		{"reopened", with(bottest.GuestCrash, func(i *model.Incident) { i.Reopened = 2 }), []bot.Change{bot.ChangeReopened}},
		{"updated", with(bottest.HostFault, func(i *model.Incident) { i.VMs = append(i.VMs, "vm-0052") }), []bot.Change{bot.ChangeUpdated}},
		{"ticket-refused", with(bottest.GuestCrash, func(i *model.Incident) {
			i.Ticket, i.TicketURL = "", ""
			i.TicketError = "jira: create issue: HTTP 400: priority: Priority name 'Urgent <!channel>' is not valid (check VMTRIAGE_JIRA_PRIORITIES)"
		}), []bot.Change{bot.ChangeTicketError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, broadcast := followUpText(bot.NewIncidentView(tt.inc), tt.changes)
			got := fmt.Sprintf("broadcast: %v\n%s\n", broadcast, text)
			path := filepath.Join("testdata", "followup-"+tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the golden file\n--- got ---\n%s--- want ---\n%s", path, got, want)
			}
		})
	}
}

// previousFixes are resolution notes of earlier incidents, one of them
// with text that must not become mrkdwn, a mention or a link.
func previousFixes() []bot.Fix {
	return []bot.Fix{
		{Incident: "inc-31", Text: "Replaced DIMM B2 after `ipmitool sel list` showed ECC on it; evacuated first.", Author: "U0ALICE",
			Time: time.Date(2026, 11, 20, 3, 12, 0, 0, time.UTC)},
		{Incident: "inc-12", Text: "*bold* <!channel> <https://evil.example|click> & reseated the NIC", Author: "bob <@U0ADMIN>",
			Time: time.Date(2026, 11, 2, 14, 0, 0, 0, time.UTC)},
	}
}

// TestIncidentBlocksFixesAndTicketError covers what the ticket worker and
// the knowledge base add to an incident message: why Jira refused its
// ticket, and how earlier incidents of its cause were fixed.
func TestIncidentBlocksFixesAndTicketError(t *testing.T) {
	tests := []struct {
		name  string
		inc   model.Incident
		fixes []bot.Fix
	}{
		{name: "fixed-before", inc: bottest.HostFault, fixes: previousFixes()},
		{name: "ticket-refused", inc: with(bottest.GuestCrash, func(i *model.Incident) {
			i.Ticket, i.TicketURL = "", ""
			i.TicketError = "jira: create issue: HTTP 400: priority: Priority name 'Urgent <!channel>' is not valid (check VMTRIAGE_JIRA_PRIORITIES)"
		})},
		{name: "ticket-update-refused", inc: with(bottest.HostFault, func(i *model.Incident) {
			i.TicketError = "jira: comment on OPS-123: HTTP 403: You do not have the permission to comment on this issue"
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := bot.NewIncidentView(tt.inc)
			v.PreviousFixes = tt.fixes
			blocks, text := IncidentBlocks(v)
			checkLimits(t, blocks, text)
			golden(t, "incident-"+tt.name, blocks, text)
			js, err := json.Marshal(blocks)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{"<!channel>", "<https://evil", "<@U0ADMIN>"} {
				if strings.Contains(string(js), bad) {
					t.Errorf("outside text %q reached the blocks unescaped", bad)
				}
			}
		})
	}
	t.Run("long fixes stay within limits", func(t *testing.T) {
		v := bot.NewIncidentView(bottest.HostFault)
		for i := range 3 {
			v.PreviousFixes = append(v.PreviousFixes, bot.Fix{Incident: fmt.Sprintf("inc-%d", i), Text: strings.Repeat("é<", 1000)})
		}
		blocks, text := IncidentBlocks(v)
		checkLimits(t, blocks, text)
		js, _ := json.Marshal(blocks)
		if n := strings.Count(string(js), "…"); n < 3 {
			t.Errorf("%d cut marks, want each of the 3 long fixes cut", n)
		}
	})
}
