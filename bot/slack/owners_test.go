package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/model"
)

// TestPosterOwnerChannels: an incident goes to its usual channels and to
// the channels of the teams owning the services it hits — one message per
// channel, updated in place at later versions, never posted twice; a team
// channel that appears at a later version gets its first post then.
func TestPosterOwnerChannels(t *testing.T) {
	ctx := context.Background()
	e := newPosterEnv(t)
	owners := map[int64][]string{
		1: {"C0PAY", "C0DEFAULT", "C0PAY"}, // duplicates and the default collapse
		2: {"C0PAY", "C0LEDGER", "not a channel"},
	}
	p := e.poster(t, func(o *PosterOptions) {
		o.OwnerChannels = func(inc *model.Incident) []string { return owners[inc.Version] }
	})
	inc := bottest.UserRestart // no site or severity channel: the default
	v1 := version(inc, 1, nil)
	if err := p.Post(ctx, note(v1)); err != nil {
		t.Fatal(err)
	}
	if err := p.Post(ctx, note(v1)); err != nil { // redelivered
		t.Fatal(err)
	}
	v2 := version(inc, 2, func(i *model.Incident) { i.Summary = "more VMs" })
	if err := p.Post(ctx, note(v2)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range e.slack.Calls() {
		kind := c.Method
		if c.ThreadTS != "" {
			kind = "reply"
		}
		got = append(got, fmt.Sprintf("%s %s v%s", kind, c.Channel, shownVersion(c)))
	}
	want := []string{
		"post C0DEFAULT v1", "post C0PAY v1",
		"update C0DEFAULT v2", "update C0PAY v2", "post C0LEDGER v2",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("calls:\n got %q\nwant %q", got, want)
	}
}

// TestPosterOwnerGroups: an escalation level naming the user group
// "owners" mentions the owning teams' user groups; without the hook the
// placeholder is dropped rather than shown.
func TestPosterOwnerGroups(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups func(*model.Incident) []string
		want   string
	}{
		{"expanded", func(*model.Incident) []string { return []string{"S0PAY", "S0WEB", "S0PAY"} },
			"<!subteam^S0PAY> <!subteam^S0WEB> <@U0BOB>"},
		{"no hook", nil, "<@U0BOB>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newPosterEnv(t)
			p := e.poster(t, func(o *PosterOptions) { o.OwnerGroups = tc.groups })
			inc := version(bottest.GuestCrash, 1, nil)
			if err := p.Post(ctx, note(inc)); err != nil {
				t.Fatal(err)
			}
			esc := version(inc, 2, func(i *model.Incident) {
				i.AckedBy, i.Level, i.Targets = "", 2, []string{"usergroup:owners", "user:U0BOB"}
			})
			if err := p.Post(ctx, note(esc, bot.ChangeEscalated)); err != nil {
				t.Fatal(err)
			}
			var reply string
			for _, c := range e.slack.Calls() {
				if c.ThreadTS != "" {
					reply = c.Text
				}
			}
			if !strings.HasSuffix(reply, ". "+tc.want) || strings.Contains(reply, "owners") {
				t.Errorf("escalation reply %q; want it to end in %q", reply, tc.want)
			}
			if esc.Targets[0] != "usergroup:owners" {
				t.Error("the poster changed the caller's incident")
			}
		})
	}
}

// TestIncidentBlocksServices: the message lists the services hit, worst
// first, with their teams, escaped, at most five and a count of the rest.
func TestIncidentBlocksServices(t *testing.T) {
	inc := with(bottest.HostFault, func(i *model.Incident) {
		i.Services = []model.ServiceImpact{
			{Service: "ledger", Team: "team-ledger", Instances: 1, Down: 1, Hit: 1, LastInSites: []string{"pod-a"}},
			{Service: "payments-api", Team: "team-pay", Instances: 6, Down: 3, Hit: 3},
			{Service: "web<!channel>", Instances: 4, Down: 1, Hit: 1},
			{Service: "s4", Instances: 9, Down: 1, Hit: 1}, {Service: "s5", Instances: 9, Down: 1, Hit: 1},
			{Service: "s6", Instances: 9, Down: 1, Hit: 1}, {Service: "s7", Instances: 9, Down: 1, Hit: 1},
		}
	})
	blocks, text := IncidentBlocks(bot.NewIncidentView(inc))
	checkLimits(t, blocks, text)
	golden(t, "incident-services", blocks, text)
	js, _ := json.Marshal(blocks)
	if strings.Contains(string(js), "<!channel>") {
		t.Error("a service name reached the blocks unescaped")
	}
}
