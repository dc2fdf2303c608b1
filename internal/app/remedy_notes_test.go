package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// recordedNotes records the notes it is given.
type recordedNotes struct{ got []string }

func (r *recordedNotes) Note(_ context.Context, incident, text string) error {
	r.got = append(r.got, incident+": "+text)
	return nil
}

// TestNotingStoreNotesEachSavedChangeOnce checks that a saved change is
// noted once, that a save that lost the race (a stale copy, as a retry or
// another replica would have) notes nothing, and what the notes say.
func TestNotingStoreNotesEachSavedChangeOnce(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t, store.Options{Clock: clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))})
	notes := &recordedNotes{}
	ns := notingStore{Store: st, notes: notes, log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	r := model.Remedy{ID: "rem-1", Incident: "inc-1", Action: model.ActionMigrateHost, Subject: "h1", Host: "h1",
		State: model.RemedyAwaiting, ExpiresAt: time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC),
		Steps: []model.RemedyStep{{Do: model.StepMigrateVM, VM: "vm-a", Target: "h2"}, {Do: model.StepMigrateVM, VM: "vm-b"}}}
	if err := ns.SaveRemedy(ctx, &r, model.AuditEntry{Who: "vmtriage", What: "requested migrate 2 VM(s) off h1"}); err != nil {
		t.Fatal(err)
	}
	stale := r
	if err := ns.SaveRemedy(ctx, &r, model.AuditEntry{Who: "U1", What: "approve refused", Result: "not an approver"}); err != nil {
		t.Fatal(err)
	}
	r.State = model.RemedyApproved
	if err := ns.SaveRemedy(ctx, &r, model.AuditEntry{Who: "U2", What: "approved (1 of 1)"}); err != nil {
		t.Fatal(err)
	}
	stale.State = model.RemedyDenied
	if err := ns.SaveRemedy(ctx, &stale, model.AuditEntry{Who: "U3", What: "denied", Result: "no"}); err == nil {
		t.Fatal("a stale save succeeded")
	}
	r.State = model.RemedyRunning
	if err := ns.SaveRemedy(ctx, &r); err != nil { // a lease renewal: no entry, no note
		t.Fatal(err)
	}
	r.State, r.Result = model.RemedyDone, "1 moved, 1 skipped"
	if err := ns.SaveRemedy(ctx, &r,
		model.AuditEntry{Who: "replica-a", What: "migrate vm-a from h1 to h2", Result: "done"},
		model.AuditEntry{Who: "replica-a", What: "finished", Result: "done: 1 moved, 1 skipped"}); err != nil {
		t.Fatal(err)
	}

	want := []string{
		"inc-1: rem-1 (vmtriage): requested migrate 2 VM(s) off h1; Plan: vm-a → h2; fits nowhere: vm-b",
		"inc-1: rem-1 (U2): approved (1 of 1)",
		"inc-1: rem-1 (replica-a): migrate vm-a from h1 to h2 — done; rem-1 (replica-a): finished — done: 1 moved, 1 skipped; Summary: 1 moved, 1 skipped",
	}
	if strings.Join(notes.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(notes.got, "\n"), strings.Join(want, "\n"))
	}
}
