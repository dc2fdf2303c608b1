package inventory

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

func r(kind, name, field, value string) model.InventoryRelation {
	return model.InventoryRelation{Kind: kind, Name: name, Field: field, Value: value}
}

func relString(rels []model.InventoryRelation) string {
	var b strings.Builder
	for _, x := range rels {
		fmt.Fprintf(&b, "%s %s %s=%q\n", x.Kind, x.Name, x.Field, x.Value)
	}
	return b.String()
}

// problems renders an *Error's problems as "line field: message" lines.
func problems(t *testing.T, err error) string {
	t.Helper()
	var ie *Error
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *inventory.Error", err, err)
	}
	var b strings.Builder
	for _, p := range ie.Problems {
		fmt.Fprintf(&b, "%d %s: %s\n", p.Line, p.Field, p.Message)
	}
	return b.String()
}

func TestParseYAML(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []model.InventoryRelation
		errs string // "line field: message" lines, each must appear
	}{
		{
			name: "full",
			in: `teams:
  - name: team-pay
    slack_channel: C0PAY
    slack_usergroup: S0PAY
    jira_component: Payments
    jira_assignee: pay-oncall
services:
  - {name: payments-api, team: team-pay}
  - name: ledger
vms:
  - {id: vm-0042, service: payments-api}
  - {id: 17, service: ledger}
`,
			want: []model.InventoryRelation{
				r("team", "team-pay", "slack_channel", "C0PAY"), r("team", "team-pay", "slack_usergroup", "S0PAY"),
				r("team", "team-pay", "jira_component", "Payments"), r("team", "team-pay", "jira_assignee", "pay-oncall"),
				r("service", "payments-api", "team", "team-pay"),
				r("vm", "vm-0042", "service", "payments-api"), r("vm", "17", "service", "ledger"),
			},
		},
		{name: "empty file", in: "", want: nil},
		{name: "only comments", in: "# nothing yet\n", want: nil},
		{name: "empty lists", in: "vms:\nservices: []\n", want: nil},
		{name: "same fact twice agrees", in: "vms:\n  - {id: a, service: s}\n  - {id: a, service: s}\n",
			want: []model.InventoryRelation{r("vm", "a", "service", "s")}},
		{name: "unknown top key", in: "hosts: []\n", errs: "1 hosts: unknown key (allowed: services, teams, vms)"},
		{name: "unknown entry key", in: "vms:\n  - id: a\n    servce: s\n",
			errs: "3 vms[0].servce: unknown key (allowed: id, service)"},
		{name: "missing service", in: "vms:\n  - id: a\n", errs: "2 vms[0].service: is required"},
		{name: "missing name", in: "services:\n  - team: t\n", errs: "2 services[0].name: must not be empty"},
		{name: "space in name", in: "vms:\n  - id: vm 1\n    service: s\n", errs: `2 vms[0].id: "vm 1" must not contain spaces`},
		{name: "bad channel", in: "teams:\n  - name: t\n    slack_channel: '#pay'\n",
			errs: `3 teams[0].slack_channel: "#pay" is not a Slack channel ID`},
		{name: "bad usergroup", in: "teams:\n  - name: t\n    slack_usergroup: pay-team\n",
			errs: `3 teams[0].slack_usergroup: "pay-team" is not a Slack user-group ID`},
		{name: "list value", in: "vms:\n  - id: a\n    service: [x, y]\n", errs: "3 vms[0].service: must be a plain value"},
		{name: "not a list", in: "vms: {id: a}\n", errs: "1 vms: must be a list"},
		{name: "conflict names both lines", in: "vms:\n  - {id: a, service: s}\n  - {id: a, service: t}\n",
			errs: `3 vms[1].service: vm a has service "t" here but "s" at line 2`},
		{name: "key twice", in: "vms:\n  - id: a\n    service: s\n    service: s\n", errs: "4 vms[0].service: is given twice"},
		{name: "syntax", in: "vms:\n  - id: a\n\t- id: b\n", errs: "2 file: not valid YAML: found a tab character"},
		{name: "two documents", in: "vms: []\n---\nteams: []\n", errs: "file: holds more than one YAML document"},
		{name: "all problems at once", in: "vms:\n  - id: a\n  - id: b\n    service: s\nteams:\n  - {name: t, slack_channel: x}\n",
			errs: "2 vms[0].service: is required\n6 teams[0].slack_channel:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseYAML("inv.yaml", []byte(tc.in))
			if tc.errs != "" {
				if err == nil {
					t.Fatalf("accepted; want errors %q", tc.errs)
				}
				ps := problems(t, err)
				for _, want := range strings.Split(tc.errs, "\n") {
					if !strings.Contains(ps, want) {
						t.Errorf("problems:\n%s\nlack %q", ps, want)
					}
				}
				if !strings.HasPrefix(err.Error(), "inv.yaml:") {
					t.Errorf("error %q does not start with the file name", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseYAML: %v", err)
			}
			if relString(got) != relString(tc.want) {
				t.Errorf("relations:\n%s\nwant:\n%s", relString(got), relString(tc.want))
			}
		})
	}
}

func TestParseCSV(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []model.InventoryRelation
		errs string
	}{
		{
			name: "denormalised export",
			in: "\ufeffvm,service,team,slack_channel,slack_usergroup,jira_component,jira_assignee\n" +
				"# exported from the CMDB\n" +
				"vm-1,payments-api,team-pay,C0PAY,S0PAY,Payments,pay-oncall\n" +
				"vm-2,payments-api,team-pay,C0PAY,,,\n" +
				"vm-3,ledger,,,,,\n" +
				",,team-web,C0WEB,,Web,\n",
			want: []model.InventoryRelation{
				r("vm", "vm-1", "service", "payments-api"), r("service", "payments-api", "team", "team-pay"),
				r("team", "team-pay", "slack_channel", "C0PAY"), r("team", "team-pay", "slack_usergroup", "S0PAY"),
				r("team", "team-pay", "jira_component", "Payments"), r("team", "team-pay", "jira_assignee", "pay-oncall"),
				r("vm", "vm-2", "service", "payments-api"),
				r("vm", "vm-3", "service", "ledger"),
				r("team", "team-web", "slack_channel", "C0WEB"), r("team", "team-web", "jira_component", "Web"),
			},
		},
		{name: "columns in any order", in: "service, vm\nweb, vm-9\n", want: []model.InventoryRelation{r("vm", "vm-9", "service", "web")}},
		{name: "empty", in: "", want: nil},
		{name: "unknown column", in: "vm,service,owner\n", errs: `1 column 3: unknown column "owner"`},
		{name: "column twice", in: "vm,service,vm\n", errs: "1 vm: column is given twice"},
		{name: "no service or team", in: "vm\nvm-1\n", errs: "1 header: needs a service or a team column"},
		{name: "vm without service", in: "vm,service\nvm-1,\n", errs: "2 service: is required"},
		{name: "conflicting team", in: "vm,service,team\nvm-1,pay,team-a\nvm-2,pay,team-b\n",
			errs: `3 team: service pay has team "team-b" here but "team-a" at line 2`},
		{name: "contacts without team", in: "vm,service,team,slack_channel\nvm-1,pay,,C0PAY\n",
			errs: "2 team: is required on a row that gives a team's contacts"},
		{name: "bad channel", in: "service,team,slack_channel\npay,t,general\n", errs: `2 slack_channel: "general" is not a Slack channel ID`},
		{name: "bad quoting", in: "vm,service\n\"vm-1,pay\n", errs: "column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCSV("inv.csv", []byte(tc.in))
			if tc.errs != "" {
				if err == nil {
					t.Fatalf("accepted; want errors %q", tc.errs)
				}
				ps := problems(t, err)
				if !strings.Contains(ps, tc.errs) {
					t.Errorf("problems:\n%s\nlack %q", ps, tc.errs)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCSV: %v", err)
			}
			if relString(got) != relString(tc.want) {
				t.Errorf("relations:\n%s\nwant:\n%s", relString(got), relString(tc.want))
			}
		})
	}
}

func TestParseByExtension(t *testing.T) {
	if _, err := Parse("inv.json", []byte("{}")); err == nil || !strings.Contains(err.Error(), "must end in .yaml, .yml or .csv") {
		t.Errorf("Parse(inv.json) = %v; want an unknown-format error", err)
	}
	if rels, err := Parse("INV.CSV", []byte("vm,service\na,b\n")); err != nil || len(rels) != 1 {
		t.Errorf("Parse(INV.CSV) = %v, %v", rels, err)
	}
	if rels, err := Parse("inv.yml", []byte("vms: [{id: a, service: b}]\n")); err != nil || len(rels) != 1 {
		t.Errorf("Parse(inv.yml) = %v, %v", rels, err)
	}
}

func TestParsePush(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []model.InventoryRelation
		errs string
	}{
		{
			name: "contract example",
			in: `{"services":[{"name":"payments-api","team":"team-pay"}],
 "teams":[{"name":"team-pay","slack_channel":"C0PAY","slack_usergroup":"S0PAY","jira_component":"Payments","jira_assignee":"pay-oncall"}],
 "vms":[{"id":"vm-0042","service":"payments-api"}]}`,
			want: []model.InventoryRelation{
				r("service", "payments-api", "team", "team-pay"),
				r("team", "team-pay", "slack_channel", "C0PAY"), r("team", "team-pay", "slack_usergroup", "S0PAY"),
				r("team", "team-pay", "jira_component", "Payments"), r("team", "team-pay", "jira_assignee", "pay-oncall"),
				r("vm", "vm-0042", "service", "payments-api"),
			},
		},
		{name: "absent fields change nothing", in: `{"teams":[{"name":"t","jira_assignee":"bob"}]}`,
			want: []model.InventoryRelation{r("team", "t", "jira_assignee", "bob")}},
		{name: "empty field removes", in: `{"vms":[{"id":"vm-1","service":""}],"services":[{"name":"s","team":""}]}`,
			want: []model.InventoryRelation{r("service", "s", "team", ""), r("vm", "vm-1", "service", "")}},
		{name: "unknown key", in: `{"vms":[{"id":"a","service":"s","host":"h"}]}`, errs: `body: not a valid inventory JSON object: json: unknown field "host"`},
		{name: "two objects", in: `{} {}`, errs: "body: holds more than one JSON value"},
		{name: "not json", in: `vm,service`, errs: "body: not a valid inventory JSON object"},
		{name: "vm without service", in: `{"vms":[{"id":"a"}]}`, errs: "vms[0].service: is required"},
		{name: "one bad entry refuses all", in: `{"vms":[{"id":"a","service":"s"},{"id":"b c","service":"s"}]}`,
			errs: `vms[1].id: "b c" must not contain spaces`},
		{name: "conflict", in: `{"vms":[{"id":"a","service":"s"},{"id":"a","service":"t"}]}`,
			errs: `vms[1].service: vm a has service "t" here but "s" at vms[0].service`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePush([]byte(tc.in))
			if tc.errs != "" {
				if err == nil {
					t.Fatalf("accepted; want errors %q", tc.errs)
				}
				if ps := problems(t, err); !strings.Contains(ps, tc.errs) {
					t.Errorf("problems:\n%s\nlack %q", ps, tc.errs)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePush: %v", err)
			}
			if relString(got) != relString(tc.want) {
				t.Errorf("relations:\n%s\nwant:\n%s", relString(got), relString(tc.want))
			}
		})
	}
}
