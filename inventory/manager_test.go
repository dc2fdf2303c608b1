package inventory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
	"github.com/vmtriage/vmtriage/inventory"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const token = "inventory-token-0123456789"

type fixture struct {
	st    *store.Store
	clk   *clock.Fake
	m     *inventory.Manager
	srv   *httptest.Server
	path  string
	mtime time.Time
}

func newFixture(t *testing.T, file, content string) *fixture {
	t.Helper()
	f := &fixture{clk: clock.NewFake(t0), mtime: t0}
	f.st = storetest.New(t, store.Options{Clock: f.clk})
	if file != "" {
		f.path = filepath.Join(t.TempDir(), file)
		f.write(t, content)
	}
	m, err := inventory.New(context.Background(), inventory.Options{Store: f.st, Path: f.path, Token: config.Secret(token), Clock: f.clk})
	if err != nil {
		t.Fatalf("inventory.New: %v", err)
	}
	f.m = m
	mux := http.NewServeMux()
	for pat, h := range m.Routes() {
		mux.Handle(pat, h)
	}
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// write replaces the file and moves its modification time on, as an
// editor would (the test does not rely on the file system's clock).
func (f *fixture) write(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(f.path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f.mtime = f.mtime.Add(time.Second)
	if err := os.Chtimes(f.path, f.mtime, f.mtime); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) do(t *testing.T, method, path, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("X-Vmtriage-Actor", "cmdb-sync")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

const baseYAML = `teams:
  - {name: team-pay, slack_channel: C0PAY, jira_component: Payments}
services:
  - {name: payments-api, team: team-pay}
vms:
  - {id: vm-1, service: payments-api}
  - {id: vm-2, service: payments-api}
`

func TestFileReloadKeepsPreviousOnBadInput(t *testing.T) {
	f := newFixture(t, "inventory.yaml", baseYAML)
	ctx := context.Background()
	inv := f.m.Inventory()
	if got := inv.Instances("payments-api"); len(got) != 2 {
		t.Fatalf("after start-up: instances = %v", got)
	}

	// Unchanged file: nothing happens.
	v0 := inv.Version
	if err := f.m.Check(ctx); err != nil || f.m.Inventory().Version != v0 {
		t.Fatalf("Check of an unchanged file: %v, version %d → %d", err, v0, f.m.Inventory().Version)
	}

	// A bad edit is refused with line and field; the inventory stays.
	f.clk.Advance(time.Minute)
	f.write(t, baseYAML+"  - {id: vm-3, servce: payments-api}\n")
	err := f.m.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "inventory.yaml:8: vms[2].servce: unknown key") {
		t.Fatalf("Check of a bad file = %v; want line 8, field vms[2].servce", err)
	}
	if got := f.m.Inventory().Instances("payments-api"); len(got) != 2 || f.m.Inventory().Version != v0 {
		t.Fatalf("a refused file changed the inventory: %v (version %d)", got, f.m.Inventory().Version)
	}

	// The fix is loaded.
	f.clk.Advance(time.Minute)
	f.write(t, strings.Replace(baseYAML, "vm-2, service: payments-api", "vm-2, service: ledger", 1))
	if err := f.m.Check(ctx); err != nil {
		t.Fatalf("Check of the fixed file: %v", err)
	}
	if svc, _ := f.m.Inventory().ServiceOf("vm-2"); svc != "ledger" {
		t.Fatalf("vm-2's service after the fix = %q", svc)
	}

	hist, err := f.st.InventoryHistory(ctx, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 {
		t.Fatalf("history after the fix = %+v; want the one change", hist)
	}
	c := hist[0]
	if c.Source != "file" || c.Kind != "vm" || c.Name != "vm-2" || c.Old != "payments-api" || c.New != "ledger" ||
		!c.Time.Equal(t0.Add(2*time.Minute)) || !strings.HasPrefix(c.Actor, "file ") {
		t.Errorf("recorded change = %+v", c)
	}
}

func TestBadFileFailsStartUp(t *testing.T) {
	st := storetest.New(t, store.Options{})
	path := filepath.Join(t.TempDir(), "inv.csv")
	if err := os.WriteFile(path, []byte("vm,service\nvm-1,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := inventory.New(context.Background(), inventory.Options{Store: st, Path: path})
	if err == nil || !strings.Contains(err.Error(), "inv.csv:2: service: is required") {
		t.Fatalf("New with a bad file = %v; want the line and field", err)
	}
	if v, _ := st.InventoryVersion(context.Background()); v != 0 {
		t.Errorf("a refused file was applied (version %d)", v)
	}
}

func TestPushAuthAndValidation(t *testing.T) {
	f := newFixture(t, "inventory.yaml", baseYAML)
	good := `{"vms":[{"id":"vm-9","service":"payments-api"}],"teams":[{"name":"team-pay","jira_assignee":"pay-oncall"}]}`
	for _, tc := range []struct {
		name, auth, body string
		code             int
		contains         string
	}{
		{"no token", "", good, http.StatusUnauthorized, "missing or wrong bearer token"},
		{"wrong token", "Bearer nope", good, http.StatusUnauthorized, "missing or wrong bearer token"},
		{"basic auth", "Basic " + token, good, http.StatusUnauthorized, "bearer"},
		{"one bad entry refuses the batch", "Bearer " + token,
			`{"vms":[{"id":"vm-9","service":"payments-api"},{"id":"vm-10"}]}`, http.StatusBadRequest, `"field": "vms[1].service"`},
		{"bad channel", "Bearer " + token, `{"teams":[{"name":"team-pay","slack_channel":"#pay"}]}`, http.StatusBadRequest, "not a Slack channel ID"},
		{"unknown key", "Bearer " + token, `{"hosts":[]}`, http.StatusBadRequest, `unknown field \"hosts\"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.do(t, "POST", "/v1/inventory", tc.auth, tc.body)
			if code != tc.code || !strings.Contains(body, tc.contains) {
				t.Fatalf("POST = %d %s; want %d containing %q", code, body, tc.code, tc.contains)
			}
			if strings.Contains(body, token) {
				t.Fatalf("the token leaked into the answer: %s", body)
			}
			if _, ok := f.m.Inventory().ServiceOf("vm-9"); ok {
				t.Fatal("a refused push was applied")
			}
		})
	}

	f.clk.Advance(time.Minute)
	code, body := f.do(t, "POST", "/v1/inventory", "Bearer "+token, good)
	if code != http.StatusOK || !strings.Contains(body, `"changed": 2`) {
		t.Fatalf("good push = %d %s", code, body)
	}
	inv := f.m.Inventory()
	if got := inv.Instances("payments-api"); len(got) != 3 {
		t.Errorf("instances after push = %v", got)
	}
	if tm := inv.Team("team-pay"); tm.JiraAssignee != "pay-oncall" || tm.SlackChannel != "C0PAY" {
		t.Errorf("team after push = %+v (file fields kept, pushed field added)", tm)
	}

	// The API's word beats the file's; "" hands it back.
	f.do(t, "POST", "/v1/inventory", "Bearer "+token, `{"vms":[{"id":"vm-1","service":"ledger"}]}`)
	if svc, _ := f.m.Inventory().ServiceOf("vm-1"); svc != "ledger" {
		t.Errorf("vm-1 after the API moved it = %q, want ledger", svc)
	}
	f.do(t, "POST", "/v1/inventory", "Bearer "+token, `{"vms":[{"id":"vm-1","service":""}]}`)
	if svc, _ := f.m.Inventory().ServiceOf("vm-1"); svc != "payments-api" {
		t.Errorf("vm-1 after the API let go = %q, want the file's payments-api", svc)
	}

	// The view and the history.
	code, body = f.do(t, "GET", "/v1/inventory", "", "")
	var view inventory.View
	if err := json.Unmarshal([]byte(body), &view); code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/inventory = %d %v %s", code, err, body)
	}
	if fmt.Sprint(view.VMs) != "[{vm-1 payments-api file} {vm-2 payments-api file} {vm-9 payments-api api}]" {
		t.Errorf("view VMs = %v", view.VMs)
	}
	code, body = f.do(t, "GET", "/v1/inventory/history?since="+t0.Add(time.Minute).Format(time.RFC3339)+"&vm=vm-1", "", "")
	var hist struct{ Changes []model.InventoryChange }
	if err := json.Unmarshal([]byte(body), &hist); code != http.StatusOK || err != nil {
		t.Fatalf("GET history = %d %v %s", code, err, body)
	}
	var lines []string
	for _, c := range hist.Changes {
		lines = append(lines, fmt.Sprintf("%s %s %q→%q by %s", c.Source, c.Name, c.Old, c.New, c.Actor))
	}
	want := []string{
		`api vm-1 ""→"ledger" by cmdb-sync (token sha256:`,
		`api vm-1 "ledger"→"" by cmdb-sync (token sha256:`,
	}
	if len(lines) != len(want) {
		t.Fatalf("history of vm-1 = %v", lines)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("history[%d] = %s, want prefix %s", i, lines[i], want[i])
		}
	}
	_, body = f.do(t, "GET", "/v1/inventory/history?service=payments-api", "", "")
	// Per layer: the file's vm-1, vm-2 and team; the API's vm-9. The API's
	// own vm-1 entries never named payments-api.
	if n := strings.Count(body, `"seq"`); n != 4 {
		t.Errorf("history of payments-api has %d changes, want 4:\n%s", n, body)
	}
	for _, q := range []string{"since=yesterday", "limit=0", "limit=x"} {
		if code, body := f.do(t, "GET", "/v1/inventory/history?"+q, "", ""); code != http.StatusBadRequest {
			t.Errorf("history?%s = %d %s; want 400", q, code, body)
		}
	}
}

func TestPushOffWithoutToken(t *testing.T) {
	st := storetest.New(t, store.Options{})
	m, err := inventory.New(context.Background(), inventory.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.Routes()["POST /v1/inventory"].ServeHTTP(rec, httptest.NewRequest("POST", "/v1/inventory", strings.NewReader(`{}`)))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "VMTRIAGE_INVENTORY_TOKEN") {
		t.Errorf("POST without a configured token = %d %s", rec.Code, rec.Body)
	}
}

func TestReplicasShareTheInventory(t *testing.T) {
	f := newFixture(t, "", "")
	other, err := inventory.New(context.Background(), inventory.Options{Store: f.st, Clock: f.clk})
	if err != nil {
		t.Fatal(err)
	}
	rels, err := inventory.ParsePush([]byte(`{"vms":[{"id":"vm-1","service":"web"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Push(context.Background(), rels, "test"); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Inventory().ServiceOf("vm-1"); ok {
		t.Fatal("the other replica saw the push before checking")
	}
	if err := other.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if svc, _ := other.Inventory().ServiceOf("vm-1"); svc != "web" {
		t.Errorf("the other replica after Check: vm-1 → %q, want web", svc)
	}
}

func TestImpactOfAndIncidentServices(t *testing.T) {
	f := newFixture(t, "inventory.csv", "vm,service,team,slack_channel\n"+
		"vm-1,pay,team-pay,C0PAY\nvm-2,pay,team-pay,\nvm-3,pay,team-pay,\nvm-4,web,,\n")
	ctx := context.Background()
	obs := func(id, host, site string, st model.State) model.Observation {
		return model.Observation{Source: "libvirt", Kind: model.KindVM, ID: id, Host: host, Site: site, State: st, TimeGenerated: t0}
	}
	if err := f.st.Apply(ctx, []model.Observation{
		obs("vm-1", "h1", "pod-a", model.StateRunning), obs("vm-2", "h1", "pod-a", model.StateRunning),
		obs("vm-3", "h2", "pod-b", model.StateRunning), obs("vm-4", "h1", "pod-a", model.StateCrashed),
		obs("vm-5", "h1", "pod-a", model.StateRunning),
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target string
		kind   inventory.TargetKind
		want   string
	}{
		// vm-4 (web) is down already: the host going down takes nothing more
		// from web.
		{"h1", inventory.TargetHost, "3 [vm-5] [pay: 2 of 3 instances down; last instance in site pod-a]"},
		{"pod-b", inventory.TargetSite, "1 [] [pay: 1 of 3 instances down; last instance in site pod-b]"},
		{"vm-2", inventory.TargetVM, "1 [] [pay: 1 of 3 instances down]"},
	} {
		kind, rep, err := f.m.ImpactOf(ctx, tc.target)
		if err != nil {
			t.Fatalf("ImpactOf(%s): %v", tc.target, err)
		}
		if got := fmt.Sprint(rep.VMs, " ", rep.Unowned, " ", rep.Services); kind != tc.kind || got != tc.want {
			t.Errorf("ImpactOf(%s) = %s %s\nwant %s %s", tc.target, kind, got, tc.kind, tc.want)
		}
	}
	if _, _, err := f.m.ImpactOf(ctx, "nowhere"); err == nil || !strings.Contains(err.Error(), "no host, site or VM") {
		t.Errorf("ImpactOf(nowhere) = %v", err)
	}

	if err := f.m.RefreshPlacement(ctx); err != nil {
		t.Fatal(err)
	}
	got := f.m.IncidentServices(&model.Incident{VMs: []string{"vm-1", "vm-2", "vm-5"}})
	if fmt.Sprint(got) != "[pay: 2 of 3 instances down; last instance in site pod-a]" || got[0].Team != "team-pay" {
		t.Errorf("IncidentServices = %v", got)
	}
	if got := f.m.IncidentServices(&model.Incident{VMs: []string{"vm-5"}}); got != nil {
		t.Errorf("IncidentServices of an unowned VM = %v, want nil", got)
	}
}

func TestOwnerChannels(t *testing.T) {
	f := newFixture(t, "inventory.yaml", `teams:
  - {name: team-pay, slack_channel: C0PAY, slack_usergroup: S0PAY}
  - {name: team-web, slack_usergroup: S0WEB}
services:
  - {name: pay, team: team-pay}
  - {name: ledger, team: team-pay}
  - {name: web, team: team-web}
`)
	inc := &model.Incident{Services: []model.ServiceImpact{
		{Service: "pay"}, {Service: "web"}, {Service: "ledger"}, {Service: "unowned"},
	}}
	if got := f.m.OwnerChannels(inc); fmt.Sprint(got) != "[C0PAY]" {
		t.Errorf("OwnerChannels = %v, want [C0PAY] once (team-web has no channel, unowned no team)", got)
	}
	if got := f.m.OwnerGroups(inc); fmt.Sprint(got) != "[S0PAY S0WEB]" {
		t.Errorf("OwnerGroups = %v, want [S0PAY S0WEB]", got)
	}
	if got := f.m.OwnerChannels(&model.Incident{}); got != nil {
		t.Errorf("OwnerChannels of an incident hitting no service = %v", got)
	}
}

func TestJiraOwner(t *testing.T) {
	f := newFixture(t, "inventory.yaml", `teams:
  - {name: team-pay, jira_component: Payments}
  - {name: team-web, jira_component: Web, jira_assignee: web-oncall}
services:
  - {name: pay, team: team-pay}
  - {name: web, team: team-web}
`)
	for _, tc := range []struct {
		name     string
		services []string
		comp, as string
	}{
		{"worst service's team first, assignee from the next that has one", []string{"pay", "web"}, "Payments", "web-oncall"},
		{"one team", []string{"web"}, "Web", "web-oncall"},
		{"unowned", []string{"unknown"}, "", ""},
		{"none", nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inc := &model.Incident{}
			for _, s := range tc.services {
				inc.Services = append(inc.Services, model.ServiceImpact{Service: s})
			}
			if c, a := f.m.JiraOwner(inc); c != tc.comp || a != tc.as {
				t.Errorf("JiraOwner = %q, %q; want %q, %q", c, a, tc.comp, tc.as)
			}
		})
	}
}
