package rules

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

const (
	benchVMs   = 100_000
	benchHosts = 5_000
)

// benchFleet builds an engine with the default rules over 100,000 VMs on
// 5,000 hosts, with healthy facts for every host in the current period and
// a few faults so that the rules have incidents to keep.
func benchFleet(b *testing.B) (*Engine, []model.Observation) {
	b.Helper()
	set, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	return benchFleetWith(b, set, nil)
}

// benchFleetWith is benchFleet with another rule set and an Impact hook.
func benchFleetWith(b *testing.B, set *Set, impact func(ImpactQuery, *ImpactEnv)) (*Engine, []model.Observation) {
	b.Helper()
	clk := clock.NewFake(t0)
	st := newFakeStore(clk.Now)
	e, err := NewEngine(context.Background(), Options{Rules: set, Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler), Impact: impact})
	if err != nil {
		b.Fatal(err)
	}
	var hosts []model.Observation
	for i := 0; i < benchHosts; i++ {
		f := healthy()
		if i%500 == 0 {
			f["ecc_uncorrected"] = 1.0
		}
		hosts = append(hosts, model.Observation{Source: "prometheus", Kind: model.KindHost, ID: fmt.Sprintf("host-%04d", i),
			Site: fmt.Sprintf("pod-%d", i%10), Attrs: f, TimeGenerated: t0})
	}
	if err := e.Observe(context.Background(), hosts); err != nil {
		b.Fatal(err)
	}
	vms := make([]model.Observation, benchVMs)
	for i := range vms {
		state := model.StateRunning
		if i%1000 == 0 {
			state = model.StateCrashed
		}
		vms[i] = model.Observation{Source: "libvirt", Kind: model.KindVM, ID: fmt.Sprintf("vm-%06d", i),
			Host: fmt.Sprintf("host-%04d", i%benchHosts), Site: fmt.Sprintf("pod-%d", (i%benchHosts)%10), State: state, TimeGenerated: t0}
	}
	if err := e.Observe(context.Background(), vms); err != nil {
		b.Fatal(err)
	}
	return e, vms
}

// BenchmarkFullSweep evaluates every rule for every VM, host, service and
// source of the fleet once (what a reload does).
func BenchmarkFullSweep(b *testing.B) {
	e, _ := benchFleet(b)
	e.sweep() // settle memberships
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for b.Loop() {
		e.mu.Lock()
		e.sweep()
		e.mu.Unlock()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/sweep")
	cpu.report(b, 1e6, "cpu-ms/sweep")
}

// cpuMeter measures the process CPU time of a benchmark's loop.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := processCPU()
	return cpuMeter{start: t, ok: ok}
}

// report adds the CPU time per operation, divided by unit, as metric name.
// With GOMAXPROCS=1 it is what one core spends per operation, however busy
// the machine is.
func (c cpuMeter) report(b *testing.B, unit float64, name string) {
	end, ok := processCPU()
	if !c.ok || !ok || b.N == 0 {
		return
	}
	b.ReportMetric(float64((end-c.start).Nanoseconds())/float64(b.N)/unit, name)
}

// BenchmarkObserve measures incremental evaluation: one VM observation
// (the steady state: nothing changes) through Observe.
func BenchmarkObserve(b *testing.B) {
	e, vms := benchFleet(b)
	ctx := context.Background()
	batch := make([]model.Observation, 1)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	i := 0
	for b.Loop() {
		batch[0] = vms[i%len(vms)]
		i++
		if err := e.Observe(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 1, "cpu-ns/op")
}

// BenchmarkObserveHost measures a host observation, which derives the
// host's state and re-evaluates its host rules, down VMs and services.
func BenchmarkObserveHost(b *testing.B) {
	e, _ := benchFleet(b)
	ctx := context.Background()
	batch := make([]model.Observation, 1)
	hosts := make([]model.Observation, benchHosts)
	for i := range hosts {
		hosts[i] = model.Observation{Source: "prometheus", Kind: model.KindHost, ID: fmt.Sprintf("host-%04d", i), Attrs: healthy(), TimeGenerated: t0}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	i := 0
	for b.Loop() {
		batch[0] = hosts[i%len(hosts)]
		i++
		if err := e.Observe(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 1, "cpu-ns/op")
}

// BenchmarkObserveDownVM measures the unguarded path: a crashed VM already
// in an incident, re-reported unchanged (host period, probes and every
// crash rule's program run).
func BenchmarkObserveDownVM(b *testing.B) {
	e, vms := benchFleet(b)
	ctx := context.Background()
	var down []model.Observation
	for _, o := range vms {
		if o.State != model.StateRunning {
			down = append(down, o)
		}
	}
	batch := make([]model.Observation, 1)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	i := 0
	for b.Loop() {
		batch[0] = down[i%len(down)]
		i++
		if err := e.Observe(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 1, "cpu-ns/op")
}

// BenchmarkTick measures a tick between stale scans (the lifecycle of open
// incidents and the escalation claim); BenchmarkStaleScan the scan.
func BenchmarkTick(b *testing.B) {
	e, _ := benchFleet(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := e.Tick(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStaleScan measures the stopped-reporting scan of every VM, host
// and source, which Tick runs every stopped_reporting/20.
func BenchmarkStaleScan(b *testing.B) {
	e, _ := benchFleet(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for b.Loop() {
		e.mu.Lock()
		e.checkStale()
		e.mu.Unlock()
	}
	cpu.report(b, 1e6, "cpu-ms/op")
}
