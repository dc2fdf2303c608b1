package slack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
)

// routerFunc is a Router made of a function.
type routerFunc func(ctx context.Context, text string, from bot.Command) bot.Reply

func (f routerFunc) HandleText(ctx context.Context, text string, from bot.Command) bot.Reply {
	return f(ctx, text, from)
}

// routedCall is one call a recordingRouter saw.
type routedCall struct {
	Text string
	From bot.Command
}

// recordingRouter records every command and answers with Reply.
type recordingRouter struct {
	mu    sync.Mutex
	calls []routedCall
	Reply bot.Reply
}

func (r *recordingRouter) HandleText(_ context.Context, text string, from bot.Command) bot.Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, routedCall{text, from})
	return r.Reply
}

func (r *recordingRouter) Calls() []routedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// hookPost is one message posted to the fake response_url server.
type hookPost struct {
	Path string
	Raw  string
	Msg  goslack.WebhookMessage
}

// responseHooks is a fake of Slack's response_url endpoint.
type responseHooks struct {
	*httptest.Server
	posts chan hookPost
}

func newResponseHooks(t *testing.T) *responseHooks {
	t.Helper()
	h := &responseHooks{posts: make(chan hookPost, 16)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p := hookPost{Path: r.URL.Path, Raw: string(b)}
		if err := json.Unmarshal(b, &p.Msg); err != nil {
			t.Errorf("response_url got undecodable JSON %q: %v", b, err)
		}
		h.posts <- p
		w.Write([]byte("ok"))
	}))
	t.Cleanup(h.Close)
	return h
}

// next returns the next post, failing after 10s; it waits for the
// goroutine that answers, not for any time-based logic.
func (h *responseHooks) next(t *testing.T) hookPost {
	t.Helper()
	select {
	case p := <-h.posts:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("nothing was posted to response_url")
	}
	return hookPost{}
}

// none fails if anything was posted.
func (h *responseHooks) none(t *testing.T) {
	t.Helper()
	select {
	case p := <-h.posts:
		t.Errorf("unexpected post to response_url: %s", p.Raw)
	default:
	}
}

// inboundFixture is the HTTP side of the adapter: Verifier, Inbound and
// their routes on a mux, with a logger whose output is kept.
type inboundFixture struct {
	in    *Inbound
	mux   *http.ServeMux
	hooks *responseHooks
	log   *bottest.Recorder
}

func newInboundFixture(t *testing.T, r Router, inlineWait time.Duration) *inboundFixture {
	t.Helper()
	log, rec := bottest.Logger()
	hooks := newResponseHooks(t)
	reg := prometheus.NewRegistry()
	v, err := NewVerifier(VerifyOptions{SigningSecret: testSigningSecret, Registerer: reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInbound(InboundOptions{
		Router: r, ResponseURLPrefixes: []string{hooks.URL + "/"}, HTTPClient: hooks.Client(),
		InlineWait: inlineWait, Registerer: reg, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Wait)
	mux := http.NewServeMux()
	for pattern, h := range in.Routes(v) {
		mux.Handle(pattern, h)
	}
	return &inboundFixture{in: in, mux: mux, hooks: hooks, log: rec}
}

// command sends a signed slash command and returns the response.
func (f *inboundFixture) command(t *testing.T, user, text, responseURL string) *httptest.ResponseRecorder {
	t.Helper()
	form := url.Values{
		"command": {"/triage"}, "text": {text}, "user_id": {user}, "user_name": {"someone"},
		"channel_id": {"C0OPS"}, "team_id": {"T0VMT"}, "response_url": {responseURL}, "trigger_id": {uniqueTrigger()},
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, signedRequest("/slack/commands", testSigningSecret, time.Now(), form.Encode()))
	return w
}

// click sends a signed block_actions callback for buttons (action_id →
// value) and returns the response.
func (f *inboundFixture) click(t *testing.T, user, responseURL string, actions ...[2]string) *httptest.ResponseRecorder {
	t.Helper()
	var acts []map[string]string
	for _, a := range actions {
		acts = append(acts, map[string]string{"type": "button", "block_id": "vmtriage:actions", "action_id": a[0], "value": a[1], "action_ts": "1764669600.000100"})
	}
	payload, err := json.Marshal(map[string]any{
		"type": "block_actions", "trigger_id": uniqueTrigger(), "response_url": responseURL,
		"user": map[string]string{"id": user}, "channel": map[string]string{"id": "C0OPS"},
		"container": map[string]string{"type": "message", "message_ts": "1764669000.000200"},
		"actions":   acts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f.post(t, "/slack/interactions", url.Values{"payload": {string(payload)}}.Encode())
}

func (f *inboundFixture) post(t *testing.T, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, signedRequest(path, testSigningSecret, time.Now(), body))
	return w
}

func decodeMessage(t *testing.T, body string) goslack.WebhookMessage {
	t.Helper()
	var m goslack.WebhookMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("reply %q is not a message: %v", body, err)
	}
	return m
}

func TestSlashCommandAnsweredInline(t *testing.T) {
	tests := []struct {
		name     string
		reply    bot.Reply
		wantType string
	}{
		{name: "lookup is ephemeral", reply: bot.Reply{Title: "vm-0042 is crashed"}, wantType: "ephemeral"},
		{name: "change is in channel", reply: bot.Reply{Title: "inc-42 acknowledged by U0ALICE", Visibility: bot.InChannel}, wantType: "in_channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recordingRouter{Reply: tt.reply}
			f := newInboundFixture(t, r, time.Minute)
			w := f.command(t, "U0ALICE", "status vm-0042", f.hooks.URL+"/commands/T0VMT/1/abc")
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			msg := decodeMessage(t, w.Body.String())
			if msg.ResponseType != tt.wantType {
				t.Errorf("response_type %q, want %q", msg.ResponseType, tt.wantType)
			}
			blocks, text := ReplyBlocks(tt.reply)
			if msg.Text != text || msg.Blocks == nil || len(msg.Blocks.BlockSet) != len(blocks) {
				t.Errorf("reply is not ReplyBlocks' rendering: text %q, want %q", msg.Text, text)
			}
			if msg.ReplaceOriginal || msg.DeleteOriginal {
				t.Errorf("a command reply must not replace or delete a message")
			}
			want := []routedCall{{Text: "status vm-0042", From: bot.Command{User: "U0ALICE", Channel: "C0OPS", Origin: bot.OriginTyped, ResponseURL: f.hooks.URL + "/commands/T0VMT/1/abc"}}}
			if got := r.Calls(); !reflect.DeepEqual(got, want) {
				t.Errorf("router got %+v, want %+v", got, want)
			}
			f.in.Wait()
			f.hooks.none(t)
		})
	}
}

func TestSlowCommandAnsweredThroughResponseURL(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	r := routerFunc(func(ctx context.Context, text string, from bot.Command) bot.Reply {
		started <- struct{}{}
		<-release
		if ctx.Err() != nil {
			return bot.Reply{Title: "cancelled"}
		}
		return bot.Reply{Title: "report for " + text, Visibility: bot.InChannel}
	})
	// The router blocks until released, so any wait at all ends before it.
	f := newInboundFixture(t, r, time.Millisecond)
	w := f.command(t, "U0ALICE", "report 7d", f.hooks.URL+"/commands/T0VMT/1/xyz")
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("acknowledgement: status %d body %q; want an empty 200", w.Code, w.Body.String())
	}
	<-started
	// The request is over; the work must go on regardless.
	close(release)
	p := f.hooks.next(t)
	if p.Path != "/commands/T0VMT/1/xyz" {
		t.Errorf("posted to %q", p.Path)
	}
	if p.Msg.Text != "report for report 7d" || p.Msg.ResponseType != "in_channel" {
		t.Errorf("delayed reply: text %q type %q", p.Msg.Text, p.Msg.ResponseType)
	}
	f.in.Wait()
	if got := counterValue(f.in.commands.WithLabelValues("typed", "response_url")); got != 1 {
		t.Errorf("commands{typed,response_url} = %v, want 1", got)
	}
}

func TestResponseURLMustBeSlack(t *testing.T) {
	evil := newResponseHooks(t)
	tests := []struct {
		name string
		// url builds the response_url from the allowed server's URL.
		url func(allowed string) string
	}{
		{name: "other host", url: func(string) string { return evil.URL + "/commands/T0VMT/1/abc" }},
		{name: "allowed host and port as a prefix of another port", url: func(a string) string { return a + "0/commands/T0VMT/1/abc" }},
		{name: "allowed host as user info", url: func(a string) string {
			return "http://" + strings.TrimPrefix(a, "http://") + "@" + strings.TrimPrefix(evil.URL, "http://") + "/commands/T0VMT/1/abc"
		}},
		{name: "not a URL", url: func(string) string { return "::not a url" }},
		{name: "empty", url: func(string) string { return "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newInboundFixture(t, &recordingRouter{Reply: bot.Reply{Title: "done"}}, time.Minute)
			w := f.click(t, "U0ALICE", tt.url(f.hooks.URL), [2]string{"vmtriage:cmd:0", "ack inc-42"})
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			f.in.Wait()
			evil.none(t)
			f.hooks.none(t)
			if got := counterValue(f.in.postErrors); got != 1 {
				t.Errorf("response_url errors = %v, want 1", got)
			}
			if strings.Contains(f.log.String(), "/commands/T0VMT/1/abc") {
				t.Errorf("the response_url's path (a credential) was logged:\n%s", f.log)
			}
		})
	}
}

func TestNewInboundDefaultsAllowSlackAndAPIHost(t *testing.T) {
	in, err := NewInbound(InboundOptions{Router: &recordingRouter{}, APIURL: "http://127.0.0.1:4567/api/"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		want bool
	}{
		{"https://hooks.slack.com/commands/T0/1/x", true},
		{"https://hooks.slack.com/actions/T0/1/x", true},
		{"http://127.0.0.1:4567/hooks/x", true},
		{"http://hooks.slack.com/commands/T0/1/x", false},
		{"https://hooks.slack.com.evil.example/commands/x", false},
		{"http://127.0.0.1:4568/hooks/x", false},
	}
	for _, tt := range tests {
		if got := in.allowedURL(tt.url); got != tt.want {
			t.Errorf("allowedURL(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
	for _, bad := range []InboundOptions{
		{},
		{Router: &recordingRouter{}, ResponseURLPrefixes: []string{"https://hooks.slack.com"}},
		{Router: &recordingRouter{}, APIURL: "not a url"},
	} {
		if _, err := NewInbound(bad); err == nil {
			t.Errorf("NewInbound(%+v) accepted", bad)
		}
	}
}

func TestButtonRunsItsCommand(t *testing.T) {
	r := &recordingRouter{Reply: bot.Reply{Title: "inc-42 acknowledged", Visibility: bot.InChannel}}
	f := newInboundFixture(t, r, time.Minute)
	respURL := f.hooks.URL + "/actions/T0VMT/1/def"
	w := f.click(t, "U0BOB", respURL,
		[2]string{"vmtriage:link:1", "https://kb.example/runbook"},
		[2]string{"vmtriage:cmd:0", "ack inc-42"})
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("acknowledgement: status %d body %q; want an empty 200", w.Code, w.Body.String())
	}
	p := f.hooks.next(t)
	f.in.Wait()
	want := []routedCall{{Text: "ack inc-42", From: bot.Command{User: "U0BOB", Channel: "C0OPS", Origin: bot.OriginButton, ResponseURL: respURL}}}
	if got := r.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("router got %+v, want %+v (link buttons run nothing)", got, want)
	}
	if p.Msg.ResponseType != "in_channel" || p.Msg.ReplaceOriginal {
		t.Errorf("reply type %q replace_original %v; want in_channel, false", p.Msg.ResponseType, p.Msg.ReplaceOriginal)
	}
	f.hooks.none(t)
}

func TestInteractionsThatRunNothing(t *testing.T) {
	tests := []struct {
		name string
		body string
		code int
	}{
		{name: "view submission", body: url.Values{"payload": {`{"type":"view_submission","user":{"id":"U0A"}}`}}.Encode(), code: http.StatusOK},
		{name: "payload missing", body: "x=1", code: http.StatusBadRequest},
		{name: "payload not JSON", body: url.Values{"payload": {"{"}}.Encode(), code: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recordingRouter{}
			f := newInboundFixture(t, r, time.Minute)
			w := f.post(t, "/slack/interactions", tt.body)
			if w.Code != tt.code {
				t.Errorf("status %d, want %d", w.Code, tt.code)
			}
			f.in.Wait()
			if len(r.Calls()) != 0 {
				t.Errorf("router ran %+v", r.Calls())
			}
		})
	}
}

// realRouter is the bot's own Router over the fixture's fakes, with ack
// limited to U0BOSS so refusals can be checked.
func realRouter(t *testing.T, aud bot.Auditor) *bot.Router {
	t.Helper()
	clk := clock.NewFake(bottest.Now)
	incs := bottest.NewIncidents(clk, bottest.AllIncidents()...)
	r, err := bot.NewRouter(bot.Options{
		Incidents: incs, Fleet: bottest.FixtureFleet(), Actions: incs,
		Permissions: bot.Permissions{Ack: []string{"U0BOSS"}}, Auditor: aud, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestButtonsGoThroughTheRoutersChecks(t *testing.T) {
	tests := []struct {
		name        string
		user        string
		command     string
		wantTitle   string
		wantRefusal bool
	}{
		{name: "refused user is told why", user: "U0ALICE", command: "ack inc-42",
			wantTitle: `You may not run ack: you are not on the "ack" allow-list.`, wantRefusal: true},
		{name: "resolved incident says so", user: "U0BOSS", command: "ack inc-40",
			wantTitle: "inc-40 is already resolved; there is nothing to acknowledge."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aud := &bottest.Auditor{}
			f := newInboundFixture(t, realRouter(t, aud), time.Minute)
			f.click(t, tt.user, f.hooks.URL+"/actions/x", [2]string{"vmtriage:cmd:0", tt.command})
			p := f.hooks.next(t)
			f.in.Wait()
			if !strings.Contains(p.Msg.Text, tt.wantTitle) {
				t.Errorf("reply %q does not say %q", p.Msg.Text, tt.wantTitle)
			}
			if p.Msg.ResponseType != "ephemeral" {
				t.Errorf("a refusal or stale click is answered %q, want ephemeral", p.Msg.ResponseType)
			}
			refusals := aud.Refusals()
			if !tt.wantRefusal {
				if len(refusals) != 0 {
					t.Errorf("refusals %+v, want none", refusals)
				}
				return
			}
			if len(refusals) != 1 {
				t.Fatalf("refusals %+v, want one", refusals)
			}
			got := refusals[0]
			if got.User != tt.user || got.Channel != "C0OPS" || got.Origin != bot.OriginButton || got.Command != tt.command || got.Group != bot.GroupAck {
				t.Errorf("audited %+v", got)
			}
		})
	}
}

func TestNoSecretsLeakFromInbound(t *testing.T) {
	// A user who pastes the secret into a command gets it echoed back to
	// them, which is theirs to see; everything here is vmtriage's own
	// output for ordinary and failing requests.
	aud := &bottest.Auditor{}
	f := newInboundFixture(t, realRouter(t, aud), time.Minute)
	outputs := map[string]string{}
	for i, w := range []*httptest.ResponseRecorder{
		f.command(t, "U0ALICE", "status vm-0042", f.hooks.URL+"/c/1"),
		f.command(t, "U0ALICE", "ack inc-42", f.hooks.URL+"/c/2"),
		f.click(t, "U0ALICE", f.hooks.URL+"/a/3", [2]string{"vmtriage:cmd:0", "ack inc-42"}),
		f.post(t, "/slack/commands", "text=x"),
	} {
		outputs["response "+string(rune('0'+i))] = w.Body.String()
	}
	p := f.hooks.next(t)
	outputs["response_url post"] = p.Raw
	bad := signedRequest("/slack/commands", "wrong-secret-wrong", time.Now(), "text=help")
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, bad)
	outputs["refused"] = w.Body.String()
	f.in.Wait()
	outputs["log"] = f.log.String()
	bottest.AssertNoSecrets(t, []string{testSigningSecret}, outputs)
}

func FuzzSlackPayloads(f *testing.F) {
	f.Add("/slack/commands", "command=%2Ftriage&text=status+vm-0042&user_id=U0A&response_url=x")
	f.Add("/slack/interactions", `payload={"type":"block_actions","actions":[{"block_id":"b","action_id":"vmtriage:cmd:0","value":"help"}]}`)
	f.Add("/slack/interactions", `payload={"type":"block_actions","actions":[{"action_id":1}]}`)
	f.Add("/slack/commands", "%zz")
	in, err := NewInbound(InboundOptions{Router: routerFunc(func(context.Context, string, bot.Command) bot.Reply {
		return bot.Reply{Title: "ok"}
	}), ResponseURLPrefixes: []string{"http://127.0.0.1:1/"}, InlineWait: time.Minute,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		f.Fatal(err)
	}
	handlers := map[string]http.HandlerFunc{"/slack/commands": in.ServeCommand, "/slack/interactions": in.ServeInteraction}
	f.Fuzz(func(t *testing.T, path, body string) {
		h, ok := handlers[path]
		if !ok {
			return
		}
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Errorf("status %d for %q", w.Code, body)
		}
		in.Wait()
	})
}

func BenchmarkServeCommandInline(b *testing.B) {
	reply := bot.Reply{Title: "vm-0042 is crashed", Tone: bot.ToneError, Sections: []bot.Section{{Fields: []bot.Field{
		{Key: "state", Value: "crashed since 10:07 UTC (5m ago)"}, {Key: "host", Value: "host-007"}, {Key: "site", Value: "pod-a"},
	}}}}
	in, err := NewInbound(InboundOptions{Router: routerFunc(func(context.Context, string, bot.Command) bot.Reply { return reply }), InlineWait: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	body := url.Values{"command": {"/triage"}, "text": {"status vm-0042"}, "user_id": {"U0ALICE"}, "channel_id": {"C0OPS"},
		"response_url": {"https://hooks.slack.com/commands/T0/1/abc"}, "trigger_id": {"t"}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		in.ServeCommand(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func TestResponseURLRetries(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int // one per attempt; the last repeats
		wantPosts int
		wantWaits []time.Duration
		wantOK    bool
	}{
		{name: "5xx then delivered", statuses: []int{503, 200}, wantPosts: 2, wantWaits: []time.Duration{time.Second}, wantOK: true},
		{name: "429 waits Retry-After", statuses: []int{429, 200}, wantPosts: 2, wantWaits: []time.Duration{7 * time.Second}, wantOK: true},
		{name: "404 is final", statuses: []int{404}, wantPosts: 1},
		{name: "gives up after three attempts", statuses: []int{500}, wantPosts: 3, wantWaits: []time.Duration{time.Second, 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				posts int
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				mu.Lock()
				code := tt.statuses[min(posts, len(tt.statuses)-1)]
				posts++
				mu.Unlock()
				if code == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "7")
				}
				w.WriteHeader(code)
			}))
			defer srv.Close()
			sleeper := &bottest.Sleeper{}
			log, rec := bottest.Logger()
			in, err := NewInbound(InboundOptions{
				Router: &recordingRouter{Reply: bot.Reply{Title: "done"}}, ResponseURLPrefixes: []string{srv.URL + "/"},
				HTTPClient: srv.Client(), Sleep: sleeper.Sleep, Logger: log,
			})
			if err != nil {
				t.Fatal(err)
			}
			in.Interaction(context.Background(), goslack.InteractionCallback{
				Type: goslack.InteractionTypeBlockActions, ResponseURL: srv.URL + "/actions/T0/1/secretpath",
				ActionCallback: goslack.ActionCallbacks{BlockActions: []*goslack.BlockAction{{ActionID: "vmtriage:cmd:0", Value: "help"}}},
			})
			in.Wait()
			mu.Lock()
			defer mu.Unlock()
			if posts != tt.wantPosts {
				t.Errorf("%d posts, want %d", posts, tt.wantPosts)
			}
			if got := sleeper.Waits(); !reflect.DeepEqual(got, tt.wantWaits) {
				t.Errorf("waits %v, want %v", got, tt.wantWaits)
			}
			delivered := counterValue(in.commands.WithLabelValues("button", "response_url")) == 1
			failed := counterValue(in.postErrors) == 1
			if delivered != tt.wantOK || failed == tt.wantOK {
				t.Errorf("delivered %v failed %v, want delivered %v", delivered, failed, tt.wantOK)
			}
			if strings.Contains(rec.String(), "secretpath") {
				t.Errorf("the response_url's path was logged:\n%s", rec)
			}
		})
	}
}
