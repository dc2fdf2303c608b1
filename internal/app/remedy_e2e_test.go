package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/tickets/jiratest"
)

// slashAs posts a signed /triage command to /slack/commands as user.
func (s *service) slashAs(tb testing.TB, user, text string) (int, string) {
	tb.Helper()
	form := url.Values{
		"command": {"/triage"}, "text": {text}, "user_id": {user}, "user_name": {strings.ToLower(user)},
		"channel_id": {testSlackChannel}, "team_id": {"T0TEST"},
		"trigger_id":   {"13345224609." + randomHex(6)},
		"response_url": {"https://hooks.slack.com/commands/T0TEST/1/" + randomHex(8)},
	}
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, s.url("/slack/commands"), strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// slack-go checks the signature's 5-minute window against the wall
	// clock, so the request is stamped with it.
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(testSlackSecret))
	io.WriteString(mac, "v0:"+ts+":"+body)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("POST /slack/commands: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// auditView is one entry of GET /v1/audit.
type auditView struct {
	Kind, User, Command, Reason, Outcome, Incident, Remedy, Host string
	VMs                                                          []string
}

func (s *service) audit(tb testing.TB, query string) []auditView {
	tb.Helper()
	code, body := s.get(tb, "/v1/audit"+query)
	if code != http.StatusOK {
		tb.Fatalf("GET /v1/audit%s = %d %s", query, code, body)
	}
	var got struct {
		Entries []auditView `json:"entries"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		tb.Fatalf("GET /v1/audit%s: %v in %s", query, err, body)
	}
	return got.Entries
}

// TestRemedyEndToEnd walks the whole remedy loop through Slack's HTTP
// API and Jira's fakes: VMs crash on a host with failing memory; the
// migration plan is posted in Slack; an approval by someone who is not an
// approver is refused and audited; an approver's approval runs it (dry
// run), the incident's thread shows the progress and the summary; once
// the host recovers the incident resolves; the incident's ticket carries
// the remedy's history as comments, each once; and /v1/audit and
// /triage audit tell the story newest first.
func TestRemedyEndToEnd(t *testing.T) {
	f := newFakeSlack(t)
	jira := jiratest.NewServer(jiratest.Options{Cloud: true, User: testJiraUser, Token: testJiraToken})
	t.Cleanup(jira.Close)
	env := slackEnv(f)
	env["VMTRIAGE_JIRA_URL"] = jira.URL
	env["VMTRIAGE_JIRA_USER"] = testJiraUser
	env["VMTRIAGE_JIRA_TOKEN"] = testJiraToken
	env["VMTRIAGE_JIRA_PROJECT"] = "OPS"
	env["VMTRIAGE_APPROVERS"] = "U0BOB"
	s := bootService(t, bootOptions{Env: env})
	t0 := s.clock.Now()

	// Crash on a failing host: two VMs down on host-007 (uncorrectable
	// ECC), with room for both on host-008.
	s.observe(t, remedyHost(t, "host-007", 3, 0, 0, t0), remedyHost(t, "host-008", 0, 16, 65536, t0),
		remedyVM(t, "vm-0042", "host-007", t0), remedyVM(t, "vm-0043", "host-007", t0))
	var incID string
	eventually(t, 10*time.Second, "a firing migrate-host incident", func() (bool, string) {
		for _, inc := range s.incidents(t, "?status=firing") {
			if inc["action"] == "migrate-host" {
				incID, _ = inc["id"].(string)
				return true, ""
			}
		}
		return false, fmt.Sprint(s.incidents(t, ""))
	})

	// The plan is posted in Slack before anyone approves it.
	var root slackCall
	eventually(t, 20*time.Second, "the plan in the incident's Slack message", func() (bool, string) {
		calls := f.Calls()
		posts := rootsAbout(calls, incID)
		if len(posts) != 1 {
			return false, describe(calls)
		}
		root = posts[0]
		b := latestBlocks(calls, root.TS)
		return strings.Contains(b, "vm-0042 → host-008") && strings.Contains(b, "vm-0043 → host-008"), b
	})
	var key string
	eventually(t, 20*time.Second, "the incident's ticket", func() (bool, string) {
		for _, inc := range s.incidents(t, "?status=firing") {
			if inc["id"] == incID {
				key, _ = inc["ticket"].(string)
			}
		}
		return key != "", fmt.Sprint(jira.Issues())
	})

	// Alice is not an approver: refused, nothing runs, and the audit
	// stream has it under the incident.
	code, body := s.slashAs(t, "U0ALICE", "approve "+incID)
	if code != http.StatusOK || !strings.Contains(body, "may not run approve") {
		t.Fatalf("approval by a non-approver = %d %.300s, want a refusal", code, body)
	}
	if _, v := s.remedyOf(t, incID); v.Remedy.State != model.RemedyAwaiting {
		t.Fatalf("after a refused approval the remedy is %s, want %s", v.Remedy.State, model.RemedyAwaiting)
	}
	refused := s.audit(t, "?kind=refused&incident="+incID)
	if len(refused) != 1 || refused[0].User != "U0ALICE" || !strings.HasPrefix(refused[0].Command, "approve "+incID) ||
		refused[0].Reason == "" || refused[0].Host != "host-007" {
		t.Fatalf("refusals about %s = %+v, want Alice's approval with a reason and the host", incID, refused)
	}

	// Bob is: it runs.
	code, body = s.slashAs(t, "U0BOB", "approve "+incID)
	if code != http.StatusOK || !strings.Contains(body, "approved by U0BOB") {
		t.Fatalf("approval by an approver = %d %.300s", code, body)
	}
	var rem remedyView
	eventually(t, 20*time.Second, "the remedy to finish", func() (bool, string) {
		_, rem = s.remedyOf(t, incID)
		return rem.Remedy.State == model.RemedyDone, string(rem.Remedy.State)
	})
	if rem.Remedy.Result != "2 moved" {
		t.Errorf("result = %q, want 2 moved", rem.Remedy.Result)
	}

	// Progress and summary are told in the incident's Slack thread: the
	// plan, the approval, the steps under way, the summary.
	eventually(t, 20*time.Second, "the summary in the thread", func() (bool, string) {
		thread := strings.Join(threadReplies(f.Calls(), root.TS), "\n")
		return strings.Contains(thread, "done: 2 moved"), describe(f.Calls())
	})
	thread := strings.Join(threadReplies(f.Calls(), root.TS), "\n")
	for _, want := range []string{"plan: vm-0042 → host-008", "approved by U0BOB", "running: ", "done: 2 moved"} {
		if !strings.Contains(thread, want) {
			t.Errorf("the incident's thread lacks %q:\n%s", want, thread)
		}
	}
	if n := len(rootsAbout(f.Calls(), incID)); n != 1 {
		t.Errorf("%d root messages about %s, want 1", n, incID)
	}

	// The host recovers and the VMs run on host-008: the incident resolves.
	s.clock.Advance(time.Minute)
	t1 := s.clock.Now()
	s.observe(t, remedyHost(t, "host-007", 0, 16, 65536, t1),
		vmState(t, "vm-0042", "host-008", "running", t1), vmState(t, "vm-0043", "host-008", "running", t1))
	s.clock.Advance(10 * time.Minute)
	s.tick(t)
	eventually(t, 20*time.Second, "the incident resolved", func() (bool, string) {
		for _, inc := range s.incidents(t, "") {
			if inc["id"] == incID {
				return inc["status"] == "resolved", fmt.Sprint(inc["status"])
			}
		}
		return false, "no incident"
	})

	// The ticket has the remedy's story, each change once.
	var comments []string
	eventually(t, 20*time.Second, "the remedy's comments on the ticket", func() (bool, string) {
		is, _ := jira.Issue(key)
		comments = is.Comments
		joined := strings.Join(comments, "\n")
		return strings.Contains(joined, "finished") && strings.Contains(joined, "2 moved"), joined
	})
	joined := strings.Join(comments, "\n")
	for _, want := range []string{"requested", "vm-0042 → host-008", "U0BOB", "approved", "started",
		"migrate vm-0042 from host-007 to host-008", "Summary: 2 moved"} {
		if !strings.Contains(joined, want) {
			t.Errorf("ticket comments lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "U0ALICE") {
		t.Errorf("a refused attempt became a ticket comment:\n%s", joined)
	}
	for i, c := range comments {
		if slices.Contains(comments[i+1:], c) {
			t.Errorf("comment posted twice: %q", c)
		}
	}

	// The audit stream: every step of the remedy, newest first, with the
	// refusal among them.
	all := s.audit(t, "?incident="+incID)
	var story []string
	for _, e := range all {
		story = append(story, e.Kind+" "+e.User+" "+e.Command)
	}
	slices.Reverse(story)
	want := []string{"remedy vmtriage requested", "refused U0ALICE approve", "remedy U0BOB approved", "remedy", "finished"}
	at := 0
	for _, line := range story {
		if at < len(want) && strings.Contains(line, want[at]) {
			at++
		}
	}
	if at != len(want) {
		t.Errorf("audit of %s, oldest first, does not follow %q:\n%s", incID, want, strings.Join(story, "\n"))
	}
	if byVM := s.audit(t, "?vm=vm-0043&kind=remedy"); len(byVM) == 0 || byVM[0].Command != "finished" {
		t.Errorf("audit of vm-0043 = %+v, want the remedy's entries, newest (finished) first", byVM)
	}
	for _, q := range []string{"?kind=other", "?vm_id=x", "?limit=none"} {
		name := strings.SplitN(q[1:], "=", 2)[0]
		if code, body := s.get(t, "/v1/audit"+q); code != http.StatusBadRequest || !strings.Contains(string(body), name) {
			t.Errorf("GET /v1/audit%s = %d %s, want 400 naming %s", q, code, body, name)
		}
	}
	code, body = s.slashAs(t, "U0ALICE", "audit host-007")
	if code != http.StatusOK || !strings.Contains(body, "finished") || !strings.Contains(body, "was refused") ||
		strings.Index(body, "finished") > strings.Index(body, "was refused") {
		t.Errorf("/triage audit host-007 = %d %.1500s, want the remedy finished above Alice's refusal", code, body)
	}
}
