package libvirt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// countSink counts what it is given and keeps nothing.
type countSink struct{ n atomic.Int64 }

func (s *countSink) AppendObservations(_ context.Context, obs []model.Observation) error {
	s.n.Add(int64(len(obs)))
	return nil
}

// BenchmarkPollFleet lists a simulated fleet of 5,000 hosts with 20 VMs
// each (in-memory connections, one in ten VMs down in some way): the cost
// of one period's Poll — fan-out, mapping, validation and the batch — on
// top of the RPCs themselves.
func BenchmarkPollFleet(b *testing.B) {
	const hosts, perHost = 5000, 20
	targets := make([]Target, hosts)
	for i := range targets {
		targets[i] = Target{URI: fmt.Sprintf("qemu+tls://host-%04d.example/system", i), Host: fmt.Sprintf("host-%04d", i), Site: fmt.Sprintf("pod-%d", i%10)}
	}
	states := []domain{
		{state: int32(golibvirt.DomainRunning), reason: 1},
		{state: int32(golibvirt.DomainPaused), reason: 1},
		{state: int32(golibvirt.DomainShutoff), reason: int32(golibvirt.DomainShutoffCrashed)},
		{state: int32(golibvirt.DomainCrashed), reason: int32(golibvirt.DomainCrashedPanicked)},
		{state: int32(golibvirt.DomainShutoff), reason: 1},
	}
	sink := &countSink{}
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	w := &waits{interval: time.Hour, advance: clk.Advance}
	c, err := New(Options{Targets: targets, Sink: sink, Clock: clk, Wait: w.wait, Interval: w.interval})
	if err != nil {
		b.Fatal(err)
	}
	var dialed atomic.Int64
	c.dial = func(t *target, _ time.Duration) (conn, error) {
		doms := make([]domain, perHost)
		for j := range doms {
			d := states[0]
			if j%10 == 0 {
				d = states[1+(j/10+int(dialed.Load()))%(len(states)-1)]
			}
			d.name = fmt.Sprintf("vm-%s-%02d", strings.TrimPrefix(t.host, "host-"), j)
			doms[j] = d
		}
		dialed.Add(1)
		return newFakeConn(doms...), nil
	}
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	for value(c.m.connected) < hosts {
		time.Sleep(10 * time.Millisecond)
	}

	b.ReportAllocs()
	before := sink.n.Load()
	b.ResetTimer()
	for b.Loop() {
		if err := c.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got, want := (sink.n.Load()-before)/int64(b.N), int64(hosts*(perHost+1)); got != want {
		b.Fatalf("%d observations per poll, want %d", got, want)
	}
	b.ReportMetric(float64(hosts*(perHost+1)), "obs/poll")
}

// BenchmarkDaemonListing lists one host of 1,000 domains through the real
// libvirtd (test driver): the RPC and decoding cost per host that
// BenchmarkPollFleet leaves out.
func BenchmarkDaemonListing(b *testing.B) {
	sock, dir := os.Getenv("VMTRIAGE_TEST_LIBVIRT_SOCK"), os.Getenv("VMTRIAGE_TEST_LIBVIRT_DIR")
	if sock == "" || dir == "" {
		b.Fatal("VMTRIAGE_TEST_LIBVIRT_SOCK and VMTRIAGE_TEST_LIBVIRT_DIR are not set; run the benchmarks under scripts/test.sh's daemons (`make test` starts them)")
	}
	const n = 1000
	var xml strings.Builder
	xml.WriteString("<node>")
	for i := range n {
		xml.WriteString(domainXML(fmt.Sprintf("vm-%04d", i), golibvirt.DomainRunning))
	}
	xml.WriteString("</node>")
	file := filepath.Join(dir, "domains", "bench-listing.xml")
	if err := os.WriteFile(file, []byte(xml.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	u, remote, err := parseURI("test://" + file + "?socket=" + sock)
	if err != nil {
		b.Fatal(err)
	}
	cn, err := dialLibvirt(&target{url: u, remote: remote}, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer cn.Close()
	c := &Collector{opts: Options{Source: DefaultSource, Clock: clock.Real{}}}
	c.m, _ = newMetrics(nil)
	tg := &target{host: "host-bench", conn: cn, tried: true}
	b.ReportAllocs()
	for b.Loop() {
		obs, err := c.listTarget(tg)
		if err != nil {
			b.Fatal(err)
		}
		if len(obs) != n+1 {
			b.Fatalf("%d observations, want %d", len(obs), n+1)
		}
	}
}
