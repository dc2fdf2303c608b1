package rules

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

// TestServicesHook: every saved incident carries what the consumer's
// Services hook says of it, computed from the incident as rendered (its
// VMs), and updated when its VMs change.
func TestServicesHook(t *testing.T) {
	h := newHarness(t, nil)
	var seen [][]string
	e, err := NewEngine(context.Background(), Options{Rules: h.e.Rules(), Store: h.store, Clock: h.clk, Logger: slog.New(slog.DiscardHandler),
		Services: func(inc *model.Incident) []model.ServiceImpact {
			seen = append(seen, slices.Clone(inc.VMs))
			return []model.ServiceImpact{{Service: "pay", Instances: 4, Down: len(inc.VMs), Hit: len(inc.VMs)}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	h.observe(h.vm("vm-42", "host-7", model.StateCrashed, nil))
	h.observe(h.host("host-7", map[string]any{"ecc_uncorrected": 2.0}))
	inc := h.one("vm-crash-on-failing-host")
	if len(inc.Services) != 1 || inc.Services[0].String() != "pay: 1 of 4 instances down" {
		t.Fatalf("services after the first crash = %v", inc.Services)
	}
	h.observe(h.vm("vm-43", "host-7", model.StateCrashed, nil))
	inc = h.one("vm-crash-on-failing-host")
	if inc.Services[0].String() != "pay: 2 of 4 instances down" {
		t.Errorf("services after the second crash = %v", inc.Services)
	}
	if last := seen[len(seen)-1]; !slices.Equal(last, []string{"vm-42", "vm-43"}) {
		t.Errorf("the hook last saw VMs %v, want the incident's rendered VMs", last)
	}
}
