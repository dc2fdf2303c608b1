package prometheus

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

// The tests in this file talk to a real Prometheus scraping a real
// node_exporter every second (Debian's prometheus and
// prometheus-node-exporter), which scripts/test.sh starts on 127.0.0.1.
// node_exporter's textfile collector carries the hardware the machine
// lacks (EDAC counters, hwmon sensors, md arrays, a storage-path probe):
// the tests write it.

type daemons struct {
	prometheus, nodeExporter, textfileDir string
	// controller labels this test's EDAC counters, so that a test run
	// right after another (go test -count) starts new series rather than
	// seeing the last one's counters jump back.
	controller string
}

func realDaemons(t *testing.T) daemons {
	t.Helper()
	d := daemons{
		prometheus:   os.Getenv("VMTRIAGE_TEST_PROMETHEUS_URL"),
		nodeExporter: os.Getenv("VMTRIAGE_TEST_NODE_EXPORTER_URL"),
		textfileDir:  os.Getenv("VMTRIAGE_TEST_NODE_EXPORTER_TEXTFILE_DIR"),
		controller:   strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	if d.prometheus == "" || d.nodeExporter == "" || d.textfileDir == "" {
		t.Fatal("VMTRIAGE_TEST_PROMETHEUS_URL, VMTRIAGE_TEST_NODE_EXPORTER_URL and VMTRIAGE_TEST_NODE_EXPORTER_TEXTFILE_DIR are not set: these tests need a real Prometheus and node_exporter; run `make test` (scripts/test.sh installs and starts them)")
	}
	return d
}

// hardware is what the textfile says of the machine.
type hardware struct {
	eccCorrected, eccUncorrected float64
	temps                        []float64
	mdFailed                     int
	storageUp                    int
}

// write replaces the textfile atomically (node_exporter reads it on each
// scrape) and removes it when the test ends.
func (d daemons) write(t *testing.T, h hardware) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# TYPE node_edac_correctable_errors_total counter\n")
	fmt.Fprintf(&b, "node_edac_correctable_errors_total{controller=%q} %g\n", d.controller, h.eccCorrected)
	b.WriteString("# TYPE node_edac_uncorrectable_errors_total counter\n")
	fmt.Fprintf(&b, "node_edac_uncorrectable_errors_total{controller=%q} %g\n", d.controller, h.eccUncorrected)
	b.WriteString("# TYPE node_hwmon_temp_celsius gauge\n")
	for i, c := range h.temps {
		fmt.Fprintf(&b, "node_hwmon_temp_celsius{chip=\"platform_coretemp_0\",sensor=\"temp%d\"} %g\n", i+1, c)
	}
	b.WriteString("# TYPE node_md_disks gauge\n")
	fmt.Fprintf(&b, "node_md_disks{device=\"md0\",state=\"failed\"} %d\n", h.mdFailed)
	fmt.Fprintf(&b, "node_md_disks{device=\"md0\",state=\"active\"} %d\n", 2-h.mdFailed)
	b.WriteString("# TYPE vmtriage_test_storage_path_up gauge\n")
	fmt.Fprintf(&b, "vmtriage_test_storage_path_up{path=\"/srv/volumes\"} %d\n", h.storageUp)
	file := filepath.Join(d.textfileDir, "vmtriage-test.prom")
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
}

// instance is the instance label Prometheus gives node_exporter.
func (d daemons) instance(t *testing.T) string {
	u, err := url.Parse(d.nodeExporter)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// expectedNICUp reads node_network_up from node_exporter itself and says
// what nic_up should be: the minimum over the data NICs, or absent.
func (d daemons) expectedNICUp(t *testing.T) (up, ok bool) {
	t.Helper()
	resp, err := http.Get(d.nodeExporter)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	fams, err := decodeExposition(resp.Body, expfmt.ResponseFormat(resp.Header))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("^(?:" + DataNICs + ")$")
	up = true
	for _, m := range fams["node_network_up"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "device" && re.MatchString(l.GetValue()) {
				ok = true
				up = up && m.GetGauge().GetValue() != 0
			}
		}
	}
	return up, ok
}

// collectorSink keeps the observations of each poll.
type collectorSink struct {
	mu   sync.Mutex
	last []model.Observation
}

func (s *collectorSink) AppendObservations(_ context.Context, obs []model.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = append([]model.Observation(nil), obs...)
	return nil
}

// pollUntil polls (bounded, never asserted on) until the observation of
// host satisfies pred, and returns it.
func pollUntil(t *testing.T, c *Collector, sink *collectorSink, clk *clock.Fake, host, what string, pred func(o *model.Observation) bool) model.Observation {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var last []model.Observation
	for {
		// Queries are evaluated at the clock's time; follow the wall clock,
		// since Prometheus's data is real.
		clk.Set(time.Now())
		err := c.Poll(t.Context())
		sink.mu.Lock()
		last = sink.last
		sink.mu.Unlock()
		if err == nil {
			for i := range last {
				if last[i].ID == host && pred(&last[i]) {
					return last[i]
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s; last poll error %v, observations %+v", what, err, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// settle waits (bounded) until no EDAC counter of an earlier test (go test
// -count, or the scrape test's) still rises within the window, so that
// this test's counts are its own.
func settle(t *testing.T, c *Collector, sink *collectorSink, clk *clock.Fake, host string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		clk.Set(time.Now())
		err := c.Poll(t.Context())
		quiet := err == nil
		sink.mu.Lock()
		for _, o := range sink.last {
			if o.ID == host && (o.Num(model.AttrECCCorrected) != 0 || o.Num(model.AttrECCUncorrected) != 0) {
				quiet = false
			}
		}
		sink.last = nil
		sink.mu.Unlock()
		if quiet {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("earlier EDAC counters still rising after 45s (last error %v)", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestPrometheusQueriesNodeExporterFacts(t *testing.T) {
	d := realDaemons(t)
	sink := &collectorSink{}
	clk := clock.NewFake(time.Now())
	c, err := New(Options{
		URL:   d.prometheus,
		Hosts: map[string]string{d.instance(t): "host-prom"},
		Site:  "pod-p",
		// The storage path probe is site-specific: here a textfile gauge.
		Queries: map[string]string{model.AttrStorageReachable: `min by (instance) (vmtriage_test_storage_path_up)`},
		Window:  5 * time.Second, // five scrapes
		Sink:    sink, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	settle(t, c, sink, clk, "host-prom")
	d.write(t, hardware{eccCorrected: 10, temps: []float64{45, 71.5, 60}, mdFailed: 1, storageUp: 1})
	first := pollUntil(t, c, sink, clk, "host-prom", "the textfile's facts in Prometheus", func(o *model.Observation) bool {
		// increase() needs two scrapes of the counter in the window.
		_, ecc := o.Attrs[model.AttrECCCorrected]
		return o.Num(model.AttrTempC) == 71.5 && ecc
	})
	want := map[string]any{
		model.AttrTempC:            71.5,
		model.AttrDiskErrors:       1.0,
		model.AttrStorageReachable: true,
		model.AttrECCCorrected:     0.0, // a constant counter did not increase
		model.AttrECCUncorrected:   0.0,
	}
	if up, ok := d.expectedNICUp(t); ok {
		want[model.AttrNICUp] = up
	}
	for k, v := range want {
		if first.Attrs[k] != v {
			t.Errorf("attrs.%s = %v, want %v (all: %v)", k, first.Attrs[k], v, first.Attrs)
		}
	}
	if len(first.Attrs) != len(want) {
		t.Errorf("attrs = %v, want exactly %v", first.Attrs, want)
	}
	if first.Kind != model.KindHost || first.Site != "pod-p" || first.Source != "prometheus" || first.State != "" {
		t.Errorf("observation %+v: want a stateless host observation of pod-p from prometheus", first)
	}

	// The hardware degrades: corrected errors climb, storage is lost, the
	// array heals.
	d.write(t, hardware{eccCorrected: 25, temps: []float64{45, 88}, mdFailed: 0, storageUp: 0})
	later := pollUntil(t, c, sink, clk, "host-prom", "the new facts", func(o *model.Observation) bool {
		return o.Num(model.AttrTempC) == 88 && o.Num(model.AttrECCCorrected) > 0
	})
	if reachable, _ := later.Bool(model.AttrStorageReachable); reachable {
		t.Errorf("storage_reachable = true after the probe went to 0: %v", later.Attrs)
	}
	if later.Num(model.AttrDiskErrors) != 0 || later.Num(model.AttrECCUncorrected) != 0 {
		t.Errorf("disk_errors %v, ecc_uncorrected %v; want 0, 0", later.Num(model.AttrDiskErrors), later.Num(model.AttrECCUncorrected))
	}
}

func TestPrometheusDefaultQueriesRunOnARealServer(t *testing.T) {
	d := realDaemons(t)
	sink := &collectorSink{}
	c, err := New(Options{URL: d.prometheus, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.queries) != len(DefaultQueries()) {
		t.Fatalf("%d queries, want the %d defaults", len(c.queries), len(DefaultQueries()))
	}
	// Every default query must parse and evaluate (on whatever data there
	// is); a typo would be a "bad_data" error here.
	if err := c.Poll(t.Context()); err != nil {
		t.Fatalf("default queries against Prometheus: %v", err)
	}
	// A broken query is reported by name and does not stop the others.
	c, err = New(Options{URL: d.prometheus, Sink: sink, Queries: map[string]string{model.AttrMCE: `sum by (instance) (`}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Poll(t.Context())
	if err == nil || !strings.Contains(err.Error(), "query mce: HTTP 400: bad_data") {
		t.Fatalf("Poll error = %v, want the mce query refused as bad_data", err)
	}
	if got := value(c.m.polls.WithLabelValues("partial")); got != 1 {
		t.Errorf("partial polls = %v, want 1", got)
	}
}

func TestScrapeNodeExporterDirectly(t *testing.T) {
	d := realDaemons(t)
	d.write(t, hardware{eccCorrected: 3, eccUncorrected: 1, temps: []float64{52.5, 40}, mdFailed: 0, storageUp: 1})
	sink := &collectorSink{}
	rules := append(DefaultScrapeRules(), ScrapeRule{Attr: model.AttrNetworkReachable, Metric: "vmtriage_test_storage_path_up", Agg: "min"})
	c, err := New(Options{
		Targets:     []ScrapeTarget{{URL: d.nodeExporter, Host: "host-scrape", Site: "pod-s"}},
		ScrapeRules: rules,
		Sink:        sink,
		Clock:       clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)),
	})
	if err != nil {
		t.Fatal(err)
	}
	poll := func() model.Observation {
		t.Helper()
		if err := c.Poll(t.Context()); err != nil {
			t.Fatalf("Poll: %v", err)
		}
		if len(sink.last) != 1 {
			t.Fatalf("observations %+v, want one", sink.last)
		}
		return sink.last[0]
	}
	// First scrape: gauges only; counters need a previous scrape.
	o := poll()
	want := map[string]any{model.AttrTempC: 52.5, model.AttrDiskErrors: 0.0, model.AttrNetworkReachable: true}
	if up, ok := d.expectedNICUp(t); ok {
		want[model.AttrNICUp] = up
	}
	for k, v := range want {
		if o.Attrs[k] != v {
			t.Errorf("first scrape: attrs.%s = %v, want %v (all: %v)", k, o.Attrs[k], v, o.Attrs)
		}
	}
	if len(o.Attrs) != len(want) {
		t.Errorf("first scrape: attrs = %v, want exactly %v", o.Attrs, want)
	}
	if o.ID != "host-scrape" || o.Site != "pod-s" {
		t.Errorf("observation of %q in %q, want host-scrape in pod-s", o.ID, o.Site)
	}

	// Errors happen between two scrapes: counted exactly.
	d.write(t, hardware{eccCorrected: 8, eccUncorrected: 3, temps: []float64{52.5}, mdFailed: 1, storageUp: 0})
	o = poll()
	if o.Num(model.AttrECCCorrected) != 5 || o.Num(model.AttrECCUncorrected) != 2 || o.Num(model.AttrDiskErrors) != 1 {
		t.Errorf("second scrape: %v; want ecc_corrected 5, ecc_uncorrected 2, disk_errors 1", o.Attrs)
	}
	if r, ok := o.Bool(model.AttrNetworkReachable); !ok || r {
		t.Errorf("second scrape: network_reachable = %v (present %v), want false", r, ok)
	}
}
