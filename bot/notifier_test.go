package bot_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

type notifierWorld struct {
	n       *bot.Notifier
	events  *bottest.Events
	poster  *bottest.Poster
	sleeper *bottest.Sleeper
	log     *bottest.Recorder
}

func newNotifier(t *testing.T, poster bot.Poster, events *bottest.Events) *notifierWorld {
	t.Helper()
	w := &notifierWorld{events: events, sleeper: &bottest.Sleeper{}}
	if w.events == nil {
		w.events = bottest.NewEvents()
	}
	if p, ok := poster.(*bottest.Poster); ok {
		w.poster = p
	}
	logger, rec := bottest.Logger()
	w.log = rec
	n, err := bot.NewNotifier(bot.NotifierOptions{
		Events: w.events, Poster: poster, Consumer: "test-1",
		MinBackoff: time.Second, MaxBackoff: 8 * time.Second,
		Sleep: w.sleeper.Sleep, Clock: clock.NewFake(bottest.Now), Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.n = n
	return w
}

func version(inc model.Incident, v int64, change func(*model.Incident)) model.Incident {
	inc.Version = v
	inc.VMs = slices.Clone(inc.VMs)
	if change != nil {
		change(&inc)
	}
	return inc
}

func posted(notes []bot.Notification) []string {
	var out []string
	for _, n := range notes {
		out = append(out, fmt.Sprintf("%s@%d %v", n.View.ID, n.View.Version, n.Changes))
	}
	return out
}

func TestNotifierDelivery(t *testing.T) {
	acked := func(i *model.Incident) { i.AckedBy, i.Level = "alice", 2 }
	resolve := func(i *model.Incident) { i.Status, i.ResolvedAt = model.StatusResolved, bottest.Now }
	pending := func(i *model.Incident) { i.Status, i.FiringAt = model.StatusPending, time.Time{} }
	silenced := func(i *model.Incident) { i.Silenced = true }
	tests := []struct {
		name    string
		batches [][]model.Incident // each batch is read by one Step
		want    []string
	}{
		{name: "posts in stream order",
			batches: [][]model.Incident{{bottest.HostFault, bottest.GuestCrash}},
			want:    []string{"inc-42@3 [opened]", "inc-43@4 [opened]"}},
		{name: "newest version of a batch only",
			batches: [][]model.Incident{{version(bottest.HostFault, 1, nil), bottest.GuestCrash, version(bottest.HostFault, 2, nil)}},
			want:    []string{"inc-43@4 [opened]", "inc-42@2 [opened]"}},
		{name: "changes since the last post",
			batches: [][]model.Incident{{version(bottest.HostFault, 1, nil)}, {version(bottest.HostFault, 2, acked)}, {version(bottest.HostFault, 3, resolve)}},
			want:    []string{"inc-42@1 [opened]", "inc-42@2 [escalated acked]", "inc-42@3 [resolved]"}},
		{name: "an older version after a newer one is dropped",
			batches: [][]model.Incident{{version(bottest.HostFault, 5, nil)}, {version(bottest.HostFault, 4, acked)}},
			want:    []string{"inc-42@5 [opened]"}},
		{name: "the same version twice is posted once",
			batches: [][]model.Incident{{bottest.HostFault}, {bottest.HostFault}},
			want:    []string{"inc-42@3 [opened]"}},
		{name: "pending is not posted, firing is",
			batches: [][]model.Incident{{version(bottest.HostFault, 1, pending)}, {version(bottest.HostFault, 2, nil)}},
			want:    []string{"inc-42@2 [opened]"}},
		{name: "pending then resolved without firing is never posted",
			batches: [][]model.Incident{{version(bottest.HostFault, 1, pending)}, {version(bottest.HostFault, 2, func(i *model.Incident) { pending(i); resolve(i) })}}},
		{name: "silenced and inhibited are not posted",
			batches: [][]model.Incident{{version(bottest.HostFault, 1, silenced), bottest.HeartbeatLoss}}},
		{name: "silencing a posted incident updates it",
			batches: [][]model.Incident{{version(bottest.HostFault, 1, nil)}, {version(bottest.HostFault, 2, silenced)}},
			want:    []string{"inc-42@1 [opened]", "inc-42@2 [silenced]"}},
		{name: "a silenced version does not let an older one through",
			batches: [][]model.Incident{{version(bottest.HostFault, 2, silenced)}, {version(bottest.HostFault, 1, nil)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			poster := &bottest.Poster{}
			w := newNotifier(t, poster, nil)
			var ids []string
			for _, batch := range tt.batches {
				ids = append(ids, w.events.Add(batch...)...)
				if err := w.n.Step(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got := posted(poster.Posts()); !slices.Equal(got, tt.want) {
				t.Errorf("posted %q, want %q", got, tt.want)
			}
			// Every event is acknowledged, posted or not.
			got := w.events.Acked()
			slices.Sort(got)
			slices.Sort(ids)
			if !slices.Equal(got, ids) {
				t.Errorf("acked %v, want %v", got, ids)
			}
		})
	}
}

func TestNotifierPreviousIsTheLastPosted(t *testing.T) {
	poster := &bottest.Poster{}
	w := newNotifier(t, poster, nil)
	for _, inc := range []model.Incident{
		version(bottest.HostFault, 1, nil),
		version(bottest.HostFault, 2, func(i *model.Incident) { i.Ticket = "OPS-9" }),
	} {
		w.events.Add(inc)
		if err := w.n.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	posts := poster.Posts()
	if len(posts) != 2 || posts[0].Previous != nil || posts[1].Previous == nil || posts[1].Previous.Version != 1 {
		t.Fatalf("posts = %q", posted(posts))
	}
	if !slices.Equal(posts[1].Changes, []bot.Change{bot.ChangeTicket}) {
		t.Errorf("changes = %v", posts[1].Changes)
	}
}

func TestNotifierRetries(t *testing.T) {
	rateLimited := bottest.RetryAfterError{After: 7 * time.Second}
	serverError := errors.New("slack: 503 service unavailable")
	tests := []struct {
		name   string
		errs   []error
		waits  []time.Duration
		posted bool
	}{
		{name: "succeeds at once", posted: true},
		{name: "honours retry-after", errs: []error{rateLimited}, waits: []time.Duration{7 * time.Second}, posted: true},
		{name: "retry-after wrapped", errs: []error{fmt.Errorf("post inc-42: %w", rateLimited)}, waits: []time.Duration{7 * time.Second}, posted: true},
		{name: "backs off, doubling up to the cap", errs: []error{serverError, serverError, serverError, serverError, serverError},
			waits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}, posted: true},
		{name: "mixed", errs: []error{serverError, rateLimited, serverError},
			waits: []time.Duration{time.Second, 7 * time.Second, 4 * time.Second}, posted: true},
		{name: "permanent error drops it without retrying", errs: []error{bottest.PermanentError{Msg: "invalid_blocks"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			poster := &bottest.Poster{Errs: slices.Clone(tt.errs)}
			w := newNotifier(t, poster, nil)
			ids := w.events.Add(bottest.HostFault)
			if err := w.n.Step(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := w.sleeper.Waits(); !slices.Equal(got, tt.waits) {
				t.Errorf("waits = %v, want %v", got, tt.waits)
			}
			if got := len(poster.Posts()) == 1; got != tt.posted {
				t.Errorf("posted = %v, want %v", got, tt.posted)
			}
			if poster.Calls() != len(tt.errs)+btoi(tt.posted) {
				t.Errorf("Post called %d times", poster.Calls())
			}
			if got := w.events.Acked(); !slices.Equal(got, ids) {
				t.Errorf("acked %v, want %v", got, ids)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type posterFunc func(ctx context.Context, n bot.Notification) error

func (f posterFunc) Post(ctx context.Context, n bot.Notification) error { return f(ctx, n) }

// When the process stops while the chat is down, the event stays pending;
// after a restart it is taken over and posted once.
func TestNotifierResumesAfterRestart(t *testing.T) {
	events := bottest.NewEvents()
	ctx, cancel := context.WithCancel(context.Background())
	down := posterFunc(func(context.Context, bot.Notification) error {
		cancel() // the process is told to stop while the post fails
		return errors.New("connection refused")
	})
	first := newNotifier(t, down, events)
	ids := events.Add(bottest.HostFault)
	if err := first.n.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got := events.Pending(); !slices.Equal(got, ids) {
		t.Fatalf("pending after a failed post = %v, want %v", got, ids)
	}
	if got := events.Acked(); len(got) != 0 {
		t.Fatalf("acked %v before any post succeeded", got)
	}

	events.MakeStale(ids...)
	poster := &bottest.Poster{}
	second := newNotifier(t, poster, events)
	events.Add(bottest.GuestCrash)
	if err := second.n.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := posted(poster.Posts()); !slices.Equal(got, []string{"inc-42@3 [opened]", "inc-43@4 [opened]"}) {
		t.Errorf("posted %q", got)
	}
	if got := events.Pending(); len(got) != 0 {
		t.Errorf("still pending: %v", got)
	}
}

func TestNotifierRetriesFailedAcks(t *testing.T) {
	poster := &bottest.Poster{}
	w := newNotifier(t, poster, nil)
	w.events.AckErrs = []error{errors.New("redis: connection reset")}
	first := w.events.Add(bottest.HostFault)
	if err := w.n.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.events.Acked(); len(got) != 0 {
		t.Fatalf("acked %v despite the failure", got)
	}
	second := w.events.Add(bottest.GuestCrash)
	if err := w.n.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := w.events.Acked(), append(first, second...); !slices.Equal(got, want) {
		t.Errorf("acked %v, want %v", got, want)
	}
	if len(poster.Posts()) != 2 {
		t.Errorf("posted %q", posted(poster.Posts()))
	}
}

func TestNotifierRun(t *testing.T) {
	poster := &bottest.Poster{}
	w := newNotifier(t, poster, nil)
	w.events.ReadErrs = []error{errors.New("redis: i/o timeout")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.n.Run(ctx) }()
	w.events.Add(bottest.HostFault)
	poster.WaitPosts(t, 1)
	w.events.Add(bottest.GuestCrash)
	poster.WaitPosts(t, 2)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := w.sleeper.Waits(); len(got) != 1 || got[0] != time.Second {
		t.Errorf("waits after a read error = %v, want [1s]", got)
	}
	if got := posted(poster.Posts()); !slices.Equal(got, []string{"inc-42@3 [opened]", "inc-43@4 [opened]"}) {
		t.Errorf("posted %q", got)
	}
}

func TestChanges(t *testing.T) {
	base := bottest.HostFault
	tests := []struct {
		name   string
		prev   *model.Incident
		change func(*model.Incident)
		want   []bot.Change
	}{
		{name: "first post", want: []bot.Change{bot.ChangeOpened}},
		{name: "first seen resolved", change: func(i *model.Incident) { i.Status = model.StatusResolved }, want: []bot.Change{bot.ChangeResolved}},
		{name: "nothing notable", prev: &base, change: func(i *model.Incident) { i.VMs = append(i.VMs, "vm-9") }, want: []bot.Change{bot.ChangeUpdated}},
		{name: "approved", prev: &base, change: func(i *model.Incident) { i.Approval = model.ApprovalApproved }, want: []bot.Change{bot.ChangeApproval}},
		{name: "reopened", prev: &base, change: func(i *model.Incident) { i.Reopened = 1 }, want: []bot.Change{bot.ChangeReopened}},
		{name: "jira refused the ticket", prev: &base, change: func(i *model.Incident) { i.TicketError = "jira: create issue: HTTP 400: priority: invalid" },
			want: []bot.Change{bot.ChangeTicketError}},
		{name: "same refusal again is only an update", prev: ptr(version(base, 1, func(i *model.Incident) { i.TicketError = "refused" })),
			change: func(i *model.Incident) { i.TicketError = "refused"; i.VMs = append(i.VMs, "vm-9") }, want: []bot.Change{bot.ChangeUpdated}},
		{name: "ticket created after a refusal", prev: ptr(version(base, 1, func(i *model.Incident) { i.Ticket, i.TicketError = "", "refused" })),
			change: func(i *model.Incident) { i.Ticket = "OPS-9" }, want: []bot.Change{bot.ChangeTicket}},
		{name: "inhibited then not", prev: ptr(version(base, 1, func(i *model.Incident) { i.InhibitedBy = "inc-1" })),
			want: []bot.Change{bot.ChangeUnsilenced}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := version(base, 9, tt.change)
			if got := bot.Changes(tt.prev, cur); !slices.Equal(got, tt.want) {
				t.Errorf("Changes = %v, want %v", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
