package azurehealth

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchPages builds a listing of n VMs in pages of 1,000 (Azure's own
// page size for this API is of that order).
func benchPages(az *fakeAzure, n int) {
	const per = 1000
	for p := 0; p*per < n; p++ {
		var b strings.Builder
		b.WriteString(`{"value":[`)
		for i := p * per; i < min(n, (p+1)*per); i++ {
			if i > p*per {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"/subscriptions/sub-a/resourceGroups/rg-%d/providers/Microsoft.Compute/virtualMachines/vm-%05d/providers/Microsoft.ResourceHealth/availabilityStatuses/current","name":"current","type":"Microsoft.ResourceHealth/AvailabilityStatuses","location":"eastus","properties":{"availabilityState":"Available","title":"Available","summary":"There aren't any known Azure platform problems affecting this virtual machine.","occuredTime":"2026-11-20T07:00:00Z","reportedTime":"2026-11-22T09:59:31Z"}}`, i%50, i)
		}
		b.WriteString(`]`)
		if (p+1)*per < n {
			fmt.Fprintf(&b, `,"nextLink":"{{base}}/subscriptions/sub-a/providers/Microsoft.ResourceHealth/availabilityStatuses?api-version=2025-05-01&$expand=recommendedactions&$skipToken=p%d"`, p+1)
		}
		b.WriteString(`}`)
		key := "sub-a/"
		if p > 0 {
			key = fmt.Sprintf("sub-a/p%d", p)
		}
		az.setPage(key, b.String())
	}
}

// BenchmarkPoll measures one steady-state poll of 5,000 VMs over HTTP
// (five pages, nothing changed, no heartbeats due): the collector's cost
// per minute for a 5,000-VM subscription.
func BenchmarkPoll(b *testing.B) {
	h := newHarness(b, func(o *Options) { o.KeepAlive = time.Hour })
	benchPages(h.az, 5000)
	ctx := context.Background()
	if err := h.c.Poll(ctx); err != nil {
		b.Fatal(err)
	}
	if n := len(h.sink.take()); n != 5000 {
		b.Fatalf("baseline sent %d, want 5000", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.c.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if n := len(h.sink.take()); n != 0 {
		b.Fatalf("steady polls sent %d observations", n)
	}
}
