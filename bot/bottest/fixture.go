package bottest

import (
	"fmt"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Now is the time the fixture is built around.
var Now = time.Date(2026, 11, 22, 10, 12, 0, 0, time.UTC)

// Incident kinds in the fixture, one per kind of fault the simulator
// injects; tests render each.
var (
	HostFault = model.Incident{
		ID: "inc-42", Fingerprint: "fp-host-007", Rule: "vm-crash-on-failing-host",
		Status: model.StatusFiring, Severity: model.SeverityCritical, Cause: "host-hardware-fault",
		Trigger: model.TriggerPlatform, Action: model.ActionMigrateHost, Approval: model.ApprovalPending,
		Kind: model.KindHost, Subject: "host-007", Host: "host-007", Site: "pod-a",
		VMs:       seq("vm-%04d", 40, 12),
		HostState: string(model.HostFailed),
		StartedAt: Now.Add(-10 * time.Minute), FiringAt: Now.Add(-9 * time.Minute), Level: 1,
		Ticket: "OPS-123", TicketURL: "https://jira.example/browse/OPS-123",
		Runbooks: []string{"https://kb.example/host-hardware-fault"}, Version: 3,
	}
	GuestCrash = model.Incident{
		ID: "inc-43", Rule: "vm-crash-on-healthy-host",
		Status: model.StatusFiring, Severity: model.SeverityHigh, Cause: "guest-fault",
		Trigger: model.TriggerVM, Action: model.ActionRestartVM, Approval: model.ApprovalNotRequired,
		Kind: model.KindVM, Subject: "vm-0100", Host: "host-003", Site: "pod-a", VMs: []string{"vm-0100"},
		HostState: string(model.HostHealthy), Event: "VirtualMachineCrashed",
		StartedAt: Now.Add(-4 * time.Minute), FiringAt: Now.Add(-3 * time.Minute), Level: 1,
		AckedBy: "alice", AckedAt: Now.Add(-2 * time.Minute), Version: 4,
	}
	StorageLoss = model.Incident{
		ID: "inc-44", Rule: "storage-unreachable",
		Status: model.StatusFiring, Severity: model.SeverityCritical, Cause: "storage-unreachable",
		Trigger: model.TriggerPlatform, Action: model.ActionNotify, Approval: model.ApprovalNotRequired,
		Kind: model.KindHost, Subject: "host-021", Host: "host-021", Site: "pod-b",
		VMs: seq("vm-%04d", 400, 5), HostState: string(model.HostDegraded),
		StartedAt: Now.Add(-6 * time.Minute), FiringAt: Now.Add(-6 * time.Minute), Level: 2, Version: 2,
		Runbooks: []string{"https://kb.example/storage-unreachable"},
	}
	ServiceDown = model.Incident{
		ID: "inc-45", Rule: "libvirtd-down",
		Status: model.StatusFiring, Severity: model.SeverityHigh, Cause: "service-down",
		Trigger: model.TriggerPlatform, Action: model.ActionRestartService, Approval: model.ApprovalPending,
		Kind: model.KindService, Subject: "host-011/libvirtd", Host: "host-011", Site: "pod-b",
		StartedAt: Now.Add(-2 * time.Minute), FiringAt: Now.Add(-1 * time.Minute), Level: 1, Version: 1,
	}
	Maintenance = model.Incident{
		ID: "inc-46", Rule: "planned-maintenance",
		Status: model.StatusFiring, Severity: model.SeverityLow, Cause: "planned-maintenance",
		Trigger: model.TriggerPlatform, Action: model.ActionNone, Approval: model.ApprovalNotRequired,
		Kind: model.KindVM, Subject: "vm-0200", Host: "host-009", Site: "pod-a", VMs: []string{"vm-0200"},
		Event:     "VirtualMachineRebootInitiatedForPlannedMaintenance",
		Summary:   "The platform is rebooting vm-0200 for planned maintenance; do not restart it by hand.",
		StartedAt: Now.Add(-1 * time.Minute), FiringAt: Now.Add(-1 * time.Minute), Level: 1, Version: 1,
	}
	UserRestart = model.Incident{
		ID: "inc-47", Rule: "user-restart",
		Status: model.StatusFiring, Severity: model.SeverityLow, Cause: "user-restart",
		Trigger: model.TriggerUser, Action: model.ActionNone, Approval: model.ApprovalNotRequired,
		Kind: model.KindVM, Subject: "vm-0300", Host: "host-012", Site: "pod-b", VMs: []string{"vm-0300"},
		StartedAt: Now.Add(-30 * time.Second), FiringAt: Now.Add(-30 * time.Second), Level: 1, Version: 1,
	}
	HeartbeatLoss = model.Incident{
		ID: "inc-48", Rule: "heartbeat-lost",
		Status: model.StatusFiring, Severity: model.SeverityMedium, Cause: "heartbeat-lost",
		Trigger: model.TriggerVM, Action: model.ActionNotify, Approval: model.ApprovalNotRequired,
		Kind: model.KindVM, Subject: "vm-0042", Host: "host-007", Site: "pod-a", VMs: []string{"vm-0042"},
		InhibitedBy: "inc-42",
		StartedAt:   Now.Add(-8 * time.Minute), FiringAt: Now.Add(-7 * time.Minute), Level: 1, Version: 2,
	}
	Resolved = model.Incident{
		ID: "inc-40", Rule: "vm-crash-on-healthy-host",
		Status: model.StatusResolved, Severity: model.SeverityHigh, Cause: "guest-fault",
		Trigger: model.TriggerVM, Action: model.ActionRestartVM, Approval: model.ApprovalNotRequired,
		Kind: model.KindVM, Subject: "vm-0007", Host: "host-002", Site: "pod-a", VMs: []string{"vm-0007"},
		StartedAt: Now.Add(-50 * time.Minute), FiringAt: Now.Add(-49 * time.Minute),
		ResolvedAt: Now.Add(-27 * time.Minute), Level: 1, Version: 5,
	}
)

// AllIncidents returns every fixture incident.
func AllIncidents() []model.Incident {
	return []model.Incident{HostFault, GuestCrash, StorageLoss, ServiceDown, Maintenance, UserRestart, HeartbeatLoss, Resolved}
}

func seq(format string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, from+i)
	}
	return out
}

// FixtureFleet returns a small fleet matching the fixture incidents: sites
// pod-a and pod-b; host-007 failed with twelve crashed VMs (vm-0040…
// vm-0051) and the running vm-0052; host-003 healthy
// with the crashed vm-0100; host-021 degraded.
func FixtureFleet() *Fleet {
	f := NewFleet()
	src := "libvirt"
	for i, id := range seq("vm-%04d", 40, 12) {
		f.AddVM(model.VMStatus{ID: id, Host: "host-007", Site: "pod-a", State: model.StateCrashed,
			Source: src, Since: Now.Add(-10*time.Minute + time.Duration(i)*time.Second),
			Last: model.Stamps{Generated: Now.Add(-30 * time.Second)}})
	}
	f.AddVM(model.VMStatus{ID: "vm-0052", Host: "host-007", Site: "pod-a", State: model.StateRunning,
		Source: src, Since: Now.Add(-72 * time.Hour), Last: model.Stamps{Generated: Now.Add(-30 * time.Second)}})
	f.AddVM(model.VMStatus{ID: "vm-0100", Host: "host-003", Site: "pod-a", State: model.StateCrashed,
		Event: "VirtualMachineCrashed", Source: "azure-resource-health",
		Attrs: map[string]any{model.AttrCrashReason: "panicked"},
		Since: Now.Add(-4 * time.Minute), Last: model.Stamps{Generated: Now.Add(-15 * time.Second)}})
	for _, id := range seq("vm-%04d", 400, 5) {
		f.AddVM(model.VMStatus{ID: id, Host: "host-021", Site: "pod-b", State: model.StateRunning,
			Source: src, Since: Now.Add(-48 * time.Hour), Last: model.Stamps{Generated: Now.Add(-20 * time.Second)}})
	}
	period := func(ago time.Duration, state model.HostState, reasons ...string) model.HostPeriod {
		return model.HostPeriod{Start: Now.Add(-ago).Truncate(time.Minute), State: state, Reasons: reasons}
	}
	f.AddHost(model.HostStatus{ID: "host-007", Site: "pod-a", Reported: model.StateUp, State: model.HostFailed,
		Since: Now.Add(-10 * time.Minute), Last: model.Stamps{Generated: Now.Add(-40 * time.Second)},
		VMs:      append(seq("vm-%04d", 40, 12), "vm-0052"),
		Services: []model.ServiceStatus{{Host: "host-007", Name: "libvirtd", State: model.StateUp, Since: Now.Add(-72 * time.Hour)}},
		Periods: []model.HostPeriod{
			period(0, model.HostFailed, "ecc_uncorrected=3", "mce=1"),
			period(time.Minute, model.HostFailed, "ecc_uncorrected=1"),
			period(2*time.Minute, model.HostDegraded, "ecc_corrected=120"),
			period(3*time.Minute, model.HostHealthy),
		}})
	f.AddHost(model.HostStatus{ID: "host-003", Site: "pod-a", Reported: model.StateUp, State: model.HostHealthy,
		Since: Now.Add(-100 * time.Hour), Last: model.Stamps{Generated: Now.Add(-40 * time.Second)},
		VMs: []string{"vm-0100"},
		Periods: []model.HostPeriod{
			period(0, model.HostHealthy), period(time.Minute, model.HostHealthy),
		}})
	f.AddHost(model.HostStatus{ID: "host-021", Site: "pod-b", Reported: model.StateUp, State: model.HostDegraded,
		Since: Now.Add(-6 * time.Minute), Last: model.Stamps{Generated: Now.Add(-40 * time.Second)},
		VMs:      seq("vm-%04d", 400, 5),
		Services: []model.ServiceStatus{{Host: "host-021", Name: "multipathd", State: model.StateDown, Since: Now.Add(-6 * time.Minute)}},
		Periods:  []model.HostPeriod{period(0, model.HostDegraded, "storage_reachable=false")},
	})
	return f
}
