package libvirt

import (
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmtriage/vmtriage/internal/model"
)

func TestVMState(t *testing.T) {
	tests := []struct {
		name          string
		state, reason int32
		want          model.State
		crash         string
	}{
		{"running", int32(golibvirt.DomainRunning), 1, model.StateRunning, ""},
		{"blocked on a resource", int32(golibvirt.DomainBlocked), 0, model.StateRunning, ""},
		{"being shut down", int32(golibvirt.DomainShutdown), 1, model.StateRunning, ""},
		{"paused by the user", int32(golibvirt.DomainPaused), 1, model.StatePaused, ""},
		{"pm suspended", int32(golibvirt.DomainPmsuspended), 0, model.StatePaused, ""},
		{"shut off by the guest", int32(golibvirt.DomainShutoff), 1, model.StateShutoff, ""},
		{"destroyed", int32(golibvirt.DomainShutoff), 2, model.StateShutoff, ""},
		{"shut off, reason crashed (on_crash destroy)", int32(golibvirt.DomainShutoff), int32(golibvirt.DomainShutoffCrashed), model.StateCrashed, CrashCrashed},
		{"shut off, reason failed", int32(golibvirt.DomainShutoff), int32(golibvirt.DomainShutoffFailed), model.StateCrashed, CrashFailed},
		{"crashed, panicked", int32(golibvirt.DomainCrashed), int32(golibvirt.DomainCrashedPanicked), model.StateCrashed, CrashPanicked},
		{"crashed, unknown", int32(golibvirt.DomainCrashed), int32(golibvirt.DomainCrashedUnknown), model.StateCrashed, CrashUnknown},
		{"no state", int32(golibvirt.DomainNostate), 0, model.StateUnknown, ""},
		{"a state libvirt may add later", 42, 0, model.StateUnknown, ""},
		{"state missing from the stats", -1, 0, model.StateUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, crash := vmState(tt.state, tt.reason)
			if got != tt.want || crash != tt.crash {
				t.Errorf("vmState(%d, %d) = %q, %q; want %q, %q", tt.state, tt.reason, got, crash, tt.want, tt.crash)
			}
		})
	}
}

func TestEventState(t *testing.T) {
	tests := []struct {
		name          string
		event, detail int32
		want          model.State
		crash, event_ string
		ignored       bool
	}{
		{"started", int32(golibvirt.DomainEventStarted), int32(golibvirt.DomainEventStartedBooted), model.StateRunning, "", "started_booted", false},
		{"started by migration here", int32(golibvirt.DomainEventStarted), int32(golibvirt.DomainEventStartedMigrated), model.StateRunning, "", "started_migrated", false},
		{"suspended", int32(golibvirt.DomainEventSuspended), int32(golibvirt.DomainEventSuspendedPaused), model.StatePaused, "", "suspended_paused", false},
		{"suspended on an I/O error", int32(golibvirt.DomainEventSuspended), int32(golibvirt.DomainEventSuspendedIoerror), model.StatePaused, "", "suspended_ioerror", false},
		{"suspended to migrate", int32(golibvirt.DomainEventSuspended), int32(golibvirt.DomainEventSuspendedMigrated), "", "", "", true},
		{"resumed", int32(golibvirt.DomainEventResumed), int32(golibvirt.DomainEventResumedUnpaused), model.StateRunning, "", "resumed_unpaused", false},
		{"pm suspended", int32(golibvirt.DomainEventPmsuspended), int32(golibvirt.DomainEventPmsuspendedMemory), model.StatePaused, "", "pmsuspended_memory", false},
		{"stopped: destroyed", int32(golibvirt.DomainEventStopped), int32(golibvirt.DomainEventStoppedDestroyed), model.StateShutoff, "", "stopped_destroyed", false},
		{"stopped: shut down", int32(golibvirt.DomainEventStopped), int32(golibvirt.DomainEventStoppedShutdown), model.StateShutoff, "", "stopped_shutdown", false},
		{"stopped: crashed", int32(golibvirt.DomainEventStopped), int32(golibvirt.DomainEventStoppedCrashed), model.StateCrashed, CrashCrashed, "stopped_crashed", false},
		{"stopped: failed", int32(golibvirt.DomainEventStopped), int32(golibvirt.DomainEventStoppedFailed), model.StateCrashed, CrashFailed, "stopped_failed", false},
		{"stopped: migrated away", int32(golibvirt.DomainEventStopped), int32(golibvirt.DomainEventStoppedMigrated), "", "", "", true},
		{"crashed: panicked", int32(golibvirt.DomainEventCrashed), int32(golibvirt.DomainEventCrashedPanicked), model.StateCrashed, CrashPanicked, "crashed_panicked", false},
		{"crashed: crash kernel loaded", int32(golibvirt.DomainEventCrashed), int32(golibvirt.DomainEventCrashedCrashloaded), model.StateCrashed, CrashCrashloaded, "crashed_crashloaded", false},
		{"crashed: detail unknown to us", int32(golibvirt.DomainEventCrashed), 9, model.StateCrashed, CrashUnknown, "crashed", false},
		{"defined", int32(golibvirt.DomainEventDefined), 0, "", "", "", true},
		{"undefined", int32(golibvirt.DomainEventUndefined), 0, "", "", "", true},
		{"shutting down", int32(golibvirt.DomainEventShutdown), 0, "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, crash, name, ok := eventState(tt.event, tt.detail)
			if ok == tt.ignored {
				t.Fatalf("eventState(%d, %d) ok = %v, want %v", tt.event, tt.detail, ok, !tt.ignored)
			}
			if state != tt.want || crash != tt.crash || name != tt.event_ {
				t.Errorf("eventState(%d, %d) = %q, %q, %q; want %q, %q, %q", tt.event, tt.detail, state, crash, name, tt.want, tt.crash, tt.event_)
			}
		})
	}
}
