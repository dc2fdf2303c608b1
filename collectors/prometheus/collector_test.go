package prometheus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
)

func TestDecodeQuery(t *testing.T) {
	tests := []struct {
		name, body string
		want       []float64
		err        string
	}{
		{"vector", `{"status":"success","data":{"resultType":"vector","result":[
			{"metric":{"instance":"a:9100"},"value":[1700000000.5,"3"]},
			{"metric":{"instance":"b:9100"},"value":[1700000000.5,"71.5"]}]}}`, []float64{3, 71.5}, ""},
		{"empty vector", `{"status":"success","data":{"resultType":"vector","result":[]}}`, nil, ""},
		{"NaN and Inf skipped, the rest kept", `{"status":"success","data":{"resultType":"vector","result":[
			{"metric":{"instance":"a"},"value":[1,"NaN"]},{"metric":{"instance":"b"},"value":[1,"+Inf"]},
			{"metric":{"instance":"c"},"value":[1,"2"]},{"metric":{"instance":"d"},"value":[1]}]}}`, []float64{2}, "3 of 4 samples skipped"},
		{"an error from Prometheus", `{"status":"error","errorType":"bad_data","error":"parse error: unexpected end of input"}`, nil, "bad_data: parse error: unexpected end of input"},
		{"a scalar", `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`, nil, `result is a "scalar", want a vector`},
		{"not JSON", `<html>proxy error</html>`, nil, "decode response"},
		{"a vector that is not a list", `{"status":"success","data":{"resultType":"vector","result":{}}}`, nil, "decode vector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeQuery([]byte(tt.body))
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			var vals []float64
			for _, s := range got {
				vals = append(vals, s.value)
			}
			if !slices.Equal(vals, tt.want) {
				t.Errorf("values %v, want %v", vals, tt.want)
			}
		})
	}
}

func FuzzDecodeQuery(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a:9100"},"value":[1700000000.5,"3"]}]}}`))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"x"}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":null,"value":[1,"NaN"]}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		samples, err := decodeQuery(body)
		if err != nil && !errors.Is(err, errBadSample) && samples != nil {
			t.Fatalf("samples %v returned with a fatal error %v", samples, err)
		}
		for _, s := range samples {
			if math.IsNaN(s.value) || math.IsInf(s.value, 0) {
				t.Fatalf("non-finite value %v kept", s.value)
			}
		}
	})
}

func FuzzDecodeExposition(f *testing.F) {
	f.Add([]byte("# TYPE node_hwmon_temp_celsius gauge\nnode_hwmon_temp_celsius{chip=\"c\",sensor=\"t1\"} 71.5\n"))
	f.Add([]byte("node_network_up{device=\"eth0\"} 1\nnode_network_up{device=\"lo\"} 0\n"))
	f.Add([]byte("x{a=\"\\\"\"} NaN 12\n"))
	rules := DefaultScrapeRules()
	f.Fuzz(func(t *testing.T, body []byte) {
		fams, err := decodeExposition(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeTextPlain))
		if err != nil {
			return
		}
		for _, r := range rules {
			cr, err := compileRule(r)
			if err != nil {
				t.Fatal(err)
			}
			if v, ok, _ := cr.apply(fams); ok && math.IsNaN(v) {
				t.Fatalf("rule %s gave NaN", r.Attr)
			}
		}
	})
}

func TestHostOf(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		labels   map[string]string
		host     string
		wantSite string
	}{
		{"the port is stripped", Options{}, map[string]string{"instance": "10.0.0.7:9100"}, "10.0.0.7", "pod-a"},
		{"IPv6 with a port", Options{}, map[string]string{"instance": "[fd00::7]:9100"}, "fd00::7", "pod-a"},
		{"no port", Options{}, map[string]string{"instance": "host-007"}, "host-007", "pod-a"},
		{"mapped", Options{Hosts: map[string]string{"10.0.0.7:9100": "host-007"}}, map[string]string{"instance": "10.0.0.7:9100"}, "host-007", "pod-a"},
		{"port kept", Options{KeepPort: true}, map[string]string{"instance": "h:9100"}, "h:9100", "pod-a"},
		{"another label", Options{HostLabel: "nodename"}, map[string]string{"instance": "x:1", "nodename": "host-9"}, "host-9", "pod-a"},
		{"site from a label", Options{SiteLabel: "site"}, map[string]string{"instance": "h:1", "site": "pod-z"}, "h", "pod-z"},
		{"site label absent", Options{SiteLabel: "site"}, map[string]string{"instance": "h:1"}, "h", "pod-a"},
		{"no host label", Options{}, map[string]string{"job": "node"}, "", "pod-a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.URL, tt.opts.Sink, tt.opts.Site = "http://prom:9090", &collectorSink{}, "pod-a"
			c, err := New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			host, site := c.hostOf(tt.labels)
			if host != tt.host || site != tt.wantSite {
				t.Errorf("hostOf(%v) = %q, %q; want %q, %q", tt.labels, host, site, tt.host, tt.wantSite)
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	sink := &collectorSink{}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"nothing to read", Options{Sink: sink}, "a Prometheus URL or scrape targets are required"},
		{"no sink", Options{URL: "http://prom:9090"}, "a sink is required"},
		{"not a URL", Options{Sink: sink, URL: "prom:9090"}, `Prometheus URL "prom:9090" is not an http(s) URL`},
		{"unknown fact", Options{Sink: sink, URL: "http://p", Queries: map[string]string{"fan_rpm": "x"}}, `query for "fan_rpm": not a fact`},
		{"bad target", Options{Sink: sink, Targets: []ScrapeTarget{{URL: "10.0.0.7:9100"}}}, `scrape target 1: "10.0.0.7:9100" is not an http(s) URL`},
		{"a password is not echoed", Options{Sink: sink, URL: "ftp://admin:hunter2@prom"}, `Prometheus URL "ftp://admin:xxxxx@prom" is not`},
		{"target twice", Options{Sink: sink, Targets: []ScrapeTarget{{URL: "http://h:9100/metrics"}, {URL: "http://h:9100/metrics"}}}, "listed twice"},
		{"bad agg", Options{Sink: sink, Targets: []ScrapeTarget{{URL: "http://h/m"}}, ScrapeRules: []ScrapeRule{{Attr: model.AttrTempC, Metric: "t", Agg: "avg"}}}, `agg "avg" is not sum, max or min`},
		{"bad regexp", Options{Sink: sink, Targets: []ScrapeTarget{{URL: "http://h/m"}}, ScrapeRules: []ScrapeRule{{Attr: model.AttrNICUp, Metric: "u", Agg: "min", Match: map[string]string{"device": "("}}}}, "label device"},
		{"negate on a count", Options{Sink: sink, Targets: []ScrapeTarget{{URL: "http://h/m"}}, ScrapeRules: []ScrapeRule{{Attr: model.AttrMCE, Metric: "m", Agg: "sum", Negate: true}}}, "negate applies to health flags only"},
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

func TestParseHostsAndTargets(t *testing.T) {
	hosts, err := ParseHosts("10.0.0.7:9100=host-007, [fd00::8]:9100=host-008")
	if err != nil {
		t.Fatal(err)
	}
	if hosts["10.0.0.7:9100"] != "host-007" || hosts["[fd00::8]:9100"] != "host-008" || len(hosts) != 2 {
		t.Errorf("ParseHosts = %v", hosts)
	}
	if _, err := ParseHosts("10.0.0.7:9100"); err == nil || !strings.Contains(err.Error(), "want instance=host") {
		t.Errorf("ParseHosts without = : err %v", err)
	}
	targets, err := ParseTargets("host-007=http://10.0.0.7:9100/metrics,http://10.0.0.8:9273/metrics")
	if err != nil {
		t.Fatal(err)
	}
	want := []ScrapeTarget{{Host: "host-007", URL: "http://10.0.0.7:9100/metrics"}, {URL: "http://10.0.0.8:9273/metrics"}}
	if !slices.Equal(targets, want) {
		t.Errorf("ParseTargets = %+v, want %+v", targets, want)
	}
}

// fakePrometheus answers /api/v1/query from a table of query → body.
type fakePrometheus struct {
	mu      sync.Mutex
	answers map[string]string
	auth    []string
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	body, ok := f.answers[r.Form.Get("query")]
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		msg, _ := json.Marshal("unexpected query " + r.Form.Get("query"))
		fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":%s}`, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, body)
}

func vector(samples ...string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
}

func point(instance, v string) string {
	return `{"metric":{"instance":"` + instance + `"},"value":[1700000000,"` + v + `"]}`
}

func TestPollMergesWorstWinsAndKeepsWhatWasRead(t *testing.T) {
	q := DefaultQueries()
	fp := &fakePrometheus{answers: map[string]string{
		strings.ReplaceAll(q[model.AttrECCCorrected], "$window", "1m"): vector(point("10.0.0.7:9100", "4"), point("10.0.0.8:9100", "0")),
		// Two exporters of host-007 (node_exporter and a second one) disagree: worst wins.
		q[model.AttrTempC]: vector(point("10.0.0.7:9100", "61"), point("10.0.0.7:9101", "92"), point("10.0.0.8:9100", "40")),
		q[model.AttrNICUp]: vector(point("10.0.0.7:9100", "1"), point("10.0.0.7:9101", "0"), point("10.0.0.8:9100", "1")),
		// disk_errors answers with an error; ecc_uncorrected is off; storage has no samples.
		q[model.AttrStorageReachable]: vector(),
	}}
	srv := httptest.NewServer(fp)
	defer srv.Close()
	sink := &collectorSink{}
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c, err := New(Options{
		URL: srv.URL, Site: "pod-a", Sink: sink, Clock: clock.NewFake(now), Registerer: reg,
		BearerToken: config.Secret("s3cr3t-token"),
		Queries:     map[string]string{model.AttrECCUncorrected: Off},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Poll(t.Context())
	if err == nil || !strings.Contains(err.Error(), "query disk_errors: HTTP 400: bad_data") {
		t.Fatalf("Poll error = %v, want disk_errors refused", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the bearer token leaked into an error: %v", err)
	}
	got := map[string]map[string]any{}
	for _, o := range sink.last {
		if o.Kind != model.KindHost || o.Site != "pod-a" || !o.TimeGenerated.Equal(now) {
			t.Errorf("observation %+v: want a host observation of pod-a at %s", o, now)
		}
		got[o.ID] = o.Attrs
	}
	want := map[string]map[string]any{
		"10.0.0.7": {model.AttrECCCorrected: 4.0, model.AttrTempC: 92.0, model.AttrNICUp: false},
		"10.0.0.8": {model.AttrECCCorrected: 0.0, model.AttrTempC: 40.0, model.AttrNICUp: true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("facts:\n%v\nwant:\n%v", got, want)
	}
	for _, a := range fp.auth {
		if a != "Bearer s3cr3t-token" {
			t.Errorf("Authorization %q, want the bearer token", a)
		}
	}
	if v := value(c.m.polls.WithLabelValues("partial")); v != 1 {
		t.Errorf("partial polls = %v, want 1", v)
	}
	if v := value(c.m.errors.WithLabelValues("query")); v != 1 {
		t.Errorf("query errors = %v, want 1", v)
	}
	if v := value(c.m.hosts); v != 2 {
		t.Errorf("hosts = %v, want 2", v)
	}
}

func TestScrapeCountersAndResets(t *testing.T) {
	var mu sync.Mutex
	body := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	set := func(ce float64) {
		mu.Lock()
		body = fmt.Sprintf("# TYPE node_edac_correctable_errors_total counter\nnode_edac_correctable_errors_total{controller=\"0\"} %g\nnode_edac_correctable_errors_total{controller=\"1\"} 1\n", ce)
		mu.Unlock()
	}
	sink := &collectorSink{}
	c, err := New(Options{Targets: []ScrapeTarget{{URL: srv.URL + "/metrics", Host: "host-1"}}, Sink: sink,
		Clock: clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		counter float64
		want    string
	}{
		{"first scrape: no previous value", 10, "none"},
		{"increase", 14, "4"},
		{"unchanged", 14, "0"},
		{"counter reset (exporter restarted)", 2, "3"}, // the sum went from 15 to 3: all 3 are new
	}
	for _, s := range steps {
		set(s.counter)
		if err := c.Poll(t.Context()); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := "none"
		if len(sink.last) == 1 {
			if v, ok := sink.last[0].Attrs[model.AttrECCCorrected]; ok {
				got = fmt.Sprint(v)
			}
		}
		if got != s.want {
			t.Errorf("%s: ecc_corrected = %s, want %s", s.name, got, s.want)
		}
		sink.last = nil
	}
}
