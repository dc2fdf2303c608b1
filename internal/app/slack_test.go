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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/vmtriage/vmtriage/tickets/jiratest"
)

const (
	testSlackToken   = "xoxb-test"
	testSlackSecret  = "8f742231b10e8888abcd99yyyzzz85a5"
	testSlackChannel = "C0OPS"
	testJiraUser     = "ops-bot@example.com"
	testJiraToken    = "ATATT3x-app-test-jira-token-0451"
)

// slackCall is one chat.postMessage or chat.update the fake Slack
// accepted.
type slackCall struct {
	Method   string // "post" or "update"
	Channel  string
	TS       string
	ThreadTS string
	Text     string
	Blocks   string // JSON
	Token    string
}

// fakeSlack is slack-go's slacktest server with chat.postMessage and
// chat.update replaced by a recorder (slacktest has no chat.update, and
// keeps no list of posts).
type fakeSlack struct {
	srv *slacktest.Server

	mu     sync.Mutex
	calls  []slackCall
	nextTS int
	roots  map[string]bool // channel/ts of root messages
}

func newFakeSlack(t testing.TB) *fakeSlack {
	t.Helper()
	f := &fakeSlack{roots: map[string]bool{}}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.handle("post"))
		c.Handle("/chat.update", f.handle("update"))
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) handle(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		c := slackCall{Method: method, Channel: r.Form.Get("channel"), ThreadTS: r.Form.Get("thread_ts"),
			Text: r.Form.Get("text"), Blocks: r.Form.Get("blocks"),
			Token: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")}
		if c.Token == "" {
			c.Token = r.Form.Get("token")
		}
		reply := func(v map[string]any) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
		switch method {
		case "post":
			f.nextTS++
			c.TS = fmt.Sprintf("1795341720.%06d", f.nextTS)
			if c.ThreadTS == "" {
				f.roots[c.Channel+"/"+c.TS] = true
			} else if !f.roots[c.Channel+"/"+c.ThreadTS] {
				reply(map[string]any{"ok": false, "error": "thread_not_found"})
				return
			}
		case "update":
			c.TS = r.Form.Get("ts")
			if !f.roots[c.Channel+"/"+c.TS] {
				reply(map[string]any{"ok": false, "error": "message_not_found"})
				return
			}
		}
		f.calls = append(f.calls, c)
		reply(map[string]any{"ok": true, "channel": c.Channel, "ts": c.TS, "text": c.Text})
	}
}

func (f *fakeSlack) Calls() []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackCall(nil), f.calls...)
}

// rootsAbout returns the root posts whose blocks mention s.
func rootsAbout(calls []slackCall, s string) []slackCall {
	var out []slackCall
	for _, c := range calls {
		if c.Method == "post" && c.ThreadTS == "" && strings.Contains(c.Blocks, s) {
			out = append(out, c)
		}
	}
	return out
}

// latestBlocks is what the message ts shows now: its post, or its last
// update.
func latestBlocks(calls []slackCall, ts string) string {
	b := ""
	for _, c := range calls {
		if c.TS == ts && c.ThreadTS == "" {
			b = c.Blocks
		}
	}
	return b
}

// threadReplies returns the texts posted in the thread of ts.
func threadReplies(calls []slackCall, ts string) []string {
	var out []string
	for _, c := range calls {
		if c.Method == "post" && c.ThreadTS == ts {
			out = append(out, c.Text)
		}
	}
	return out
}

func describe(calls []slackCall) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "%s %s ts=%s thread=%s text=%.120q\n", c.Method, c.Channel, c.TS, c.ThreadTS, c.Text)
	}
	return b.String()
}

// slackEnv switches Slack on (HTTP mode) against f.
func slackEnv(f *fakeSlack) map[string]string {
	return map[string]string{
		"VMTRIAGE_SLACK_BOT_TOKEN":      testSlackToken,
		"VMTRIAGE_SLACK_CHANNEL":        testSlackChannel,
		"VMTRIAGE_SLACK_SIGNING_SECRET": testSlackSecret,
		"VMTRIAGE_SLACK_API_URL":        f.srv.GetAPIURL(),
	}
}

// slashCommand posts a slash command to /slack/commands, signed with
// secret (unsigned when secret is empty), and returns the status and
// body. slack-go checks the 5-minute window against the wall clock, so
// the request is stamped with it.
func (s *service) slashCommand(tb testing.TB, secret, text string) (int, string) {
	tb.Helper()
	form := url.Values{
		"command": {"/triage"}, "text": {text}, "user_id": {"U0ALICE"}, "user_name": {"alice"},
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
	if secret != "" {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		io.WriteString(mac, "v0:"+ts+":"+body)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	}
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

// hostFacts is a host's hardware facts for one period; ecc > 0 fails it.
func hostFacts(tb testing.TB, host string, ecc int, at time.Time) string {
	return obsLine(tb, map[string]any{
		"source": "prometheus", "kind": "host", "id": host, "site": "pod-a", "state": "up",
		"attrs": map[string]any{"ecc_uncorrected": ecc, "mce": 0, "disk_errors": 0, "nic_up": true,
			"psu_ok": true, "temp_c": 41, "storage_reachable": true, "network_reachable": true},
		"time_generated": at.Format(time.RFC3339Nano),
	})
}

func vmState(tb testing.TB, vm, host, state string, at time.Time) string {
	return obsLine(tb, map[string]any{
		"source": "libvirt", "kind": "vm", "id": vm, "host": host, "site": "pod-a",
		"state": state, "attrs": map[string]any{"crash_reason": "panicked"}, "time_generated": at.Format(time.RFC3339Nano),
	})
}

func (s *service) observe(tb testing.TB, lines ...string) {
	tb.Helper()
	if code, resp := s.post(tb, "/v1/observations", "application/x-ndjson", []byte(strings.Join(lines, ""))); code != http.StatusAccepted {
		tb.Fatalf("POST /v1/observations = %d %s, want 202", code, resp)
	}
	s.waitApplied(tb)
}

// TestServeWithSlack boots the service with Slack on in HTTP mode against
// a fake Web API and walks an incident through it: posted once to the
// channel when it fires, with blocks; its resolution updates the same
// message and is told in its thread; a signed /triage command answers and
// an unsigned one is refused; a resolution note shows on the next
// incident of the same cause as "how this was fixed before".
func TestServeWithSlack(t *testing.T) {
	f := newFakeSlack(t)
	s := bootService(t, bootOptions{Env: slackEnv(f)})
	t0 := s.clock.Now()

	s.observe(t, hostFacts(t, "host-007", 0, t0), vmState(t, "vm-0042", "host-007", "crashed", t0))
	inc := s.incidents(t, "")
	if len(inc) != 1 || inc[0]["status"] != "pending" {
		t.Fatalf("after the crash: %v, want one pending incident", inc)
	}
	id := inc[0]["id"].(string)
	s.clock.Advance(30 * time.Second)
	s.tick(t)

	var root slackCall
	eventually(t, 20*time.Second, "the firing incident in Slack", func() (bool, string) {
		posts := rootsAbout(f.Calls(), id)
		if len(posts) == 1 {
			root = posts[0]
		}
		return len(posts) == 1, describe(f.Calls())
	})
	if root.Channel != testSlackChannel || root.Token != testSlackToken {
		t.Errorf("posted to %q with token %q, want %s with the bot token", root.Channel, root.Token, testSlackChannel)
	}
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(root.Blocks), &blocks); err != nil || len(blocks) < 3 {
		t.Fatalf("incident message blocks = %.300s (%v), want Block Kit", root.Blocks, err)
	}
	for _, want := range []string{"vm-0042", "guest crash", "restart vm-0042", "Acknowledge"} {
		if !strings.Contains(root.Blocks, want) {
			t.Errorf("incident message lacks %q: %.2000s", want, root.Blocks)
		}
	}
	if !strings.Contains(root.Text, "vm-0042") {
		t.Errorf("fallback text %q does not name the VM", root.Text)
	}

	// Typed commands: signed, answered inline; unsigned, refused.
	code, body := s.slashCommand(t, testSlackSecret, "status vm-0042")
	if code != http.StatusOK || !strings.Contains(body, "vm-0042") || !strings.Contains(body, "crashed") {
		t.Errorf("signed /triage status vm-0042 = %d %.500s, want 200 with the VM's state", code, body)
	}
	if code, body := s.slashCommand(t, "", "status vm-0042"); code != http.StatusUnauthorized {
		t.Errorf("unsigned /triage status = %d %.200s, want 401", code, body)
	}
	if code, body := s.slashCommand(t, "not-the-signing-secret-at-all-000", "status vm-0042"); code != http.StatusUnauthorized {
		t.Errorf("wrongly signed /triage status = %d %.200s, want 401", code, body)
	}

	// The VM runs again; after the resolve delay the incident resolves:
	// the same message is updated and the thread says so.
	s.clock.Advance(10 * time.Second)
	s.observe(t, vmState(t, "vm-0042", "host-007", "running", s.clock.Now()))
	s.clock.Advance(5 * time.Minute)
	s.tick(t)
	eventually(t, 20*time.Second, "the resolution in Slack", func() (bool, string) {
		calls := f.Calls()
		replies := threadReplies(calls, root.TS)
		return strings.Contains(latestBlocks(calls, root.TS), "RESOLVED") && len(replies) > 0 &&
			strings.Contains(strings.Join(replies, "\n"), "Resolved"), describe(calls)
	})
	calls := f.Calls()
	if n := len(rootsAbout(calls, id)); n != 1 {
		t.Errorf("%d root messages about %s, want 1 (updates in place)\n%s", n, id, describe(calls))
	}
	updates := 0
	for _, c := range calls {
		if c.Method == "update" && c.TS == root.TS {
			updates++
		}
		if c.Method == "update" && c.TS != root.TS {
			t.Errorf("update of another message %s", c.TS)
		}
	}
	if updates == 0 {
		t.Errorf("no chat.update of %s\n%s", root.TS, describe(calls))
	}

	// Someone notes what fixed it; the next guest crash shows the note.
	code, body = s.slashCommand(t, testSlackSecret, "resolve "+id+" reinstalled the guest kernel <!channel>")
	if code != http.StatusOK || !strings.Contains(body, "Noted on "+id) {
		t.Fatalf("/triage resolve = %d %.500s, want the note acknowledged", code, body)
	}
	t1 := s.clock.Now()
	s.observe(t, hostFacts(t, "host-007", 0, t1), vmState(t, "vm-0043", "host-007", "crashed", t1))
	s.clock.Advance(30 * time.Second)
	s.tick(t)
	var second slackCall
	eventually(t, 20*time.Second, "the second guest crash in Slack", func() (bool, string) {
		posts := rootsAbout(f.Calls(), "vm-0043")
		if len(posts) == 1 {
			second = posts[0]
		}
		return len(posts) == 1, describe(f.Calls())
	})
	for _, want := range []string{"How this was fixed before", "reinstalled the guest kernel", "on " + id} {
		if !strings.Contains(second.Blocks, want) {
			t.Errorf("next guest crash's message lacks %q: %.3000s", want, second.Blocks)
		}
	}
	if strings.Contains(second.Blocks, "<!channel>") {
		t.Error("the note's <!channel> reached Slack unescaped")
	}

	// Nothing posted or answered carries the bot token or signing secret.
	for _, c := range f.Calls() {
		for _, secret := range []string{testSlackToken, testSlackSecret} {
			if strings.Contains(c.Text+c.Blocks, secret) {
				t.Errorf("a %s to Slack contains a secret", c.Method)
			}
		}
	}
}

// TestServeWithSlackAndJira boots the service with Slack and Jira on: a
// critical incident gets exactly one ticket, whose key shows on GET
// /v1/incidents and in the incident's Slack message.
func TestServeWithSlackAndJira(t *testing.T) {
	f := newFakeSlack(t)
	jira := jiratest.NewServer(jiratest.Options{Cloud: true, User: testJiraUser, Token: testJiraToken})
	t.Cleanup(jira.Close)
	env := slackEnv(f)
	env["VMTRIAGE_JIRA_URL"] = jira.URL
	env["VMTRIAGE_JIRA_USER"] = testJiraUser
	env["VMTRIAGE_JIRA_TOKEN"] = testJiraToken
	env["VMTRIAGE_JIRA_PROJECT"] = "OPS"
	s := bootService(t, bootOptions{Env: env})
	t0 := s.clock.Now()

	// Two VMs crash on a host with uncorrectable ECC errors in the same
	// period: one critical host incident, firing at once.
	s.observe(t, hostFacts(t, "host-009", 3, t0),
		vmState(t, "vm-0090", "host-009", "crashed", t0), vmState(t, "vm-0091", "host-009", "crashed", t0))
	firing := s.incidents(t, "?status=firing")
	if len(firing) != 1 || firing[0]["severity"] != "critical" {
		t.Fatalf("firing incidents = %v, want one critical", firing)
	}
	id := firing[0]["id"].(string)

	var key string
	eventually(t, 20*time.Second, "the ticket on the incident", func() (bool, string) {
		incs := s.incidents(t, "?status=firing")
		if len(incs) == 1 {
			key, _ = incs[0]["ticket"].(string)
		}
		return key != "", fmt.Sprint(incs)
	})
	issues := jira.Issues()
	if len(issues) != 1 || issues[0].Key != key {
		t.Fatalf("Jira has %+v, want one issue %s", issues, key)
	}
	if !strings.Contains(issues[0].Summary, "host-009") || issues[0].Priority != "Highest" {
		t.Errorf("ticket summary %q priority %q, want host-009 and Highest", issues[0].Summary, issues[0].Priority)
	}
	inc := s.incidents(t, "?status=firing")[0]
	if u, _ := inc["ticket_url"].(string); !strings.HasSuffix(u, "/browse/"+key) {
		t.Errorf("ticket_url = %q, want …/browse/%s", u, key)
	}
	if _, ok := inc["ticket_error"]; ok {
		t.Errorf("ticket_error = %v on an incident whose ticket was created", inc["ticket_error"])
	}

	// The incident's one Slack message ends up showing the ticket.
	var root slackCall
	eventually(t, 20*time.Second, "the ticket in the Slack message", func() (bool, string) {
		calls := f.Calls()
		posts := rootsAbout(calls, id)
		if len(posts) != 1 {
			return false, describe(calls)
		}
		root = posts[0]
		return strings.Contains(latestBlocks(calls, root.TS), key), describe(calls)
	})
	if n := len(rootsAbout(f.Calls(), id)); n != 1 {
		t.Errorf("%d root messages about %s, want 1", n, id)
	}

	// Someone writes on the ticket what fixed it; the resolution keeps it.
	jiraComment(t, jira, key, "Fix: swapped the DIMM in slot B2")

	// More changes (a second host period, the resolution) never open a
	// second ticket.
	s.clock.Advance(time.Minute)
	t1 := s.clock.Now()
	s.observe(t, hostFacts(t, "host-009", 0, t1),
		vmState(t, "vm-0090", "host-009", "running", t1), vmState(t, "vm-0091", "host-009", "running", t1))
	s.clock.Advance(10 * time.Minute)
	s.tick(t)
	eventually(t, 20*time.Second, "the ticket resolved", func() (bool, string) {
		is, ok := jira.Issue(key)
		return ok && is.Status == jiratest.StatusDone, fmt.Sprintf("%+v", is)
	})
	if n := len(jira.Issues()); n != 1 {
		t.Errorf("Jira has %d issues after the resolution, want 1", n)
	}

	// What fixed it, noted in Slack, goes into the next ticket of the
	// same cause.
	if code, body := s.slashCommand(t, testSlackSecret, "resolve "+id+" replaced DIMM B2 on host-009"); code != http.StatusOK || !strings.Contains(body, "Noted") {
		t.Fatalf("/triage resolve = %d %.300s", code, body)
	}
	t2 := s.clock.Now()
	s.observe(t, hostFacts(t, "host-010", 2, t2), vmState(t, "vm-0100", "host-010", "crashed", t2))
	eventually(t, 20*time.Second, "the second ticket", func() (bool, string) {
		return len(jira.Issues()) == 2, fmt.Sprint(len(jira.Issues()))
	})
	var second jiratest.Issue
	for _, is := range jira.Issues() {
		if is.Key != key {
			second = is
		}
	}
	if !strings.Contains(second.Description, "How this was fixed before") || !strings.Contains(second.Description, "replaced DIMM B2 on host-009") ||
		!strings.Contains(second.Description, "swapped the DIMM in slot B2") {
		t.Errorf("the next host-hardware-fault ticket does not say how the last one was fixed:\n%s", second.Description)
	}
	for _, r := range jira.Requests() {
		if strings.Contains(r.Body, testJiraToken) {
			t.Errorf("request %d to Jira carries the token in its body", r.N)
		}
	}
}

// TestServeShowsJiraRefusal boots the service with a priority Jira does
// not know: the incident gets no ticket, and GET /v1/incidents and its
// Slack message say why, naming the variable to fix.
func TestServeShowsJiraRefusal(t *testing.T) {
	f := newFakeSlack(t)
	jira := jiratest.NewServer(jiratest.Options{Cloud: true, User: testJiraUser, Token: testJiraToken})
	t.Cleanup(jira.Close)
	env := slackEnv(f)
	env["VMTRIAGE_JIRA_URL"] = jira.URL
	env["VMTRIAGE_JIRA_USER"] = testJiraUser
	env["VMTRIAGE_JIRA_TOKEN"] = testJiraToken
	env["VMTRIAGE_JIRA_PROJECT"] = "OPS"
	env["VMTRIAGE_JIRA_PRIORITIES"] = "critical:P0,high:P1"
	s := bootService(t, bootOptions{Env: env})
	t0 := s.clock.Now()

	s.observe(t, hostFacts(t, "host-009", 3, t0), vmState(t, "vm-0090", "host-009", "crashed", t0))
	var inc map[string]any
	eventually(t, 20*time.Second, "the refusal on the incident", func() (bool, string) {
		incs := s.incidents(t, "?status=firing")
		if len(incs) == 1 {
			inc = incs[0]
		}
		return inc != nil && inc["ticket_error"] != nil, fmt.Sprint(incs)
	})
	msg, _ := inc["ticket_error"].(string)
	for _, want := range []string{"HTTP 400", "VMTRIAGE_JIRA_PRIORITIES"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ticket_error %q lacks %q", msg, want)
		}
	}
	if inc["ticket"] != nil || len(jira.Issues()) != 0 {
		t.Errorf("ticket %v, Jira issues %d; want none", inc["ticket"], len(jira.Issues()))
	}
	id := inc["id"].(string)
	eventually(t, 20*time.Second, "the refusal in Slack", func() (bool, string) {
		calls := f.Calls()
		posts := rootsAbout(calls, id)
		return len(posts) == 1 && strings.Contains(latestBlocks(calls, posts[0].TS), "Jira refused the ticket"), describe(calls)
	})
	if strings.Contains(msg, testJiraToken) {
		t.Error("ticket_error carries the Jira token")
	}
}

// jiraComment adds a comment to the fake Jira's issue key as a person
// would, through its REST API.
func jiraComment(tb testing.TB, jira *jiratest.Server, key, body string) {
	tb.Helper()
	b, err := json.Marshal(map[string]string{"body": body})
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, jira.URL+"/rest/api/2/issue/"+key+"/comment", strings.NewReader(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	req.SetBasicAuth(testJiraUser, testJiraToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		tb.Fatalf("comment on %s: status %d", key, resp.StatusCode)
	}
}
