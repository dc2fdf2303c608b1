package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// TestDefaultHostStates derives a host's state for one period from that
// period's facts and service states with the default host_states: the
// worst state wins, every reason that held is recorded (and stored for the
// period), and hardware_state ignores services.
func TestDefaultHostStates(t *testing.T) {
	tests := []struct {
		name     string
		obs      func(h *harness) []model.Observation
		state    model.HostState
		hw       model.HostState
		reasons  []string
		noPeriod bool
	}{
		{name: "healthy facts", obs: func(h *harness) []model.Observation { return []model.Observation{h.host("host-1", healthy())} },
			state: model.HostHealthy, hw: model.HostHealthy},
		{name: "uncorrected ECC", obs: one(facts("ecc_uncorrected", 1.0)), state: model.HostFailed, hw: model.HostFailed, reasons: []string{"ecc_uncorrected"}},
		{name: "machine check", obs: one(facts("mce", 2.0)), state: model.HostFailed, hw: model.HostFailed, reasons: []string{"mce"}},
		{name: "corrected ECC burst", obs: one(facts("ecc_corrected", 100.0)), state: model.HostDegraded, hw: model.HostDegraded, reasons: []string{"ecc_corrected_burst"}},
		{name: "a few corrected ECC", obs: one(facts("ecc_corrected", 99.0)), state: model.HostHealthy, hw: model.HostHealthy},
		{name: "disk errors", obs: one(facts("disk_errors", 3.0)), state: model.HostDegraded, hw: model.HostDegraded, reasons: []string{"disk_errors"}},
		{name: "NIC down", obs: one(facts("nic_up", false)), state: model.HostDegraded, hw: model.HostDegraded, reasons: []string{"nic_down"}},
		{name: "PSU failed", obs: one(facts("psu_ok", false)), state: model.HostDegraded, hw: model.HostDegraded, reasons: []string{"psu_failed"}},
		{name: "overheating", obs: one(facts("temp_c", 85.0)), state: model.HostDegraded, hw: model.HostDegraded, reasons: []string{"overheating"}},
		{name: "storage unreachable", obs: one(facts("storage_reachable", false)), state: model.HostFailed, hw: model.HostFailed, reasons: []string{"storage_unreachable"}},
		{name: "network unreachable", obs: one(facts("network_reachable", false)), state: model.HostFailed, hw: model.HostFailed, reasons: []string{"network_unreachable"}},
		{name: "several faults: worst wins, all recorded", obs: one(facts("disk_errors", 1.0, "mce", 1.0, "temp_c", 90.0)),
			state: model.HostFailed, hw: model.HostFailed, reasons: []string{"mce", "disk_errors", "overheating"}},
		{name: "two reports in one period merge worst-wins", obs: func(h *harness) []model.Observation {
			return []model.Observation{h.host("host-1", facts("disk_errors", 2.0)), h.host("host-1", healthy())}
		}, state: model.HostDegraded, hw: model.HostDegraded, reasons: []string{"disk_errors"}},
		{name: "the host reports itself down", obs: func(h *harness) []model.Observation {
			o := h.host("host-1", healthy())
			o.State = "down"
			return []model.Observation{o}
		}, state: model.HostFailed, hw: model.HostFailed, reasons: []string{"host_down"}},
		{name: "a service down on healthy hardware", obs: func(h *harness) []model.Observation {
			return []model.Observation{h.host("host-1", healthy()), h.service("host-1", "libvirtd", model.StateDown)}
		}, state: model.HostDegraded, hw: model.HostHealthy, reasons: []string{"service_down"}},
		{name: "a service up again", obs: func(h *harness) []model.Observation {
			return []model.Observation{h.host("host-1", healthy()), h.service("host-1", "libvirtd", model.StateDown), h.service("host-1", "libvirtd", model.StateUp)}
		}, state: model.HostHealthy, hw: model.HostHealthy},
		{name: "no facts yet: unknown", obs: func(h *harness) []model.Observation {
			return []model.Observation{h.vm("vm-1", "host-1", model.StateRunning, nil)}
		}, noPeriod: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.observe(tc.obs(h)...)
			host := h.e.fleet.hosts["host-1"]
			idx := h.e.periodIdx(h.clk.Now())
			pr := host.period(idx)
			if tc.noPeriod {
				env := new(HostEnv)
				h.e.fillHost(env, host, pr)
				if env.State != "unknown" || env.HardwareState != "unknown" || !env.Known {
					t.Fatalf("host env %+v, want known with unknown states", env)
				}
				if len(h.store.periods["host-1"]) != 0 {
					t.Fatalf("stored periods %+v, want none", h.store.periods["host-1"])
				}
				return
			}
			if pr.state != tc.state || pr.hwState != tc.hw {
				t.Errorf("state %s hardware %s, want %s and %s", pr.state, pr.hwState, tc.state, tc.hw)
			}
			got := h.e.reasonNames(pr.reasons)
			want := tc.reasons
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("reasons %v, want %v", got, want)
			}
			stored := h.store.periods["host-1"]
			if len(stored) == 0 {
				t.Fatal("no period stored")
			}
			last := stored[len(stored)-1]
			if last.State != tc.state || !last.Start.Equal(h.clk.Now().Truncate(time.Minute)) {
				t.Errorf("stored period %+v, want state %s starting %s", last, tc.state, h.clk.Now().Truncate(time.Minute))
			}
			storedReasons := slices.Clone(last.Reasons)
			slices.Sort(storedReasons)
			if !slices.Equal(storedReasons, want) {
				t.Errorf("stored reasons %v, want %v", last.Reasons, want)
			}
		})
	}
}

// one returns a single host-1 observation with the given facts.
func one(f map[string]any) func(h *harness) []model.Observation {
	return func(h *harness) []model.Observation { return []model.Observation{h.host("host-1", f)} }
}
