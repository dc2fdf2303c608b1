package remedy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// LibvirtOptions configure a Libvirt actuator.
type LibvirtOptions struct {
	// URIs maps each host to the libvirt URI of its daemon
	// ("qemu+tcp://host-007/system", or a unix socket path for a local
	// daemon). The source host's URI is dialled to act; the target's is
	// handed to the source daemon as the peer-to-peer migration
	// destination.
	URIs map[string]string
	// Dial, if set, replaces how a host's daemon is reached (tests dial
	// a socket and open test:///default). It must return a connected
	// client.
	Dial func(host string) (*golibvirt.Libvirt, error)
	// Timeout bounds dialling (default 10s); every action is also bounded
	// by its context.
	Timeout time.Duration
}

// Libvirt acts through libvirt: restarts start a stopped or crashed
// domain or reboot a running one; migrations are live, peer-to-peer,
// persistent on the target and undefined on the source. Libvirt has no
// host maintenance nor service restart: those steps are skipped with
// ErrNotSupported (close the host in the scheduler of record).
type Libvirt struct {
	o LibvirtOptions
}

var _ Actuator = (*Libvirt)(nil)

// NewLibvirt returns a libvirt actuator.
func NewLibvirt(o LibvirtOptions) (*Libvirt, error) {
	if o.Dial == nil && len(o.URIs) == 0 {
		return nil, errors.New("libvirt actuator: no host URIs configured")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return &Libvirt{o: o}, nil
}

// dial connects to a host's daemon.
func (a *Libvirt) dial(host string) (*golibvirt.Libvirt, error) {
	if a.o.Dial != nil {
		return a.o.Dial(host)
	}
	raw, ok := a.o.URIs[host]
	if !ok {
		return nil, fmt.Errorf("no libvirt URI configured for host %s", host)
	}
	if strings.HasPrefix(raw, "/") {
		l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(raw), dialers.WithLocalTimeout(a.o.Timeout)))
		if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
			return nil, fmt.Errorf("connect to libvirt of %s: %w", host, err)
		}
		return l, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI of %s: %w", host, err)
	}
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return nil, fmt.Errorf("connect to libvirt of %s: %w", host, err)
	}
	return l, nil
}

// with runs f on a connection to host; go-libvirt calls take no context,
// so when ctx ends first the connection is closed, which ends the call.
func (a *Libvirt) with(ctx context.Context, host string, f func(l *golibvirt.Libvirt) error) error {
	l, err := a.dial(host)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- f(l) }()
	select {
	case err = <-done:
		_ = l.Disconnect()
		return err
	case <-ctx.Done():
		_ = l.Disconnect()
		return fmt.Errorf("libvirt on %s: %w", host, ctx.Err())
	}
}

// RestartVM starts a stopped domain, destroys and starts a crashed one,
// resumes a paused one and reboots a running one.
func (a *Libvirt) RestartVM(ctx context.Context, t Target) error {
	return a.with(ctx, t.Host, func(l *golibvirt.Libvirt) error {
		dom, err := l.DomainLookupByName(t.VM)
		if err != nil {
			return fmt.Errorf("find %s on %s: %w", t.VM, t.Host, err)
		}
		st, _, err := l.DomainGetState(dom, 0)
		if err != nil {
			return fmt.Errorf("state of %s: %w", t.VM, err)
		}
		switch golibvirt.DomainState(st) {
		case golibvirt.DomainRunning, golibvirt.DomainBlocked:
			err = l.DomainReboot(dom, 0)
		case golibvirt.DomainPaused:
			err = l.DomainResume(dom)
		case golibvirt.DomainShutoff:
			err = l.DomainCreate(dom)
		default: // crashed, shutting down, suspended, no state
			if derr := l.DomainDestroy(dom); derr != nil {
				return fmt.Errorf("destroy %s before restarting it: %w", t.VM, derr)
			}
			err = l.DomainCreate(dom)
		}
		if err != nil {
			return fmt.Errorf("restart %s on %s: %w", t.VM, t.Host, err)
		}
		return nil
	})
}

// MigrateVM live-migrates a domain to the host to, peer to peer: the
// source daemon connects to the target's URI itself.
func (a *Libvirt) MigrateVM(ctx context.Context, t Target, to string) error {
	dest, ok := a.o.URIs[to]
	if !ok {
		return fmt.Errorf("migrate %s: no libvirt URI configured for target host %s", t.VM, to)
	}
	return a.with(ctx, t.Host, func(l *golibvirt.Libvirt) error {
		dom, err := l.DomainLookupByName(t.VM)
		if err != nil {
			return fmt.Errorf("find %s on %s: %w", t.VM, t.Host, err)
		}
		flags := golibvirt.MigrateLive | golibvirt.MigratePeer2peer | golibvirt.MigratePersistDest | golibvirt.MigrateUndefineSource
		if _, err := l.DomainMigratePerform3Params(dom, golibvirt.OptString{dest}, nil, nil, flags); err != nil {
			return fmt.Errorf("migrate %s from %s to %s: %w", t.VM, t.Host, to, err)
		}
		return nil
	})
}

// RestartService is not something libvirt does.
func (a *Libvirt) RestartService(_ context.Context, host, service string) error {
	return fmt.Errorf("restart %s on %s: libvirt cannot restart host services: %w", service, host, ErrNotSupported)
}

// HostMaintenance is not something libvirt has.
func (a *Libvirt) HostMaintenance(_ context.Context, host string) error {
	return fmt.Errorf("maintenance of %s: libvirt has no host maintenance mode; close the host in the scheduler that places VMs: %w", host, ErrNotSupported)
}
