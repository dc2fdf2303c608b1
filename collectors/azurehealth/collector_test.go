package azurehealth

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// TestPollSequence walks the collector through its life against recorded
// pages: a baseline over two pages where page 2 is first throttled and
// then fails once, unchanged polls that send nothing, a change, and the
// keep-alive heartbeats.
func TestPollSequence(t *testing.T) {
	h := newHarness(t, nil)
	h.az.setPage("sub-a/", readTestdata(t, "page1.json"))
	h.az.setPage("sub-a/page2", readTestdata(t, "page2.json"))
	h.az.addFaults("sub-a/page2",
		fault{status: 429, retryAfter: "7", body: `{"error":{"code":"TooManyRequests","message":"Rate limit exceeded."}}`},
		fault{status: 500, body: `{"error":{"code":"InternalServerError","message":"Try again."}}`})
	ctx := context.Background()
	var out strings.Builder

	step := func(title string, wantErr bool) []model.Observation {
		t.Helper()
		err := h.c.Poll(ctx)
		if (err != nil) != wantErr {
			t.Fatalf("%s: Poll error = %v, want error %v", title, err, wantErr)
		}
		obs := h.sink.take()
		out.WriteString("## " + title + "\n" + summary(obs))
		return obs
	}

	step("baseline (page 2 throttled, then 500, then served)", false)
	if got, want := h.az.takeCalls(), []string{"sub-a/ 200", "sub-a/page2 429", "sub-a/page2 500", "sub-a/page2 200"}; !slices.Equal(got, want) {
		t.Errorf("calls = %v, want %v", got, want)
	}
	// Retry-After: 7 is honoured; the 500 that follows backs off 2s.
	if got, want := h.takeWaits(), []time.Duration{7 * time.Second, 2 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vmtriage_azurehealth_errors_total", []string{"kind", "throttled"}, 1},
		{"vmtriage_azurehealth_errors_total", []string{"kind", "http"}, 1},
		{"vmtriage_azurehealth_errors_total", []string{"kind", "record"}, 1},
		{"vmtriage_azurehealth_polls_total", []string{"result", "ok"}, 1},
		{"vmtriage_azurehealth_observations_total", []string{"type", "baseline"}, 4},
		{"vmtriage_azurehealth_vms", nil, 4},
		{"vmtriage_azurehealth_last_success_timestamp_seconds", nil, float64(t0.Add(9 * time.Second).Unix())},
	} {
		if got := h.counter(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if !strings.Contains(h.logs.String(), "vm-broken") || !strings.Contains(h.logs.String(), "occuredTime") {
		t.Errorf("the malformed record is not logged with its reason:\n%s", h.logs)
	}

	h.clk.Advance(time.Minute)
	step("unchanged: nothing sent", false)

	h.clk.Advance(time.Minute)
	changed := strings.Replace(readTestdata(t, "page1.json"), `"availabilityState": "Available",
        "title": "Available",
        "summary": "There aren't any known Azure platform problems affecting this virtual machine.",
        "occuredTime": "2026-11-20T07:00:00Z"`, `"availabilityState": "Unavailable",
        "title": "VirtualMachineHostCrashed",
        "summary": "We're sorry, your virtual machine isn't available because an unexpected failure on the host server.",
        "reasonType": "Unplanned",
        "context": "Platform Initiated",
        "category": "Unplanned",
        "occuredTime": "2026-11-22T10:01:40Z"`, 1)
	if changed == readTestdata(t, "page1.json") {
		t.Fatal("the test's replacement did not apply to page1.json")
	}
	h.az.setPage("sub-a/", changed)
	obs := step("vm-web-2 becomes unavailable: one change", false)
	if len(obs) != 1 || obs[0].ID != "vm-web-2" || obs[0].State != model.StateUnavailable || obs[0].Event != "VirtualMachineHostCrashed" {
		t.Fatalf("change = %+v", obs)
	}
	if !obs[0].TimeReceived.Equal(h.clk.Now()) {
		t.Errorf("time received = %s, want the poll's %s", obs[0].TimeReceived, h.clk.Now())
	}

	h.clk.Advance(3 * time.Minute)
	step("five minutes after the baseline: heartbeats for the VMs that did not change", false)
	h.clk.Advance(time.Minute)
	step("and nothing the minute after", false)
	golden(t, "poll-sequence", out.String())
}

// TestPartialFailureKeepsWhatWasRead: page 2 keeps failing, so the poll
// sends page 1's VMs and reports the error; the next poll, with page 2
// back, sends page 2's VMs as their baseline and nothing of page 1 again.
func TestPartialFailureKeepsWhatWasRead(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxAttempts = 3 })
	h.az.setPage("sub-a/", readTestdata(t, "page1.json"))
	h.az.setPage("sub-a/page2", readTestdata(t, "page2.json"))
	for range 3 {
		h.az.addFaults("sub-a/page2", fault{status: 503, body: "upstream unavailable"})
	}
	err := h.c.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "page 2") || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("Poll error = %v, want page 2's 503", err)
	}
	if got := ids(h.sink.take()); !slices.Equal(got, []string{"vm-web-1", "vm-web-2"}) {
		t.Errorf("sent %v, want page 1's VMs", got)
	}
	if got := h.counter("vmtriage_azurehealth_polls_total", "result", "partial"); got != 1 {
		t.Errorf("partial polls = %v, want 1", got)
	}
	if got := h.counter("vmtriage_azurehealth_last_success_timestamp_seconds"); got != 0 {
		t.Errorf("a partial poll set the last success time to %v", got)
	}
	if got, want := h.takeWaits(), []time.Duration{time.Second, 2 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}

	h.clk.Advance(time.Minute)
	if err := h.c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ids(h.sink.take()); !slices.Equal(got, []string{"batch_3", "vm-db-1"}) {
		t.Errorf("sent %v, want page 2's VMs only", got)
	}
}

// TestSinkFailureLosesNothing: when the sink refuses a batch, the changes
// are not remembered as sent, so the next poll sends them again.
func TestSinkFailureLosesNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.az.setPage("sub-a/", readTestdata(t, "page1.json"))
	h.az.setPage("sub-a/page2", readTestdata(t, "page2.json"))
	h.sink.failing = true
	if err := h.c.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "redis is down") {
		t.Fatalf("Poll error = %v, want the sink's", err)
	}
	if got := h.counter("vmtriage_azurehealth_errors_total", "kind", "sink"); got != 1 {
		t.Errorf("sink errors = %v, want 1", got)
	}
	h.sink.failing = false
	h.clk.Advance(time.Minute)
	if err := h.c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ids(h.sink.take()); len(got) != 4 {
		t.Errorf("after the sink recovered, sent %v, want the 4 VMs", got)
	}
}

func TestQuietBaseline(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.QuietBaseline = true; o.KeepAlive = -1 })
	h.az.setPage("sub-a/", readTestdata(t, "page1.json"))
	h.az.setPage("sub-a/page2", readTestdata(t, "page2.json"))
	if err := h.c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.sink.take(); len(got) != 0 {
		t.Fatalf("a quiet baseline sent %s", summary(got))
	}
	if got := h.c.Known(); !slices.Equal(got, []string{"batch_3", "vm-db-1", "vm-web-1", "vm-web-2"}) {
		t.Errorf("known = %v", got)
	}
	h.az.setPage("sub-a/page2", strings.Replace(readTestdata(t, "page2.json"), `"availabilityState": "Degraded"`, `"availabilityState": "Available"`, 1))
	h.clk.Advance(time.Minute)
	if err := h.c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ids(h.sink.take()); !slices.Equal(got, []string{"vm-db-1"}) {
		t.Errorf("sent %v, want only the VM that changed", got)
	}
}

// TestTokenRefresh: the token is reused while valid, replaced RefreshBefore
// its expiry (on the fake clock), and replaced at once when the API
// refuses it.
func TestTokenRefresh(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.KeepAlive = -1 })
	h.az.setPage("sub-a/", `{"value":[]}`)
	poll := func() {
		t.Helper()
		if err := h.c.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	issued := func() int {
		h.az.mu.Lock()
		defer h.az.mu.Unlock()
		return h.az.issued
	}
	poll()
	if issued() != 1 {
		t.Fatalf("tokens issued = %d, want 1", issued())
	}
	h.clk.Advance(54 * time.Minute) // 6 minutes left of 60
	poll()
	if issued() != 1 {
		t.Fatalf("tokens issued = %d with 6m left, want still 1", issued())
	}
	h.clk.Advance(2 * time.Minute) // 4 minutes left: inside RefreshBefore
	poll()
	if issued() != 2 {
		t.Fatalf("tokens issued = %d with 4m left, want 2 (refreshed before expiry)", issued())
	}
	h.az.takeCalls()

	// The API stops accepting the cached token (revoked): one 401, a new
	// token, and the page is served.
	h.az.mu.Lock()
	h.az.valid = "tok-3"
	h.az.mu.Unlock()
	h.clk.Advance(time.Minute)
	poll()
	if got, want := h.az.takeCalls(), []string{"sub-a/ 401", "sub-a/ 200"}; !slices.Equal(got, want) || issued() != 3 {
		t.Errorf("calls = %v (issued %d), want %v after one new token", got, issued(), want)
	}
}

// TestTokenRefusedNamesTheProblem: a wrong secret gives an error naming the
// token endpoint's reason, not retried, and the secret appears nowhere.
func TestTokenRefusedNamesTheProblem(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ClientSecret = "wrong-secret-value" })
	h.az.setPage("sub-a/", `{"value":[]}`)
	err := h.c.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "invalid_client") || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("Poll error = %v, want the token endpoint's invalid_client", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") || strings.Contains(h.logs.String(), "wrong-secret-value") {
		t.Errorf("the secret leaked: %v\n%s", err, h.logs)
	}
	if got := h.takeWaits(); len(got) != 0 {
		t.Errorf("a refused secret was retried: waits %v", got)
	}
	if got := h.counter("vmtriage_azurehealth_errors_total", "kind", "token"); got != 1 {
		t.Errorf("token errors = %v, want 1", got)
	}
}

func TestTokenEndpointThrottledIsRetried(t *testing.T) {
	h := newHarness(t, nil)
	h.az.setPage("sub-a/", `{"value":[]}`)
	h.az.tokenFaults = []fault{{status: 429, retryAfter: "3", body: `{"error":"temporarily_unavailable"}`}}
	if err := h.c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.takeWaits(); !slices.Equal(got, []time.Duration{3 * time.Second}) {
		t.Errorf("waits = %v, want the token endpoint's Retry-After", got)
	}
}

func TestNextLinkElsewhereIsNotFollowed(t *testing.T) {
	h := newHarness(t, nil)
	h.az.setPage("sub-a/", strings.Replace(readTestdata(t, "page1.json"), "{{base}}", "https://attacker.example", 1))
	err := h.c.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "attacker.example") {
		t.Fatalf("Poll error = %v, want the foreign nextLink refused", err)
	}
	if got := ids(h.sink.take()); !slices.Equal(got, []string{"vm-web-1", "vm-web-2"}) {
		t.Errorf("sent %v, want page 1's VMs kept", got)
	}
}

func TestUnknownSubscriptionIsNotRetried(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Subscriptions = []string{"sub-a", "sub-gone"} })
	h.az.setPage("sub-a/", readTestdata(t, "page1.json"))
	h.az.setPage("sub-a/page2", readTestdata(t, "page2.json"))
	err := h.c.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "sub-gone") || !strings.Contains(err.Error(), "SubscriptionNotFound") {
		t.Fatalf("Poll error = %v, want sub-gone's 404 named", err)
	}
	if got := len(h.sink.take()); got != 4 {
		t.Errorf("sent %d observations, want sub-a's 4", got)
	}
	if got := h.takeWaits(); len(got) != 0 {
		t.Errorf("a 404 was retried: waits %v", got)
	}
}

func TestRunStopsCleanlyAndLogsTarget(t *testing.T) {
	h := newHarness(t, nil)
	h.az.setPage("sub-a/", `{"value":[]}`)
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{}, 10)
	h.c.opts.Wait = func(ctx context.Context, d time.Duration) error {
		polled <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() { done <- h.c.Run(ctx) }()
	<-polled
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	logs := h.logs.String()
	for _, want := range []string{"azure resource health collector starting", h.az.srv.URL, "sub-a", "client-1", "collector stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"nothing", Options{}, "at least one subscription is required; tenant id is required; client id is required; client secret is required; a sink is required"},
		{"bad subscription", Options{Subscriptions: []string{"a/b"}, TenantID: "t", ClientID: "c", ClientSecret: "s", Sink: &sink{}}, `subscription "a/b" is not a subscription id`},
		{"bad endpoint", Options{Subscriptions: []string{"a"}, TenantID: "t", ClientID: "c", ClientSecret: "s", Sink: &sink{}, Endpoint: "ftp://x"}, `endpoint "ftp://x" is not an http(s) URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "12", 12 * time.Second},
		{"zero", "0", 0},
		{"capped", "86400", maxRetryAfter},
		{"http date", now.Add(90 * time.Second).Format(httpTimeFormat), 90 * time.Second},
		{"date in the past", now.Add(-time.Hour).Format(httpTimeFormat), 0},
		{"garbage", "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string][]string{"Retry-After": {tt.header}}
			if got := retryAfter(h, now); got != tt.want {
				t.Errorf("retryAfter(%q) = %s, want %s", tt.header, got, tt.want)
			}
		})
	}
}

const httpTimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

func ids(obs []model.Observation) []string {
	var out []string
	for _, o := range obs {
		if o.State != "" {
			out = append(out, o.ID)
		}
	}
	slices.Sort(out)
	return out
}

// TestKeepAliveSurvivesAFailedPage: VMs of a page that failed still get
// their heartbeat (they were listed since the last ones), but a VM that a
// complete listing no longer shows gets none.
func TestKeepAliveSurvivesAFailedPage(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxAttempts = 1 })
	h.az.setPage("sub-a/", readTestdata(t, "page1.json"))
	h.az.setPage("sub-a/page2", readTestdata(t, "page2.json"))
	if err := h.c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.sink.take()
	h.clk.Advance(5 * time.Minute)
	h.az.addFaults("sub-a/page2", fault{status: 502, body: "bad gateway"})
	if err := h.c.Poll(context.Background()); err == nil {
		t.Fatal("want page 2's error")
	}
	if got := heartbeats(h.sink.take()); !slices.Equal(got, []string{"batch_3", "vm-db-1", "vm-web-1", "vm-web-2"}) {
		t.Errorf("heartbeats with page 2 failing = %v, want all four", got)
	}
	h.clk.Advance(5 * time.Minute)
	h.az.setPage("sub-a/page2", `{"value":[]}`)
	if err := h.c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := heartbeats(h.sink.take()); !slices.Equal(got, []string{"vm-web-1", "vm-web-2"}) {
		t.Errorf("heartbeats after page 2 emptied = %v, want page 1's VMs only", got)
	}
}

func heartbeats(obs []model.Observation) []string {
	var out []string
	for _, o := range obs {
		if o.State == "" {
			out = append(out, o.ID)
		}
	}
	slices.Sort(out)
	return out
}
