package libvirt

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

func TestParseTargets(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Target
		err      string
	}{
		{"one URI", "qemu+tls://host-007.example/system", []Target{{URI: "qemu+tls://host-007.example/system"}}, ""},
		{"named hosts", "host-007=qemu+tcp://10.0.0.7/system, host-008=/run/libvirt/libvirt-sock",
			[]Target{{Host: "host-007", URI: "qemu+tcp://10.0.0.7/system"}, {Host: "host-008", URI: "/run/libvirt/libvirt-sock"}}, ""},
		{"an = inside the URI's query is not a host name", "qemu:///system?socket=/s",
			[]Target{{URI: "qemu:///system?socket=/s"}}, ""},
		{"empty items are skipped", " , qemu+tls://h/system ,", []Target{{URI: "qemu+tls://h/system"}}, ""},
		{"nothing", "", nil, ""},
		{"a host without a URI", "host-007=", nil, `target 1 ("host-007="): no URI`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTargets(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	sink := &recordSink{}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no targets", Options{Sink: sink}, "at least one target URI is required"},
		{"no sink", Options{Targets: []Target{{URI: "qemu+tls://h/system"}}}, "a sink is required"},
		{"ssh is not supported", Options{Sink: sink, Targets: []Target{{URI: "qemu+ssh://h/system"}}}, `transport "ssh" is not supported`},
		{"no driver", Options{Sink: sink, Targets: []Target{{URI: "host-007"}}}, "no driver"},
		{"a socket needs a host name", Options{Sink: sink, Targets: []Target{{URI: "/run/libvirt/libvirt-sock"}}}, "a host name is required for a local socket"},
		{"tcp needs a host", Options{Sink: sink, Targets: []Target{{URI: "qemu+tcp:///system"}}}, "transport tcp needs a host"},
		{"no user names", Options{Sink: sink, Targets: []Target{{URI: "qemu+tls://root@h/system"}}}, "user names are not supported"},
		{"a host twice", Options{Sink: sink, Targets: []Target{{URI: "qemu+tls://h/system"}, {URI: "qemu+tcp://h/system"}}}, `host "h" is listed twice`},
		{"a host name with a space", Options{Sink: sink, Targets: []Target{{URI: "/s", Host: "host 7"}}}, `host "host 7" contains whitespace`},
		{"a site with a brace", Options{Sink: sink, Site: "pod{a}", Targets: []Target{{URI: "qemu+tls://h/system"}}}, `site "pod{a}" contains whitespace or braces`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// script is a dialFunc that plays a list of outcomes, one per attempt; a
// nil conn is a failed attempt. After the list it fails.
type script struct {
	mu       sync.Mutex
	outcomes []*fakeConn
	attempts int
}

func (s *script) dial(*target, time.Duration) (conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if len(s.outcomes) == 0 {
		return nil, errors.New("dial unix /s: connect: no such file or directory")
	}
	c := s.outcomes[0]
	s.outcomes = s.outcomes[1:]
	if c == nil {
		return nil, errors.New("dial unix /s: connect: connection refused")
	}
	return c, nil
}

// fakeCollector runs a collector over scripted connections until the test
// ends.
func fakeCollector(t *testing.T, opts Options, s *script) (*Collector, *recordSink, *waits) {
	t.Helper()
	sink := &recordSink{}
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	w := &waits{interval: time.Hour, advance: clk.Advance}
	opts.Sink, opts.Clock, opts.Wait, opts.Interval = sink, clk, w.wait, w.interval
	if opts.Targets == nil {
		opts.Targets = []Target{{URI: "/s", Host: "host-1", Site: "pod-a"}}
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c.dial = s.dial
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c, sink, w
}

func TestBackoffDoublesUpToMaxAndResetsAfterAListing(t *testing.T) {
	first := newFakeConn(domain{name: "vm-1", state: int32(golibvirt.DomainRunning), reason: 1})
	second := newFakeConn(domain{name: "vm-1", state: int32(golibvirt.DomainRunning), reason: 1})
	s := &script{outcomes: []*fakeConn{nil, nil, nil, nil, first, nil, nil, second}}
	_, sink, w := fakeCollector(t, Options{MinBackoff: time.Second, MaxBackoff: 5 * time.Second}, s)

	up, down := "service host-1/libvirtd up", "service host-1/libvirtd down error"
	sink.waitFor(t, "the first connection", func(obs []model.Observation) bool {
		return slices.Contains(vmLines(obs, "vm-1"), "vm host-1/vm-1 running")
	})
	first.Close()
	obs := sink.waitFor(t, "the second connection", func(obs []model.Observation) bool { return len(vmLines(obs, "vm-1")) == 2 })

	// Down is said once per outage, not once per failed attempt.
	want := []string{down, up, "vm host-1/vm-1 running", down, up, "vm host-1/vm-1 running"}
	if got := strings.Split(strings.TrimSpace(describe(obs)), "\n"); !slices.Equal(got, want) {
		t.Errorf("observations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	sec := time.Second
	wantWaits := []time.Duration{sec, 2 * sec, 4 * sec, 5 * sec, sec, 2 * sec, 4 * sec}
	if got := w.recorded(); !slices.Equal(got, wantWaits) {
		t.Errorf("backoff waits %v, want %v", got, wantWaits)
	}
	if got := obs[0].Str(AttrError); got != "dial unix /s: connect: connection refused" {
		t.Errorf("down observation's error = %q", got)
	}
}

func TestPollWhileDownSaysOnlyTheService(t *testing.T) {
	s := &script{} // every attempt fails
	c, sink, _ := fakeCollector(t, Options{}, s)
	sink.waitFor(t, "libvirtd down", func(obs []model.Observation) bool { return len(obs) == 1 })
	for range 2 {
		if err := c.Poll(t.Context()); err != nil {
			t.Fatalf("Poll: %v", err)
		}
	}
	want := "service host-1/libvirtd down error\n"
	if got := describe(sink.all()); got != strings.Repeat(want, 3) {
		t.Errorf("got:\n%s\nwant three times:\n%s", got, want)
	}
	for _, o := range sink.all() {
		if o.Site != "pod-a" || o.Source != "libvirt" {
			t.Errorf("%s: site %q source %q", line(o), o.Site, o.Source)
		}
	}
}

func TestPollBeforeTheFirstAttemptSaysNothing(t *testing.T) {
	sink := &recordSink{}
	c, err := New(Options{Targets: []Target{{URI: "/s", Host: "host-1"}}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := sink.all(); len(got) != 0 {
		t.Errorf("a poll before any connection attempt sent:\n%s", describe(got))
	}
}

func TestListingFailureReconnects(t *testing.T) {
	broken := newFakeConn(domain{name: "vm-1", state: int32(golibvirt.DomainRunning), reason: 1})
	healthy := newFakeConn(domain{name: "vm-1", state: int32(golibvirt.DomainPaused), reason: 1})
	s := &script{outcomes: []*fakeConn{broken, healthy}}
	reg := prometheus.NewRegistry()
	c, sink, _ := fakeCollector(t, Options{Registerer: reg}, s)
	sink.waitFor(t, "the first listing", func(obs []model.Observation) bool { return len(obs) == 2 })

	broken.mu.Lock()
	broken.listErr = errors.New("internal error: cannot list")
	broken.mu.Unlock()
	err := c.Poll(t.Context())
	if err == nil || !strings.Contains(err.Error(), "list host host-1: internal error: cannot list") {
		t.Fatalf("Poll error = %v", err)
	}
	sink.waitFor(t, "the listing after reconnecting", func(obs []model.Observation) bool {
		return slices.Contains(vmLines(obs, "vm-1"), "vm host-1/vm-1 paused")
	})
	if got := value(c.m.errors.WithLabelValues("list")); got != 1 {
		t.Errorf("list errors = %v, want 1", got)
	}
	if got := value(c.m.polls.WithLabelValues("failed")); got != 1 {
		t.Errorf("failed polls = %v, want 1", got)
	}
}

func TestEventsAndBadNames(t *testing.T) {
	cn := newFakeConn(domain{name: "vm-1", state: int32(golibvirt.DomainRunning), reason: 1}, domain{name: "bad name", state: int32(golibvirt.DomainRunning), reason: 1})
	reg := prometheus.NewRegistry()
	c, sink, _ := fakeCollector(t, Options{Registerer: reg}, &script{outcomes: []*fakeConn{cn}})
	sink.waitFor(t, "the first listing", func(obs []model.Observation) bool { return len(obs) == 2 })
	for _, ev := range []golibvirt.DomainEventLifecycleMsg{
		{Dom: golibvirt.Domain{Name: "vm-1"}, Event: int32(golibvirt.DomainEventDefined)},
		{Dom: golibvirt.Domain{Name: "vm-1"}, Event: int32(golibvirt.DomainEventCrashed), Detail: int32(golibvirt.DomainEventCrashedPanicked)},
		{Dom: golibvirt.Domain{Name: "bad name"}, Event: int32(golibvirt.DomainEventStopped)},
		{Dom: golibvirt.Domain{Name: "vm-1"}, Event: int32(golibvirt.DomainEventStarted)},
	} {
		cn.events <- ev
	}
	obs := sink.waitFor(t, "the events", func(obs []model.Observation) bool { return len(obs) == 4 })
	want := []string{"service host-1/libvirtd up", "vm host-1/vm-1 running",
		"vm host-1/vm-1 crashed event=crashed_panicked crash_reason=panicked", "vm host-1/vm-1 running event=started_booted"}
	if got := strings.Split(strings.TrimSpace(describe(obs)), "\n"); !slices.Equal(got, want) {
		t.Errorf("observations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := value(c.m.errors.WithLabelValues("record")); got != 2 {
		t.Errorf("record errors = %v, want 2 (the listing's and the event's bad name)", got)
	}
	if got := value(c.m.events); got != 4 {
		t.Errorf("events = %v, want 4", got)
	}
}

// A daemon that accepts the connection and never answers must not hang
// the collector: the guard closes the connection.
func TestSilentDaemonTimesOut(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	u, remote, err := parseURI("test:///default?socket=" + sock)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dialLibvirt(&target{url: u, remote: remote}, 200*time.Millisecond)
	if !errors.Is(err, errTimeout) {
		t.Fatalf("dial a silent daemon: err = %v, want a timeout", err)
	}
}
