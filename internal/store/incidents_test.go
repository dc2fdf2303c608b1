package store_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

func newIncident(id, fp string, status model.Status, started time.Time) *model.Incident {
	return &model.Incident{ID: id, Fingerprint: fp, Rule: "vm-crash", Status: status,
		Severity: model.SeverityHigh, Kind: model.KindVM, Subject: "vm-1", Host: "h1", Site: "pod-a",
		VMs: []string{"vm-1"}, StartedAt: started}
}

func TestSaveIncident(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s *store.Store, now time.Time)
	}{
		{
			name: "new incident gets version 1",
			run: func(t *testing.T, ctx context.Context, s *store.Store, now time.Time) {
				inc := newIncident("inc-1", "fp-1", model.StatusFiring, t0)
				if err := s.SaveIncident(ctx, inc); err != nil {
					t.Fatal(err)
				}
				if inc.Version != 1 || !inc.UpdatedAt.Equal(now) {
					t.Fatalf("version %d updated %s; want 1 and %s", inc.Version, inc.UpdatedAt, now)
				}
				got, err := s.Incident(ctx, "inc-1")
				if err != nil || got.Version != 1 || got.Fingerprint != "fp-1" || !got.StartedAt.Equal(t0) {
					t.Fatalf("Incident = %+v, %v", got, err)
				}
			},
		},
		{
			name: "stale version conflicts and leaves the incident alone",
			run: func(t *testing.T, ctx context.Context, s *store.Store, now time.Time) {
				inc := newIncident("inc-1", "fp-1", model.StatusFiring, t0)
				stale := *inc
				if err := s.SaveIncident(ctx, inc); err != nil {
					t.Fatal(err)
				}
				stale.Level = 3
				err := s.SaveIncident(ctx, &stale)
				if !errors.Is(err, store.ErrConflict) {
					t.Fatalf("err = %v, want ErrConflict", err)
				}
				if stale.Version != 0 || !stale.UpdatedAt.IsZero() {
					t.Errorf("failed save changed the caller's copy: version %d updated %s", stale.Version, stale.UpdatedAt)
				}
				got, _ := s.Incident(ctx, "inc-1")
				if got.Level != 0 || got.Version != 1 {
					t.Errorf("stored = level %d version %d; want 0, 1", got.Level, got.Version)
				}
				inc.Level = 2
				if err := s.SaveIncident(ctx, inc); err != nil || inc.Version != 2 {
					t.Fatalf("save at current version: %v, version %d", err, inc.Version)
				}
				unknown := newIncident("inc-9", "fp-9", model.StatusFiring, t0)
				unknown.Version = 4
				if err := s.SaveIncident(ctx, unknown); !errors.Is(err, store.ErrConflict) {
					t.Errorf("saving an unknown incident at version 4: err = %v, want ErrConflict", err)
				}
			},
		},
		{
			name: "fingerprint finds the latest",
			run: func(t *testing.T, ctx context.Context, s *store.Store, now time.Time) {
				old := newIncident("inc-1", "fp-1", model.StatusResolved, t0)
				mustSave(t, ctx, s, old)
				newer := newIncident("inc-2", "fp-1", model.StatusFiring, t0.Add(time.Hour))
				mustSave(t, ctx, s, newer)
				old.AckedBy = "ann" // a late change to the old one does not take the fingerprint back
				mustSave(t, ctx, s, old)
				got, err := s.IncidentByFingerprint(ctx, "fp-1")
				if err != nil || got.ID != "inc-2" {
					t.Fatalf("by fingerprint = %s, %v; want inc-2", got.ID, err)
				}
				if _, err := s.IncidentByFingerprint(ctx, "fp-404"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("unknown fingerprint: err = %v, want ErrNotFound", err)
				}
				if _, err := s.Incident(ctx, "inc-404"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("unknown id: err = %v, want ErrNotFound", err)
				}
			},
		},
		{
			name: "lists newest first with filters",
			run: func(t *testing.T, ctx context.Context, s *store.Store, now time.Time) {
				for i, st := range []model.Status{model.StatusFiring, model.StatusResolved, model.StatusPending, model.StatusFiring, model.StatusResolved} {
					inc := newIncident("inc-"+string(rune('1'+i)), "fp-"+string(rune('1'+i)), st, t0.Add(time.Duration(i)*time.Minute))
					if i == 3 {
						inc.Site, inc.VMs = "pod-b", []string{"vm-9"}
					}
					mustSave(t, ctx, s, inc)
				}
				cases := []struct {
					f    model.IncidentFilter
					want []string
				}{
					{model.IncidentFilter{}, []string{"inc-5", "inc-4", "inc-3", "inc-2", "inc-1"}},
					{model.IncidentFilter{Limit: 2}, []string{"inc-5", "inc-4"}},
					{model.IncidentFilter{Status: model.StatusFiring}, []string{"inc-4", "inc-1"}},
					{model.IncidentFilter{Status: model.StatusResolved}, []string{"inc-5", "inc-2"}},
					{model.IncidentFilter{Site: "pod-b"}, []string{"inc-4"}},
					{model.IncidentFilter{VM: "vm-1", Limit: 1}, []string{"inc-5"}},
					{model.IncidentFilter{Host: "h404"}, nil},
				}
				for _, c := range cases {
					got, err := s.Incidents(ctx, c.f)
					if err != nil {
						t.Fatal(err)
					}
					if g := incidentIDs(got); !slices.Equal(g, c.want) {
						t.Errorf("Incidents(%+v) = %v, want %v", c.f, g, c.want)
					}
				}
				open, err := s.OpenIncidents(ctx)
				if err != nil || !slices.Equal(incidentIDs(open), []string{"inc-4", "inc-3", "inc-1"}) {
					t.Errorf("OpenIncidents = %v, %v", incidentIDs(open), err)
				}
			},
		},
		{
			name: "resolving leaves the open index",
			run: func(t *testing.T, ctx context.Context, s *store.Store, now time.Time) {
				inc := newIncident("inc-1", "fp-1", model.StatusFiring, t0)
				mustSave(t, ctx, s, inc)
				inc.Status, inc.ResolvedAt = model.StatusResolved, now
				mustSave(t, ctx, s, inc)
				open, err := s.OpenIncidents(ctx)
				if err != nil || len(open) != 0 {
					t.Errorf("OpenIncidents = %v, %v; want none", incidentIDs(open), err)
				}
			},
		},
		{
			name: "old resolved incidents are trimmed, open ones kept",
			run: func(t *testing.T, ctx context.Context, s *store.Store, now time.Time) {
				store.SetMaxIncidents(s, 3)
				mustSave(t, ctx, s, newIncident("inc-1", "fp-1", model.StatusFiring, t0))
				for i := 2; i <= 6; i++ {
					mustSave(t, ctx, s, newIncident("inc-"+string(rune('0'+i)), "fp-"+string(rune('0'+i)), model.StatusResolved, t0.Add(time.Duration(i)*time.Minute)))
				}
				all, err := s.Incidents(ctx, model.IncidentFilter{})
				if err != nil {
					t.Fatal(err)
				}
				if g := incidentIDs(all); !slices.Equal(g, []string{"inc-6", "inc-5", "inc-1"}) {
					t.Errorf("after trimming: %v, want [inc-6 inc-5 inc-1]", g)
				}
				if _, err := s.Incident(ctx, "inc-2"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("trimmed incident: err = %v, want ErrNotFound", err)
				}
				if _, err := s.IncidentByFingerprint(ctx, "fp-2"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("trimmed fingerprint: err = %v, want ErrNotFound", err)
				}
			},
		},
		{
			name: "ids are sequential",
			run: func(t *testing.T, ctx context.Context, s *store.Store, now time.Time) {
				a, err1 := s.NextIncidentID(ctx)
				b, err2 := s.NextIncidentID(ctx)
				c, err3 := s.NextSilenceID(ctx)
				if err := errors.Join(err1, err2, err3); err != nil || a != "inc-1" || b != "inc-2" || c != "sil-1" {
					t.Errorf("ids = %s %s %s, %v", a, b, c, err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, clk := newStore(t)
			tc.run(t, testCtx(t), s, clk.Now())
		})
	}
}

func mustSave(t *testing.T, ctx context.Context, s *store.Store, inc *model.Incident) {
	t.Helper()
	if err := s.SaveIncident(ctx, inc); err != nil {
		t.Fatal(err)
	}
}

func incidentIDs(incs []model.Incident) []string {
	var out []string
	for _, i := range incs {
		out = append(out, i.ID)
	}
	return out
}

func eventKeys(evs []store.IncidentEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Incident.ID+"@"+string(rune('0'+e.Incident.Version)))
	}
	return out
}

func TestDeleteIncident(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s *store.Store)
	}{
		{
			name: "a withdrawn pending incident is gone from every index",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				keep := newIncident("inc-1", "fp-1", model.StatusFiring, t0)
				mustSave(t, ctx, s, keep)
				inc := newIncident("inc-2", "fp-2", model.StatusPending, t0.Add(time.Minute))
				mustSave(t, ctx, s, inc)
				inc.Status, inc.ResolvedAt = model.StatusResolved, t0.Add(2*time.Minute)
				if err := s.DeleteIncident(ctx, inc); err != nil {
					t.Fatal(err)
				}
				if inc.Version != 2 {
					t.Errorf("version %d after delete, want 2 (the final snapshot's)", inc.Version)
				}
				for _, f := range []model.IncidentFilter{{}, {Status: model.StatusPending}, {Status: model.StatusResolved}} {
					got, err := s.Incidents(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					if ids := incidentIDs(got); slices.Contains(ids, "inc-2") {
						t.Errorf("Incidents(%+v) = %v still lists the withdrawn incident", f, ids)
					}
				}
				open, err := s.OpenIncidents(ctx)
				if err != nil || !slices.Equal(incidentIDs(open), []string{"inc-1"}) {
					t.Errorf("OpenIncidents = %v, %v; want [inc-1]", incidentIDs(open), err)
				}
				if _, err := s.Incident(ctx, "inc-2"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Incident(inc-2): err = %v, want ErrNotFound", err)
				}
				if _, err := s.IncidentByFingerprint(ctx, "fp-2"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("IncidentByFingerprint(fp-2): err = %v, want ErrNotFound", err)
				}
				evs, err := s.ReadIncidentEvents(ctx, "g", "c1", 10, 0)
				if err != nil {
					t.Fatal(err)
				}
				if g := eventKeys(evs); !slices.Equal(g, []string{"inc-1@1", "inc-2@1", "inc-2@2"}) {
					t.Fatalf("events = %v", g)
				}
				last := evs[2]
				if !last.Deleted || last.Incident.Status != model.StatusResolved || !last.Incident.FiringAt.IsZero() {
					t.Errorf("last event = deleted %v %+v; want a deleted, never-fired snapshot", last.Deleted, last.Incident)
				}
				if evs[0].Deleted || evs[1].Deleted {
					t.Errorf("saves are marked deleted")
				}
			},
		},
		{
			name: "a stale version conflicts and deletes nothing",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				inc := newIncident("inc-1", "fp-1", model.StatusPending, t0)
				mustSave(t, ctx, s, inc)
				stale := *inc
				inc.Ticket = "OPS-1"
				mustSave(t, ctx, s, inc)
				if err := s.DeleteIncident(ctx, &stale); !errors.Is(err, store.ErrConflict) {
					t.Fatalf("err = %v, want ErrConflict", err)
				}
				if stale.Version != 1 {
					t.Errorf("failed delete changed the caller's version to %d", stale.Version)
				}
				if got, err := s.Incident(ctx, "inc-1"); err != nil || got.Ticket != "OPS-1" {
					t.Errorf("Incident = %+v, %v; want it kept", got, err)
				}
			},
		},
		{
			name: "the fingerprint of a newer incident is kept",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				old := newIncident("inc-1", "fp-1", model.StatusPending, t0)
				mustSave(t, ctx, s, old)
				newer := newIncident("inc-2", "fp-1", model.StatusFiring, t0.Add(time.Hour))
				mustSave(t, ctx, s, newer)
				if err := s.DeleteIncident(ctx, old); err != nil {
					t.Fatal(err)
				}
				if got, err := s.IncidentByFingerprint(ctx, "fp-1"); err != nil || got.ID != "inc-2" {
					t.Errorf("by fingerprint = %s, %v; want inc-2", got.ID, err)
				}
			},
		},
		{
			name: "never saved: nothing to delete",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				inc := newIncident("inc-7", "fp-7", model.StatusPending, t0)
				if err := s.DeleteIncident(ctx, inc); err != nil || inc.Version != 0 {
					t.Fatalf("err = %v, version %d; want nil and 0", err, inc.Version)
				}
				if evs, err := s.ReadIncidentEvents(ctx, "g", "c1", 10, 0); err != nil || len(evs) != 0 {
					t.Errorf("events = %v, %v; want none", eventKeys(evs), err)
				}
				if err := s.DeleteIncident(ctx, &model.Incident{}); err == nil {
					t.Error("delete without an id succeeded")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			tc.run(t, testCtx(t), s)
		})
	}
}

func TestIncidentEvents(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	inc := newIncident("inc-1", "fp-1", model.StatusPending, t0)
	mustSave(t, ctx, s, inc)
	inc.Status = model.StatusFiring
	mustSave(t, ctx, s, inc)

	tests := []struct {
		name  string
		group string
		ack   bool
	}{
		{name: "notifier reads every change and acks", group: "notifier", ack: true},
		{name: "tickets reads the same changes on its own", group: "tickets", ack: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := s.ReadIncidentEvents(ctx, tc.group, "c1", 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			if g := eventKeys(evs); !slices.Equal(g, []string{"inc-1@1", "inc-1@2"}) {
				t.Fatalf("events = %v, want [inc-1@1 inc-1@2]", g)
			}
			if evs[1].Incident.Status != model.StatusFiring || evs[1].Incident.Subject != "vm-1" {
				t.Errorf("snapshot = %+v", evs[1].Incident)
			}
			if tc.ack {
				if err := s.AckIncidentEvents(ctx, tc.group, evs[0].ID, evs[1].ID); err != nil {
					t.Fatal(err)
				}
			}
		})
	}

	t.Run("unacked changes are reclaimed for their group only", func(t *testing.T) {
		var got []store.IncidentEvent
		eventually(t, 5*time.Second, func() bool {
			var err error
			got, err = s.ClaimIncidentEvents(ctx, "tickets", "c2", 100*time.Millisecond, 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(got) > 0
		})
		if g := eventKeys(got); !slices.Equal(g, []string{"inc-1@1", "inc-1@2"}) {
			t.Errorf("reclaimed = %v", g)
		}
		none, err := s.ClaimIncidentEvents(ctx, "notifier", "c2", 0, 10)
		if err != nil || len(none) != 0 {
			t.Errorf("notifier acked everything, yet reclaimed %v, %v", eventKeys(none), err)
		}
		more, err := s.ReadIncidentEvents(ctx, "notifier", "c1", 10, 20*time.Millisecond)
		if err != nil || more != nil {
			t.Errorf("no new changes, yet read %v, %v", eventKeys(more), err)
		}
	})

	t.Run("undecodable change is delivered empty", func(t *testing.T) {
		rdb := storetest.Client(t)
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: store.KeysOf(s).Incidents(), Values: []any{"incident", "[1,2"}}).Err(); err != nil {
			t.Fatal(err)
		}
		evs, err := s.ReadIncidentEvents(ctx, "notifier", "c1", 10, 0)
		if err != nil || len(evs) != 1 || evs[0].Incident.ID != "" || evs[0].ID == "" {
			t.Fatalf("events = %+v, %v; want one empty", evs, err)
		}
	})
}

func TestEscalations(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	const n = 60
	var want []string
	for i := range n {
		id := "inc-" + strconv.Itoa(i)
		want = append(want, id)
		if err := s.ScheduleEscalation(ctx, id, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ScheduleEscalation(ctx, "inc-later", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ScheduleEscalation(ctx, "inc-cancelled", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelEscalation(ctx, "inc-cancelled"); err != nil {
		t.Fatal(err)
	}

	t.Run("two claimers never share one", func(t *testing.T) {
		now := t0.Add(n * time.Second)
		var mu sync.Mutex
		var got []string
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for {
					claimed, err := s.ClaimDueEscalations(ctx, now, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(claimed) == 0 {
						return
					}
					mu.Lock()
					got = append(got, claimed...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("claimed %d ids (%v), want each of %d exactly once", len(got), got, n)
		}
	})
	t.Run("not due yet", func(t *testing.T) {
		got, err := s.ClaimDueEscalations(ctx, t0.Add(time.Hour-time.Millisecond), 10)
		if err != nil || len(got) != 0 {
			t.Errorf("claimed %v, %v; want nothing", got, err)
		}
		got, err = s.ClaimDueEscalations(ctx, t0.Add(time.Hour), 0)
		if err != nil || !slices.Equal(got, []string{"inc-later"}) {
			t.Errorf("claimed %v, %v; want [inc-later]", got, err)
		}
	})
}

func TestSilences(t *testing.T) {
	ctx := testCtx(t)
	s, clk := newStore(t)
	now := clk.Now()
	sils := []model.Silence{
		{ID: "sil-10", Host: "h1", StartsAt: now, EndsAt: now.Add(time.Hour), Author: "ann", CreatedAt: now},
		{ID: "sil-2", Site: "pod-a", StartsAt: now, EndsAt: now.Add(2 * time.Hour), Author: "bob", CreatedAt: now},
		{ID: "sil-1", VM: "vm-1", StartsAt: now.Add(-48 * time.Hour), EndsAt: now.Add(-25 * time.Hour), Author: "cy"},
		{ID: "sil-3", Rule: "r", StartsAt: now.Add(-30 * time.Hour), EndsAt: now.Add(-23 * time.Hour), Author: "di"},
	}
	for _, sil := range sils {
		if err := s.SaveSilence(ctx, sil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T)
		want   []string
		check  func(t *testing.T, got []model.Silence)
	}{
		{
			name: "sorted by id, ended over 24h ago dropped",
			want: []string{"sil-2", "sil-3", "sil-10"},
			check: func(t *testing.T, got []model.Silence) {
				if got[2].Host != "h1" || got[2].Author != "ann" || !got[2].EndsAt.Equal(now.Add(time.Hour)) {
					t.Errorf("sil-10 = %+v", got[2])
				}
			},
		},
		{
			name: "expire sets the end",
			change: func(t *testing.T) {
				if err := s.ExpireSilence(ctx, "sil-10", now.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
				if err := s.ExpireSilence(ctx, "sil-404", now); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("unknown silence: err = %v, want ErrNotFound", err)
				}
			},
			want: []string{"sil-2", "sil-3", "sil-10"},
			check: func(t *testing.T, got []model.Silence) {
				if !got[2].EndsAt.Equal(now.Add(time.Minute)) || got[2].Active(now.Add(2*time.Minute)) {
					t.Errorf("sil-10 ends %s", got[2].EndsAt)
				}
			},
		},
		{
			name:   "a day after expiry it is gone",
			change: func(t *testing.T) { clk.Advance(24*time.Hour + 2*time.Minute) },
			want:   []string{"sil-2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.change != nil {
				tc.change(t)
			}
			got, err := s.Silences(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []string
			for _, g := range got {
				gotIDs = append(gotIDs, g.ID)
			}
			if !slices.Equal(gotIDs, tc.want) {
				t.Fatalf("Silences = %v, want %v", gotIDs, tc.want)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}
