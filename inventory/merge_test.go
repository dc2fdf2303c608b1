package inventory

import (
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

func TestMergePrecedence(t *testing.T) {
	type layers = map[Source][]model.InventoryRelation
	for _, tc := range []struct {
		name   string
		layers layers
		vm     string
		svc    string // want the VM's service ("" = unassigned)
		src    Source // and its source
		team   string // want the service's team
		check  func(t *testing.T, inv *Inventory)
	}{
		{
			name: "api beats file", vm: "vm-1", svc: "from-api", src: SourceAPI,
			layers: layers{
				SourceFile: {r("vm", "vm-1", "service", "from-file")},
				SourceAPI:  {r("vm", "vm-1", "service", "from-api")},
			},
		},
		{
			name: "file beats azure tags", vm: "vm-1", svc: "from-file", src: SourceFile,
			layers: layers{
				SourceAzure: {r("vm", "vm-1", "service", "from-tags")},
				SourceFile:  {r("vm", "vm-1", "service", "from-file")},
			},
		},
		{
			name: "azure tags beat libvirt metadata", vm: "vm-1", svc: "from-tags", src: SourceAzure,
			layers: layers{
				SourceLibvirt: {r("vm", "vm-1", "service", "from-metadata")},
				SourceAzure:   {r("vm", "vm-1", "service", "from-tags")},
			},
		},
		{
			name: "a relation only a lower layer states falls through", vm: "vm-1", svc: "from-metadata", src: SourceLibvirt,
			layers: layers{
				SourceAPI:     {r("vm", "vm-2", "service", "other")},
				SourceLibvirt: {r("vm", "vm-1", "service", "from-metadata")},
			},
		},
		{
			name: "empty value states nothing", vm: "vm-1", svc: "from-file", src: SourceFile,
			layers: layers{
				SourceAPI:  {r("vm", "vm-1", "service", "")},
				SourceFile: {r("vm", "vm-1", "service", "from-file")},
			},
		},
		{
			name: "unknown source ignored", vm: "vm-1", svc: "",
			layers: layers{"spreadsheet": {r("vm", "vm-1", "service", "x")}},
		},
		{
			name: "team fields merge field by field", vm: "vm-1", svc: "pay", src: SourceFile, team: "team-pay",
			layers: layers{
				SourceFile: {
					r("vm", "vm-1", "service", "pay"), r("service", "pay", "team", "team-pay"),
					r("team", "team-pay", "slack_channel", "C0FILE"), r("team", "team-pay", "jira_component", "Payments"),
				},
				SourceAPI: {r("team", "team-pay", "jira_assignee", "pay-oncall"), r("team", "team-pay", "slack_channel", "C0API")},
			},
			check: func(t *testing.T, inv *Inventory) {
				want := Team{Name: "team-pay", SlackChannel: "C0API", JiraComponent: "Payments", JiraAssignee: "pay-oncall"}
				if got := inv.Team("team-pay"); got != want {
					t.Errorf("Team = %+v, want %+v", got, want)
				}
				v := inv.View()
				if len(v.Teams) != 1 || v.Teams[0].Sources["slack_channel"] != SourceAPI || v.Teams[0].Sources["jira_component"] != SourceFile {
					t.Errorf("team sources = %+v", v.Teams)
				}
			},
		},
		{
			name: "instances follow the winning service", vm: "vm-2", svc: "web", src: SourceAPI,
			layers: layers{
				SourceFile: {r("vm", "vm-1", "service", "web"), r("vm", "vm-2", "service", "pay")},
				SourceAPI:  {r("vm", "vm-2", "service", "web")},
			},
			check: func(t *testing.T, inv *Inventory) {
				if got := inv.Instances("web"); len(got) != 2 || got[0] != "vm-1" || got[1] != "vm-2" {
					t.Errorf("Instances(web) = %v", got)
				}
				if got := inv.Instances("pay"); len(got) != 0 {
					t.Errorf("Instances(pay) = %v, want none", got)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := Merge(7, tc.layers)
			svc, ok := inv.ServiceOf(tc.vm)
			if svc != tc.svc || ok != (tc.svc != "") {
				t.Errorf("ServiceOf(%s) = %q, %v; want %q", tc.vm, svc, ok, tc.svc)
			}
			if tc.svc != "" {
				for _, v := range inv.View().VMs {
					if v.ID == tc.vm && v.Source != tc.src {
						t.Errorf("source of %s = %s, want %s", tc.vm, v.Source, tc.src)
					}
				}
				if got := inv.TeamOf(tc.svc); got != tc.team {
					t.Errorf("TeamOf(%s) = %q, want %q", tc.svc, got, tc.team)
				}
			}
			if inv.Version != 7 {
				t.Errorf("Version = %d", inv.Version)
			}
			if tc.check != nil {
				tc.check(t, inv)
			}
		})
	}
}
