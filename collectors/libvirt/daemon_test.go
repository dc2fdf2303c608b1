package libvirt

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// The tests in this file talk to a real libvirtd (Debian's libvirt-daemon)
// serving its test driver, which scripts/test.sh starts on a unix socket.

// daemon returns the test libvirtd's socket and the directory it can read
// domain files from; it fails the test when there is none.
func daemon(t *testing.T) (sock, dir string) {
	t.Helper()
	sock, dir = os.Getenv("VMTRIAGE_TEST_LIBVIRT_SOCK"), os.Getenv("VMTRIAGE_TEST_LIBVIRT_DIR")
	if sock == "" || dir == "" {
		t.Fatal("VMTRIAGE_TEST_LIBVIRT_SOCK and VMTRIAGE_TEST_LIBVIRT_DIR are not set: these tests need a real libvirtd; run `make test` (scripts/test.sh installs and starts one)")
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("no libvirtd socket at %s (%v); run `make test`", sock, err)
	}
	return sock, dir
}

// daemonCtl stops or starts the test libvirtd.
func daemonCtl(t *testing.T, cmd string) {
	t.Helper()
	ctl, dir := os.Getenv("VMTRIAGE_TEST_LIBVIRT_CTL"), os.Getenv("VMTRIAGE_TEST_LIBVIRT_DIR")
	if ctl == "" {
		t.Fatal("VMTRIAGE_TEST_LIBVIRT_CTL is not set (the script that starts the test libvirtd); run `make test`")
	}
	if out, err := exec.Command(ctl, cmd, dir).CombinedOutput(); err != nil {
		t.Fatalf("%s %s %s: %v\n%s", ctl, cmd, dir, err, out)
	}
}

// control opens a connection of the test's own to the daemon, to act on
// domains the collector watches.
func control(t *testing.T, sock string, uri golibvirt.ConnectURI) *golibvirt.Libvirt {
	t.Helper()
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sock), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(uri); err != nil {
		t.Fatalf("connect to %s through %s: %v", uri, sock, err)
	}
	t.Cleanup(func() { _ = l.Disconnect() })
	return l
}

// domainXML is a test-driver domain in the given libvirt state.
func domainXML(name string, state golibvirt.DomainState) string {
	return "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>" + name +
		"</name><memory>1048576</memory><os><type>hvm</type></os><test:runstate>" +
		strconv.Itoa(int(state)) + "</test:runstate></domain>"
}

// start runs a collector on targets until the test ends.
func start(t *testing.T, opts Options) (*Collector, *recordSink, *waits) {
	t.Helper()
	sink := &recordSink{}
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	w := &waits{interval: time.Hour, advance: clk.Advance}
	opts.Sink, opts.Clock, opts.Wait, opts.Interval = sink, clk, w.wait, w.interval
	if opts.RPCTimeout == 0 {
		opts.RPCTimeout = 10 * time.Second
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c, sink, w
}

func TestDaemonListingMapsDomainStates(t *testing.T) {
	sock, dir := daemon(t)
	tests := []struct {
		name  string
		state golibvirt.DomainState
		want  string
	}{
		{"vm-running", golibvirt.DomainRunning, "vm host-t1/vm-running running"},
		{"vm-paused", golibvirt.DomainPaused, "vm host-t1/vm-paused paused"},
		{"vm-shutoff", golibvirt.DomainShutoff, "vm host-t1/vm-shutoff shutoff"},
		{"vm-crashed", golibvirt.DomainCrashed, "vm host-t1/vm-crashed crashed crash_reason=unknown"},
		{"vm-pmsuspended", golibvirt.DomainPmsuspended, "vm host-t1/vm-pmsuspended paused"},
	}
	xml := "<node>"
	for _, tt := range tests {
		xml += domainXML(tt.name, tt.state)
	}
	xml += "</node>"
	file := filepath.Join(dir, "domains", strings.ReplaceAll(t.Name(), "/", "_")+".xml")
	if err := os.WriteFile(file, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, sink, _ := start(t, Options{
		Targets:    []Target{{URI: "test://" + file + "?socket=" + sock, Host: "host-t1"}},
		Site:       "pod-t",
		Registerer: reg,
	})

	// On connecting, the collector lists the host at once; a Poll lists it again.
	first := sink.waitFor(t, "the first listing", func(obs []model.Observation) bool { return len(obs) >= len(tests)+1 })
	if err := c.Poll(t.Context()); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	polled := sink.all()[len(first):]
	for _, got := range [][]model.Observation{first, polled} {
		var lines []string
		for _, o := range got {
			if o.Source != "libvirt" || o.Site != "pod-t" {
				t.Errorf("%s: source %q site %q, want libvirt, pod-t", line(o), o.Source, o.Site)
			}
			if err := o.Validate(o.TimeGenerated); err != nil {
				t.Errorf("%s: invalid: %v", line(o), err)
			}
			lines = append(lines, line(o))
		}
		want := []string{"service host-t1/libvirtd up"}
		for _, tt := range tests {
			want = append(want, tt.want)
		}
		slices.Sort(lines)
		slices.Sort(want)
		if !slices.Equal(lines, want) {
			t.Errorf("listing:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	}
	if got := value(c.m.polls.WithLabelValues("ok")); got != 1 {
		t.Errorf("polls{result=ok} = %v, want 1", got)
	}
	if got := value(c.m.lastSuccess); got == 0 {
		t.Error("last success time was not set")
	}
	if got := value(c.m.connected); got != 1 {
		t.Errorf("connected hosts = %v, want 1", got)
	}
}

// vmLines returns the lines of the observations of one VM, in order.
func vmLines(obs []model.Observation, id string) []string {
	var out []string
	for _, o := range obs {
		if o.Kind == model.KindVM && o.ID == id {
			out = append(out, line(o))
		}
	}
	return out
}

// hasLines reports whether want occurs in got in order (other lines may
// come between: a listing may land between two events).
func hasLines(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestDaemonLifecycleEventsBecomeObservations(t *testing.T) {
	sock, _ := daemon(t)
	ctl := control(t, sock, golibvirt.TestDefault)
	const name = "vm-events"
	dom, err := ctl.DomainDefineXML(domainXML(name, golibvirt.DomainShutoff))
	if err != nil {
		t.Fatalf("define %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = ctl.DomainDestroy(dom)
		_ = ctl.DomainUndefine(dom)
	})
	_, sink, _ := start(t, Options{Targets: []Target{{URI: "test:///default?socket=" + sock, Host: "host-ev"}}})
	sink.waitFor(t, "the first listing", func(obs []model.Observation) bool { return len(vmLines(obs, name)) > 0 })

	steps := []struct {
		name string
		act  func() error
		want string
	}{
		{"create", func() error { return ctl.DomainCreate(dom) }, "vm host-ev/vm-events running event=started_booted"},
		{"suspend", func() error { return ctl.DomainSuspend(dom) }, "vm host-ev/vm-events paused event=suspended_paused"},
		{"resume", func() error { return ctl.DomainResume(dom) }, "vm host-ev/vm-events running event=resumed_unpaused"},
		{"destroy", func() error { return ctl.DomainDestroy(dom) }, "vm host-ev/vm-events shutoff event=stopped_destroyed"},
	}
	want := []string{"vm host-ev/vm-events shutoff"}
	for _, s := range steps {
		if err := s.act(); err != nil {
			t.Fatalf("%s %s: %v", s.name, name, err)
		}
		want = append(want, s.want)
		sink.waitFor(t, "the "+s.name+" event", func(obs []model.Observation) bool { return hasLines(vmLines(obs, name), want) })
	}
}

func TestDaemonDownIsAServiceObservationAndReconnects(t *testing.T) {
	sock, _ := daemon(t)
	t.Cleanup(func() {
		// Leave a daemon running for the tests after this one, whatever
		// happened here.
		if _, err := os.Stat(sock); err != nil {
			daemonCtl(t, "start")
		}
	})
	reg := prometheus.NewRegistry()
	c, sink, w := start(t, Options{
		Targets:    []Target{{URI: "test:///default?socket=" + sock, Host: "host-rs"}},
		MinBackoff: time.Second, MaxBackoff: 8 * time.Second,
		Registerer: reg,
	})
	up := "service host-rs/libvirtd up"
	down := "service host-rs/libvirtd down error"
	services := func(obs []model.Observation) []string {
		var out []string
		for _, o := range obs {
			if o.Kind == model.KindService {
				out = append(out, line(o))
			}
		}
		return out
	}
	sink.waitFor(t, "libvirtd up", func(obs []model.Observation) bool { return hasLines(services(obs), []string{up}) })

	daemonCtl(t, "stop")
	obs := sink.waitFor(t, "libvirtd down", func(obs []model.Observation) bool {
		return hasLines(services(obs), []string{up, down})
	})
	mark := len(obs)
	if err := c.Poll(t.Context()); err != nil {
		t.Fatalf("Poll while libvirtd is down: %v", err)
	}
	during := sink.all()[mark:]
	if got := describe(during); got != down+"\n" {
		t.Errorf("a poll while libvirtd is down sent:\n%s\nwant only:\n%s", got, down)
	}

	daemonCtl(t, "start")
	sink.waitFor(t, "libvirtd up again", func(obs []model.Observation) bool {
		return hasLines(services(obs), []string{up, down, up})
	})
	// The backoff doubled from MinBackoff while the daemon was away, and
	// stayed under MaxBackoff.
	bo := w.recorded()
	if len(bo) == 0 || bo[0] != time.Second {
		t.Fatalf("backoff waits %v, want the first to be 1s", bo)
	}
	for i := 1; i < len(bo); i++ {
		if want := min(2*bo[i-1], 8*time.Second); bo[i] != want {
			t.Errorf("backoff waits %v: wait %d is %s, want %s", bo, i, bo[i], want)
		}
	}
	if got := value(c.m.errors.WithLabelValues("connect")); got < 1 {
		t.Errorf("connect errors = %v, want at least 1", got)
	}

	// Events were subscribed again on the new connection.
	ctl := control(t, sock, golibvirt.TestDefault)
	dom, err := ctl.DomainLookupByName("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.DomainSuspend(dom); err != nil {
		t.Fatalf("suspend: %v", err)
	}
	t.Cleanup(func() { _ = ctl.DomainResume(dom) })
	sink.waitFor(t, "an event after reconnecting", func(obs []model.Observation) bool {
		return slices.Contains(vmLines(obs, "test"), "vm host-rs/test paused event=suspended_paused")
	})
}
