package slack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goslack "github.com/slack-go/slack"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// TestSlashCommandEndToEnd sends a signed `/triage status vm-0042` over
// real HTTP through the Verifier (deduplicating in Redis), the Inbound and
// the bot's own Router, reading a real store, and checks the Block Kit
// answer; then Slack's retry of the same request is not run again.
func TestSlashCommandEndToEnd(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(bottest.Now)
	st := storetest.New(t, store.Options{Clock: clk})
	crashed := bottest.Now.Add(-5 * time.Minute)
	err := st.Apply(ctx, []model.Observation{{
		Source: "libvirt", Kind: model.KindVM, ID: "vm-0042", Host: "host-007", Site: "pod-a",
		State: model.StateCrashed, Attrs: map[string]any{model.AttrCrashReason: "panicked"},
		TimeGenerated: crashed, TimeReceived: crashed.Add(time.Second),
	}})
	if err != nil {
		t.Fatal(err)
	}
	inc := bottest.GuestCrash
	inc.ID, inc.Subject, inc.VMs, inc.Host, inc.Version = "inc-1", "vm-0042", []string{"vm-0042"}, "host-007", 0
	if err := st.SaveIncident(ctx, &inc); err != nil {
		t.Fatal(err)
	}

	log, rec := bottest.Logger()
	router, err := bot.NewRouter(bot.Options{
		Incidents: st, Fleet: st, Actions: bottest.NewIncidents(clk),
		NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		Clock:    clk, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	rdb := storetest.Client(t)
	seenPrefix := "test-e2e-" + uniqueTrigger()
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), "{"+seenPrefix+"}:*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	reg := prometheus.NewRegistry()
	v, err := NewVerifier(VerifyOptions{SigningSecret: testSigningSecret, Seen: RedisSeen{Client: rdb, Prefix: seenPrefix}, Registerer: reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInbound(InboundOptions{Router: router, Registerer: reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, h := range in.Routes(v) {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	body := url.Values{
		"command": {"/triage"}, "text": {"status vm-0042"}, "user_id": {"U0ALICE"}, "channel_id": {"C0OPS"},
		"team_id": {"T0VMT"}, "response_url": {"https://hooks.slack.com/commands/T0VMT/1/e2e"}, "trigger_id": {uniqueTrigger()},
	}.Encode()
	send := func(retry string) (*http.Response, string) {
		ts := time.Now()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/slack/commands", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set("X-Slack-Signature", signSlack(testSigningSecret, ts.Unix(), body))
		if retry != "" {
			req.Header.Set("X-Slack-Retry-Num", retry)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, got := send("")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
	var msg goslack.WebhookMessage
	if err := json.Unmarshal([]byte(got), &msg); err != nil {
		t.Fatalf("reply is not a message: %v\n%s", err, got)
	}
	if msg.ResponseType != "ephemeral" || !strings.Contains(msg.Text, "vm-0042 is crashed") {
		t.Errorf("reply type %q text %q; want an ephemeral \"vm-0042 is crashed\"", msg.ResponseType, msg.Text)
	}
	if msg.Blocks == nil {
		t.Fatalf("reply has no blocks: %s", got)
	}
	// The whole rendering, against a file, so a change to what Slack shows
	// for a typed command is seen in review.
	golden(t, "inbound-status-vm-e2e", msg.Blocks.BlockSet, msg.Text)
	blocks, err := json.Marshal(msg.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host-007", "pod-a", "panicked", "inc-1", "5m"} {
		if !strings.Contains(string(blocks), want) {
			t.Errorf("blocks do not mention %q:\n%s", want, blocks)
		}
	}

	resp, got = send("1")
	if resp.StatusCode != http.StatusOK || got != "" || resp.Header.Get("X-Slack-No-Retry") != "1" {
		t.Errorf("retry: status %d body %q; want an empty 200 with X-Slack-No-Retry", resp.StatusCode, got)
	}
	in.Wait()
	if n := counterValue(in.commands.WithLabelValues("typed", "inline")); n != 1 {
		t.Errorf("commands answered inline = %v, want 1 (the retry must not run)", n)
	}
	bottest.AssertNoSecrets(t, []string{testSigningSecret}, map[string]string{"log": rec.String(), "reply": got})
}
