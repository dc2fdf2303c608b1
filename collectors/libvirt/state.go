package libvirt

import (
	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmtriage/vmtriage/internal/model"
)

// Crash reasons carried in attrs.crash_reason.
const (
	CrashCrashed     = "crashed"     // shutoff, reason crashed: the guest crashed and was destroyed
	CrashFailed      = "failed"      // shutoff, reason failed: the domain failed to start or run
	CrashPanicked    = "panicked"    // crashed, reason panicked: a guest kernel panic (pvpanic)
	CrashCrashloaded = "crashloaded" // crashed and a crash kernel was loaded
	CrashUnknown     = "unknown"     // crashed for a reason libvirt does not know
)

// vmState maps a domain's state and reason, as DomainGetState or the
// state.* domain stats give them, onto a VM state and its crash reason.
func vmState(state, reason int32) (model.State, string) {
	switch golibvirt.DomainState(state) {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked:
		return model.StateRunning, ""
	case golibvirt.DomainShutdown:
		// Being shut down: still serving until it reaches shutoff, which
		// the event or the next listing will say.
		return model.StateRunning, ""
	case golibvirt.DomainPaused, golibvirt.DomainPmsuspended:
		return model.StatePaused, ""
	case golibvirt.DomainShutoff:
		switch golibvirt.DomainShutoffReason(reason) {
		case golibvirt.DomainShutoffCrashed:
			return model.StateCrashed, CrashCrashed
		case golibvirt.DomainShutoffFailed:
			return model.StateCrashed, CrashFailed
		}
		return model.StateShutoff, ""
	case golibvirt.DomainCrashed:
		if golibvirt.DomainCrashedReason(reason) == golibvirt.DomainCrashedPanicked {
			return model.StateCrashed, CrashPanicked
		}
		return model.StateCrashed, CrashUnknown
	}
	return model.StateUnknown, ""
}

// eventState maps a lifecycle event onto the VM state it leaves the domain
// in and the observation's event name (libvirt's event and detail, e.g.
// "stopped_crashed"). ok is false for events that say nothing about
// whether the VM serves (defined, undefined, shutdown in progress) and for
// the two ends of a migration seen from the host it leaves (suspended or
// stopped, detail migrated): the VM is moving, not down, and its new host
// reports it.
func eventState(event, detail int32) (state model.State, crashReason, name string, ok bool) {
	switch golibvirt.DomainEventType(event) {
	case golibvirt.DomainEventStarted:
		return model.StateRunning, "", "started" + detailName(startedDetails, detail), true
	case golibvirt.DomainEventResumed:
		return model.StateRunning, "", "resumed" + detailName(resumedDetails, detail), true
	case golibvirt.DomainEventSuspended:
		if golibvirt.DomainEventSuspendedDetailType(detail) == golibvirt.DomainEventSuspendedMigrated {
			// The last phase of a live migration: the VM moves, it is not
			// down; the destination host reports it running.
			return "", "", "", false
		}
		return model.StatePaused, "", "suspended" + detailName(suspendedDetails, detail), true
	case golibvirt.DomainEventPmsuspended:
		return model.StatePaused, "", "pmsuspended" + detailName(pmsuspendedDetails, detail), true
	case golibvirt.DomainEventStopped:
		name := "stopped" + detailName(stoppedDetails, detail)
		switch golibvirt.DomainEventStoppedDetailType(detail) {
		case golibvirt.DomainEventStoppedMigrated:
			return "", "", "", false // it left this host; its new host reports it
		case golibvirt.DomainEventStoppedCrashed:
			return model.StateCrashed, CrashCrashed, name, true
		case golibvirt.DomainEventStoppedFailed:
			return model.StateCrashed, CrashFailed, name, true
		}
		return model.StateShutoff, "", name, true
	case golibvirt.DomainEventCrashed:
		name := "crashed" + detailName(crashedDetails, detail)
		switch golibvirt.DomainEventCrashedDetailType(detail) {
		case golibvirt.DomainEventCrashedPanicked:
			return model.StateCrashed, CrashPanicked, name, true
		case golibvirt.DomainEventCrashedCrashloaded:
			return model.StateCrashed, CrashCrashloaded, name, true
		}
		return model.StateCrashed, CrashUnknown, name, true
	}
	return "", "", "", false
}

// The detail names of libvirt's virDomainEvent*DetailType, by value.
var (
	startedDetails     = []string{"booted", "migrated", "restored", "from_snapshot", "wakeup", "recreated"}
	suspendedDetails   = []string{"paused", "migrated", "ioerror", "watchdog", "restored", "from_snapshot", "api_error", "postcopy", "postcopy_failed"}
	resumedDetails     = []string{"unpaused", "migrated", "from_snapshot", "postcopy", "postcopy_failed"}
	stoppedDetails     = []string{"shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from_snapshot", "recreated"}
	pmsuspendedDetails = []string{"memory", "disk"}
	crashedDetails     = []string{"panicked", "crashloaded"}
)

func detailName(names []string, detail int32) string {
	if detail >= 0 && int(detail) < len(names) {
		return "_" + names[detail]
	}
	return ""
}
