package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

func TestClaimMessage(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	const lease = time.Minute
	snap := &model.Incident{ID: "inc-1", Status: model.StatusFiring, Level: 1, Version: 2}
	type step struct {
		do      string // claim, save, release, advance
		owner   string
		version int64
		update  store.MessageUpdate
		advance time.Duration
		want    store.ClaimStatus
		wantErr error
	}
	tests := []struct {
		name  string
		steps []step
		// final state of the record
		want store.Message
	}{
		{
			name: "first post: claim, save ts, release",
			steps: []step{
				{do: "claim", owner: "a", version: 1, want: store.ClaimGranted},
				{do: "save", owner: "a", update: store.MessageUpdate{TS: "1.1", Version: 1, ThreadVersion: 1, Incident: snap}},
				{do: "release", owner: "a"},
			},
			want: store.Message{TS: "1.1", Version: 1, ThreadVersion: 1, Incident: snap},
		},
		{
			name: "a second replica waits while the first holds the lease",
			steps: []step{
				{do: "claim", owner: "a", version: 1, want: store.ClaimGranted},
				{do: "claim", owner: "b", version: 1, want: store.ClaimBusy},
				{do: "claim", owner: "b", version: 2, want: store.ClaimBusy},
				{do: "save", owner: "a", update: store.MessageUpdate{TS: "1.1", Version: 1, ThreadVersion: 1}},
				// Done as soon as saved, even before the lease ends.
				{do: "claim", owner: "b", version: 1, want: store.ClaimDone},
				{do: "claim", owner: "b", version: 2, want: store.ClaimBusy},
				{do: "release", owner: "a"},
				{do: "claim", owner: "b", version: 2, want: store.ClaimGranted},
			},
			want: store.Message{TS: "1.1", Version: 1, ThreadVersion: 1},
		},
		{
			name: "the same owner may claim again (a retry)",
			steps: []step{
				{do: "claim", owner: "a", version: 1, want: store.ClaimGranted},
				{do: "claim", owner: "a", version: 1, want: store.ClaimGranted},
			},
		},
		{
			name: "an expired lease can be taken over, and the old holder is told",
			steps: []step{
				{do: "claim", owner: "a", version: 1, want: store.ClaimGranted},
				{do: "advance", advance: lease + time.Millisecond},
				{do: "claim", owner: "b", version: 1, want: store.ClaimGranted},
				{do: "save", owner: "b", update: store.MessageUpdate{TS: "2.2", Version: 1, ThreadVersion: 1}},
				{do: "save", owner: "a", update: store.MessageUpdate{TS: "1.1", Version: 1, ThreadVersion: 1}, wantErr: store.ErrLeaseLost},
			},
			want: store.Message{TS: "2.2", Version: 1, ThreadVersion: 1},
		},
		{
			name: "an older version is done once a newer one is shown",
			steps: []step{
				{do: "claim", owner: "a", version: 5, want: store.ClaimGranted},
				{do: "save", owner: "a", update: store.MessageUpdate{TS: "1.1", Version: 5, ThreadVersion: 5}},
				{do: "release", owner: "a"},
				{do: "claim", owner: "b", version: 4, want: store.ClaimDone},
				{do: "claim", owner: "b", version: 5, want: store.ClaimDone},
				{do: "claim", owner: "b", version: 6, want: store.ClaimGranted},
			},
			want: store.Message{TS: "1.1", Version: 5, ThreadVersion: 5},
		},
		{
			name: "a version whose thread follow-up is missing is not done",
			steps: []step{
				{do: "claim", owner: "a", version: 1, want: store.ClaimGranted},
				{do: "save", owner: "a", update: store.MessageUpdate{TS: "1.1", Version: 1, ThreadVersion: 1}},
				{do: "claim", owner: "a", version: 2, want: store.ClaimGranted},
				{do: "save", owner: "a", update: store.MessageUpdate{Version: 2}},
				{do: "release", owner: "a"},
				{do: "claim", owner: "b", version: 2, want: store.ClaimGranted},
			},
			want: store.Message{TS: "1.1", Version: 2, ThreadVersion: 1},
		},
		{
			name: "versions never go down and the first ts stays",
			steps: []step{
				{do: "claim", owner: "a", version: 3, want: store.ClaimGranted},
				{do: "save", owner: "a", update: store.MessageUpdate{TS: "1.1", Version: 3, ThreadVersion: 3, Incident: snap}},
				{do: "save", owner: "a", update: store.MessageUpdate{TS: "9.9", Version: 2, ThreadVersion: 2,
					Incident: &model.Incident{ID: "inc-1", Version: 1}}},
			},
			want: store.Message{TS: "1.1", Version: 3, ThreadVersion: 3, Incident: snap},
		},
		{
			name: "the lease holder may replace the ts of a deleted message, no one else",
			steps: []step{
				{do: "claim", owner: "a", version: 1, want: store.ClaimGranted},
				{do: "save", owner: "a", update: store.MessageUpdate{TS: "1.1", Version: 1, ThreadVersion: 1}},
				{do: "release", owner: "a"},
				{do: "save", owner: "b", update: store.MessageUpdate{TS: "6.6", ReplaceTS: true}, wantErr: store.ErrLeaseLost},
				{do: "claim", owner: "a", version: 2, want: store.ClaimGranted},
				{do: "save", owner: "a", update: store.MessageUpdate{TS: "2.2", ReplaceTS: true, Version: 2, ThreadVersion: 2}},
			},
			want: store.Message{TS: "2.2", Version: 2, ThreadVersion: 2},
		},
		{
			name: "releasing someone else's lease does nothing",
			steps: []step{
				{do: "claim", owner: "a", version: 1, want: store.ClaimGranted},
				{do: "release", owner: "b"},
				{do: "claim", owner: "b", version: 1, want: store.ClaimBusy},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c := clock.NewFake(t0)
			s := storetest.New(t, store.Options{Clock: c})
			for i, st := range tt.steps {
				var err error
				switch st.do {
				case "claim":
					var got store.MessageClaim
					got, err = s.ClaimMessage(ctx, "inc-1", "C1", st.owner, st.version, lease)
					if err == nil && got.Status != st.want {
						t.Fatalf("step %d: claim by %s for v%d = %v, want %v", i, st.owner, st.version, got.Status, st.want)
					}
					if err == nil && got.Status != store.ClaimDone && got.Until.IsZero() {
						t.Errorf("step %d: no lease end in %+v", i, got)
					}
				case "save":
					err = s.SaveMessage(ctx, "inc-1", "C1", st.owner, st.update)
				case "release":
					err = s.ReleaseMessage(ctx, "inc-1", "C1", st.owner)
				case "advance":
					c.Advance(st.advance)
				}
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("step %d (%s by %s): error %v, want %v", i, st.do, st.owner, err, st.wantErr)
				}
			}
			ms, err := s.Messages(ctx, "inc-1")
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.TS == "" && tt.want.Version == 0 {
				if len(ms) != 0 {
					t.Errorf("Messages = %+v, want none", ms)
				}
				return
			}
			tt.want.Channel = "C1"
			if len(ms) != 1 || !sameMessage(ms[0], tt.want) {
				t.Errorf("Messages = %s, want [%s]", fmtMessages(ms), fmtMessage(tt.want))
			}
		})
	}
}

func sameMessage(a, b store.Message) bool {
	return fmtMessage(a) == fmtMessage(b)
}

func fmtMessage(m store.Message) string {
	s := fmt.Sprintf("{%s ts=%s v=%d tv=%d", m.Channel, m.TS, m.Version, m.ThreadVersion)
	if m.Incident != nil {
		s += fmt.Sprintf(" snap=%s/v%d/level%d", m.Incident.ID, m.Incident.Version, m.Incident.Level)
	}
	return s + "}"
}

func fmtMessages(ms []store.Message) string {
	s := "["
	for _, m := range ms {
		s += fmtMessage(m)
	}
	return s + "]"
}

// Channels are independent, and the busy answer tells when the lease ends.
func TestClaimMessagePerChannel(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := storetest.New(t, store.Options{Clock: clock.NewFake(t0)})
	for _, ch := range []string{"C1", "C2"} {
		c, err := s.ClaimMessage(ctx, "inc-1", ch, "a", 1, 30*time.Second)
		if err != nil || c.Status != store.ClaimGranted {
			t.Fatalf("claim %s: %+v, %v", ch, c, err)
		}
	}
	c, err := s.ClaimMessage(ctx, "inc-1", "C2", "b", 1, time.Minute)
	if err != nil || c.Status != store.ClaimBusy || !c.Until.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("claim by another owner = %+v, %v; want busy until %s", c, err, t0.Add(30*time.Second))
	}
	if err := s.SaveMessage(ctx, "inc-1", "C2", "a", store.MessageUpdate{TS: "2.0", Version: 1, ThreadVersion: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveMessage(ctx, "inc-1", "C1", "a", store.MessageUpdate{TS: "1.0", Version: 1, ThreadVersion: 1}); err != nil {
		t.Fatal(err)
	}
	ms, err := s.Messages(ctx, "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmtMessages(ms); got != "[{C1 ts=1.0 v=1 tv=1}{C2 ts=2.0 v=1 tv=1}]" {
		t.Errorf("Messages = %s", got)
	}
}

func TestClaimMessageRejectsBadArguments(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t, store.Options{})
	tests := []struct {
		name              string
		id, channel, user string
		version           int64
	}{
		{"no incident", "", "C1", "a", 1},
		{"no channel", "inc-1", "", "a", 1},
		{"no owner", "inc-1", "C1", "", 1},
		{"colon in channel", "inc-1", "C1:x", "a", 1},
		{"version zero", "inc-1", "C1", "a", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.ClaimMessage(ctx, tt.id, tt.channel, tt.user, tt.version, time.Minute); err == nil {
				t.Error("no error")
			}
		})
	}
}

// Many replicas racing for one incident's first message: exactly one is
// granted, the rest are told to wait.
func TestClaimMessageRace(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t, store.Options{Clock: clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))})
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted, busy := 0, 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.ClaimMessage(ctx, "inc-9", "C1", fmt.Sprint("owner-", i), 1, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch c.Status {
			case store.ClaimGranted:
				granted++
			case store.ClaimBusy:
				busy++
			}
		}()
	}
	wg.Wait()
	if granted != 1 || busy != n-1 {
		t.Errorf("%d granted, %d busy; want 1 and %d", granted, busy, n-1)
	}
}
