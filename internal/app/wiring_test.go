package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
)

// TestServeWiresKnowledgeCollectorsAndVerbs boots the service with the
// heartbeat receiver on and checks that each part the configuration turns
// on answers where a user would reach it: the runbook pages, heartbeats,
// the Alertmanager receiver, the latency report and the chat verbs.
func TestServeWiresKnowledgeCollectorsAndVerbs(t *testing.T) {
	const token = "hb-token-0123456789abcdef"
	s := bootService(t, bootOptions{Env: map[string]string{"VMTRIAGE_HEARTBEAT_TOKENS": "site-a:" + token}})
	ctx := context.Background()

	// Runbooks are served read-only, and linked from incidents.
	if code, body := s.get(t, "/kb/host-hardware-fault"); code != http.StatusOK || !strings.Contains(string(body), "<h1") {
		t.Errorf("GET /kb/host-hardware-fault = %d, want 200 with a page: %.200s", code, body)
	}
	if code, _ := s.get(t, "/kb/no-such-runbook"); code != http.StatusNotFound {
		t.Errorf("GET /kb/no-such-runbook = %d, want 404", code)
	}

	// Heartbeats need the sender's token.
	hb := `[{"computer":"vm-0042","time_generated":"` + s.clock.Now().Add(-2*time.Second).Format(time.RFC3339Nano) + `","site":"pod-a"}]`
	if code, body := s.post(t, "/v1/heartbeats", "application/json", []byte(hb)); code != http.StatusUnauthorized {
		t.Errorf("POST /v1/heartbeats without a token = %d %s, want 401", code, body)
	}
	req, err := http.NewRequest(http.MethodPost, s.url("/v1/heartbeats"), strings.NewReader(hb))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/heartbeats with its token = %d, want 202", resp.StatusCode)
	}
	s.waitApplied(t)

	// The heartbeat went through the pipeline, so the latency report knows
	// its source and how late it was.
	code, body := s.get(t, "/v1/latency")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/latency = %d %s", code, body)
	}
	var rep struct {
		Sources []struct {
			Source   string `json:"source"`
			Received struct {
				Count uint64 `json:"count"`
			} `json:"received"`
		} `json:"sources"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("GET /v1/latency: %v: %s", err, body)
	}
	if len(rep.Sources) != 1 || rep.Sources[0].Source != "heartbeat/site-a" || rep.Sources[0].Received.Count != 1 {
		t.Errorf("GET /v1/latency sources = %+v, want one heartbeat/site-a with 1 observation", rep.Sources)
	}

	// The Alertmanager receiver is mounted; with no mapping every alert is
	// skipped and said to be, never guessed at.
	am := `{"version":"4","status":"firing","receiver":"vmtriage","groupKey":"{}:{}","alerts":[{"status":"firing","labels":{"alertname":"Whatever","instance":"host-007:9100"},"startsAt":"` +
		s.clock.Now().Format(time.RFC3339) + `"}]}`
	if code, body := s.post(t, "/v1/alertmanager", "application/json", []byte(am)); code != http.StatusAccepted || !strings.Contains(string(body), "Whatever") {
		t.Errorf("POST /v1/alertmanager = %d %s, want 202 naming the skipped alert", code, body)
	}

	// The verbs the wiring adds answer through the shared router.
	from := bot.Command{User: "U1", Channel: "C1", Origin: bot.OriginTyped}
	r := s.svc.Router.HandleText(ctx, "kb ecc memory", from)
	if !strings.Contains(r.Title, "Runbooks") || len(r.Sections) == 0 || r.Sections[0].Heading == "" {
		t.Errorf("kb ecc memory = %+v, want runbooks", r)
	} else if links := strings.Join(r.Sections[0].Lines, " "); !strings.Contains(links, "/kb/host-hardware-fault") {
		t.Errorf("kb ecc memory: first hit %q links %q, want the host hardware fault runbook", r.Sections[0].Heading, links)
	}
	if r := s.svc.Router.HandleText(ctx, "latency", from); !strings.Contains(r.Title, "latency") || len(r.Sections) == 0 {
		t.Errorf("latency = %+v, want a report", r)
	}
	if r := s.svc.Router.HandleText(ctx, "resolve inc-404 swapped the DIMM", from); !strings.Contains(r.Title+sectionText(r), "no incident inc-404") {
		t.Errorf("resolve of an unknown incident = %+v, want it named", r)
	}
	if r := s.svc.Router.HandleText(ctx, "help", from); !strings.Contains(sectionText(r), "kb") || strings.Contains(sectionText(r), "ticket <") {
		t.Errorf("help = %s, want kb listed and no ticket verb (Jira is not configured)", sectionText(r))
	}
}

func sectionText(r bot.Reply) string {
	var b strings.Builder
	for _, s := range r.Sections {
		b.WriteString(s.Heading + "\n")
		for _, f := range s.Fields {
			b.WriteString(f.Key + " " + f.Value + "\n")
		}
		for _, l := range s.Lines {
			b.WriteString(l + "\n")
		}
		if s.List != nil {
			b.WriteString(strings.Join(s.List.Items, "\n"))
		}
	}
	return b.String()
}
