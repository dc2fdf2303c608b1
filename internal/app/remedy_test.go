package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/model"
)

// remedyView is GET /v1/remedies' answer.
type remedyView struct {
	Remedy model.Remedy       `json:"remedy"`
	Audit  []model.AuditEntry `json:"audit"`
}

func (s *service) remedyOf(tb testing.TB, incident string) (int, remedyView) {
	tb.Helper()
	code, body := s.get(tb, "/v1/remedies?incident="+incident)
	var v remedyView
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &v); err != nil {
			tb.Fatalf("GET /v1/remedies: %v in %s", err, body)
		}
	}
	return code, v
}

// remedyHost is a host observation of pod-a: ecc > 0 fails it; cpu and mem
// are its free capacity.
func remedyHost(tb testing.TB, host string, ecc, cpu, mem int, at time.Time) string {
	return obsLine(tb, map[string]any{
		"source": "prometheus", "kind": "host", "id": host, "site": "pod-a", "state": "up",
		"attrs": map[string]any{"ecc_uncorrected": ecc, "mce": 0, "disk_errors": 0, "nic_up": true, "psu_ok": true,
			"temp_c": 41, "storage_reachable": true, "network_reachable": true, "cpu_free": cpu, "mem_free_mb": mem},
		"time_generated": at.Format(time.RFC3339Nano),
	})
}

func remedyVM(tb testing.TB, vm, host string, at time.Time) string {
	return obsLine(tb, map[string]any{
		"source": "libvirt", "kind": "vm", "id": vm, "host": host, "site": "pod-a", "state": "crashed",
		"time_generated": at.Format(time.RFC3339Nano),
	})
}

// A host fault proposes moving its VMs; the plan waits for approval, a
// stranger's approval is refused, a denial without reason is refused, an
// approver's typed approval runs it once (dry run), and the audit trail
// and the incident say so.
func TestRemedyHostFaultApprovedAndExecuted(t *testing.T) {
	s := bootService(t, bootOptions{Env: map[string]string{"VMTRIAGE_APPROVERS": "U-approver"}})
	t0 := s.clock.Now()
	body := remedyHost(t, "host-007", 3, 0, 0, t0) + remedyHost(t, "host-008", 0, 16, 65536, t0) +
		remedyHost(t, "host-009", 0, 16, 2048, t0) +
		remedyVM(t, "vm-0042", "host-007", t0) + remedyVM(t, "vm-0043", "host-007", t0)
	if code, resp := s.post(t, "/v1/observations", "application/x-ndjson", []byte(body)); code != http.StatusAccepted {
		t.Fatalf("POST /v1/observations = %d %s", code, resp)
	}
	s.waitApplied(t)
	s.tick(t)

	var incID string
	eventually(t, 10*time.Second, "a firing migrate-host incident", func() (bool, string) {
		for _, inc := range s.incidents(t, "?status=firing") {
			if inc["action"] == "migrate-host" {
				incID, _ = inc["id"].(string)
				return inc["approval"] == "pending", fmt.Sprint(inc)
			}
		}
		return false, fmt.Sprint(s.incidents(t, ""))
	})
	var rem remedyView
	eventually(t, 10*time.Second, "the remedy to await approval", func() (bool, string) {
		code, v := s.remedyOf(t, incID)
		rem = v
		return code == http.StatusOK && v.Remedy.State == model.RemedyAwaiting, fmt.Sprint(code, v.Remedy.State)
	})
	var moves []string
	for _, st := range rem.Remedy.Steps {
		if st.Do == model.StepMigrateVM {
			moves = append(moves, st.VM+"→"+st.Target)
		}
	}
	if got := strings.Join(moves, " "); got != "vm-0042→host-008 vm-0043→host-008" {
		t.Errorf("plan moves = %q; want both onto host-008 (host-009 has too little memory for two)", got)
	}
	eventually(t, 10*time.Second, "the incident to show the plan", func() (bool, string) {
		inc := s.incidents(t, "?status=firing")
		for _, i := range inc {
			if i["id"] == incID {
				r, _ := i["remedy"].(string)
				return strings.Contains(r, "awaiting approval (0 of 1)") && strings.Contains(r, "vm-0042 → host-008"), r
			}
		}
		return false, "no incident"
	})

	ctx := context.Background()
	refused := s.svc.Router.HandleText(ctx, "/triage approve "+incID, bot.Command{User: "U-stranger", Origin: "test"})
	if refused.Tone != bot.ToneRefused {
		t.Fatalf("a stranger's approval: %+v, want refused", refused)
	}
	noReason := s.svc.Router.HandleText(ctx, "/triage deny "+incID, bot.Command{User: "U-approver", Origin: "test"})
	if !strings.Contains(noReason.Title, "needs a reason") {
		t.Fatalf("deny without reason: %+v", noReason)
	}
	ok := s.svc.Router.HandleText(ctx, "/triage approve "+incID, bot.Command{User: "U-approver", Origin: "test"})
	if !strings.Contains(ok.Title, "approved by U-approver") {
		t.Fatalf("approval reply: %+v", ok)
	}
	if plan := replyText(ok); !strings.Contains(plan, "move vm-0042 → host-008") {
		t.Errorf("the approval reply does not show the plan: %s", plan)
	}
	twice := s.svc.Router.HandleText(ctx, "/triage approve "+incID, bot.Command{User: "U-approver", Origin: "test"})
	if !strings.Contains(twice.Title, "already") {
		t.Errorf("a second click: %+v", twice)
	}

	eventually(t, 15*time.Second, "the remedy to finish", func() (bool, string) {
		_, v := s.remedyOf(t, incID)
		rem = v
		return v.Remedy.State == model.RemedyDone, string(v.Remedy.State) + " " + v.Remedy.Result
	})
	if rem.Remedy.Result != "2 moved" {
		t.Errorf("result = %q, want 2 moved", rem.Remedy.Result)
	}
	count := map[string]int{}
	for _, a := range rem.Audit {
		count[a.What]++
	}
	for _, what := range []string{"started", "migrate vm-0042 from host-007 to host-008", "migrate vm-0043 from host-007 to host-008", "put host-007 into maintenance", "finished"} {
		if count[what] != 1 {
			t.Errorf("audit has %q %d times, want once: %+v", what, count[what], rem.Audit)
		}
	}
	if count["approved (1 of 1)"] != 1 || count["approve refused"] != 1 {
		t.Errorf("audit of decisions: %v", count)
	}
	for _, a := range rem.Audit {
		if a.Who == "" || a.At.IsZero() || a.Incident != incID {
			t.Errorf("audit entry without who/when/incident: %+v", a)
		}
	}
	reply := s.svc.Router.HandleText(ctx, "/triage remedy "+incID, bot.Command{User: "U-anyone", Origin: "test"})
	if !strings.Contains(reply.Title, "done: 2 moved") || !strings.Contains(replyText(reply), "U-approver approved (1 of 1)") {
		t.Errorf("/triage remedy: %+v", reply)
	}
	if code, _ := s.get(t, "/v1/remedies"); code != http.StatusBadRequest {
		t.Errorf("GET /v1/remedies without a parameter = %d, want 400", code)
	}
	if code, _ := s.get(t, "/v1/remedies?incident=inc-nope"); code != http.StatusNotFound {
		t.Errorf("GET /v1/remedies?incident=inc-nope = %d, want 404", code)
	}
}

// replyText flattens a reply's sections into lines, for substring checks.
func replyText(r bot.Reply) string {
	var b strings.Builder
	for _, sec := range r.Sections {
		b.WriteString(sec.Heading + "\n")
		for _, f := range sec.Fields {
			b.WriteString(f.Key + ": " + f.Value + "\n")
		}
		for _, l := range sec.Lines {
			b.WriteString(l + "\n")
		}
		if sec.List != nil {
			for _, it := range sec.List.Items {
				b.WriteString(it + "\n")
			}
		}
	}
	return b.String()
}
