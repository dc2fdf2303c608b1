package remedy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// These tests talk to the real libvirtd (Debian's, serving its test
// driver) that scripts/test.sh starts; they fail without it.

func libvirtSocket(t *testing.T) string {
	t.Helper()
	sock := os.Getenv("VMTRIAGE_TEST_LIBVIRT_SOCK")
	if sock == "" {
		t.Fatal("VMTRIAGE_TEST_LIBVIRT_SOCK is not set: these tests need a real libvirtd; run `make test` (scripts/test.sh starts one)")
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("no libvirtd socket at %s (%v); run `make test`", sock, err)
	}
	return sock
}

func testDial(sock string) func(string) (*golibvirt.Libvirt, error) {
	return func(string) (*golibvirt.Libvirt, error) {
		l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sock), dialers.WithLocalTimeout(5*time.Second)))
		if err := l.ConnectToURI(golibvirt.TestDefault); err != nil {
			return nil, err
		}
		return l, nil
	}
}

// defineDomain defines a shut-off test domain with a unique name and
// removes it when the test ends.
func defineDomain(t *testing.T, l *golibvirt.Libvirt) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "remedy-" + hex.EncodeToString(b[:])
	dom, err := l.DomainDefineXML("<domain type='test'><name>" + name + "</name><memory>1048576</memory><os><type>hvm</type></os></domain>")
	if err != nil {
		t.Fatalf("define %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = l.DomainDestroy(dom)
		_ = l.DomainUndefine(dom)
	})
	return name
}

func domState(t *testing.T, l *golibvirt.Libvirt, name string) golibvirt.DomainState {
	t.Helper()
	dom, err := l.DomainLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	return golibvirt.DomainState(st)
}

func TestLibvirtRestartVM(t *testing.T) {
	sock := libvirtSocket(t)
	ctl, err := testDial(sock)("")
	if err != nil {
		t.Fatalf("connect to the test libvirtd: %v", err)
	}
	t.Cleanup(func() { _ = ctl.Disconnect() })
	name := defineDomain(t, ctl)
	a, err := NewLibvirt(LibvirtOptions{Dial: testDial(sock), URIs: map[string]string{"h2": "test:///default"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	steps := []struct {
		name   string
		before func(dom golibvirt.Domain)
		want   golibvirt.DomainState
	}{
		{name: "a shut-off domain is started", want: golibvirt.DomainRunning},
		{name: "a running domain is rebooted and keeps running", want: golibvirt.DomainRunning},
		{name: "a paused domain is resumed", before: func(dom golibvirt.Domain) {
			if err := ctl.DomainSuspend(dom); err != nil {
				t.Fatal(err)
			}
		}, want: golibvirt.DomainRunning},
		{name: "a destroyed domain is started again", before: func(dom golibvirt.Domain) {
			if err := ctl.DomainDestroy(dom); err != nil {
				t.Fatal(err)
			}
		}, want: golibvirt.DomainRunning},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				dom, err := ctl.DomainLookupByName(name)
				if err != nil {
					t.Fatal(err)
				}
				s.before(dom)
			}
			if err := a.RestartVM(ctx, Target{VM: name, Host: "h1"}); err != nil {
				t.Fatalf("RestartVM: %v", err)
			}
			if got := domState(t, ctl, name); got != s.want {
				t.Errorf("state = %v, want %v", got, s.want)
			}
		})
	}

	if err := a.RestartVM(ctx, Target{VM: "no-such-domain", Host: "h1"}); err == nil || !strings.Contains(err.Error(), "no-such-domain") {
		t.Errorf("restart of a missing domain: %v", err)
	}
}

// The test driver implements no migration, so what can be checked here is
// that the call reaches the daemon with the target's URI and that its
// refusal comes back as a failure naming the VM and both hosts, leaving
// the domain where it was. A real two-host migration needs two QEMU hosts.
func TestLibvirtMigrateReachesTheDaemon(t *testing.T) {
	sock := libvirtSocket(t)
	ctl, err := testDial(sock)("")
	if err != nil {
		t.Fatalf("connect to the test libvirtd: %v", err)
	}
	t.Cleanup(func() { _ = ctl.Disconnect() })
	name := defineDomain(t, ctl)
	dom, _ := ctl.DomainLookupByName(name)
	if err := ctl.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}
	a, _ := NewLibvirt(LibvirtOptions{Dial: testDial(sock), URIs: map[string]string{"h2": "test:///default"}})
	err = a.MigrateVM(context.Background(), Target{VM: name, Host: "h1"}, "h2")
	if err == nil {
		t.Fatal("the test driver migrated a domain; update this test to check the move")
	}
	for _, want := range []string{name, "h1", "h2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	t.Logf("the daemon answered: %v", err)
	var lerr golibvirt.Error
	if !errors.As(err, &lerr) {
		t.Errorf("error %v is not the daemon's answer (%T)", err, errors.Unwrap(err))
	}
	if got := domState(t, ctl, name); got != golibvirt.DomainRunning {
		t.Errorf("after the refused migration the domain is %v", got)
	}
	if err := a.MigrateVM(context.Background(), Target{VM: name, Host: "h1"}, "h-unknown"); err == nil || !strings.Contains(err.Error(), "no libvirt URI configured for target host h-unknown") {
		t.Errorf("migrate to an unconfigured host: %v", err)
	}
}

func TestLibvirtHasNoMaintenanceNorServiceRestart(t *testing.T) {
	a, _ := NewLibvirt(LibvirtOptions{URIs: map[string]string{"h1": "/nonexistent"}})
	if err := a.HostMaintenance(context.Background(), "h1"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("HostMaintenance: %v", err)
	}
	if err := a.RestartService(context.Background(), "h1", "libvirtd"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("RestartService: %v", err)
	}
	if _, err := NewLibvirt(LibvirtOptions{}); err == nil {
		t.Error("NewLibvirt without URIs succeeded")
	}
}
