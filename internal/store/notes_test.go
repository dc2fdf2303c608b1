package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/store"
)

func TestNotesNewestFirstPerCause(t *testing.T) {
	st, clk := newStore(t)
	ctx := testCtx(t)
	add := func(inc, cause, text, author string) {
		t.Helper()
		if err := st.AddNote(ctx, store.Note{Incident: inc, Cause: cause, Text: text, Author: author}); err != nil {
			t.Fatalf("AddNote(%s): %v", inc, err)
		}
		clk.Advance(time.Minute)
	}
	add("inc-1", "host-hardware-fault", "replaced DIMM B2", "U1")
	add("inc-2", "service-down", "restarted libvirtd after OOM", "U2")
	add("inc-3", "host-hardware-fault", "reseated PSU 2", "U1")
	add("inc-4", "host-hardware-fault", "  moved VMs, vendor swapped board  ", "U3")

	got, err := st.Notes(ctx, "host-hardware-fault", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Note{
		{Incident: "inc-4", Cause: "host-hardware-fault", Text: "moved VMs, vendor swapped board", Author: "U3", Time: t0.Add(time.Hour + 3*time.Minute)},
		{Incident: "inc-3", Cause: "host-hardware-fault", Text: "reseated PSU 2", Author: "U1", Time: t0.Add(time.Hour + 2*time.Minute)},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Notes(host-hardware-fault, 2):\n got %v\nwant %v", got, want)
	}
	all, err := st.Notes(ctx, "host-hardware-fault", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[2].Incident != "inc-1" {
		t.Fatalf("Notes(host-hardware-fault, all) = %v, want inc-4, inc-3, inc-1", all)
	}
	other, err := st.Notes(ctx, "service-down", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(other) != 1 || other[0].Text != "restarted libvirtd after OOM" {
		t.Fatalf("Notes(service-down) = %v", other)
	}
	none, err := st.Notes(ctx, "guest-crash", 5)
	if err != nil || len(none) != 0 {
		t.Fatalf("Notes(guest-crash) = %v, %v; want none", none, err)
	}
}

// A retried or corrected note by the same person replaces theirs; a second
// person's note on the same incident (say, the Jira resolution comment) is
// kept beside it.
func TestNoteSameIncidentAndAuthorReplaces(t *testing.T) {
	st, clk := newStore(t)
	ctx := testCtx(t)
	for _, n := range []store.Note{
		{Incident: "inc-7", Cause: "service-down", Text: "restarted libvirtd", Author: "U1"},
		{Incident: "inc-7", Cause: "service-down", Text: "restarted libvirtd; /var was full, cleaned qemu logs", Author: "U1"},
		{Incident: "inc-7", Cause: "service-down", Text: "Resolution: cleaned /var", Author: "jira"},
	} {
		if err := st.AddNote(ctx, n); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	got, err := st.Notes(ctx, "service-down", 10)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, n := range got {
		texts = append(texts, n.Author+": "+n.Text)
	}
	want := "jira: Resolution: cleaned /var | U1: restarted libvirtd; /var was full, cleaned qemu logs"
	if strings.Join(texts, " | ") != want {
		t.Fatalf("notes = %q, want %q", strings.Join(texts, " | "), want)
	}
}

func TestNotesKeepOnlyTheNewest(t *testing.T) {
	st, clk := newStore(t)
	ctx := testCtx(t)
	for i := range store.MaxNotesPerCause + 5 {
		if err := st.AddNote(ctx, store.Note{Incident: fmt.Sprintf("inc-%d", i), Cause: "guest-crash", Text: "restarted", Author: "U1"}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	got, err := st.Notes(ctx, "guest-crash", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != store.MaxNotesPerCause {
		t.Fatalf("kept %d notes, want %d", len(got), store.MaxNotesPerCause)
	}
	if first, last := got[0].Incident, got[len(got)-1].Incident; first != fmt.Sprintf("inc-%d", store.MaxNotesPerCause+4) || last != "inc-5" {
		t.Fatalf("kept %s .. %s, want inc-%d .. inc-5", first, last, store.MaxNotesPerCause+4)
	}
	// The texts of dropped notes are gone too, not only their index entries.
	n, err := store.NoteTextCount(ctx, st, "guest-crash")
	if err != nil {
		t.Fatal(err)
	}
	if n != store.MaxNotesPerCause {
		t.Fatalf("note texts kept: %d, want %d", n, store.MaxNotesPerCause)
	}
}

func TestAddNoteRefusesBadNotes(t *testing.T) {
	st, _ := newStore(t)
	ctx := testCtx(t)
	tests := []struct {
		name string
		note store.Note
		want string
	}{
		{"no incident", store.Note{Cause: "c", Text: "x"}, "the incident is required"},
		{"no cause", store.Note{Incident: "inc-1", Text: "x"}, "add note for inc-1: the cause is required"},
		{"blank text", store.Note{Incident: "inc-1", Cause: "c", Text: "  \n"}, "the text is empty"},
		{"too long", store.Note{Incident: "inc-1", Cause: "c", Text: strings.Repeat("é", store.MaxNoteLen+1)}, "2001 characters long; keep it under 2000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.AddNote(ctx, tt.note)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("AddNote = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if got, err := st.Notes(ctx, "c", 0); err != nil || len(got) != 0 {
		t.Fatalf("a refused note was kept: %v, %v", got, err)
	}
}
