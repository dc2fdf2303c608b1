package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
)

// fakeGroups is a UserGroupMembers over a map; Err makes calls fail.
type fakeGroups struct {
	mu      sync.Mutex
	members map[string][]string
	calls   []string
	Err     error
}

func (g *fakeGroups) GetUserGroupMembersContext(_ context.Context, group string, _ ...goslack.GetUserGroupMembersOption) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, group)
	if g.Err != nil {
		return nil, g.Err
	}
	if m, ok := g.members[group]; ok {
		return m, nil
	}
	return nil, goslack.SlackErrorResponse{Err: "no_such_subteam"}
}

func (g *fakeGroups) set(group string, users ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members[group] = users
}

func (g *fakeGroups) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.Err = err
}

func (g *fakeGroups) callCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

func TestMembership(t *testing.T) {
	clk := clock.NewFake(bottest.Now)
	groups := &fakeGroups{members: map[string][]string{"S0ONCALL": {"U0ALICE", "U0BOB"}}}
	log, rec := bottest.Logger()
	m, err := NewMembership(MembershipOptions{API: groups, TTL: 5 * time.Minute, Clock: clk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The steps run in order against one cache.
	steps := []struct {
		name      string
		before    func()
		user      string
		group     string
		want      bool
		wantErr   string
		wantCalls int
	}{
		{name: "member", user: "U0ALICE", group: "S0ONCALL", want: true, wantCalls: 1},
		{name: "cached for the next user", user: "U0BOB", group: "S0ONCALL", want: true, wantCalls: 1},
		{name: "not a member", user: "U0EVE", group: "S0ONCALL", want: false, wantCalls: 1},
		{name: "a user ID is no group and costs no call", user: "U0ALICE", group: "U0ALICE", want: false, wantCalls: 1},
		{name: "a channel ID is no group", user: "U0ALICE", group: "C0OPS", want: false, wantCalls: 1},
		{name: "empty user", user: "", group: "S0ONCALL", want: false, wantCalls: 1},
		{name: "membership change unseen within the TTL", before: func() {
			groups.set("S0ONCALL", "U0BOB", "U0EVE")
			clk.Advance(5*time.Minute - time.Second)
		}, user: "U0EVE", group: "S0ONCALL", want: false, wantCalls: 1},
		{name: "seen once the TTL passes", before: func() { clk.Advance(time.Second) },
			user: "U0EVE", group: "S0ONCALL", want: true, wantCalls: 2},
		{name: "removed member", user: "U0ALICE", group: "S0ONCALL", want: false, wantCalls: 2},
		{name: "unknown group is an error", user: "U0ALICE", group: "S0GONE", wantErr: "no_such_subteam", wantCalls: 3},
		{name: "Slack down: the members last seen are used", before: func() {
			groups.fail(errors.New("slack unreachable"))
			clk.Advance(time.Hour)
		}, user: "U0EVE", group: "S0ONCALL", want: true, wantCalls: 4},
		{name: "Slack down and nothing cached", user: "U0EVE", group: "S0NEW", wantErr: "slack unreachable", wantCalls: 5},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		got, err := m.IsMember(ctx, st.user, st.group)
		switch {
		case st.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), st.wantErr) || !strings.Contains(err.Error(), st.group) {
				t.Errorf("%s: err = %v, want one naming %s and %q", st.name, err, st.group, st.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", st.name, err)
		case got != st.want:
			t.Errorf("%s: IsMember(%q, %q) = %v, want %v", st.name, st.user, st.group, got, st.want)
		}
		if n := groups.callCount(); n != st.wantCalls {
			t.Errorf("%s: %d calls to usergroups.users.list, want %d", st.name, n, st.wantCalls)
		}
	}
	if !strings.Contains(rec.String(), "using the members last seen") {
		t.Errorf("a failed refresh was not logged:\n%s", rec)
	}
}

func TestIsUserGroupID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"S0PAY", true}, {"S012AB3CD", true}, {"S", false}, {"U0ALICE", false},
		{"s0pay", false}, {"S0-PAY", false}, {"", false}, {"@oncall", false},
	}
	for _, tt := range tests {
		if got := IsUserGroupID(tt.id); got != tt.want {
			t.Errorf("IsUserGroupID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

// TestMembershipAllowsGroupMembersThroughSlack lets the router decide an
// ack against an allow-list that names a user group, with slack-go's
// client calling usergroups.users.list on slacktest.
func TestMembershipAllowsGroupMembersThroughSlack(t *testing.T) {
	const botToken = "xoxb-1111-2222-membershiptoken"
	var (
		mu       sync.Mutex
		requests []string
	)
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/usergroups.users.list", func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			mu.Lock()
			requests = append(requests, r.Form.Get("usergroup"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			if r.Form.Get("usergroup") != "S0ONCALL" {
				fmt.Fprint(w, `{"ok":false,"error":"no_such_subteam"}`)
				return
			}
			fmt.Fprint(w, `{"ok":true,"users":["U0ALICE","U0BOB"]}`)
		})
	})
	srv.Start()
	defer srv.Stop()
	api := goslack.New(botToken, goslack.OptionAPIURL(srv.GetAPIURL()))
	log, rec := bottest.Logger()
	m, err := NewMembership(MembershipOptions{API: api, Clock: clock.NewFake(bottest.Now), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(bottest.Now)
	incs := bottest.NewIncidents(clk, bottest.AllIncidents()...)
	aud := &bottest.Auditor{}
	router, err := bot.NewRouter(bot.Options{
		Incidents: incs, Fleet: bottest.FixtureFleet(), Actions: incs, Clock: clk, Auditor: aud,
		Permissions: bot.Permissions{Ack: []string{"U0CAROL", "S0ONCALL"}}, Membership: m, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user    string
		refused bool
	}{
		{user: "U0ALICE"},              // in the group
		{user: "U0CAROL"},              // named herself
		{user: "U0EVE", refused: true}, // neither
		{user: "U0BOB"},                // in the group, from the cache
		{user: "U0MALLORY", refused: true},
	}
	for _, tt := range tests {
		reply := router.HandleText(context.Background(), "ack inc-43", bot.Command{User: tt.user, Channel: "C0OPS", Origin: bot.OriginButton})
		if refused := reply.Tone == bot.ToneRefused; refused != tt.refused {
			t.Errorf("%s: reply %q, refused %v, want %v", tt.user, reply.Title, refused, tt.refused)
		}
	}
	if len(aud.Refusals()) != 2 {
		t.Errorf("refusals audited: %+v, want 2", aud.Refusals())
	}
	mu.Lock()
	defer mu.Unlock()
	// U0CAROL is allowed by name before any group is looked up; the
	// others share one cached lookup.
	if len(requests) != 1 || requests[0] != "S0ONCALL" {
		t.Errorf("usergroups.users.list calls %v, want one for S0ONCALL", requests)
	}
	bottest.AssertNoSecrets(t, []string{botToken}, map[string]string{"log": rec.String()})
}
