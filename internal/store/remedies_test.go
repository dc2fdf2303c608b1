package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

func TestRemedyRecords(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	clk := clock.NewFake(now)
	s := storetest.New(t, store.Options{Clock: clk})
	ctx := context.Background()

	id, err := s.NextRemedyID(ctx)
	if err != nil || id != "rem-1" {
		t.Fatalf("NextRemedyID = %q, %v", id, err)
	}
	r := model.Remedy{ID: id, Incident: "inc-1", Action: model.ActionMigrateHost, State: model.RemedyAwaiting,
		ExpiresAt: now.Add(30 * time.Minute)}
	if err := s.SaveRemedy(ctx, &r, model.AuditEntry{Who: "vmtriage", What: "requested"}); err != nil {
		t.Fatal(err)
	}
	if r.Version != 1 || !r.UpdatedAt.Equal(now) {
		t.Errorf("after save: version %d updated %s", r.Version, r.UpdatedAt)
	}
	other := model.Remedy{ID: "rem-2", Incident: "inc-1", State: model.RemedyApproved}
	if err := s.SaveRemedy(ctx, &other); !errors.Is(err, store.ErrRemedyExists) || other.Version != 0 {
		t.Errorf("a second remedy for inc-1: %v (version %d), want ErrRemedyExists", err, other.Version)
	}

	// Expiry index while awaiting; nothing due to run.
	if ids, _ := s.ExpiredRemedies(ctx, now.Add(29*time.Minute), 10); len(ids) != 0 {
		t.Errorf("expired before the time: %v", ids)
	}
	if ids, _ := s.ExpiredRemedies(ctx, now.Add(30*time.Minute), 10); !slices.Equal(ids, []string{"rem-1"}) {
		t.Errorf("expired at the time: %v", ids)
	}
	if ids, _ := s.DueRemedies(ctx, now.Add(time.Hour), 10); len(ids) != 0 {
		t.Errorf("due while awaiting approval: %v", ids)
	}

	// A stale copy cannot overwrite a newer one.
	stale := r
	r.State = model.RemedyApproved
	if err := s.SaveRemedy(ctx, &r, model.AuditEntry{Who: "U1", What: "approved"}); err != nil {
		t.Fatal(err)
	}
	stale.State = model.RemedyDenied
	if err := s.SaveRemedy(ctx, &stale, model.AuditEntry{Who: "U2", What: "denied"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale save: %v, want ErrConflict", err)
	}
	if ids, _ := s.DueRemedies(ctx, now, 10); !slices.Equal(ids, []string{"rem-1"}) {
		t.Errorf("due once approved: %v", ids)
	}
	if ids, _ := s.ExpiredRemedies(ctx, now.Add(time.Hour), 10); len(ids) != 0 {
		t.Errorf("still in the expiry index once approved: %v", ids)
	}
	// Running: due again only when the lease ends; final: off the queue.
	r.State, r.LeaseUntil = model.RemedyRunning, now.Add(2*time.Minute)
	if err := s.SaveRemedy(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.DueRemedies(ctx, now.Add(time.Minute), 10); len(ids) != 0 {
		t.Errorf("due within the lease: %v", ids)
	}
	if ids, _ := s.DueRemedies(ctx, now.Add(2*time.Minute), 10); !slices.Equal(ids, []string{"rem-1"}) {
		t.Errorf("due after the lease: %v", ids)
	}
	r.State = model.RemedyDone
	if err := s.SaveRemedy(ctx, &r, model.AuditEntry{Who: "x", What: "finished", Result: "done"}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.DueRemedies(ctx, now.Add(time.Hour), 10); len(ids) != 0 {
		t.Errorf("due once done: %v", ids)
	}

	got, err := s.RemedyForIncident(ctx, "inc-1")
	if err != nil || got.State != model.RemedyDone || got.Version != 4 {
		t.Errorf("RemedyForIncident = %+v, %v", got, err)
	}
	if _, err := s.Remedy(ctx, "rem-9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing remedy: %v", err)
	}
	if _, err := s.RemedyForIncident(ctx, "inc-9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing incident's remedy: %v", err)
	}
	audit, err := s.RemedyAudit(ctx, "rem-1")
	if err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, a := range audit {
		if a.Remedy != "rem-1" || a.Incident != "inc-1" || a.At.IsZero() {
			t.Errorf("entry not stamped: %+v", a)
		}
		whats = append(whats, a.Who+" "+a.What)
	}
	if want := []string{"vmtriage requested", "U1 approved", "x finished"}; !slices.Equal(whats, want) {
		t.Errorf("audit = %q, want %q (the refused stale save appends nothing)", whats, want)
	}
}

func TestSubjectLocks(t *testing.T) {
	s := storetest.New(t, store.Options{})
	ctx := context.Background()
	ok, err := s.LockSubject(ctx, "vm-1", "rem-1", time.Minute)
	if err != nil || !ok {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if ok, _ := s.LockSubject(ctx, "vm-1", "rem-2", time.Minute); ok {
		t.Error("a second owner took a held lock")
	}
	if ok, _ := s.LockSubject(ctx, "vm-1", "rem-1", time.Minute); !ok {
		t.Error("the owner could not take its own lock again (a takeover of the same remedy)")
	}
	if err := s.UnlockSubject(ctx, "vm-1", "rem-2"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.LockSubject(ctx, "vm-1", "rem-2", time.Minute); ok {
		t.Error("another owner's unlock released the lock")
	}
	if err := s.UnlockSubject(ctx, "vm-1", "rem-1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.LockSubject(ctx, "vm-1", "rem-2", time.Minute); !ok {
		t.Error("the lock was not released by its owner")
	}
}
