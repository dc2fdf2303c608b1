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
			name: "row 1: a VM down for longer than the host's history keeps its verdict",
			run: func(h *harness) {
				h.observe(h.host("host-1", healthy()), h.vm("vm-1", "host-1", crashed, nil))
				h.advance(31 * time.Second)
				first := h.one("vm-guest-crash")
				for i := 0; i < 30; i++ { // history: 16 periods
					h.clk.Advance(time.Minute)
					h.observe(h.host("host-1", healthy()), h.vm("vm-1", "host-1", crashed, nil))
					h.tick()
				}
				inc := h.one("vm-guest-crash")
				if inc.ID != first.ID || inc.Status != model.StatusFiring || inc.HostState != "healthy" {
					t.Errorf("after 30 periods down: %+v, want %s still firing, judged healthy", inc, first.ID)
				}
				h.none("vm-crash-host-unknown", "vm-crash-on-failing-host")
			},
		},
		{
			name: "row 2: VMs down for longer than the host's history stay on the host incident",
			run: func(h *harness) {
				h.observe(h.host("host-1", facts("mce", 1.0)), h.vm("vm-1", "host-1", crashed, nil))
				first := h.one("vm-crash-on-failing-host")
				for i := 0; i < 30; i++ {
					h.clk.Advance(time.Minute)
					h.observe(h.host("host-1", healthy()), h.vm("vm-1", "host-1", crashed, nil))
					h.tick()
				}
				h.check(h.one("vm-crash-on-failing-host"), want{status: model.StatusFiring, vms: []string{"vm-1"}})
				if got := h.one("vm-crash-on-failing-host"); got.ID != first.ID {
					t.Errorf("incident %s, want %s", got.ID, first.ID)
				}
				h.none("vm-crash-host-unknown", "vm-guest-crash")
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
				inc := h.one("source-stopped-reporting")
				h.check(inc, want{status: model.StatusFiring, kind: KindSource, subject: "libvirt"})
				if want := "last seen 2026-11-22T10:00:35Z"; !strings.Contains(inc.Summary, want) {
					t.Errorf("summary %q lacks %q", inc.Summary, want)
				}
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
				inc := h.one("host-stopped-reporting")
				h.check(inc, want{status: model.StatusFiring, kind: model.KindHost, subject: "host-1"})
				if want := "last seen 2026-11-22T10:00:05Z"; !strings.Contains(inc.Summary, want) {
					t.Errorf("summary %q lacks %q", inc.Summary, want)
				}
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

// TestAzureAnnotations checks row 6: every VM annotation of Azure Resource
// Health (shared/notes/azure-resource-health.md) is classified as the
// annotation table says, and the planned-maintenance ones mark the VM
// "platform recovery in progress" for as long as they last.
func TestAzureAnnotations(t *testing.T) {
	platformUnplanned := want{cause: "platform-unplanned", trigger: model.TriggerPlatform, severity: model.SeverityHigh,
		action: model.ActionNotify, approval: model.ApprovalNotRequired, platformRecovery: true}
	planned := want{cause: "planned-maintenance", trigger: model.TriggerPlatform, severity: model.SeverityLow,
		action: model.ActionNone, approval: model.ApprovalNotRequired, platformRecovery: true}
	degraded := want{cause: "degraded-hardware", trigger: model.TriggerPlatform, severity: model.SeverityHigh,
		action: model.ActionMigrateHost, approval: model.ApprovalPending}
	user := want{cause: "user-operation", trigger: model.TriggerUser, severity: model.SeverityLow,
		action: model.ActionNone, approval: model.ApprovalNotRequired}
	groups := []struct {
		rule   string
		want   want
		events []string
	}{
		{rule: "azure-guest-crash", events: []string{"VirtualMachineCrashed"},
			want: want{cause: "guest-crash", trigger: model.TriggerVM, severity: model.SeverityMedium, action: model.ActionNone, approval: model.ApprovalNotRequired}},
		{rule: "azure-preempted", events: []string{"VirtualMachinePreempted"},
			want: want{cause: "spot-preemption", trigger: model.TriggerPlatform, severity: model.SeverityLow, action: model.ActionNone, approval: model.ApprovalNotRequired}},
		{rule: "azure-planned-maintenance", want: planned, events: []string{
			"VirtualMachineRebootInitiatedForPlannedMaintenance", "VirtualMachineMigrationInitiatedForPlannedMaintenance",
			"VirtualMachinePlannedFreezeSucceeded", "VirtualMachinePlannedFreezeFailed", "VirtualMachinePlannedFreezeStarted",
		}},
		{rule: "azure-platform-unplanned", want: platformUnplanned, events: []string{
			"VirtualMachineHostCrashed", "VirtualMachineStorageOffline", "VirtualMachineHostRebootedForRepair",
			"VirtualMachineMigrationInitiatedForRepair", "LiveMigrationSucceeded", "LiveMigrationFailure",
		}},
		{rule: "azure-degraded-hardware", want: degraded, events: []string{
			"PossiblyDegradedDueToHardwareFailureWithRedeployDeadline",
			"VirtualMachinePossiblyDegradedDueToHardwareFailureWithRedeployDeadline",
			"VirtualMachinePossiblyDegradedDueToHardwareFailure", "VirtualMachineMigrationScheduledForDegradedHardware",
			"VirtualMachineScheduledForServiceHealing", "AccelnetUnhealthy",
		}},
		{rule: "azure-user-operation", want: user, events: []string{
			"VirtualMachineRestarted", "VirtualMachineRebootInitiatedByControlPlane", "VirtualMachineRedeployInitiatedByControlPlane",
			"VirtualMachineRedeployInitiatedByControlPlaneDueToPlannedMaintenance", "VirtualMachineStartInitiatedByControlPlane",
			"VirtualMachineStopInitiatedByControlPlane", "VirtualMachineStoppedInternally", "VirtualMachineDeallocationInitiated",
			"VirtualMachineAllocated", "VirtualMachineSizeChanged", "VirtualMachineConfigurationUpdated", "VirtualMachineFailedToSecureBoot",
		}},
		{rule: "azure-provisioning-timeout", events: []string{"VirtualMachineProvisioningTimedOut"},
			want: want{cause: "provisioning-timeout", trigger: model.TriggerUser, severity: model.SeverityLow, action: model.ActionNotify, approval: model.ApprovalNotRequired}},
	}
	// The state the VM is in while the annotation holds does not change
	// the classification.
	states := []model.State{model.StateUnavailable, model.StateCrashed}
	for _, g := range groups {
		for _, event := range g.events {
			for _, state := range states {
				t.Run(event+"/"+string(state), func(t *testing.T) {
					h := newHarness(t, nil)
					h.observe(h.azure("vm-az-1", state, event))
					h.tick()
					w := g.want
					w.status, w.kind, w.subject, w.vms = model.StatusFiring, model.KindVM, "vm-az-1", []string{"vm-az-1"}
					inc := h.one(g.rule)
					h.check(inc, w)
					if inc.Event != event {
						t.Errorf("event %q, want %q", inc.Event, event)
					}
					if got := h.openRules(); len(got) != 1 {
						t.Errorf("open incidents %v, want only %s", got, g.rule)
					}
					id, ok := h.e.PlatformRecovery("vm-az-1")
					if ok != w.platformRecovery || (ok && id != inc.ID) {
						t.Errorf("PlatformRecovery = %q, %v; want %v", id, ok, w.platformRecovery)
					}
					// The platform is done and the VM runs again: the
					// recovery is over at once, and the incident resolves
					// after the resolve delay.
					h.observe(h.azure("vm-az-1", model.StateRunning, ""))
					if _, ok := h.e.PlatformRecovery("vm-az-1"); ok {
						t.Errorf("platform recovery still in progress once the VM runs again")
					}
					if inc := h.one(g.rule); inc.Status != model.StatusFiring || inc.PlatformRecovery {
						t.Errorf("during the resolve delay: %s, platform_recovery %v; want firing, false", inc.Status, inc.PlatformRecovery)
					}
					h.advance(6 * time.Minute)
					if inc := h.one(g.rule); inc.Status != model.StatusResolved {
						t.Errorf("status %s after the event cleared, want resolved", inc.Status)
					}
				})
			}
		}
	}
}

// TestPlatformRecoveryLastsAsLongAsTheMaintenance: while the maintenance
// annotation keeps being reported the VM stays in platform recovery,
// however long that takes.
func TestPlatformRecoveryLastsAsLongAsTheMaintenance(t *testing.T) {
	h := newHarness(t, nil)
	const event = "VirtualMachineMigrationInitiatedForPlannedMaintenance"
	h.observe(h.azure("vm-az-1", model.StateUnavailable, event))
	id := h.one("azure-planned-maintenance").ID
	for i := 0; i < 30; i++ {
		h.advance(time.Minute)
		if i%5 == 0 {
			h.observe(h.azure("vm-az-1", model.StateUnavailable, event))
		}
		if got, ok := h.e.PlatformRecovery("vm-az-1"); !ok || got != id {
			t.Fatalf("after %d min: PlatformRecovery = %q, %v; want %s", i+1, got, ok, id)
		}
	}
	if _, ok := h.e.PlatformRecovery("vm-az-2"); ok {
		t.Fatal("another VM is in platform recovery")
	}
	h.observe(h.azure("vm-az-1", model.StateRunning, ""))
	if _, ok := h.e.PlatformRecovery("vm-az-1"); ok {
		t.Fatal("platform recovery outlived the maintenance")
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
