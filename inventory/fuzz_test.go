package inventory

import (
	"errors"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

// checkParsed holds for every parser: either relations that all pass
// validation, or an *Error with at least one problem — never a panic.
func checkParsed(t *testing.T, rels []model.InventoryRelation, err error) {
	t.Helper()
	if err != nil {
		var ie *Error
		if !errors.As(err, &ie) || len(ie.Problems) == 0 {
			t.Fatalf("error %v is not an *Error with problems", err)
		}
		_ = ie.Error()
		return
	}
	for _, r := range rels {
		if msg := checkName(r.Name); msg != "" {
			t.Fatalf("accepted bad name %q: %s", r.Name, msg)
		}
		if r.Value != "" {
			if msg := checkField(r.Field, r.Value); msg != "" {
				t.Fatalf("accepted bad %s %q: %s", r.Field, r.Value, msg)
			}
		}
	}
}

func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{
		"teams:\n  - {name: t, slack_channel: C0PAY}\nservices:\n  - {name: s, team: t}\nvms:\n  - {id: v, service: s}\n",
		"vms:\n  - id: a\n", "hosts: []\n", "vms: &a [*a]\n", "- 1\n- 2\n", "vms:\n\t- x\n", "---\n---\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rels, err := ParseYAML("fuzz.yaml", []byte(in))
		checkParsed(t, rels, err)
	})
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"vm,service,team,slack_channel\nvm-1,pay,team-pay,C0PAY\n", "vm\n", "\"a,b\n", "service,team\n,\nx,y,z\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rels, err := ParseCSV("fuzz.csv", []byte(in))
		checkParsed(t, rels, err)
	})
}

func FuzzParsePush(f *testing.F) {
	for _, s := range []string{
		`{"services":[{"name":"s","team":"t"}],"teams":[{"name":"t","slack_usergroup":"S0X"}],"vms":[{"id":"v","service":"s"}]}`,
		`{"vms":[{"id":"v","service":""}]}`, `{}`, `[]`, `{"vms":null}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rels, err := ParsePush([]byte(in))
		checkParsed(t, rels, err)
	})
}
