package tickets

import (
	"slices"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

// TestOwnerComponentAndAssignee: the owning team's component and assignee
// win over the cause's; what the owner leaves empty falls back to the
// cause's.
func TestOwnerComponentAndAssignee(t *testing.T) {
	for _, tc := range []struct {
		name                string
		component, assignee string // what Owner gives
		wantComp, wantAssig string
	}{
		{"owner gives both", "Storage", "jdoe", "Storage", "jdoe"},
		{"owner gives the component only", "Storage", "", "Storage", "acc-42"},
		{"no owner", "", "", "Compute", "acc-42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			h := newHarness(t, setup{opts: func(o *Options) {
				o.Owner = func(inc *model.Incident) (string, string) {
					asked = append(asked, inc.ID)
					return tc.component, tc.assignee
				}
			}})
			h.open("inc-1", model.SeverityCritical, func(i *model.Incident) {
				i.Services = []model.ServiceImpact{{Service: "payments-api", Team: "team-pay", Instances: 6, Down: 3, Hit: 3}}
			})
			h.drain()
			is := h.only()
			if !slices.Equal(is.Components, []string{tc.wantComp}) || is.Assignee != tc.wantAssig {
				t.Errorf("issue components %v assignee %q; want %s, %s", is.Components, is.Assignee, tc.wantComp, tc.wantAssig)
			}
			if !slices.Contains(asked, "inc-1") {
				t.Errorf("Owner was not asked about inc-1 (asked %v)", asked)
			}
		})
	}
}
