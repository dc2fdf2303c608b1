package prometheus

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
)

type countSink struct{ n atomic.Int64 }

func (s *countSink) AppendObservations(_ context.Context, obs []model.Observation) error {
	s.n.Add(int64(len(obs)))
	return nil
}

// BenchmarkPollFleet reads one period of a 5,000-host fleet from a
// Prometheus API (httptest) answering each of the six default queries with
// 5,000 samples: the HTTP round trips, JSON decoding, host mapping, merge
// and validation of one Poll.
func BenchmarkPollFleet(b *testing.B) {
	const hosts = 5000
	q := DefaultQueries()
	bodies := map[string][]byte{}
	hostMap := map[string]string{}
	for attr, query := range q {
		var sb strings.Builder
		sb.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
		for h := range hosts {
			if h > 0 {
				sb.WriteByte(',')
			}
			v := "0"
			switch {
			case attr == model.AttrTempC:
				v = fmt.Sprintf("%d.5", 40+h%50)
			case factBool[attr]:
				v = "1"
			case h%97 == 0:
				v = "3"
			}
			fmt.Fprintf(&sb, `{"metric":{"instance":"10.%d.%d.%d:9100"},"value":[1700000000.123,"%s"]}`, h/65536, h/256%256, h%256, v)
		}
		sb.WriteString(`]}}`)
		bodies[strings.ReplaceAll(query, "$window", "1m")] = []byte(sb.String())
	}
	for h := range hosts {
		hostMap[fmt.Sprintf("10.%d.%d.%d:9100", h/65536, h/256%256, h%256)] = fmt.Sprintf("host-%04d", h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.FormValue("query")]
		if !ok {
			http.Error(w, "unexpected query", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	sink := &countSink{}
	c, err := New(Options{URL: srv.URL, Hosts: hostMap, Site: "pod-a", Sink: sink,
		Clock: clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Poll(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	if got := sink.n.Load() / int64(b.N); got != hosts {
		b.Fatalf("%d observations per poll, want %d", got, hosts)
	}
	b.ReportMetric(hosts, "hosts/poll")
}
