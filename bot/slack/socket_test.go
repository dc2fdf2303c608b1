package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
)

// ackRecord is one acknowledgement a fakeAcker saw.
type ackRecord struct {
	EnvelopeID string
	Payload    any
}

type fakeAcker struct {
	mu   sync.Mutex
	acks []ackRecord
}

func (a *fakeAcker) Ack(req socketmode.Request, payload ...any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := ackRecord{EnvelopeID: req.EnvelopeID}
	if len(payload) > 0 {
		r.Payload = payload[0]
	}
	a.acks = append(a.acks, r)
	return nil
}

func (a *fakeAcker) all() []ackRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ackRecord(nil), a.acks...)
}

// TestSocketHandle feeds events straight to the handler, as socketmode's
// client delivers them, and checks what is acknowledged and routed.
func TestSocketHandle(t *testing.T) {
	hooks := newResponseHooks(t)
	respURL := hooks.URL + "/commands/T0VMT/9/sock"
	sc := goslack.SlashCommand{Command: "/triage", Text: "incidents pod-a", UserID: "U0ALICE", ChannelID: "C0OPS", ResponseURL: respURL}
	ic := goslack.InteractionCallback{
		Type: goslack.InteractionTypeBlockActions, ResponseURL: respURL,
		User: goslack.User{ID: "U0BOB"}, Channel: goslack.Channel{GroupConversation: goslack.GroupConversation{Conversation: goslack.Conversation{ID: "C0OPS"}}},
		ActionCallback: goslack.ActionCallbacks{BlockActions: []*goslack.BlockAction{{ActionID: "vmtriage:cmd:2", BlockID: "b", Value: "silence host-007 1h"}}},
	}
	reply := bot.Reply{Title: "2 open incidents"}
	blocks, text := ReplyBlocks(reply)
	tests := []struct {
		name      string
		evt       socketmode.Event
		wantAcks  []ackRecord
		wantCalls []routedCall
		wantPost  bool
	}{
		{name: "slash command answered in the ack",
			evt:       socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: sc, Request: &socketmode.Request{EnvelopeID: "e-1"}},
			wantAcks:  []ackRecord{{EnvelopeID: "e-1", Payload: &goslack.WebhookMessage{Text: text, Blocks: &goslack.Blocks{BlockSet: blocks}, ResponseType: "ephemeral"}}},
			wantCalls: []routedCall{{Text: "incidents pod-a", From: bot.Command{User: "U0ALICE", Channel: "C0OPS", Origin: bot.OriginTyped, ResponseURL: respURL}}}},
		{name: "click acked at once, answered through response_url",
			evt:       socketmode.Event{Type: socketmode.EventTypeInteractive, Data: ic, Request: &socketmode.Request{EnvelopeID: "e-2"}},
			wantAcks:  []ackRecord{{EnvelopeID: "e-2"}},
			wantCalls: []routedCall{{Text: "silence host-007 1h", From: bot.Command{User: "U0BOB", Channel: "C0OPS", Origin: bot.OriginButton, ResponseURL: respURL}}},
			wantPost:  true},
		{name: "events are acked and ignored",
			evt:      socketmode.Event{Type: socketmode.EventTypeEventsAPI, Data: slackevents.EventsAPIEvent{}, Request: &socketmode.Request{EnvelopeID: "e-3"}},
			wantAcks: []ackRecord{{EnvelopeID: "e-3"}}},
		{name: "slash command with unexpected data is still acked",
			evt:      socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: "garbage", Request: &socketmode.Request{EnvelopeID: "e-4"}},
			wantAcks: []ackRecord{{EnvelopeID: "e-4"}}},
		{name: "hello wants no ack",
			evt: socketmode.Event{Type: socketmode.EventTypeHello, Request: &socketmode.Request{Type: "hello"}}},
		{name: "client events want no ack",
			evt: socketmode.Event{Type: socketmode.EventTypeConnected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recordingRouter{Reply: reply}
			in, err := NewInbound(InboundOptions{Router: r, ResponseURLPrefixes: []string{hooks.URL + "/"}, HTTPClient: hooks.Client(), InlineWait: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSocket(SocketOptions{API: goslack.New("xoxb-test"), Inbound: in})
			if err != nil {
				t.Fatal(err)
			}
			a := &fakeAcker{}
			s.handle(context.Background(), tt.evt, a)
			if tt.wantPost {
				p := hooks.next(t)
				if p.Msg.Text != text {
					t.Errorf("response_url got %q", p.Msg.Text)
				}
			}
			in.Wait()
			hooks.none(t)
			if got := a.all(); !reflect.DeepEqual(got, tt.wantAcks) {
				t.Errorf("acks %+v, want %+v", got, tt.wantAcks)
			}
			if got := r.Calls(); !reflect.DeepEqual(got, tt.wantCalls) {
				t.Errorf("router got %+v, want %+v", got, tt.wantCalls)
			}
		})
	}
}

// fakeSocketSlack is a Slack with Socket Mode: apps.connections.open
// hands out a WebSocket URL, and the test writes envelopes to, and reads
// acknowledgements from, the connection.
type fakeSocketSlack struct {
	*httptest.Server
	conns    chan *websocket.Conn
	mu       sync.Mutex
	authSeen []string
}

func newFakeSocketSlack(t *testing.T) *fakeSocketSlack {
	t.Helper()
	f := &fakeSocketSlack{conns: make(chan *websocket.Conn, 1)}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.authSeen = append(f.authSeen, r.Header.Get("Authorization"))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"url":"ws://%s/link"}`, r.Host)
	})
	mux.HandleFunc("/link", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		f.conns <- c
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSocketSlack) auth() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.authSeen...)
}

// readAck reads the next acknowledgement, skipping nothing: the client
// only ever writes acks (and pongs, which are control frames).
func readAck(t *testing.T, c *websocket.Conn) map[string]json.RawMessage {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack map[string]json.RawMessage
	if err := c.ReadJSON(&ack); err != nil {
		t.Fatalf("read ack: %v", err)
	}
	return ack
}

// TestSocketModeOverWebSocket runs the real socketmode client against a
// fake Slack: connect with the app token, receive a slash command and a
// click, acknowledge both by envelope, answer the click via response_url.
func TestSocketModeOverWebSocket(t *testing.T) {
	const (
		botToken = "xoxb-1111-2222-sockettesttoken"
		appToken = "xapp-1-A0VMT-3333-socketapptoken"
	)
	slack := newFakeSocketSlack(t)
	hooks := newResponseHooks(t)
	log, rec := bottest.Logger()
	r := &recordingRouter{Reply: bot.Reply{Title: "vm-0042 is crashed"}}
	in, err := NewInbound(InboundOptions{Router: r, ResponseURLPrefixes: []string{hooks.URL + "/"}, HTTPClient: hooks.Client(), InlineWait: time.Minute, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	api := goslack.New(botToken, goslack.OptionAPIURL(slack.URL+"/api/"), goslack.OptionAppLevelToken(appToken))
	s, err := NewSocket(SocketOptions{API: api, Inbound: in, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	var c *websocket.Conn
	select {
	case c = <-slack.conns:
	case <-time.After(10 * time.Second):
		t.Fatal("socket mode did not connect")
	}
	defer c.Close()
	c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1})
	c.WriteJSON(map[string]any{
		"type": "slash_commands", "envelope_id": "env-cmd", "accepts_response_payload": true,
		"payload": map[string]string{"command": "/triage", "text": "status vm-0042", "user_id": "U0ALICE",
			"channel_id": "C0OPS", "response_url": hooks.URL + "/commands/1", "trigger_id": "t1"},
	})
	ack := readAck(t, c)
	if string(ack["envelope_id"]) != `"env-cmd"` {
		t.Fatalf("ack %s, want envelope env-cmd", ack["envelope_id"])
	}
	var msg goslack.WebhookMessage
	if err := json.Unmarshal(ack["payload"], &msg); err != nil || msg.Text != "vm-0042 is crashed" || msg.ResponseType != "ephemeral" {
		t.Errorf("ack payload %s (err %v): want the reply", ack["payload"], err)
	}

	c.WriteJSON(map[string]any{
		"type": "interactive", "envelope_id": "env-click",
		"payload": map[string]any{"type": "block_actions", "response_url": hooks.URL + "/actions/2",
			"user": map[string]string{"id": "U0BOB"}, "channel": map[string]string{"id": "C0OPS"},
			"actions": []map[string]string{{"action_id": "vmtriage:cmd:0", "block_id": "b", "value": "ack inc-42", "type": "button"}}},
	})
	ack = readAck(t, c)
	if string(ack["envelope_id"]) != `"env-click"` {
		t.Fatalf("ack %s, want envelope env-click", ack["envelope_id"])
	}
	if p, ok := ack["payload"]; ok && string(p) != "null" {
		t.Errorf("a click is acked empty, got payload %s", p)
	}
	p := hooks.next(t)
	if p.Path != "/actions/2" || p.Msg.Text != "vm-0042 is crashed" {
		t.Errorf("response_url got %s %q", p.Path, p.Msg.Text)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	in.Wait()
	want := []routedCall{
		{Text: "status vm-0042", From: bot.Command{User: "U0ALICE", Channel: "C0OPS", Origin: bot.OriginTyped, ResponseURL: hooks.URL + "/commands/1"}},
		{Text: "ack inc-42", From: bot.Command{User: "U0BOB", Channel: "C0OPS", Origin: bot.OriginButton, ResponseURL: hooks.URL + "/actions/2"}},
	}
	if got := r.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("router got %+v, want %+v", got, want)
	}
	if auth := slack.auth(); len(auth) != 1 || auth[0] != "Bearer "+appToken {
		t.Errorf("apps.connections.open saw %d calls; want one with the app token", len(auth))
	}
	bottest.AssertNoSecrets(t, []string{botToken, appToken}, map[string]string{"log": rec.String()})
	if !strings.Contains(rec.String(), "slack socket mode connected") {
		t.Errorf("connection not logged:\n%s", rec)
	}
}
