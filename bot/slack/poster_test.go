package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

const testToken = "xoxb-1234-5678-s3cr3tT0kenValue"

type posterEnv struct {
	slack *fakeSlack
	store *store.Store
	clock *clock.Fake
	log   *bottest.Recorder
}

func newPosterEnv(t *testing.T) *posterEnv { return newPosterEnvTB(t) }

func newPosterEnvTB(t testing.TB) *posterEnv {
	t.Helper()
	c := clock.NewFake(bottest.Now)
	_, rec := bottest.Logger()
	return &posterEnv{slack: newFakeSlack(t), store: storetest.New(t, store.Options{Clock: c}), clock: c, log: rec}
}

// poster returns a new Poster on the env's Slack and store (another
// replica, each call).
func (e *posterEnv) poster(t testing.TB, change func(*PosterOptions)) *Poster {
	t.Helper()
	opts := PosterOptions{Client: e.slack.client(testToken), Store: e.store, DefaultChannel: "C0DEFAULT",
		Clock: e.clock, Logger: slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if change != nil {
		change(&opts)
	}
	p, err := NewPoster(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func note(inc model.Incident, changes ...bot.Change) bot.Notification {
	if len(changes) == 0 {
		changes = []bot.Change{bot.ChangeOpened}
	}
	return bot.Notification{View: bot.NewIncidentView(inc), Changes: changes}
}

// version returns inc at version v after change.
func version(inc model.Incident, v int64, change func(*model.Incident)) model.Incident {
	inc = with(inc, func(i *model.Incident) {})
	inc.Version = v
	if change != nil {
		change(&inc)
	}
	return inc
}

var footerVersion = regexp.MustCompile(`version (\d+)`)

// shownVersion is the incident version a message's blocks show.
func shownVersion(c call) string {
	m := footerVersion.FindAllStringSubmatch(c.Blocks, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// The life of one incident: posted once, updated in place at each version,
// follow-ups in its thread; a repeated or older version changes nothing.
func TestPosterLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newPosterEnv(t)
	p := e.poster(t, nil)
	base := bottest.GuestCrash
	base.AckedBy, base.AckedAt = "", time.Time{}
	v1 := version(base, 1, nil)
	v2 := version(base, 2, func(i *model.Incident) { i.AckedBy, i.AckedAt = "U0ALICE", bottest.Now })
	v3 := version(base, 3, func(i *model.Incident) {
		i.AckedBy = "U0ALICE"
		i.Level = 2
		i.Targets = []string{"usergroup:S0ONCALL", "user:U0BOB", "jira-priority:High"}
	})
	v4 := version(v3, 4, func(i *model.Incident) { i.Ticket, i.TicketURL = "OPS-9", "https://jira.example/browse/OPS-9" })
	v5 := version(v4, 5, func(i *model.Incident) {
		i.Status, i.ResolvedAt = model.StatusResolved, i.StartedAt.Add(23*time.Minute)
	})

	steps := []struct {
		name string
		n    bot.Notification
		want string // calls added by this step
	}{
		{"first post", note(v1), "post C0DEFAULT 1795341720.000001\n"},
		{"same version again", note(v1), ""},
		{"acked", note(v2, bot.ChangeAcked),
			"update C0DEFAULT 1795341720.000001\nreply C0DEFAULT 1795341720.000001: :eyes: *Acknowledged* by <@U0ALICE>.\n"},
		{"an older version after a newer", note(v1), ""},
		// The Notifier's Previous may be stale or nil after a restart: the
		// poster works out the changes from its own record.
		{"escalated (changes from the store, not the notification)", note(v3, bot.ChangeOpened),
			"update C0DEFAULT 1795341720.000001\nreply C0DEFAULT 1795341720.000001: :rotating_light: *Escalated to level 2*. <!subteam^S0ONCALL> <@U0BOB>\n"},
		{"ticket", note(v4, bot.ChangeTicket),
			"update C0DEFAULT 1795341720.000001\nreply C0DEFAULT 1795341720.000001: :ticket: Ticket <https://jira.example/browse/OPS-9|OPS-9>.\n"},
		{"resolved", note(v5, bot.ChangeResolved),
			"update C0DEFAULT 1795341720.000001\nreply C0DEFAULT 1795341720.000001: :large_green_circle: *Resolved* after 23m.\n"},
		{"resolved again", note(v5, bot.ChangeResolved), ""},
	}
	seen := 0
	for _, st := range steps {
		if err := p.Post(ctx, st.n); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		calls := e.slack.Calls()
		if got := summary(calls[seen:]); got != st.want {
			t.Errorf("%s: slack got\n%s\nwant\n%s", st.name, got, st.want)
		}
		seen = len(calls)
	}
	calls := e.slack.Calls()
	if last := calls[len(calls)-2]; last.Method != "update" || shownVersion(last) != "5" || !strings.Contains(last.Text, "[RESOLVED]") {
		t.Errorf("the message does not end showing version 5 resolved: %s / %q", shownVersion(last), last.Text)
	}
	ms, err := e.store.Messages(ctx, base.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].TS != "1795341720.000001" || ms[0].Version != 5 || ms[0].ThreadVersion != 5 {
		t.Errorf("store holds %+v", ms)
	}
}

// An escalation nobody acknowledged and a recurrence are broadcast to the
// channel as well as the thread.
func TestPosterBroadcasts(t *testing.T) {
	ctx := context.Background()
	e := newPosterEnv(t)
	p := e.poster(t, nil)
	v1 := version(bottest.StorageLoss, 1, func(i *model.Incident) { i.Level = 1 })
	v2 := version(v1, 2, func(i *model.Incident) { i.Level = 2; i.Targets = []string{"channel:C0LEADS"} })
	v3 := version(v2, 3, func(i *model.Incident) { i.Reopened = 1 })
	for _, n := range []bot.Notification{note(v1), note(v2), note(v3)} {
		if err := p.Post(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	want := "post C0DEFAULT 1795341720.000001\n" +
		"update C0DEFAULT 1795341720.000001\n" +
		"reply C0DEFAULT 1795341720.000001 broadcast: :rotating_light: *Escalated to level 2* — nobody has acknowledged it yet. <#C0LEADS>\n" +
		"update C0DEFAULT 1795341720.000001\n" +
		"reply C0DEFAULT 1795341720.000001 broadcast: :repeat: *Recurred* (1× so far): host-021 (pod-b): external storage unreachable — 5 VMs down\n"
	if got := summary(e.slack.Calls()); got != want {
		t.Errorf("slack got\n%s\nwant\n%s", got, want)
	}
}

func TestPosterRouting(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		inc  model.Incident
		want []string
	}{
		{"site and severity", bottest.HostFault, []string{"C0PODA", "C0CRIT"}},
		{"site only", bottest.GuestCrash, []string{"C0PODA"}},
		{"severity only", bottest.StorageLoss, []string{"C0CRIT"}},
		{"neither: default", bottest.UserRestart, []string{"C0DEFAULT"}},
		{"site and severity share a channel", with(bottest.HostFault, func(i *model.Incident) { i.Site = "pod-c" }), []string{"C0CRIT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newPosterEnv(t)
			p := e.poster(t, func(o *PosterOptions) {
				o.SiteChannels = map[string]string{"pod-a": "C0PODA", "pod-c": "C0CRIT"}
				o.SeverityChannels = map[string]string{"critical": "C0CRIT"}
			})
			if err := p.Post(ctx, note(tt.inc)); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range e.slack.Calls() {
				got = append(got, c.Channel)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("posted to %v, want %v", got, tt.want)
			}
		})
	}
}

// A channel that fails does not keep the incident from its other
// channels; the post is given up only if every failure is permanent.
func TestPosterChannelFailuresAreIndependent(t *testing.T) {
	tests := []struct {
		name       string
		fault      fault
		permanent  bool
		afterRetry string
	}{
		{"refused channel", fault{code: "not_in_channel"}, true, "post C0CRIT 1795341720.000001\n"},
		{"slack trouble", fault{status: 500}, false, "post C0CRIT 1795341720.000001\npost C0PODA 1795341720.000002\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newPosterEnv(t)
			p := e.poster(t, func(o *PosterOptions) {
				o.SiteChannels = map[string]string{"pod-a": "C0PODA"}
				o.SeverityChannels = map[string]string{"critical": "C0CRIT"}
			})
			e.slack.failNext(tt.fault) // the first channel, C0PODA
			err := p.Post(ctx, note(bottest.HostFault))
			var pe bot.PermanentError
			if err == nil || (errors.As(err, &pe) && pe.Permanent()) != tt.permanent || !strings.Contains(err.Error(), "C0PODA") {
				t.Fatalf("error %v; want one about C0PODA, permanent %v", err, tt.permanent)
			}
			if got := summary(e.slack.Calls()); got != "post C0CRIT 1795341720.000001\n" {
				t.Errorf("the other channel was not posted to:\n%s", got)
			}
			if !tt.permanent {
				if err := p.Post(ctx, note(bottest.HostFault)); err != nil {
					t.Fatal(err)
				}
			}
			if got := summary(e.slack.Calls()); got != tt.afterRetry {
				t.Errorf("after the retry slack got\n%s\nwant\n%s", got, tt.afterRetry)
			}
		})
	}
}

// A Slack call that hangs is abandoned well within the lease, as a
// retryable failure, and the lease is released for the retry.
func TestPosterBoundsSlackCallsByTheLease(t *testing.T) {
	ctx := context.Background()
	e := newPosterEnv(t)
	p := e.poster(t, func(o *PosterOptions) { o.Lease = 200 * time.Millisecond })
	stalled := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(stalled) })
	t.Cleanup(unblock)
	e.slack.setHold(func(string) { <-stalled })
	err := p.Post(ctx, note(bottest.GuestCrash))
	var pe bot.PermanentError
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &pe) && pe.Permanent()) {
		t.Fatalf("error %v; want a retryable deadline error", err)
	}
	unblock()
	e.slack.setHold(nil)
	c, err := e.store.ClaimMessage(ctx, bottest.GuestCrash.ID, "C0DEFAULT", "probe", bottest.GuestCrash.Version, time.Minute)
	if err != nil || c.Status != store.ClaimGranted {
		t.Errorf("the lease was not released: %+v, %v", c, err)
	}
}

func TestNewPosterChecksOptions(t *testing.T) {
	e := newPosterEnv(t)
	tests := []struct {
		name   string
		change func(*PosterOptions)
		want   string
	}{
		{"no client", func(o *PosterOptions) { o.Client = nil }, "Client is required"},
		{"no store", func(o *PosterOptions) { o.Store = nil }, "Store is required"},
		{"no default channel", func(o *PosterOptions) { o.DefaultChannel = " " }, "DefaultChannel is required"},
		{"bad severity", func(o *PosterOptions) { o.SeverityChannels = map[string]string{"urgent": "C1"} }, `"urgent", which is not a severity`},
		{"empty site channel", func(o *PosterOptions) { o.SiteChannels = map[string]string{"pod-a": ""} }, `SiteChannels["pod-a"] is empty`},
		{"channel with a space", func(o *PosterOptions) { o.DefaultChannel = "C1 C2" }, "not a channel ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := PosterOptions{Client: e.slack.client(testToken), Store: e.store, DefaultChannel: "C0DEFAULT"}
			tt.change(&opts)
			_, err := NewPoster(opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// Slack's failures map to what the Notifier needs: a wait, a retry, or
// giving up with a clear reason.
func TestPosterErrors(t *testing.T) {
	tests := []struct {
		name       string
		fault      fault
		retryAfter time.Duration
		permanent  bool
		want       string
	}{
		{name: "rate limited", fault: fault{status: 429, retryAfter: 7}, retryAfter: 7 * time.Second, want: "rate limited"},
		{name: "server error", fault: fault{status: 500}, want: "HTTP 500; will retry"},
		{name: "unavailable", fault: fault{status: 503}, want: "HTTP 503"},
		{name: "bad API URL", fault: fault{status: 404}, permanent: true, want: "check VMTRIAGE_SLACK_API_URL"},
		{name: "invalid blocks", fault: fault{code: "invalid_blocks"}, permanent: true, want: "invalid_blocks (Slack refused the message's blocks"},
		{name: "no channel", fault: fault{code: "channel_not_found"}, permanent: true, want: "check the channel ID"},
		{name: "not in channel", fault: fault{code: "not_in_channel"}, permanent: true, want: "/invite it"},
		{name: "bad token", fault: fault{code: "invalid_auth"}, permanent: true, want: "check VMTRIAGE_SLACK_BOT_TOKEN"},
		{name: "slack's own trouble", fault: fault{code: "internal_error"}, want: "internal_error (Slack is in trouble; will retry)"},
		{name: "unknown code", fault: fault{code: "something_new"}, permanent: true, want: "something_new (Slack refused the request)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newPosterEnv(t)
			p := e.poster(t, nil)
			e.slack.failNext(tt.fault)
			err := p.Post(context.Background(), note(bottest.GuestCrash))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			var ra bot.RetryAfterError
			gotWait := time.Duration(0)
			if errors.As(err, &ra) {
				gotWait = ra.RetryAfter()
			}
			var pe bot.PermanentError
			gotPermanent := errors.As(err, &pe) && pe.Permanent()
			if gotWait != tt.retryAfter || gotPermanent != tt.permanent || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: retry after %s, permanent %v; want %s, %v, containing %q",
					err, gotWait, gotPermanent, tt.retryAfter, tt.permanent, tt.want)
			}
			if !strings.Contains(err.Error(), "inc-43") || !strings.Contains(err.Error(), "C0DEFAULT") {
				t.Errorf("error %q does not name the incident and channel", err)
			}
			bottest.AssertNoSecrets(t, []string{testToken}, map[string]string{"error": err.Error(), "log": e.log.String()})
			// The failed attempt left no lease behind: the retry goes ahead
			// and posts once.
			if err := p.Post(context.Background(), note(bottest.GuestCrash)); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if n := len(roots(e.slack.Calls())); n != 1 {
				t.Errorf("%d messages after the retry, want 1", n)
			}
		})
	}
}

// A follow-up that fails is retried alone: the message is not updated
// twice and the thread gets the reply once.
func TestPosterResumesWhereItFailed(t *testing.T) {
	ctx := context.Background()
	e := newPosterEnv(t)
	p := e.poster(t, nil)
	v1 := version(bottest.ServiceDown, 1, nil)
	v2 := version(v1, 2, func(i *model.Incident) { i.Approval = model.ApprovalApproved })
	if err := p.Post(ctx, note(v1)); err != nil {
		t.Fatal(err)
	}
	// Let the update through, then fail the thread reply.
	e.slack.setHold(func(method string) {
		if method == "update" {
			e.slack.failNext(fault{status: 502})
		}
	})
	if err := p.Post(ctx, note(v2, bot.ChangeApproval)); err == nil {
		t.Fatal("the thread reply's failure was not reported")
	}
	e.slack.setHold(nil)
	if err := p.Post(ctx, note(v2, bot.ChangeApproval)); err != nil {
		t.Fatal(err)
	}
	want := "post C0DEFAULT 1795341720.000001\n" +
		"update C0DEFAULT 1795341720.000001\n" +
		"reply C0DEFAULT 1795341720.000001: :ballot_box_with_check: *Restart host-011/libvirtd*: approved.\n"
	if got := summary(e.slack.Calls()); got != want {
		t.Errorf("slack got\n%s\nwant\n%s", got, want)
	}
}

// A message someone deleted in Slack is replaced by a new one, and later
// versions update the new one.
func TestPosterReplacesADeletedMessage(t *testing.T) {
	ctx := context.Background()
	e := newPosterEnv(t)
	p := e.poster(t, nil)
	v1 := version(bottest.UserRestart, 1, nil)
	v2 := version(v1, 2, func(i *model.Incident) { i.Level = 2 })
	v3 := version(v2, 3, func(i *model.Incident) { i.AckedBy = "U0ALICE" })
	if err := p.Post(ctx, note(v1)); err != nil {
		t.Fatal(err)
	}
	e.slack.deleteMessage("C0DEFAULT", "1795341720.000001")
	for _, n := range []bot.Notification{note(v2), note(v3)} {
		if err := p.Post(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	want := "post C0DEFAULT 1795341720.000001\n" +
		"post C0DEFAULT 1795341720.000002\n" +
		"update C0DEFAULT 1795341720.000002\n" +
		"reply C0DEFAULT 1795341720.000002: :eyes: *Acknowledged* by <@U0ALICE>.\n"
	if got := summary(e.slack.Calls()); got != want {
		t.Errorf("slack got\n%s\nwant\n%s", got, want)
	}
}

// Two replicas posting the same new incident at once make one message:
// the loser is told to wait, and on retry finds the work done.
func TestTwoPostersRace(t *testing.T) {
	ctx := context.Background()
	e := newPosterEnv(t)
	a, b := e.poster(t, nil), e.poster(t, nil)
	n := note(version(bottest.HostFault, 1, nil))

	entered, release := make(chan struct{}), make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // never leave the first post stalled, even on failure
	var first atomic.Bool
	e.slack.setHold(func(string) {
		if first.CompareAndSwap(false, true) { // stall only the first post
			close(entered)
			<-release
		}
	})
	done := make(chan error, 1)
	go func() { done <- a.Post(ctx, n) }()
	<-entered // a is inside chat.postMessage, holding the lease

	err := b.Post(ctx, n)
	var ra bot.RetryAfterError
	if !errors.As(err, &ra) || ra.RetryAfter() <= 0 {
		t.Fatalf("the second poster got %v; want a wait while the first posts", err)
	}
	var pe bot.PermanentError
	if errors.As(err, &pe) && pe.Permanent() {
		t.Fatalf("a busy lease is reported as permanent: %v", err)
	}
	unblock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := b.Post(ctx, n); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := summary(e.slack.Calls()); got != "post C0DEFAULT 1795341720.000001\n" {
		t.Errorf("slack got\n%s", got)
	}

	// Many at once, each retrying until done: still one message per
	// version, and the message ends at the newest.
	v2 := note(version(bottest.HostFault, 2, func(i *model.Incident) { i.AckedBy = "U0ALICE" }), bot.ChangeAcked)
	v3 := note(version(bottest.HostFault, 3, func(i *model.Incident) { i.AckedBy = "U0ALICE"; i.Level = 2 }), bot.ChangeEscalated)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.poster(t, nil)
			n := []bot.Notification{v2, v3}[i%2]
			for attempt := 0; ; attempt++ {
				err := p.Post(ctx, n)
				if err == nil {
					return
				}
				if !errors.As(err, &ra) || attempt > 10000 {
					t.Errorf("poster %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	calls := e.slack.Calls()
	if n := len(roots(calls)); n != 1 {
		t.Errorf("%d messages, want 1:\n%s", n, summary(calls))
	}
	var last call
	updates := 0
	for _, c := range calls {
		if c.Method == "update" {
			last = c
			updates++
		}
	}
	if updates == 0 || updates > 2 || shownVersion(last) != "3" {
		t.Errorf("%d updates ending at version %q; want 1 or 2 ending at 3:\n%s", updates, shownVersion(last), summary(calls))
	}
}

// The token never appears in what the poster logs, returns or posts.
func TestPosterKeepsTheTokenSecret(t *testing.T) {
	ctx := context.Background()
	e := newPosterEnv(t)
	p := e.poster(t, nil)
	outputs := map[string]string{}
	e.slack.failNext(fault{status: 429, retryAfter: 1}, fault{status: 500}, fault{code: "invalid_auth"})
	for i := range 4 {
		if err := p.Post(ctx, note(bottest.HostFault)); err != nil {
			outputs[fmt.Sprint("error ", i)] = err.Error() + fmt.Sprintf(" %+v %#v", err, err)
		}
	}
	if len(outputs) != 3 {
		t.Fatalf("%d errors, want 3", len(outputs))
	}
	outputs["log"] = e.log.String()
	for i, c := range e.slack.Calls() {
		outputs[fmt.Sprint("post ", i)] = c.Text + c.Blocks
	}
	bottest.AssertNoSecrets(t, []string{testToken}, outputs)
}

var footerIncident = regexp.MustCompile(`(inc-[a-z0-9-]+) · rule`)

// waitFor polls cond until it holds, failing t after 30 seconds. It waits
// for other goroutines to make progress, not for time-based logic.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A storm of 429s (with Retry-After) and 5xx while two replicas' notifiers
// work through the incidents stream: every incident ends with exactly one
// message, showing its last version, and no follow-up is posted twice.
func TestStormDeliversEveryIncidentOnceAtItsLastVersion(t *testing.T) {
	e := newPosterEnv(t)
	events := bottest.NewEvents()
	sleeper := &bottest.Sleeper{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		n, err := bot.NewNotifier(bot.NotifierOptions{Events: events, Poster: e.poster(t, nil),
			Consumer: fmt.Sprint("replica-", i), Batch: 5, Sleep: sleeper.Sleep, Clock: e.clock})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.Run(ctx)
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()

	const incidents = 8
	storm := func(n int) int {
		var fs []fault
		for i := range n {
			switch i % 4 {
			case 0:
				fs = append(fs, fault{status: 429, retryAfter: 3})
			case 1:
				fs = append(fs, fault{status: 500})
			case 2:
				fs = append(fs, fault{status: 503})
			default:
				fs = append(fs, fault{code: "internal_error"})
			}
		}
		e.slack.failNext(fs...)
		return n
	}
	versions := func(i int) []model.Incident {
		base := version(bottest.GuestCrash, 1, func(inc *model.Incident) {
			inc.ID = fmt.Sprintf("inc-s%d", i)
			inc.Subject = fmt.Sprintf("vm-%04d", 900+i)
			inc.VMs = []string{inc.Subject}
			inc.AckedBy, inc.AckedAt = "", time.Time{}
		})
		v2 := version(base, 2, func(inc *model.Incident) { inc.AckedBy = "U0ALICE" })
		v3 := version(v2, 3, func(inc *model.Incident) { inc.Level = 2; inc.Targets = []string{"usergroup:S0ONCALL"} })
		v4 := version(v3, 4, func(inc *model.Incident) {
			inc.Status, inc.ResolvedAt = model.StatusResolved, inc.StartedAt.Add(time.Hour)
		})
		return []model.Incident{base, v2, v3, v4}
	}
	faults, added := 0, 0
	for _, wave := range [][]int{{0}, {1, 2}, {3}} {
		faults += storm(30)
		for i := range incidents {
			for _, v := range wave {
				events.Add(versions(i)[v])
				added++
			}
		}
		waitFor(t, fmt.Sprintf("%d events acknowledged", added), func() bool { return len(events.Acked()) == added })
	}
	cancel()
	wg.Wait()

	calls := e.slack.Calls()
	if got := e.slack.Requests() - len(calls); got != faults {
		t.Errorf("%d requests failed, want the storm's %d", got, faults)
	}
	rootOf := map[string]string{} // ts → incident
	last := map[string]call{}     // incident → last post or update of its message
	for _, c := range roots(calls) {
		m := footerIncident.FindStringSubmatch(c.Blocks)
		if m == nil {
			t.Fatalf("root post without an incident footer: %s", c.Blocks)
		}
		if prev, ok := last[m[1]]; ok {
			t.Errorf("%s posted twice: %s and %s", m[1], prev.TS, c.TS)
		}
		rootOf[c.TS] = m[1]
		last[m[1]] = c
	}
	if len(last) != incidents {
		t.Errorf("%d incidents posted, want %d", len(last), incidents)
	}
	replies := map[string]bool{}
	for _, c := range calls {
		switch {
		case c.Method == "update":
			last[rootOf[c.TS]] = c
		case c.ThreadTS != "":
			if rootOf[c.ThreadTS] == "" {
				t.Errorf("reply to an unknown message %s", c.ThreadTS)
			}
			key := c.ThreadTS + " " + c.Text
			if replies[key] {
				t.Errorf("follow-up posted twice in %s's thread: %s", rootOf[c.ThreadTS], c.Text)
			}
			replies[key] = true
		}
	}
	for id, c := range last {
		if shownVersion(c) != "4" || !strings.HasPrefix(c.Text, "[RESOLVED]") {
			t.Errorf("%s's message ends at version %q: %q", id, shownVersion(c), c.Text)
		}
	}
	honoured := false
	for _, w := range sleeper.Waits() {
		honoured = honoured || w == 3*time.Second
	}
	if !honoured {
		t.Errorf("no wait of 3s, the Retry-After Slack sent: %v", sleeper.Waits())
	}
	if p := events.Pending(); len(p) != 0 {
		t.Errorf("events left unacknowledged: %v", p)
	}
	bottest.AssertNoSecrets(t, []string{testToken}, map[string]string{"log": e.log.String()})
}
