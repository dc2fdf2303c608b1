package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/httpapi"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// BenchmarkPostObservations measures POST /v1/observations end to end:
// HTTP, decoding and validation, and the durable append to the Redis
// stream, with JSON-lines batches of 1,000 VM observations.
func BenchmarkPostObservations(b *testing.B) {
	const batch = 1000
	clk := clock.NewFake(t0)
	st := storetest.New(b, store.Options{Clock: clk})
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(httpapi.New(httpapi.Options{
		Ingester: st, Reader: st, Ready: st, Gatherer: reg, Registerer: reg, Clock: clk,
		NotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) },
	}))
	b.Cleanup(srv.Close)
	var body strings.Builder
	for i := range batch {
		fmt.Fprintf(&body, `{"source":"libvirt","kind":"vm","id":"vm-%05d","host":"host-%03d","site":"pod-a","state":"running","attrs":{"crash_reason":""},"time_generated":"2026-11-22T09:59:30Z"}`+"\n", i, i%50)
	}
	payload := body.String()
	b.SetBytes(int64(len(payload)))
	ctx := context.Background()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/observations", strings.NewReader(payload))
		req.Header.Set("Content-Type", "application/x-ndjson")
		res, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "obs/s")
}
