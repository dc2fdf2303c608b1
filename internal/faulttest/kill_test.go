//go:build faults

package faulttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

const (
	killVMs      = 10_000 // VMs in the simulated fleet
	killRounds   = 5      // observations per VM: 50,000 in all
	killBatch    = 1_000  // observations per POST
	crashRound   = 2      // the round in which every 20th VM crashes
	crashEvery   = 20
	killAfter    = 25 // POSTs acknowledged before the kill: mid round 2
	slackChannel = "C0FAULT"
)

// killObservation is VM vm's observation in round r: running with the
// round as a marker attribute, except that every 20th VM reports Azure's
// VirtualMachineCrashed (state unavailable) in round 2 and runs again in
// round 3. Each round is 10 s after the previous one at the source.
func killObservation(base time.Time, vm, r int) model.Observation {
	o := model.Observation{
		Source: "faulttest", Kind: model.KindVM, ID: fmt.Sprintf("vm-%05d", vm),
		Host: fmt.Sprintf("host-%03d", vm%200), Site: "pod-a", State: model.StateRunning,
		Attrs:         map[string]any{"round": r},
		TimeGenerated: killGenerated(base, vm, r),
	}
	if vm%crashEvery == 0 && r == crashRound {
		o.State, o.Event = model.StateUnavailable, "VirtualMachineCrashed"
	}
	return o
}

func killGenerated(base time.Time, vm, r int) time.Time {
	return base.Add(time.Duration(r)*10*time.Second + time.Duration(vm%1000)*time.Millisecond)
}

// TestSIGKILLReplicaMidStream runs two `vmtriage serve` replicas on one
// Redis, with Slack pointed at a fake that records every message, streams
// 50,000 observations (10,000 VMs × 5 rounds, in POSTs of 1,000 JSON lines
// alternating between the replicas, as a load balancer would), and
// SIGKILLs replica a while its ingest consumers hold unacknowledged entries,
// after 25 of the 50 POSTs. The client then sends everything to b (and
// resends a POST that a's death interrupted). Afterwards:
//
//   - the observation stream is drained (nothing pending, nothing unread);
//   - every VM's record is its last observation (round 4), and its Since
//     shows the state changes of rounds 2 and 3 applied in order, or, for
//     a crash the killed replica held, overtaken by them (counted);
//   - no VM has two incidents, and no incident is for a VM that never
//     crashed (crashes the killed replica held can be lost: counted and
//     reported as a known limit);
//   - the fake Slack received one root message per incident, and the
//     notifier's group is drained; the one incident the killed replica may
//     have been posting can be posted twice (reported as a known limit).
func TestSIGKILLReplicaMidStream(t *testing.T) {
	started := time.Now()
	rs := startRedis(t)
	rdb := rs.client(t)
	st := store.New(store.Options{Client: rdb})
	slack := newFakeSlack(t)
	env := map[string]string{
		"VMTRIAGE_REDIS_URL":       rs.url(),
		"VMTRIAGE_SLACK_BOT_TOKEN": "xoxb-faulttest",
		"VMTRIAGE_SLACK_API_URL":   slack.url(),
		"VMTRIAGE_SLACK_CHANNEL":   slackChannel,
		// Required with a bot token; nothing here sends commands.
		"VMTRIAGE_SLACK_SIGNING_SECRET": "faulttest-signing-secret",
		// Entries of a dead consumer are taken over after 2 s, not 30 s,
		// to keep the test short; the mechanism is the same.
		"VMTRIAGE_RECLAIM_IDLE": "2s",
		"VMTRIAGE_LOG_LEVEL":    "info",
	}
	a := startReplica(t, "a", env)
	b := startReplica(t, "b", env)

	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	all := make([]model.Observation, 0, killVMs*killRounds)
	for r := range killRounds {
		for vm := range killVMs {
			all = append(all, killObservation(base, vm, r))
		}
	}
	ctx := context.Background()
	var killedWithPending int64
	resent := 0
	for i := 0; i*killBatch < len(all); i++ {
		batch := all[i*killBatch : (i+1)*killBatch]
		if i == killAfter {
			killedWithPending = killWhileBusy(t, ctx, rdb, a)
			t.Logf("SIGKILLed replica a after %d POSTs, %s into the run, with %d observation entries pending in its consumers",
				i, time.Since(started).Round(time.Millisecond), killedWithPending)
		}
		target := b
		if i%2 == 0 && i < killAfter {
			target = a
		}
		if err := target.postObservations(batch); err != nil {
			if target != a {
				t.Fatalf("POST %d: %v", i, err)
			}
			// a died with this POST in flight: the client was not told
			// it was accepted, so it sends it again to b.
			resent++
			if err := b.postObservations(batch); err != nil {
				t.Fatalf("resend POST %d to b: %v", i, err)
			}
		}
	}
	streamed := time.Since(started)

	eventually(t, 2*time.Minute, "observation stream drained", func() error {
		pending, lag, err := st.Backlog(ctx)
		if err == nil && (pending != 0 || lag != 0) {
			err = fmt.Errorf("%d pending, %d unread", pending, lag)
		}
		return err
	})
	drained := time.Since(started)

	// Every VM holds its last observation. Since shows which state changes
	// were applied: the VMs that ran throughout must have run since round
	// 0; a crashed VM went unavailable in round 2 and ran again in round
	// 3, so its Since is round 3 if round 2 was applied in order, or round
	// 0 if its round-2 entry was still held by the killed replica when b
	// applied rounds 3 and 4: the reclaimed entry is then older than the
	// stored state and changes nothing (last writer by time_generated
	// wins). That second case is a known limit, counted and reported.
	var wrong []string
	overtaken := map[string]bool{}
	for vm := range killVMs {
		want := killObservation(base, vm, killRounds-1)
		got, err := st.VM(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		since := killGenerated(base, vm, 0)
		if vm%crashEvery == 0 {
			if inOrder := killGenerated(base, vm, crashRound+1); got.Since.Equal(inOrder) {
				since = inOrder
			} else {
				overtaken[want.ID] = true
			}
		}
		if got.State != want.State || fmt.Sprint(got.Attrs["round"]) != fmt.Sprint(killRounds-1) ||
			!got.Last.Generated.Equal(want.TimeGenerated) || !got.Since.Equal(since) {
			wrong = append(wrong, fmt.Sprintf("%s: state %s round %v generated %s since %s, want %s round %d generated %s since %s",
				want.ID, got.State, got.Attrs["round"], got.Last.Generated, got.Since,
				want.State, killRounds-1, want.TimeGenerated, since))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%d VMs do not hold their observations, e.g.:\n%s", len(wrong), strings.Join(wrong[:min(10, len(wrong))], "\n"))
	}

	// At most one incident per crashed VM, from the one observation that
	// carried the crash, whichever replica applied it (once or, after the
	// kill, twice), and none for the others. A crash whose entry the killed
	// replica held is evaluated by b only after b saw the VM running again
	// (rounds 3 and 4), so it raises no incident: counted as lost below,
	// a known limit of per-VM last-writer-wins with late reclaim.
	incs, err := st.Incidents(ctx, model.IncidentFilter{Limit: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	byVM := map[string][]string{}
	for _, inc := range incs {
		if inc.Rule != "azure-guest-crash" || len(inc.VMs) != 1 || !strings.HasPrefix(inc.VMs[0], "vm-") {
			t.Errorf("unexpected incident %s: rule %s VMs %v", inc.ID, inc.Rule, inc.VMs)
			continue
		}
		byVM[inc.VMs[0]] = append(byVM[inc.VMs[0]], inc.ID)
	}
	crashed, lost := 0, 0
	for vm := 0; vm < killVMs; vm += crashEvery {
		crashed++
		id := fmt.Sprintf("vm-%05d", vm)
		switch n := len(byVM[id]); {
		case n > 1:
			t.Errorf("%s has %d incidents %v, want 1", id, n, byVM[id])
		case n == 0:
			lost++
		}
	}
	for id := range byVM {
		var vm int
		if _, err := fmt.Sscanf(id, "vm-%d", &vm); err != nil || vm%crashEvery != 0 {
			t.Errorf("incident %v for %s, which never crashed", byVM[id], id)
		}
	}
	if killedWithPending == 0 && lost > 0 {
		t.Errorf("%d crashes raised no incident although the killed replica held no entries", lost)
	}

	// Every incident is posted to Slack, once: wait until the notifier's
	// group has nothing pending or unread (a's unacknowledged events are
	// claimed by b after the notifier's claim idle time, and a message a
	// held a lease on waits for the lease to expire), then count.
	eventually(t, 4*time.Minute, "every incident posted", func() error {
		if err := streamIdle(ctx, rdb, "{"+store.DefaultPrefix+"}:incidents", "bot"); err != nil {
			return err
		}
		roots, _, _ := slack.posts()
		posted := map[string]bool{}
		for _, p := range roots {
			for _, id := range p.incidents {
				posted[id] = true
			}
		}
		for _, inc := range incs {
			if !posted[inc.ID] {
				return fmt.Errorf("%s not posted yet (%d root messages so far)", inc.ID, len(roots))
			}
		}
		return nil
	})
	roots, replies, updates := slack.posts()
	perIncident := map[string]int{}
	for _, p := range roots {
		if len(p.incidents) != 1 {
			t.Errorf("root message %s names incidents %v, want exactly one", p.ts, p.incidents)
			continue
		}
		perIncident[p.incidents[0]]++
	}
	// A replica's notifier posts one incident at a time, so a killed
	// replica can leave at most one post whose answer it never recorded:
	// the survivor, once the message lease expires, posts that incident
	// again. That one duplicate is a known limit (measured and reported);
	// any other is a failure.
	var twice []string
	for _, inc := range incs {
		switch n := perIncident[inc.ID]; {
		case n == 2:
			twice = append(twice, inc.ID)
		case n != 1:
			t.Errorf("incident %s (%s) has %d root messages in Slack, want 1", inc.ID, inc.VMs, n)
		}
	}
	if len(twice) > 1 {
		t.Errorf("incidents %v posted twice; the killed replica can have been posting only one", twice)
	}
	if len(roots) != len(incs)+len(twice) {
		t.Errorf("%d root messages for %d incidents", len(roots), len(incs))
	}
	if len(twice) == 1 {
		t.Logf("KNOWN LIMIT: incident %s is in Slack twice: the killed replica posted it but died before recording the "+
			"message, so the survivor posted it again when the lease expired", twice[0])
	}
	reclaimed := metric(t, b, "vmtriage_observation_entries_reclaimed_total")
	t.Logf("50,000 observations streamed in %s, applied by %s; %d POST(s) resent after the kill; "+
		"b reclaimed %s observation entries; %d incidents for %d crashed VMs, %d root messages, %d thread replies, %d updates; total %s",
		streamed.Round(time.Millisecond), drained.Round(time.Millisecond), resent, reclaimed,
		len(incs), crashed, len(roots), replies, updates, time.Since(started).Round(time.Millisecond))
	if lost > 0 {
		t.Logf("KNOWN LIMIT: %d of %d crashes raised no incident (%d of them are not in the VMs' Since either): "+
			"the killed replica held their entries, and b applied newer observations of the same VMs before reclaiming them",
			lost, crashed, len(overtaken))
	}
	if killedWithPending > 0 && reclaimed == "0" {
		t.Errorf("a died with %d entries pending but b reclaimed none", killedWithPending)
	}
}

// killWhileBusy SIGKILLs r as soon as one of its ingest consumers holds an
// unacknowledged observation entry (waiting at most 10 s for that), so the
// kill lands mid-work, and returns how many entries its consumers held.
func killWhileBusy(t *testing.T, ctx context.Context, rdb redis.UniversalClient, r *replica) int64 {
	t.Helper()
	stream := "{" + store.DefaultPrefix + "}:obs"
	held := func() int64 {
		cs, err := rdb.XInfoConsumers(ctx, stream, store.IngestGroup).Result()
		if err != nil {
			return 0
		}
		var n int64
		for _, c := range cs {
			if strings.HasPrefix(c.Name, r.name+"-") {
				n += c.Pending
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for held() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	r.sigkill()
	n := held()
	if n == 0 {
		t.Logf("replica %s held no entries when killed: the kill tested only the HTTP side", r.name)
	}
	return n
}

// streamIdle reports an error unless group on stream has nothing pending
// and has read up to the stream's last entry.
func streamIdle(ctx context.Context, rdb redis.UniversalClient, stream, group string) error {
	groups, err := rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return err
	}
	info, err := rdb.XInfoStream(ctx, stream).Result()
	if err != nil {
		return err
	}
	for _, g := range groups {
		if g.Name != group {
			continue
		}
		if g.Pending != 0 || g.LastDeliveredID != info.LastGeneratedID {
			return fmt.Errorf("group %s on %s: %d pending, read up to %s of %s", group, stream, g.Pending, g.LastDeliveredID, info.LastGeneratedID)
		}
		return nil
	}
	return errors.New("no group " + group + " on " + stream)
}

// metric returns the value of an unlabelled metric from r's /metrics.
func metric(t *testing.T, r *replica, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s not in /metrics of %s", name, r.name)
	}
	return string(m[1])
}
