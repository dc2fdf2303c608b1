package rules

import (
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// hostBeat is a host heartbeat as collectors/heartbeat sends it: no state,
// no facts, its own source.
func (h *harness) hostBeat(id string) model.Observation {
	return model.Observation{Source: "heartbeat/pod-a", Kind: model.KindHost, ID: id, Site: "pod-a", TimeGenerated: h.clk.Now()}
}

// TestHostHeartbeat: a host record without a state and without facts is
// proof of life only, never a collection period with facts.
func TestHostHeartbeat(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{
			name: "a heartbeat in the crash period does not make the crash a guest crash",
			run: func(t *testing.T, h *harness) {
				h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil))
				h.clk.Advance(10 * time.Second)
				h.observe(h.hostBeat("host-1"))
				h.advance(2*time.Minute + time.Second)
				h.none("vm-guest-crash", "vm-crash-on-failing-host")
				h.check(h.one("vm-crash-host-unknown"), want{status: model.StatusFiring, subject: "vm-1"})
			},
		},
		{
			name: "facts arriving after a heartbeat in the same period still decide",
			run: func(t *testing.T, h *harness) {
				h.observe(h.vm("vm-1", "host-1", model.StateCrashed, nil), h.hostBeat("host-1"))
				h.clk.Advance(10 * time.Second)
				h.observe(h.host("host-1", facts("ecc_uncorrected", 2.0)))
				h.advance(time.Minute)
				h.check(h.one("vm-crash-on-failing-host"), want{status: model.StatusFiring, vms: []string{"vm-1"}})
				h.none("vm-guest-crash")
			},
		},
		{
			name: "heartbeats keep a host without new facts from stopped-reporting",
			run: func(t *testing.T, h *harness) {
				h.observe(h.host("host-1", healthy()), h.host("host-2", healthy()))
				for range 15 {
					h.advance(time.Minute)
					h.observe(h.host("host-2", healthy()), h.hostBeat("host-1"))
				}
				h.none("host-stopped-reporting")
				hr := h.e.fleet.hosts["host-1"]
				if hr.src == nil || hr.src.name != "prometheus" {
					t.Errorf("a heartbeat changed the source host-1 is judged against: %+v", hr.src)
				}
			},
		},
		{
			name: "without heartbeats the same host stops reporting",
			run: func(t *testing.T, h *harness) {
				h.observe(h.host("host-1", healthy()), h.host("host-2", healthy()))
				for range 15 {
					h.advance(time.Minute)
					h.observe(h.host("host-2", healthy()))
				}
				h.check(h.one("host-stopped-reporting"), want{status: model.StatusFiring, subject: "host-1"})
			},
		},
		{
			name: "a heartbeat brings a stale host back",
			run: func(t *testing.T, h *harness) {
				h.observe(h.host("host-1", healthy()), h.host("host-2", healthy()))
				for range 12 {
					h.advance(time.Minute)
					h.observe(h.host("host-2", healthy()))
				}
				h.check(h.one("host-stopped-reporting"), want{status: model.StatusFiring})
				h.observe(h.hostBeat("host-1"))
				if h.e.fleet.hosts["host-1"].stale {
					t.Fatal("host-1 still stale after a heartbeat")
				}
				for range 6 {
					h.advance(time.Minute)
					h.observe(h.host("host-2", healthy()), h.hostBeat("host-1"))
				}
				h.check(h.one("host-stopped-reporting"), want{status: model.StatusResolved})
			},
		},
		{
			name: "a heartbeat changes neither the reported state nor the period's facts",
			run: func(t *testing.T, h *harness) {
				down := h.host("host-1", nil)
				down.State = model.StateDown
				h.observe(down)
				first := h.e.fleet.hosts["host-1"].latest
				h.clk.Advance(time.Minute)
				h.observe(h.hostBeat("host-1"))
				hr := h.e.fleet.hosts["host-1"]
				if hr.reported != string(model.StateDown) {
					t.Errorf("reported %q after a heartbeat, want down", hr.reported)
				}
				if !hr.lastGen.Equal(down.TimeGenerated) {
					t.Errorf("last generated %s, want the state report's %s", hr.lastGen, down.TimeGenerated)
				}
				if hr.latest != first || hr.period(first+1) != nil {
					t.Errorf("the heartbeat opened a collection period: latest %d, want %d", hr.latest, first)
				}
			},
		},
		{
			name: "a heartbeat for a host nothing reported creates nothing",
			run: func(t *testing.T, h *harness) {
				h.observe(h.hostBeat("host-ghost"))
				if _, ok := h.e.fleet.hosts["host-ghost"]; ok {
					t.Error("a heartbeat created a host")
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
