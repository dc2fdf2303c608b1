package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Fleet shape of the ingest benchmark: observations cycle over these VMs
// and hosts, as a collector's periodic reports would.
const (
	benchVMs   = 10_000
	benchHosts = 500
	benchBatch = 500 // observations per POST
	// benchClients POST concurrently, like several collectors.
	benchClients = 4
)

// ingestBodies renders n observations as JSON-lines request bodies of
// benchBatch records: per batch one host report for every twentieth
// record, VMs running otherwise, and one VM crash per batch (so the rules
// open incidents as they would in a fleet).
func ingestBodies(tb testing.TB, n int, at time.Time) [][]byte {
	tb.Helper()
	var bodies [][]byte
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	gen := at.Format(time.RFC3339Nano)
	for i := range n {
		vm := i % benchVMs
		host := vm % benchHosts
		var o map[string]any
		switch {
		case i%20 == 0:
			o = map[string]any{"source": "prometheus", "kind": "host", "id": fmt.Sprintf("host-%03d", host),
				"site": fmt.Sprintf("pod-%d", host%3), "state": "up",
				"attrs": map[string]any{"ecc_uncorrected": 0, "mce": 0, "nic_up": true, "psu_ok": true,
					"temp_c": 40 + host%20, "storage_reachable": true}, "time_generated": gen}
		default:
			state := "running"
			if i%benchBatch == benchBatch/2 {
				state = "crashed"
			}
			o = map[string]any{"source": "libvirt", "kind": "vm", "id": fmt.Sprintf("vm-%05d", vm),
				"host": fmt.Sprintf("host-%03d", host), "site": fmt.Sprintf("pod-%d", host%3),
				"state": state, "time_generated": gen}
		}
		if err := enc.Encode(o); err != nil {
			tb.Fatal(err)
		}
		if (i+1)%benchBatch == 0 || i == n-1 {
			bodies = append(bodies, bytes.Clone(buf.Bytes()))
			buf.Reset()
		}
	}
	return bodies
}

// BenchmarkIngestHTTP measures sustained ingest through the whole service:
// b.N observations POSTed to /v1/observations as JSON-lines batches by
// concurrent clients, timed until the pipeline has applied and evaluated
// every one (the observation stream's backlog is empty). It reports
// observations per second.
//
// b.N counts observations, so run it with e.g. -benchtime 200000x: a few
// thousand observations (or -benchtime 3x) measure the first requests'
// start-up, not the sustained rate.
func BenchmarkIngestHTTP(b *testing.B) {
	s := bootService(b, bootOptions{})
	bodies := ingestBodies(b, b.N, s.clock.Now())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}, Timeout: time.Minute}
	url := s.url("/v1/observations")

	b.ResetTimer()
	cpu0 := processCPU(b)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchClients)
	for range benchClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				resp, err := client.Post(url, "application/x-ndjson", bytes.NewReader(bodies[i]))
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs <- fmt.Errorf("POST batch %d: status %d", i, resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	posted := time.Since(start)
	waitDrained(b, s)
	elapsed := time.Since(start)
	cpu := processCPU(b) - cpu0
	b.StopTimer()

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "obs/s")
	b.ReportMetric(float64(b.N)/posted.Seconds(), "accepted-obs/s")
	// CPU time of this process (HTTP clients, server, ingest, engine) per
	// observation does not depend on what else the machine runs, unlike
	// obs/s on a shared machine. Redis's own CPU is not included.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/obs")
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitDrained polls the observation backlog tightly (a benchmark must not
// add a coarse poll interval to what it measures).
func waitDrained(b *testing.B, s *service) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		pending, lag, err := s.svc.Store.Backlog(context.Background())
		if err != nil {
			b.Fatalf("backlog: %v", err)
		}
		if pending == 0 && lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("backlog not drained after 5m: pending %d, lag %d", pending, lag)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkPostToIncident measures the latency from POSTing a VM crash to
// the incident being listed by GET /v1/incidents, through HTTP, the
// observation stream, the ingest pipeline, the store and the rules engine.
// The rules (testdata/rules-good.yaml) have no pending time and no resolve
// delay, so the figure is the pipeline's, not a rule's "for". Between
// iterations (untimed) the VM runs again, so the open set stays small.
func BenchmarkPostToIncident(b *testing.B) {
	s := bootService(b, bootOptions{Env: map[string]string{"VMTRIAGE_RULES_PATH": "testdata/rules-good.yaml"}})
	now := s.clock.Now().Format(time.RFC3339Nano)
	post := func(o map[string]any) {
		body, err := json.Marshal(o)
		if err != nil {
			b.Fatal(err)
		}
		if code, resp := s.post(b, "/v1/observations", "application/json", body); code != http.StatusAccepted {
			b.Fatalf("POST = %d %s", code, resp)
		}
	}
	post(map[string]any{"source": "prometheus", "kind": "host", "id": "host-007", "site": "pod-a", "state": "up",
		"attrs": map[string]any{"ecc_uncorrected": 0, "nic_up": true, "psu_ok": true}, "time_generated": now})
	waitDrained(b, s)

	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		vm := fmt.Sprintf("vm-%06d", i)
		query := "?status=firing&limit=1&vm=" + vm
		start := time.Now()
		post(map[string]any{"source": "libvirt", "kind": "vm", "id": vm, "host": "host-007", "site": "pod-a",
			"state": "crashed", "time_generated": now})
		for {
			if len(s.incidents(b, query)) == 1 {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("incident for %s not listed after 1m", vm)
			}
			time.Sleep(200 * time.Microsecond)
		}
		latencies = append(latencies, time.Since(start))

		b.StopTimer()
		post(map[string]any{"source": "libvirt", "kind": "vm", "id": vm, "host": "host-007", "site": "pod-a",
			"state": "running", "time_generated": now})
		waitDrained(b, s)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		i := min(int(p*float64(len(latencies))), len(latencies)-1)
		return float64(latencies[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
