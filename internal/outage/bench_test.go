package outage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// benchInput is 100,000 VMs on 2,500 hosts in 10 sites, with 30 days of
// outage intervals: three per VM on average (300,000), every attribution.
func benchInput() Input {
	const vms, days = 100_000, 30
	rng := rand.New(rand.NewPCG(1, 2))
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(days * 24 * time.Hour)
	in := Input{From: from, To: to, Now: to, VMs: vms, HostVMs: map[string]int{}, SiteVMs: map[string]int{}}
	in.Outages = make([]store.Outage, 0, 3*vms)
	for v := range vms {
		host := fmt.Sprintf("host-%04d", v%2500)
		site := fmt.Sprintf("pod-%d", v%10)
		in.HostVMs[host]++
		in.SiteVMs[site]++
		start := from.Add(time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
		for range 1 + rng.IntN(5) {
			d := time.Duration(1+rng.IntN(120)) * time.Minute
			in.Outages = append(in.Outages, store.Outage{VM: fmt.Sprintf("vm-%06d", v), Host: host, Site: site,
				Start: start, End: start.Add(d), Attribution: string(Attributions[rng.IntN(len(Attributions))])})
			start = start.Add(d + time.Duration(rng.Int64N(int64(6*24*time.Hour))))
		}
	}
	return in
}

// BenchmarkCompute30Days100kVMs computes the fleet report over 30 days of
// intervals of 100,000 VMs.
func BenchmarkCompute30Days100kVMs(b *testing.B) {
	in := benchInput()
	want := 0
	for i := range in.Outages {
		if in.Outages[i].Start.Before(in.To) {
			want++
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep := Compute(in)
		if rep.Fleet.Outages != want {
			b.Fatalf("counted %d outages, want %d", rep.Fleet.Outages, want)
		}
	}
	b.ReportMetric(float64(len(in.Outages)), "intervals")
}

// BenchmarkCompute30Days100kVMsServices is the fleet report with the
// downtime by service: the 100,000 VMs in 2,000 services.
func BenchmarkCompute30Days100kVMsServices(b *testing.B) {
	in := benchInput()
	svc := serviceMap{}
	for v := range 100_000 {
		svc[fmt.Sprintf("vm-%06d", v)] = fmt.Sprintf("svc-%04d", v%2000)
	}
	in.Services = svc
	b.ReportAllocs()
	for b.Loop() {
		if rep := Compute(in); len(rep.Services) != 2000 {
			b.Fatalf("%d services, want 2000", len(rep.Services))
		}
	}
}

// BenchmarkCompute30Days100kVMsSite is the same for one site of ten.
func BenchmarkCompute30Days100kVMsSite(b *testing.B) {
	in := benchInput()
	in.Site, in.VMs = "pod-3", in.SiteVMs["pod-3"]
	b.ReportAllocs()
	for b.Loop() {
		Compute(in)
	}
}

// BenchmarkReportFromRedis reads and computes the fleet report from the
// real store: 100,000 VMs with 30 days of intervals (about 300,000), the
// reads (OutagesBetween, counts, incidents) included. Filling Redis takes
// a while (one transaction per VM) and about 150 MB.
func BenchmarkReportFromRedis(b *testing.B) {
	ctx := context.Background()
	in := benchInput()
	st := storetest.New(b, store.Options{})
	byVM := map[string][]store.Outage{}
	for _, o := range in.Outages {
		byVM[o.VM] = append(byVM[o.VM], o)
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for vm := range work {
				ivs := byVM[vm]
				if err := st.UpdateOutages(ctx, vm, func([]store.Outage) ([]store.Outage, error) { return ivs, nil }); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for vm := range byVM {
		work <- vm
	}
	close(work)
	wg.Wait()
	n := len(in.Outages)
	from, to := in.From, in.To
	// Drop the generated input: a server does not hold the intervals in
	// memory besides, and the garbage collector would mark them on every
	// cycle of the timed loop.
	in, byVM = Input{}, nil
	runtime.GC()
	r := &Reporter{Source: st, Clock: clock.NewFake(to)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep, err := r.Report(ctx, from, to, "")
		if err != nil {
			b.Fatal(err)
		}
		if rep.Fleet.Outages == 0 {
			b.Fatal("no outages read")
		}
	}
	b.ReportMetric(float64(n), "intervals")
}
