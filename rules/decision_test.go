package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// TestDecisionTable runs each row of issue 3's decision table through the
// default rules.
func TestDecisionTable(t *testing.T) {
	crashed := model.StateCrashed
	running := model.StateRunning
	tests := []struct {
		name string
		run  func(h *harness)
	}{
		{
			name: "row 1: crash on a healthy host restarts only that VM",
			run: func(h *harness) {
				h.observe(h.host("host-1", healthy()),
					h.vm("vm-1", "host-1", crashed, map[string]any{"crash_reason": "panicked"}),
					h.vm("vm-2", "host-1", running, nil))
				h.advance(31 * time.Second)
				inc := h.one("vm-guest-crash")
				h.check(inc, want{status: model.StatusFiring, severity: model.SeverityMedium, trigger: model.TriggerVM,
					action: model.ActionRestartVM, approval: model.ApprovalNotRequired, kind: model.KindVM, subject: "vm-1", vms: []string{"vm-1"}})
				if inc.HostState != "healthy" {
					t.Errorf("host_state %q, want healthy", inc.HostState)
				}
				h.none("vm-crash-on-failing-host", "host-fault-persistent")
			},
		},
		{
			name: "row 1: libvirt's shutoff with a crash reason counts as a crash",
			run: func(h *harness) {
				h.observe(h.host("host-1", healthy()), h.vm("vm-1", "host-1", model.StateShutoff, map[string]any{"crash_reason": "crashed"}))
				h.advance(31 * time.Second)
				h.check(h.one("vm-guest-crash"), want{status: model.StatusFiring, action: model.ActionRestartVM})
			},
		},
		{
			name: "row 1: a crash stays pending until its host's facts could arrive",
			run: func(h *harness) {
				h.observe(h.host("host-1", healthy()), h.vm("vm-1", "host-1", crashed, nil))
				h.check(h.one("vm-guest-crash"), want{status: model.StatusPending})
			},
		},
		{
			name: "row 2: crashes on a failed host give one host incident listing the VMs",
			run: func(h *harness) {
				h.observe(h.host("host-1", facts("ecc_uncorrected", 3.0)),
					h.vm("vm-1", "host-1", crashed, nil),
					h.vm("vm-2", "host-1", crashed, nil),
					h.vm("vm-3", "host-1", running, nil))
				h.advance(time.Minute)
				h.check(h.one("vm-crash-on-failing-host"), want{status: model.StatusFiring, severity: model.SeverityCritical,
					trigger: model.TriggerPlatform, action: model.ActionMigrateHost, approval: model.ApprovalPending,
					kind: model.KindHost, subject: "host-1", vms: []string{"vm-1", "vm-2"}})
				h.none("vm-guest-crash", "vm-crash-host-unknown")
			},
		},
		{
			name: "row 2: degraded host counts too",
			run: func(h *harness) {
				h.observe(h.host("host-1", facts("disk_errors", 7.0)), h.vm("vm-1", "host-1", crashed, nil))
				h.check(h.one("vm-crash-on-failing-host"), want{status: model.StatusFiring, vms: []string{"vm-1"}})
			},
		},
		{
			name: "row 2: host fault arriving after the crashes in the same period still merges them",
			run: func(h *harness) {
				h.observe(h.vm("vm-1", "host-1", crashed, nil), h.vm("vm-2", "host-1", crashed, nil))
				h.clk.Advance(20 * time.Second)
				h.observe(h.host("host-1", facts("mce", 1.0)))
				h.advance(time.Minute)
				h.check(h.one("vm-crash-on-failing-host"), want{status: model.StatusFiring, vms: []string{"vm-1", "vm-2"}})
				// The crashes were pending as "host unknown" until the
				// fault arrived: withdrawn, not listed as resolved.
				h.none("vm-guest-crash", "vm-crash-host-unknown")
				if got := h.openRules(); len(got) != 1 {
					t.Errorf("open incidents %v, want only the host one", got)
				}
			},
		},
		{
			name: "row 2: a fault later in the period takes a crash first judged a guest fault",
			run: func(h *harness) {
				h.observe(h.host("host-1", healthy()), h.vm("vm-1", "host-1", crashed, nil))
				h.clk.Advance(10 * time.Second)
				h.observe(h.host("host-1", facts("ecc_uncorrected", 1.0)))
				h.advance(time.Minute)
				h.check(h.one("vm-crash-on-failing-host"), want{status: model.StatusFiring, vms: []string{"vm-1"}})
				h.none("vm-guest-crash") // pending when the fault took it: withdrawn
				if got := h.openRules(); len(got) != 1 || got[0] != "vm-crash-on-failing-host" {
					t.Errorf("open incidents %v, want only the host one", got)
				}
			},
		},
		{
			name: "row 3: the same hardware fault in 3 periods migrates pre-emptively",
			run: func(h *harness) {
				h.observe(h.vm("vm-1", "host-1", running, nil))
				for i := 0; i < 2; i++ {
					h.observe(h.host("host-1", facts("ecc_corrected", 150.0)))
					h.advance(time.Minute)
				}
				h.none("host-fault-persistent")
				h.observe(h.host("host-1", facts("ecc_corrected", 150.0)))
				h.check(h.one("host-fault-persistent"), want{status: model.StatusFiring, severity: model.SeverityHigh,
					trigger: model.TriggerPlatform, action: model.ActionMigrateHost, approval: model.ApprovalPending,
					kind: model.KindHost, subject: "host-1", vms: []string{"vm-1"}})
				h.none("vm-crash-on-failing-host")
			},
		},
		{
			name: "row 3: different faults in consecutive periods are not the same fault",
			run: func(h *harness) {
				for _, f := range []map[string]any{facts("disk_errors", 1.0), facts("nic_up", false), facts("psu_ok", false)} {
					h.observe(h.host("host-1", f))
					h.advance(time.Minute)
				}
				h.none("host-fault-persistent")
			},
		},
		{
			name: "row 3: a gap in the periods breaks the run",
			run: func(h *harness) {
				h.observe(h.host("host-1", facts("mce", 1.0)))
				h.advance(time.Minute)
				h.observe(h.host("host-1", facts("mce", 1.0)))
				h.advance(2 * time.Minute) // no report in the third period
				h.observe(h.host("host-1", facts("mce", 1.0)))
				h.none("host-fault-persistent")
			},
		},
		{
			name: "row 4: storage unreachable for 3 periods migrates with approval",
			run: func(h *harness) {
				for i := 0; i < 3; i++ {
					h.observe(h.host("host-1", facts("storage_reachable", false)))
					h.advance(time.Minute)
				}
				h.check(h.one("host-external-unreachable"), want{status: model.StatusFiring, action: model.ActionMigrateHost,
					approval: model.ApprovalPending, trigger: model.TriggerPlatform})
				h.none("host-fault-persistent")
			},
		},
		{
			name: "row 4: network unreachable for 3 periods migrates with approval",
			run: func(h *harness) {
				for i := 0; i < 3; i++ {
					h.observe(h.host("host-1", facts("network_reachable", false)))
					h.advance(time.Minute)
				}
				h.check(h.one("host-external-unreachable"), want{status: model.StatusFiring, action: model.ActionMigrateHost})
			},
		},
		{
			name: "row 5: a service down on healthy hardware restarts the service",
			run: func(h *harness) {
				h.observe(h.host("host-1", healthy()), h.service("host-1", "libvirtd", model.StateDown))
				h.check(h.one("service-down"), want{status: model.StatusFiring, action: model.ActionRestartService,
					approval: model.ApprovalNotRequired, kind: model.KindService, subject: "host-1/libvirtd"})
				h.none("host-fault-persistent", "vm-crash-on-failing-host")
			},
		},
		{
			name: "row 5: a service down on failing hardware is not restarted",
			run: func(h *harness) {
				h.observe(h.host("host-1", facts("mce", 2.0)), h.service("host-1", "nova-compute", model.StateDown))
				h.none("service-down")
			},
		},
		{
			name: "row 5: service report before the host's facts is judged when they arrive",
			run: func(h *harness) {
				h.observe(h.service("host-1", "nova-compute", model.StateDown))
				h.none("service-down")
				h.observe(h.host("host-1", healthy()))
				h.check(h.one("service-down"), want{status: model.StatusFiring, subject: "host-1/nova-compute"})
			},
		},
		{
			name: "row 7: a VM its source stopped reporting",
			run: func(h *harness) {
				h.observe(h.vm("vm-1", "host-1", running, nil), h.vm("vm-2", "host-1", running, nil))
				for i := 0; i < 11; i++ {
					h.advance(time.Minute)
					h.observe(h.vm("vm-2", "host-1", running, nil))
				}
				h.advance(30 * time.Second) // stale scans run every timeout/20
				inc := h.one("vm-stopped-reporting")
				h.check(inc, want{status: model.StatusFiring, kind: model.KindVM, subject: "vm-1"})
				if want := "last seen 2026-11-22T10:00:05Z"; !strings.Contains(inc.Summary, want) {
					t.Errorf("summary %q lacks %q", inc.Summary, want)
				}
				h.none("source-stopped-reporting")
				// It reports again: resolves after the resolve delay.
				h.observe(h.vm("vm-1", "host-1", running, nil))
				h.advance(6 * time.Minute)
				h.check(h.one("vm-stopped-reporting"), want{status: model.StatusResolved})
			},
		},
		{
			name: "row 7: a whole source going silent is one incident, not one per VM",
			run: func(h *harness) {
				var obs []model.Observation
				for _, id := range []string{"vm-1", "vm-2", "vm-3"} {
					obs = append(obs, h.vm(id, "host-1", running, nil))
				}
				h.observe(obs...)
				h.clk.Advance(30 * time.Second)
				h.observe(h.vm("vm-3", "host-1", running, nil))
				h.advance(11 * time.Minute)
				h.check(h.one("source-stopped-reporting"), want{status: model.StatusFiring, kind: KindSource, subject: "libvirt"})
				h.none("vm-stopped-reporting")
			},
		},
		{
			name: "row 7: a host whose facts stopped",
			run: func(h *harness) {
				h.observe(h.host("host-1", healthy()), h.host("host-2", healthy()))
				for i := 0; i < 11; i++ {
					h.advance(time.Minute)
					h.observe(h.host("host-2", healthy()))
				}
				h.advance(30 * time.Second)
				h.check(h.one("host-stopped-reporting"), want{status: model.StatusFiring, kind: model.KindHost, subject: "host-1"})
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			tc.run(h)
		})
	}
}

// TestAzureAnnotations checks row 6: every annotation of the table is
// classified as the table says.
func TestAzureAnnotations(t *testing.T) {
	tests := []struct {
		name  string
		event string
		rule  string
		want  want
	}{
		{name: "guest crash", event: "VirtualMachineCrashed", rule: "azure-guest-crash",
			want: want{trigger: model.TriggerVM, action: model.ActionNone, approval: model.ApprovalNotRequired}},
		{name: "preempted", event: "VirtualMachinePreempted", rule: "azure-preempted",
			want: want{trigger: model.TriggerPlatform, severity: model.SeverityLow, action: model.ActionNone}},
		{name: "planned reboot", event: "VirtualMachineRebootInitiatedForPlannedMaintenance", rule: "azure-planned-maintenance",
			want: want{trigger: model.TriggerPlatform, action: model.ActionNone, platformRecovery: true}},
		{name: "planned migration", event: "VirtualMachineMigrationInitiatedForPlannedMaintenance", rule: "azure-planned-maintenance",
			want: want{trigger: model.TriggerPlatform, action: model.ActionNone, platformRecovery: true}},
		{name: "planned freeze", event: "VirtualMachinePlannedFreezeStarted", rule: "azure-planned-maintenance",
			want: want{trigger: model.TriggerPlatform, platformRecovery: true}},
		{name: "user restart", event: "VirtualMachineRestarted", rule: "azure-user-operation",
			want: want{trigger: model.TriggerUser, action: model.ActionNone}},
		{name: "user resize", event: "VirtualMachineSizeChanged", rule: "azure-user-operation",
			want: want{trigger: model.TriggerUser, action: model.ActionNone}},
		{name: "user deallocation", event: "VirtualMachineDeallocationInitiated", rule: "azure-user-operation",
			want: want{trigger: model.TriggerUser}},
		{name: "guest shutdown", event: "VirtualMachineStoppedInternally", rule: "azure-user-operation",
			want: want{trigger: model.TriggerUser}},
		{name: "host crashed", event: "VirtualMachineHostCrashed", rule: "azure-platform-unplanned",
			want: want{trigger: model.TriggerPlatform, severity: model.SeverityHigh, platformRecovery: true}},
		{name: "storage offline", event: "VirtualMachineStorageOffline", rule: "azure-platform-unplanned",
			want: want{trigger: model.TriggerPlatform, platformRecovery: true}},
		{name: "degraded hardware", event: "VirtualMachinePossiblyDegradedDueToHardwareFailure", rule: "azure-degraded-hardware",
			want: want{trigger: model.TriggerPlatform, action: model.ActionMigrateHost, approval: model.ApprovalPending}},
		{name: "degraded with deadline (no prefix)", event: "PossiblyDegradedDueToHardwareFailureWithRedeployDeadline", rule: "azure-degraded-hardware",
			want: want{action: model.ActionMigrateHost, approval: model.ApprovalPending}},
		{name: "service healing", event: "VirtualMachineScheduledForServiceHealing", rule: "azure-degraded-hardware",
			want: want{action: model.ActionMigrateHost}},
		{name: "accelnet", event: "AccelnetUnhealthy", rule: "azure-degraded-hardware",
			want: want{action: model.ActionMigrateHost}},
		{name: "provisioning timeout", event: "VirtualMachineProvisioningTimedOut", rule: "azure-provisioning-timeout",
			want: want{trigger: model.TriggerUser, action: model.ActionNotify}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.observe(h.azure("vm-az-1", model.StateUnavailable, tc.event))
			h.tick()
			tc.want.status = model.StatusFiring
			tc.want.kind = model.KindVM
			tc.want.subject = "vm-az-1"
			inc := h.one(tc.rule)
			h.check(inc, tc.want)
			if inc.Event != tc.event {
				t.Errorf("event %q, want %q", inc.Event, tc.event)
			}
			if got := h.openRules(); len(got) != 1 {
				t.Errorf("open incidents %v, want only %s", got, tc.rule)
			}
			id, ok := h.e.PlatformRecovery("vm-az-1")
			if ok != tc.want.platformRecovery || (ok && id != inc.ID) {
				t.Errorf("PlatformRecovery = %q, %v; want %v", id, ok, tc.want.platformRecovery)
			}
			// When the platform is done and the VM runs again the
			// incident resolves and the VM is free for manual action.
			h.observe(h.azure("vm-az-1", model.StateRunning, ""))
			h.advance(6 * time.Minute)
			if inc := h.one(tc.rule); inc.Status != model.StatusResolved {
				t.Errorf("status %s after the event cleared, want resolved", inc.Status)
			}
			if _, ok := h.e.PlatformRecovery("vm-az-1"); ok {
				t.Errorf("platform recovery still in progress after resolution")
			}
		})
	}
}

func TestHeartbeatKeepsVMAlive(t *testing.T) {
	h := newHarness(t, nil)
	h.observe(h.vm("vm-1", "host-1", model.StateRunning, nil), h.vm("vm-2", "host-1", model.StateRunning, nil))
	for i := 0; i < 12; i++ {
		h.advance(time.Minute)
		beat := h.vm("vm-1", "", "", nil)
		beat.Source = "heartbeat"
		h.observe(h.vm("vm-2", "host-1", model.StateRunning, nil), beat)
	}
	h.advance(30 * time.Second)
	h.none("vm-stopped-reporting")
	if v := h.e.fleet.vms["vm-1"]; v.state != model.StateRunning || v.src.name != "libvirt" || v.h.id != "host-1" {
		t.Fatalf("a heartbeat changed the VM: %+v", v)
	}
}
