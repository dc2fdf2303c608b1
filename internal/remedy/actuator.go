package remedy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Target names the VM an action is about and where it runs now.
type Target struct {
	VM   string
	Host string
	Site string
}

// Actuator changes the fleet on one platform. Each call returns once the
// platform accepted (or refused) the action; the next observations show
// the outcome. An error wrapping ErrNotSupported means the platform has no
// such action, and the step is skipped with that reason rather than failed.
type Actuator interface {
	// RestartVM starts a stopped or crashed VM, or reboots a running one.
	RestartVM(ctx context.Context, t Target) error
	// RestartService restarts a service component (e.g. libvirtd) on a host.
	RestartService(ctx context.Context, host, service string) error
	// MigrateVM moves a VM to the host named to.
	MigrateVM(ctx context.Context, t Target, to string) error
	// HostMaintenance puts a host into maintenance so that nothing new is
	// placed on it.
	HostMaintenance(ctx context.Context, host string) error
}

// ErrNotSupported is wrapped by an Actuator that has no such action.
var ErrNotSupported = errors.New("not supported by this platform")

// DryRun is the actuator used until a real one is configured: it changes
// nothing, logs what it would do, and records it (Calls), so a test or an
// operator trying vmtriage out can see the remedies that would have run.
type DryRun struct {
	Logger *slog.Logger

	mu    sync.Mutex
	calls []string
}

var _ Actuator = (*DryRun)(nil)

// Calls returns what the actuator was asked to do, in order, one line
// each ("restart-vm vm-0042 on host-007").
func (d *DryRun) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

func (d *DryRun) record(line string) error {
	d.mu.Lock()
	d.calls = append(d.calls, line)
	d.mu.Unlock()
	if d.Logger != nil {
		d.Logger.Info("dry run: would "+line, "actuator", "dryrun")
	}
	return nil
}

// RestartVM records the restart.
func (d *DryRun) RestartVM(_ context.Context, t Target) error {
	return d.record(fmt.Sprintf("restart-vm %s on %s", t.VM, t.Host))
}

// RestartService records the restart.
func (d *DryRun) RestartService(_ context.Context, host, service string) error {
	return d.record(fmt.Sprintf("restart-service %s on %s", service, host))
}

// MigrateVM records the move.
func (d *DryRun) MigrateVM(_ context.Context, t Target, to string) error {
	return d.record(fmt.Sprintf("migrate-vm %s from %s to %s", t.VM, t.Host, to))
}

// HostMaintenance records the maintenance.
func (d *DryRun) HostMaintenance(_ context.Context, host string) error {
	return d.record("host-maintenance " + host)
}
