package tickets

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot/bottest"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// fixReader answers from a map of cause to notes, or fails.
type fixReader struct {
	notes map[string][]store.Note
	err   error
}

func (f fixReader) PreviousFixes(_ context.Context, cause string) ([]store.Note, error) {
	return f.notes[cause], f.err
}

func TestRenderPreviousFixes(t *testing.T) {
	r, err := newRenderer("", "", DefaultMaxDescription)
	if err != nil {
		t.Fatal(err)
	}
	inc := bottest.HostFault
	d := ticketData(inc, nil, []string{Label}, bottest.Now)
	d.PreviousFixes = []Fix{
		{Incident: "inc-31", Text: "Replaced DIMM B2 after ipmitool sel list\nshowed ECC on it; evacuated first.", Author: "U0ALICE",
			Time: time.Date(2026, 11, 20, 3, 12, 0, 0, time.UTC)},
		{Incident: "inc-12", Text: "*not bold* [a link|https://evil.example] {noformat} " + strings.Repeat("é", 600), Author: "bob_ops",
			Time: time.Date(2026, 11, 2, 14, 0, 0, 0, time.UTC)},
	}
	desc, err := r.Description(d)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "host-hardware-fault-fixed-before", desc+"\n")
}

// TestTicketShowsPreviousFixes checks that a new ticket's description
// lists how earlier incidents of its cause were fixed (not its own note),
// and that a failing knowledge base does not hold the ticket up.
func TestTicketShowsPreviousFixes(t *testing.T) {
	notes := []store.Note{
		{Incident: "inc-1", Cause: "host-hardware-fault", Text: "moved the VMs by hand", Author: "U0BOB", Time: bottest.Now},
		{Incident: "inc-0", Cause: "host-hardware-fault", Text: "replaced DIMM B2", Author: "U0ALICE", Time: bottest.Now.Add(-48 * time.Hour)},
	}
	tests := []struct {
		name  string
		fixes fixReader
		want  []string
		not   []string
	}{
		{name: "listed", fixes: fixReader{notes: map[string][]store.Note{"host-hardware-fault": notes}},
			want: []string{"h3. How this was fixed before", "replaced DIMM B2", "on inc-0"}, not: []string{"moved the VMs by hand"}},
		{name: "knowledge base down", fixes: fixReader{err: errors.New("redis: connection refused")},
			not: []string{"How this was fixed before"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, setup{opts: func(o *Options) { o.Fixes = tc.fixes }})
			h.open("inc-1", model.SeverityCritical)
			h.drain()
			desc := h.only().Description
			for _, w := range tc.want {
				if !strings.Contains(desc, w) {
					t.Errorf("description lacks %q:\n%s", w, desc)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(desc, w) {
					t.Errorf("description has %q:\n%s", w, desc)
				}
			}
		})
	}
}
