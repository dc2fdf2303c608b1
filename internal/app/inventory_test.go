package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/bot/console"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/tickets/jiratest"
)

const inventoryToken = "inventory-token-0123456789"

// TestInventoryEndToEnd boots the service with an inventory file (teams
// and services), pushes the VMs over POST /v1/inventory, lets host-007 fail
// under four of them, and checks that the host incident in GET
// /v1/incidents names the services it hits and how badly; then asks
// `/triage impact` what a maintenance of host-008 would do.
func TestInventoryEndToEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(path, []byte(`teams:
  - {name: team-pay, slack_channel: C0PAY, slack_usergroup: S0PAY, jira_component: Payments, jira_assignee: pay-oncall}
  - {name: team-ledger, slack_channel: C0LEDGER}
services:
  - {name: payments-api, team: team-pay}
  - {name: ledger, team: team-ledger}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := bootService(t, bootOptions{Env: map[string]string{
		"VMTRIAGE_INVENTORY_PATH":  path,
		"VMTRIAGE_INVENTORY_TOKEN": inventoryToken,
	}})
	ctx := context.Background()
	t0 := s.clock.Now()
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }

	// Refused without the token, accepted with it.
	push := []byte(`{"vms":[
 {"id":"pay-1","service":"payments-api"},{"id":"pay-2","service":"payments-api"},{"id":"pay-3","service":"payments-api"},
 {"id":"pay-4","service":"payments-api"},{"id":"pay-5","service":"payments-api"},{"id":"pay-6","service":"payments-api"},
 {"id":"ledger-1","service":"ledger"}]}`)
	if code, body := s.post(t, "/v1/inventory", "application/json", push); code != http.StatusUnauthorized {
		t.Fatalf("POST /v1/inventory without a token = %d %s, want 401", code, body)
	}
	req, _ := http.NewRequest("POST", s.url("/v1/inventory"), bytes.NewReader(push))
	req.Header.Set("Authorization", "Bearer "+inventoryToken)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/inventory = %d, want 200", resp.StatusCode)
	}

	// Placement: pay-1..3 and ledger-1 on host-007, pay-4 on host-008
	// (pod-a), pay-5..6 on host-009 (pod-b); vm-x on host-008 is in no
	// service.
	var body string
	for _, v := range []struct{ id, host, site string }{
		{"pay-1", "host-007", "pod-a"}, {"pay-2", "host-007", "pod-a"}, {"pay-3", "host-007", "pod-a"},
		{"ledger-1", "host-007", "pod-a"}, {"pay-4", "host-008", "pod-a"}, {"vm-x", "host-008", "pod-a"},
		{"pay-5", "host-009", "pod-b"}, {"pay-6", "host-009", "pod-b"},
	} {
		body += obsLine(t, map[string]any{"source": "libvirt", "kind": "vm", "id": v.id, "host": v.host, "site": v.site,
			"state": "running", "time_generated": at(0)})
	}
	if code, resp := s.post(t, "/v1/observations", "application/x-ndjson", []byte(body)); code != http.StatusAccepted {
		t.Fatalf("POST /v1/observations = %d %s", code, resp)
	}
	s.waitApplied(t)
	if err := s.svc.Inventory.RefreshPlacement(ctx); err != nil {
		t.Fatal(err)
	}

	// Before a maintenance of host-008: what would it hit?
	reply := s.svc.Router.HandleText(ctx, "/triage impact host-008", bot.Command{User: "U1", Origin: "test"})
	golden(t, "impact-host-008.golden", console.RenderReply(reply, false))
	for _, tc := range []struct{ arg, file string }{
		{"pay-4", "owner-vm.golden"}, {"ledger", "owner-service.golden"}, {"vm-x", "owner-unknown.golden"},
	} {
		reply := s.svc.Router.HandleText(ctx, "/triage owner "+tc.arg, bot.Command{User: "U1", Origin: "test"})
		golden(t, tc.file, console.RenderReply(reply, false))
	}

	// host-007 fails under its four VMs.
	s.clock.Advance(time.Minute)
	body = ""
	for _, id := range []string{"pay-1", "pay-2", "pay-3", "ledger-1"} {
		body += obsLine(t, map[string]any{"source": "libvirt", "kind": "vm", "id": id, "host": "host-007", "site": "pod-a",
			"state": "crashed", "time_generated": at(time.Minute)})
	}
	body += obsLine(t, map[string]any{"source": "prometheus", "kind": "host", "id": "host-007", "site": "pod-a", "state": "up",
		"attrs": map[string]any{"ecc_uncorrected": 3}, "time_generated": at(time.Minute)})
	if code, resp := s.post(t, "/v1/observations", "application/x-ndjson", []byte(body)); code != http.StatusAccepted {
		t.Fatalf("POST /v1/observations = %d %s", code, resp)
	}
	s.waitApplied(t)

	var host map[string]any
	for _, inc := range s.incidents(t, "?host=host-007") {
		if inc["rule"] == "vm-crash-on-failing-host" {
			host = inc
		}
	}
	if host == nil {
		t.Fatalf("no vm-crash-on-failing-host incident: %v", s.incidents(t, ""))
	}
	raw, _ := json.Marshal(host["services"])
	var got []model.ServiceImpact
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("services %s: %v", raw, err)
	}
	want := []model.ServiceImpact{
		{Service: "ledger", Team: "team-ledger", Instances: 1, Down: 1, Hit: 1, LastInSites: []string{"pod-a"}},
		{Service: "payments-api", Team: "team-pay", Instances: 6, Down: 3, Hit: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the host incident's services:\n got %s\nwant %+v", raw, want)
	}

	// The history says who set the VMs' services, and when.
	code, hist := s.get(t, "/v1/inventory/history?vm=pay-4")
	var h struct {
		Changes []struct{ Source, Actor, New string }
	}
	if err := json.Unmarshal(hist, &h); code != http.StatusOK || err != nil || len(h.Changes) != 1 ||
		h.Changes[0].Source != "api" || h.Changes[0].New != "payments-api" {
		t.Errorf("GET /v1/inventory/history?vm=pay-4 = %d %s", code, hist)
	}
}

// TestInventoryRoutesToOwners: with Slack on, a host failure hitting
// payments-api is posted to the default channel and to team-pay's channel,
// one message in each.
func TestInventoryRoutesToOwners(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.csv")
	if err := os.WriteFile(path, []byte("vm,service,team,slack_channel\n"+
		"vm-1,payments-api,team-pay,C0PAY\nvm-2,payments-api,team-pay,\nvm-3,ledger,team-ledger,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFakeSlack(t)
	env := slackEnv(f)
	env["VMTRIAGE_INVENTORY_PATH"] = path
	s := bootService(t, bootOptions{Env: env})
	now := s.clock.Now()
	s.observe(t, vmState(t, "vm-1", "host-007", "crashed", now), vmState(t, "vm-3", "host-007", "crashed", now),
		hostFacts(t, "host-007", 2, now))

	eventually(t, 20*time.Second, "the incident in both channels", func() (bool, string) {
		roots := rootsAbout(f.Calls(), "host-007")
		return len(roots) >= 2, describe(f.Calls())
	})
	var channels []string
	for _, c := range rootsAbout(f.Calls(), "host-007") {
		channels = append(channels, c.Channel)
	}
	if fmt.Sprint(channels) != "["+testSlackChannel+" C0PAY]" {
		t.Errorf("posted to %v, want the default channel and team-pay's C0PAY once each:\n%s", channels, describe(f.Calls()))
	}
}

// TestInventoryTicketOwner: the ticket of a host failure hitting
// payments-api gets team-pay's Jira component and assignee.
func TestInventoryTicketOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.csv")
	if err := os.WriteFile(path, []byte("vm,service,team,jira_component,jira_assignee\n"+
		"vm-1,payments-api,team-pay,Payments,acc-pay\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	jira := jiratest.NewServer(jiratest.Options{Cloud: true, User: testJiraUser, Token: testJiraToken,
		Components: []string{"Payments", "Compute"}, Assignees: []string{"acc-pay"}})
	t.Cleanup(jira.Close)
	s := bootService(t, bootOptions{Env: map[string]string{
		"VMTRIAGE_INVENTORY_PATH": path,
		"VMTRIAGE_JIRA_URL":       jira.URL, "VMTRIAGE_JIRA_USER": testJiraUser, "VMTRIAGE_JIRA_TOKEN": testJiraToken,
		"VMTRIAGE_JIRA_PROJECT": "OPS", "VMTRIAGE_JIRA_COMPONENTS": "host-hardware-fault:Compute",
	}})
	now := s.clock.Now()
	s.observe(t, vmState(t, "vm-1", "host-007", "crashed", now), hostFacts(t, "host-007", 2, now))
	eventually(t, 20*time.Second, "the ticket", func() (bool, string) {
		return len(jira.Issues()) == 1, fmt.Sprint(jira.Issues())
	})
	is := jira.Issues()[0]
	if fmt.Sprint(is.Components) != "[Payments]" || is.Assignee != "acc-pay" {
		t.Errorf("ticket components %v assignee %q; want team-pay's Payments and acc-pay over the cause's Compute", is.Components, is.Assignee)
	}
}

// TestInventoryRulesReadImpact: a rule file reading impact.* sees the
// inventory: a crash that takes down half of a service raises its
// incident, a crash of an unowned VM does not.
func TestInventoryRulesReadImpact(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.csv")
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(inv, []byte("vm,service,team\nvm-1,pay,team-pay\nvm-2,pay,team-pay\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rulesFile, []byte(`rules:
  - name: service-half-down
    scope: vm
    expr: vm.crashed && impact.max_fraction_down >= 0.5
    classification: {cause: service-degraded, trigger: vm, severity: critical}
    action: {type: notify}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := bootService(t, bootOptions{Env: map[string]string{"VMTRIAGE_INVENTORY_PATH": inv, "VMTRIAGE_RULES_PATH": rulesFile}})
	now := s.clock.Now()
	s.observe(t, vmState(t, "vm-1", "host-1", "running", now), vmState(t, "vm-2", "host-2", "running", now),
		vmState(t, "vm-9", "host-1", "running", now))
	if err := s.svc.Inventory.RefreshPlacement(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(time.Minute)
	now = s.clock.Now()
	s.observe(t, vmState(t, "vm-9", "host-1", "crashed", now), vmState(t, "vm-1", "host-1", "crashed", now))
	var subjects []string
	for _, inc := range s.incidents(t, "") {
		if inc["rule"] == "service-half-down" {
			subjects = append(subjects, fmt.Sprint(inc["subject"]))
		}
	}
	if fmt.Sprint(subjects) != "[vm-1]" {
		t.Errorf("service-half-down incidents for %v, want [vm-1] (vm-9 is in no service)", subjects)
	}
}
