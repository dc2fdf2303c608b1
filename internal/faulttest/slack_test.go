//go:build faults

package faulttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// slackOutage is how long the fake Slack refuses every call (the issue
// asks for a minute; half of it keeps `make faults` short and still spans
// several retries of every post).
const slackOutage = 30 * time.Second

// TestSlackOutage runs two replicas while Slack answers every call with
// 429 (Retry-After: 1) or 500 for 30 s, and 200 VMs crash at the start of
// the outage. Once Slack is back, every incident must be in Slack exactly
// once, without anyone's help.
func TestSlackOutage(t *testing.T) {
	started := time.Now()
	rs := startRedis(t)
	rdb := rs.client(t)
	st := store.New(store.Options{Client: rdb})
	slack := newFakeSlack(t)
	env := map[string]string{
		"VMTRIAGE_REDIS_URL":            rs.url(),
		"VMTRIAGE_SLACK_BOT_TOKEN":      "xoxb-faulttest",
		"VMTRIAGE_SLACK_API_URL":        slack.url(),
		"VMTRIAGE_SLACK_CHANNEL":        slackChannel,
		"VMTRIAGE_SLACK_SIGNING_SECRET": "faulttest-signing-secret",
	}
	reps := []*replica{startReplica(t, "a", env), startReplica(t, "b", env)}

	slack.fail(slackOutage)
	outageEnds := time.Now().Add(slackOutage)
	gen := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	for i, r := range reps {
		obs := make([]model.Observation, 100)
		for j := range obs {
			obs[j] = model.Observation{Source: "faulttest", Kind: model.KindVM, ID: fmt.Sprintf("vm-%d%02d", i, j),
				Host: fmt.Sprintf("host-%02d", j), Site: "pod-a", State: model.StateUnavailable,
				Event: "VirtualMachineCrashed", TimeGenerated: gen}
		}
		if err := r.postObservations(obs); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	var incs []model.Incident
	eventually(t, 30*time.Second, "200 incidents", func() error {
		var err error
		incs, err = st.Incidents(ctx, model.IncidentFilter{Limit: 1000})
		if err == nil && len(incs) != 200 {
			err = fmt.Errorf("%d incidents", len(incs))
		}
		return err
	})
	if roots, _, _ := slack.posts(); len(roots) != 0 || time.Now().After(outageEnds) {
		t.Fatalf("%d messages posted during the outage (or the outage ended before the incidents were raised)", len(roots))
	}

	eventually(t, slackOutage+3*time.Minute, "every incident posted after the outage", func() error {
		if err := streamIdle(ctx, rdb, "{"+store.DefaultPrefix+"}:incidents", "bot"); err != nil {
			return err
		}
		roots, _, _ := slack.posts()
		if len(roots) < len(incs) {
			return fmt.Errorf("%d of %d incidents posted", len(roots), len(incs))
		}
		return nil
	})
	caughtUp := time.Since(outageEnds)
	roots, replies, updates := slack.posts()
	perIncident := map[string]int{}
	for _, p := range roots {
		if len(p.incidents) != 1 {
			t.Errorf("root message %s names incidents %v, want exactly one", p.ts, p.incidents)
			continue
		}
		perIncident[p.incidents[0]]++
	}
	for _, inc := range incs {
		if n := perIncident[inc.ID]; n != 1 {
			t.Errorf("incident %s has %d root messages in Slack, want 1", inc.ID, n)
		}
	}
	if len(roots) != len(incs) {
		t.Errorf("%d root messages for %d incidents", len(roots), len(incs))
	}
	if slack.refusedCalls() == 0 {
		t.Error("the fake Slack refused no call: the outage tested nothing")
	}
	t.Logf("Slack refused %d calls in %s; every one of %d incidents posted once %s after it came back "+
		"(%d thread replies, %d updates); total %s", slack.refusedCalls(), slackOutage, len(incs),
		caughtUp.Round(time.Millisecond), replies, updates, time.Since(started).Round(time.Millisecond))
}
