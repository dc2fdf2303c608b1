package sites

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/store"
)

// BenchmarkStep measures one manager step over 100 registered sites of 3
// endpoints each, every endpoint due: reading the registry and statuses,
// 300 leases, polls (fakes that answer at once) and status saves in Redis,
// and judging the sites. It is the manager's own cost per poll interval.
func BenchmarkStep(b *testing.B) {
	for _, sites := range []int{10, 100} {
		b.Run(fmt.Sprintf("sites=%d", sites), func(b *testing.B) {
			r := newRig(b)
			for i := range sites {
				rs := store.RegisteredSite{Site: fmt.Sprintf("pod-%03d", i)}
				for j := range 3 {
					rs.Endpoints = append(rs.Endpoints, store.SiteEndpoint{Kind: "fake", URL: fmt.Sprintf("https://e%d.pod-%03d", j, i)})
				}
				if err := r.st.RegisterSite(r.ctx, rs); err != nil {
					b.Fatal(err)
				}
			}
			if err := r.m.Step(r.ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r.clk.Advance(time.Minute)
				if err := r.m.Step(r.ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(sites*3), "endpoints/op")
		})
	}
}
