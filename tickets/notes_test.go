package tickets

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

func TestFixComment(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{name: "fix", body: "Fix: replaced DIMM B2", want: "replaced DIMM B2"},
		{name: "fixed, any case", body: "  FIXED:   reseated the NIC\n", want: "reseated the NIC"},
		{name: "resolution in bold", body: "*Resolution:* firmware 2.1 on the BMC", want: "firmware 2.1 on the BMC"},
		{name: "vmtriage's own comment", body: "Resolved at 2026-11-22 10:00:00 UTC. Outage duration: *10m*.", want: ""},
		{name: "mentions fix later", body: "We tried a fix: nothing", want: ""},
		{name: "prefix only", body: "Fix:", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fixComment(tt.body); got != tt.want {
				t.Errorf("fixComment(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

// TestResolutionCommentBecomesNote checks that when an incident resolves,
// the newest "Fix: …" comment someone left on its ticket is kept as the
// incident's resolution note under its cause.
func TestResolutionCommentBecomesNote(t *testing.T) {
	h := newHarness(t, setup{opts: func(o *Options) { o.Notes = o.Store.(NoteKeeper) }})
	h.open("inc-1", model.SeverityCritical)
	h.drain()
	key := h.only().Key
	for _, body := range []string{"Fix: rebooted it", "looking at the SEL now", "Fix: replaced DIMM B2, memtest clean"} {
		h.humanComment(key, body)
	}
	h.change("inc-1", func(i *model.Incident) { i.Status, i.ResolvedAt = model.StatusResolved, h.clk.Now() })
	h.drain()
	notes, err := h.st.Notes(h.ctx, "host-hardware-fault", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || notes[0].Text != "replaced DIMM B2, memtest clean" || notes[0].Incident != "inc-1" || notes[0].Author != "Jira "+key {
		t.Fatalf("notes = %+v; want the newest Fix: comment of %s on inc-1", notes, key)
	}
}

// humanComment adds a comment to the fake Jira as a person would, through
// its REST API.
func (h *harness) humanComment(key, body string) {
	h.t.Helper()
	b, _ := json.Marshal(map[string]string{"body": body})
	req, err := http.NewRequest(http.MethodPost, h.jira.URL+"/rest/api/2/issue/"+key+"/comment", bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	req.SetBasicAuth(testUser, testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("comment on %s: status %d", key, resp.StatusCode)
	}
}

var _ NoteKeeper = (*store.Store)(nil)
