package rules

import (
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// siteCollectors is what collectors/sites sends for a registered site: the
// service "site-collectors" on the pseudo-host "site:<site>".
func (h *harness) siteCollectors(site string, state model.State) model.Observation {
	return model.Observation{Source: "sites", Kind: model.KindService, ID: "site-collectors", Host: "site:" + site,
		Site: site, State: state, TimeGenerated: h.clk.Now()}
}

// TestSiteCollectorsDecision runs the registered-sites row through the
// default rules, in the decision table's style.
func TestSiteCollectorsDecision(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{
			name: "a site whose collectors all fail is one high incident for the site",
			run: func(t *testing.T, h *harness) {
				h.observe(h.vm("vm-1", "host-1", model.StateRunning, nil), h.siteCollectors("pod-a", model.StateDown))
				inc := h.one("site-collectors-down")
				h.check(inc, want{status: model.StatusFiring, cause: "site-collectors-down", severity: model.SeverityHigh,
					trigger: model.TriggerPlatform, action: model.ActionNotify, approval: model.ApprovalNotRequired})
				if inc.Site != "pod-a" {
					t.Errorf("site %q, want pod-a", inc.Site)
				}
				// Not also the generic service rule, which restarts services on
				// healthy hosts: the pseudo-host has no hardware.
				h.none("service-down")
			},
		},
		{
			name: "two blind sites are two incidents",
			run: func(t *testing.T, h *harness) {
				h.observe(h.siteCollectors("pod-a", model.StateDown), h.siteCollectors("pod-b", model.StateDown))
				if got := len(h.incidents("site-collectors-down")); got != 2 {
					t.Fatalf("%d incidents, want 2", got)
				}
			},
		},
		{
			name: "the site answering again resolves it after the resolve delay",
			run: func(t *testing.T, h *harness) {
				h.observe(h.siteCollectors("pod-a", model.StateDown))
				h.advance(time.Minute)
				h.observe(h.siteCollectors("pod-a", model.StateUp))
				h.advance(6 * time.Minute)
				h.check(h.one("site-collectors-down"), want{status: model.StatusResolved})
			},
		},
		{
			name: "a site no longer watched (state unknown) clears it too",
			run: func(t *testing.T, h *harness) {
				h.observe(h.siteCollectors("pod-a", model.StateDown))
				h.advance(time.Minute)
				h.observe(h.siteCollectors("pod-a", model.StateUnknown))
				h.advance(6 * time.Minute)
				h.check(h.one("site-collectors-down"), want{status: model.StatusResolved})
			},
		},
		{
			name: "an up site raises nothing",
			run: func(t *testing.T, h *harness) {
				h.observe(h.siteCollectors("pod-a", model.StateUp))
				h.advance(time.Minute)
				if open := h.openRules(); len(open) != 0 {
					t.Fatalf("open incidents %v", open)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newHarness(t, nil))
		})
	}
}
