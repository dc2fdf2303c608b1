package slack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// call is one chat.postMessage or chat.update the fake Slack accepted.
type call struct {
	Method    string // "post" or "update"
	Channel   string
	TS        string // the message's ts (new for a post)
	ThreadTS  string // set for a reply in a thread
	Broadcast bool
	Text      string
	Blocks    string // JSON
}

// fault is what the fake Slack answers instead of success.
type fault struct {
	status     int    // HTTP status (429, 500, ...); 0 with code for ok:false
	retryAfter int    // seconds, for 429
	code       string // Slack error code for an ok:false answer
}

// fakeSlack is slacktest's server extended with chat.update and a recorder
// of every accepted post and update. Faults queued with failNext are
// answered, one per request, before any request succeeds; hold, if set,
// is called before a post is accepted (to stall it).
type fakeSlack struct {
	srv *slacktest.Server

	mu     sync.Mutex
	calls  []call
	faults []fault
	nextTS int
	// messages maps channel+ts of root messages to their current text, so
	// chat.update of an unknown message fails as Slack's does.
	messages map[string]bool
	hold     func(method string)
	requests int
}

func newFakeSlack(t testing.TB) *fakeSlack {
	t.Helper()
	f := &fakeSlack{messages: map[string]bool{}}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.handle("post"))
		c.Handle("/chat.update", f.handle("update"))
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

// client returns a Slack client with token pointed at the fake.
func (f *fakeSlack) client(token string) *goslack.Client {
	return goslack.New(token, goslack.OptionAPIURL(f.srv.GetAPIURL()))
}

func (f *fakeSlack) failNext(fs ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fs...)
}

func (f *fakeSlack) setHold(h func(method string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = h
}

func (f *fakeSlack) handle(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.requests++
		hold := f.hold
		if len(f.faults) > 0 {
			ft := f.faults[0]
			f.faults = f.faults[1:]
			f.mu.Unlock()
			writeFault(w, ft)
			return
		}
		f.mu.Unlock()
		if hold != nil {
			hold(method)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		c := call{Method: method, Channel: r.Form.Get("channel"), ThreadTS: r.Form.Get("thread_ts"),
			Broadcast: r.Form.Get("reply_broadcast") == "true", Text: r.Form.Get("text"), Blocks: r.Form.Get("blocks")}
		if c.Channel == "" {
			writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
			return
		}
		switch method {
		case "post":
			f.nextTS++
			c.TS = fmt.Sprintf("1795341720.%06d", f.nextTS)
			if c.ThreadTS == "" {
				f.messages[c.Channel+"/"+c.TS] = true
			} else if !f.messages[c.Channel+"/"+c.ThreadTS] {
				writeJSON(w, map[string]any{"ok": false, "error": "thread_not_found"})
				return
			}
		case "update":
			c.TS = r.Form.Get("ts")
			if !f.messages[c.Channel+"/"+c.TS] {
				writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
				return
			}
		}
		f.calls = append(f.calls, c)
		writeJSON(w, map[string]any{"ok": true, "channel": c.Channel, "ts": c.TS, "text": c.Text})
	}
}

func writeFault(w http.ResponseWriter, ft fault) {
	switch {
	case ft.status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(ft.retryAfter))
		w.WriteHeader(ft.status)
	case ft.status != 0:
		w.WriteHeader(ft.status)
		_, _ = w.Write([]byte("<html>upstream trouble</html>"))
	default:
		writeJSON(w, map[string]any{"ok": false, "error": ft.code})
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// deleteMessage deletes a root message, as a person can in Slack.
func (f *fakeSlack) deleteMessage(channel, ts string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.messages, channel+"/"+ts)
}

// Calls returns what was accepted, in order.
func (f *fakeSlack) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// Requests counts every request, failed ones included.
func (f *fakeSlack) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// roots returns the root posts (not thread replies).
func roots(calls []call) []call {
	var out []call
	for _, c := range calls {
		if c.Method == "post" && c.ThreadTS == "" {
			out = append(out, c)
		}
	}
	return out
}

// summary shows calls one per line, for comparing with what a test wants:
// "post C1", "update C1 ts=…", "reply C1 parent=… broadcast: text".
func summary(calls []call) string {
	var b strings.Builder
	for _, c := range calls {
		switch {
		case c.Method == "update":
			fmt.Fprintf(&b, "update %s %s\n", c.Channel, c.TS)
		case c.ThreadTS != "":
			bc := ""
			if c.Broadcast {
				bc = " broadcast"
			}
			fmt.Fprintf(&b, "reply %s %s%s: %s\n", c.Channel, c.ThreadTS, bc, c.Text)
		default:
			fmt.Fprintf(&b, "post %s %s\n", c.Channel, c.TS)
		}
	}
	return b.String()
}
