package latency

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func obs(source, id string, gen, recv time.Time) model.Observation {
	return model.Observation{Source: source, Kind: model.KindVM, ID: id, State: model.StateRunning, TimeGenerated: gen, TimeReceived: recv}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name          string
		latencies     func(i int) time.Duration
		n             int
		p50, p95, max float64 // seconds
	}{
		{"uniform 1..1000 s", func(i int) time.Duration { return time.Duration(i+1) * time.Second }, 1000, 500, 950, 1000},
		{"all the same", func(int) time.Duration { return 1500 * time.Millisecond }, 50, 1.5, 1.5, 1.5},
		{"source clock ahead counts as 0", func(int) time.Duration { return -3 * time.Second }, 10, 0.001, 0.001, 0},
		{"one slow outlier", func(i int) time.Duration {
			if i == 0 {
				return time.Hour
			}
			return 200 * time.Millisecond
		}, 100, 0.2, 0.2, 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			tr := New(Options{Clock: clk})
			batch := make([]model.Observation, tt.n)
			for i := range batch {
				batch[i] = obs("libvirt", fmt.Sprintf("vm-%d", i), t0.Add(-tt.latencies(i)), t0)
			}
			tr.Record(batch)
			r := tr.Report("")
			if len(r.Sources) != 1 {
				t.Fatalf("sources = %+v", r.Sources)
			}
			q := r.Sources[0].Received
			if q.Count != uint64(tt.n) {
				t.Errorf("count = %d, want %d", q.Count, tt.n)
			}
			// A quantile is the upper bound of its bucket: at most 9% high,
			// never low, and never above the exact max.
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"p50", q.P50, tt.p50}, {"p95", q.P95, tt.p95}} {
				if c.got < c.want*0.999 && c.want > 0.001 || c.got > math.Max(c.want*1.0905, 0.001) {
					t.Errorf("%s = %v s, want %v s (+9%%)", c.name, c.got, c.want)
				}
			}
			if q.Max != tt.max {
				t.Errorf("max = %v s, want exactly %v s", q.Max, tt.max)
			}
		})
	}
}

func TestWindowForgetsOldSlots(t *testing.T) {
	clk := clock.NewFake(t0)
	tr := New(Options{Clock: clk, Window: 15 * time.Minute, Slot: time.Minute})
	tr.Record([]model.Observation{obs("azure", "vm-1", t0.Add(-time.Hour), t0)})
	clk.Advance(10 * time.Minute)
	tr.Record([]model.Observation{obs("azure", "vm-1", clk.Now().Add(-2*time.Second), clk.Now())})
	if q := tr.Report("").Sources[0].Received; q.Count != 2 || q.Max != 3600 {
		t.Fatalf("within the window: %+v, want both samples, max 1h", q)
	}
	clk.Advance(6 * time.Minute) // the first sample is 16 minutes old
	if q := tr.Report("").Sources[0].Received; q.Count != 1 || q.Max != 2 {
		t.Fatalf("after the window passed the first sample: %+v, want only the 2s one", q)
	}
}

func TestStoredLatency(t *testing.T) {
	clk := clock.NewFake(t0)
	tr := New(Options{Clock: clk})
	o := obs("libvirt", "vm-1", t0.Add(-4*time.Second), t0.Add(-3*time.Second))
	o.TimeStored = t0
	tr.Record([]model.Observation{o})
	r := tr.Report("libvirt")
	if s := r.Sources[0].Stored; s == nil || s.Max != 4 || r.Sources[0].Received.Max != 1 {
		t.Fatalf("received %+v stored %+v, want max 1s and 4s", r.Sources[0].Received, s)
	}
}

// TestStopped: a VM whose source keeps reporting without it is stopped; a
// whole source going silent is one stopped source, not one per VM.
func TestStopped(t *testing.T) {
	clk := clock.NewFake(t0)
	tr := New(Options{Clock: clk, StoppedAfter: 10 * time.Minute})
	beat := func(src string, ids ...string) {
		var b []model.Observation
		for _, id := range ids {
			o := obs(src, id, clk.Now(), clk.Now())
			o.State = ""
			b = append(b, o)
		}
		tr.Record(b)
	}
	beat("heartbeat/site-a", "vm-1", "vm-2")
	beat("libvirt", "vm-7")
	for range 11 {
		clk.Advance(time.Minute)
		beat("heartbeat/site-a", "vm-2")
	}
	r := tr.Report("")
	if len(r.Stopped) != 1 || r.StoppedTotal != 1 || r.Stopped[0].ID != "vm-1" || r.Stopped[0].Source != "heartbeat/site-a" || r.Stopped[0].SilentFor != "11m0s" {
		t.Errorf("stopped = %+v, want only vm-1 of heartbeat/site-a, silent 11m", r.Stopped)
	}
	for _, s := range r.Sources {
		if want := s.Source == "libvirt"; s.Stopped != want {
			t.Errorf("source %s stopped = %v, want %v", s.Source, s.Stopped, want)
		}
	}
	if only := tr.Report("libvirt"); len(only.Sources) != 1 || len(only.Stopped) != 0 {
		t.Errorf("report for libvirt = %+v", only)
	}
	beat("heartbeat/site-a", "vm-1")
	if r := tr.Report(""); r.StoppedTotal != 0 {
		t.Errorf("after vm-1 came back: stopped = %+v", r.Stopped)
	}
}

func TestMaxSubjectsAndForget(t *testing.T) {
	clk := clock.NewFake(t0)
	tr := New(Options{Clock: clk, MaxSubjects: 2, Forget: time.Hour})
	tr.Record([]model.Observation{obs("a", "1", t0, t0), obs("a", "2", t0, t0), obs("a", "3", t0, t0)})
	if r := tr.Report(""); r.Untracked != 1 {
		t.Errorf("untracked = %d, want 1", r.Untracked)
	}
	clk.Advance(2 * time.Hour)
	tr.Record([]model.Observation{obs("b", "9", clk.Now(), clk.Now())})
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.subj) != 1 || len(tr.sources) != 1 {
		t.Errorf("after Forget: %d subjects, %d sources, want 1 and 1", len(tr.subj), len(tr.sources))
	}
}

type evaluator struct{ err error }

func (e evaluator) Observe(context.Context, []model.Observation) error { return e.err }

func TestTeeRecordsOnlyWhatTheEngineTook(t *testing.T) {
	clk := clock.NewFake(t0)
	tr := New(Options{Clock: clk})
	batch := []model.Observation{obs("a", "1", t0, t0)}
	if err := tr.Tee(evaluator{err: errors.New("redis down")}).Observe(context.Background(), batch); err == nil {
		t.Fatal("Tee swallowed the engine's error")
	}
	if n := len(tr.Report("").Sources); n != 0 {
		t.Fatalf("a refused batch was recorded")
	}
	if err := tr.Tee(evaluator{}).Observe(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if r := tr.Report(""); len(r.Sources) != 1 || r.Sources[0].Received.Count != 1 {
		t.Fatalf("report = %+v", r)
	}
}

func TestHandler(t *testing.T) {
	clk := clock.NewFake(t0)
	tr := New(Options{Clock: clk})
	var batch []model.Observation
	for i := range 20 {
		batch = append(batch, obs("azure", fmt.Sprintf("vm-%02d", i), t0.Add(-time.Duration(30+i)*time.Second), t0))
		batch = append(batch, obs("heartbeat/site-a", fmt.Sprintf("vm-%02d", i), t0.Add(-time.Duration(i)*100*time.Millisecond), t0))
	}
	tr.Record(batch)
	clk.Advance(12 * time.Minute)
	tr.Record([]model.Observation{obs("heartbeat/site-a", "vm-00", clk.Now().Add(-time.Second), clk.Now())})
	h := Handler(tr)
	tests := []struct {
		name, target string
		method       string
		code         int
	}{
		{"latency", "/v1/latency", http.MethodGet, 200},
		{"latency-one-source", "/v1/latency?source=heartbeat/site-a", http.MethodGet, 200},
		{"latency-unknown-parameter", "/v1/latency?sorce=x", http.MethodGet, 400},
		{"latency-post", "/v1/latency", http.MethodPost, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.code {
				t.Fatalf("code = %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			golden(t, tt.name, rec.Body.String())
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// BenchmarkRecord measures recording one 500-observation batch (a stream
// entry) from 100,000 VMs of one source.
func BenchmarkRecord(b *testing.B) {
	clk := clock.NewFake(t0)
	tr := New(Options{Clock: clk})
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("vm-%06d", i)
	}
	batch := make([]model.Observation, 500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range batch {
			batch[j] = obs("libvirt", ids[(i*500+j)%len(ids)], t0.Add(-time.Duration(j)*time.Millisecond), t0)
		}
		tr.Record(batch)
	}
}

func BenchmarkReport(b *testing.B) {
	clk := clock.NewFake(t0)
	tr := New(Options{Clock: clk})
	batch := make([]model.Observation, 0, 100_000)
	for i := range 100_000 {
		batch = append(batch, obs(fmt.Sprintf("src-%d", i%10), fmt.Sprintf("vm-%06d", i), t0.Add(-time.Second), t0))
	}
	tr.Record(batch)
	b.ReportAllocs()
	for b.Loop() {
		_ = tr.Report("")
	}
}
