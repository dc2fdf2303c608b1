package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// TestDefaultInhibitionEitherOrder: with the default rules, a host
// incident mutes the VM incidents of its VMs whichever arrived first. The
// crash happened in a period in which the host was healthy (a guest
// crash); the host's same fault then held for 3 periods (pre-emptive
// migration). Either the crash is known first, or its report arrives late,
// after the host incident.
func TestDefaultInhibitionEitherOrder(t *testing.T) {
	burst := func() map[string]any { return facts("ecc_corrected", 150.0) }
	tests := []struct {
		name string
		run  func(h *harness)
		// level is the VM incident's escalation level, kept while muted.
		level int
	}{
		{
			name: "VM incident first, host incident later",
			run: func(h *harness) {
				h.observe(h.host("host-1", healthy()), h.vm("vm-1", "host-1", model.StateCrashed, nil), h.vm("vm-2", "host-1", model.StateRunning, nil))
				h.advance(31 * time.Second)
				if got := h.one("vm-guest-crash"); got.Status != model.StatusFiring || got.Level != 1 {
					h.t.Fatalf("guest crash %s at level %d, want firing at level 1", got.Status, got.Level)
				}
				for i := 0; i < 3; i++ {
					h.clk.Advance(time.Minute)
					h.observe(h.host("host-1", burst()))
				}
			},
			level: 1,
		},
		{
			name: "host incident first, the crash's report arrives late",
			run: func(h *harness) {
				crashedAt := h.clk.Now().Add(10 * time.Second)
				h.observe(h.host("host-1", healthy()), h.vm("vm-1", "host-1", model.StateRunning, nil), h.vm("vm-2", "host-1", model.StateRunning, nil))
				for i := 0; i < 3; i++ {
					h.clk.Advance(time.Minute)
					h.observe(h.host("host-1", burst()))
				}
				h.one("host-fault-persistent")
				late := h.vm("vm-1", "host-1", model.StateCrashed, nil)
				late.TimeGenerated = crashedAt // in the healthy period
				h.observe(late)
				h.advance(31 * time.Second)
			},
			level: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			tc.run(h)
			host := h.one("host-fault-persistent")
			vm := h.one("vm-guest-crash")
			if host.Status != model.StatusFiring || vm.Status != model.StatusFiring {
				t.Fatalf("host incident %s, VM incident %s; want both firing", host.Status, vm.Status)
			}
			if vm.InhibitedBy != host.ID {
				t.Fatalf("VM incident inhibited_by %q, want %q", vm.InhibitedBy, host.ID)
			}
			if !slices.Contains(host.VMs, "vm-1") {
				t.Errorf("host incident VMs %v lack vm-1", host.VMs)
			}
			// Muted: no further escalation for as long as the host fires
			// (the medium policy's next level is due after 1h).
			for i := 0; i < 65; i++ {
				h.clk.Advance(time.Minute)
				h.observe(h.host("host-1", burst()), h.vm("vm-2", "host-1", model.StateRunning, nil))
				h.tick()
			}
			vm = h.one("vm-guest-crash")
			if vm.Level != tc.level || vm.InhibitedBy != host.ID {
				t.Fatalf("after 65m muted: level %d inhibited_by %q, want level %d and %s", vm.Level, vm.InhibitedBy, tc.level, host.ID)
			}
			// The host recovers: its incident resolves after its 10m
			// resolve delay, and the VM incident is heard again.
			for i := 0; i < 12; i++ {
				h.clk.Advance(time.Minute)
				h.observe(h.host("host-1", healthy()), h.vm("vm-2", "host-1", model.StateRunning, nil))
				h.tick()
			}
			if got := h.one("host-fault-persistent"); got.Status != model.StatusResolved {
				t.Fatalf("host incident %s after recovery, want resolved", got.Status)
			}
			vm = h.one("vm-guest-crash")
			if vm.InhibitedBy != "" || vm.Level < 1 {
				t.Fatalf("after the host resolved: inhibited_by %q level %d, want unmuted and escalating", vm.InhibitedBy, vm.Level)
			}
		})
	}
}
