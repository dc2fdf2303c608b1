package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
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

// fakeRecorder is an auditRecorder over fixed incidents, VMs and hosts.
type fakeRecorder struct {
	incidents map[string]model.Incident
	vms       map[string]model.VMStatus
	hosts     map[string]bool
	got       []store.AuditEntry
}

func (f *fakeRecorder) AppendAudit(_ context.Context, e store.AuditEntry) error {
	f.got = append(f.got, e)
	return nil
}

func (f *fakeRecorder) Incident(_ context.Context, id string) (model.Incident, error) {
	if inc, ok := f.incidents[id]; ok {
		return inc, nil
	}
	return model.Incident{}, store.ErrNotFound
}

func (f *fakeRecorder) VM(_ context.Context, id string) (model.VMStatus, error) {
	if vm, ok := f.vms[id]; ok {
		return vm, nil
	}
	return model.VMStatus{}, store.ErrNotFound
}

func (f *fakeRecorder) Host(_ context.Context, id string, _ int) (model.HostStatus, error) {
	if f.hosts[id] {
		return model.HostStatus{}, nil
	}
	return model.HostStatus{}, store.ErrNotFound
}

// TestRefusalSubjects checks which incident, VMs and host a refused
// command is filed under.
func TestRefusalSubjects(t *testing.T) {
	rec := &fakeRecorder{
		incidents: map[string]model.Incident{"inc-1": {ID: "inc-1", Host: "h1", VMs: []string{"vm-a", "vm-b"}}},
		vms:       map[string]model.VMStatus{"vm-c": {ID: "vm-c", Host: "h2"}},
		hosts:     map[string]bool{"h3": true},
	}
	a := auditor{st: rec, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tests := []struct {
		command, incident, vms, host string
	}{
		{"approve inc-1", "inc-1", "vm-a,vm-b", "h1"},
		{"/triage deny inc-1 no reason", "inc-1", "vm-a,vm-b", "h1"},
		{"silence vm-c 1h", "", "vm-c", "h2"},
		{"silence h3 1h maintenance", "", "", "h3"},
		{"silence nothing-known 1h", "", "", ""},
		{"help", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			rec.got = nil
			a.Refused(context.Background(), bot.Refusal{User: "U1", Command: tt.command, Reason: "not allowed"})
			if len(rec.got) != 1 {
				t.Fatalf("recorded %d entries, want 1", len(rec.got))
			}
			e := rec.got[0]
			if e.Kind != store.AuditRefused || e.Incident != tt.incident || strings.Join(e.VMs, ",") != tt.vms || e.Host != tt.host {
				t.Errorf("entry = %+v; want incident %q vms %q host %q", e, tt.incident, tt.vms, tt.host)
			}
		})
	}
}
