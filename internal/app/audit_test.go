package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/bot"
)

// TestRefusalsAreAudited: a command refused for lack of permission is
// answered with the reason and recorded, readable in GET /v1/audit.
func TestRefusalsAreAudited(t *testing.T) {
	s := bootService(t, bootOptions{Env: map[string]string{"VMTRIAGE_OPERATORS": "U0OPS"}})
	from := bot.Command{User: "U0INTRUDER", Channel: "C0OPS", Origin: bot.OriginButton}
	r := s.svc.Router.HandleText(context.Background(), "silence host-007 1h <!channel> maintenance", from)
	if r.Tone != bot.ToneRefused {
		t.Fatalf("silence by a non-operator = %+v, want a refusal", r)
	}
	code, body := s.get(t, "/v1/audit")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/audit = %d %s", code, body)
	}
	var got struct {
		Refusals []struct {
			User, Channel, Origin, Command, Group, Reason string
		} `json:"refusals"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("GET /v1/audit: %v: %s", err, body)
	}
	if len(got.Refusals) != 1 {
		t.Fatalf("GET /v1/audit = %s, want one refusal", body)
	}
	e := got.Refusals[0]
	if e.User != "U0INTRUDER" || e.Channel != "C0OPS" || e.Origin != "button" || e.Group != "ack" ||
		!strings.HasPrefix(e.Command, "silence host-007 1h") || e.Reason == "" {
		t.Errorf("refusal = %+v", e)
	}

	for _, q := range []string{"?since=yesterday", "?limit=0", "?limit=5000"} {
		if code, body := s.get(t, "/v1/audit"+q); code != http.StatusBadRequest || !strings.Contains(string(body), strings.SplitN(q[1:], "=", 2)[0]) {
			t.Errorf("GET /v1/audit%s = %d %s, want 400 naming the parameter", q, code, body)
		}
	}
}
