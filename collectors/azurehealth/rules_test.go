package azurehealth

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/ingest"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
	"github.com/vmtriage/vmtriage/rules"
)

// TestThroughTheDefaultRules runs the collector into the real pipeline —
// Redis stream, ingest, state store, the default rules — and checks what
// comes out: the recorded annotations raise the azure-* incidents, a
// quiet fleet raises nothing (the keep-alive heartbeats keep the source and
// its VMs alive), a new annotation raises its incident, and a VM that drops
// out of the listing is reported as stopped reporting. Without keep-alives
// the same quiet fleet looks like a dead source.
func TestThroughTheDefaultRules(t *testing.T) {
	for _, keepAlive := range []bool{true, false} {
		name := "with keep-alive"
		if !keepAlive {
			name = "without keep-alive"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, func(o *Options) {
				if !keepAlive {
					o.KeepAlive = -1
				}
			})
			st := storetest.New(t, store.Options{Clock: h.clk})
			h.c.opts.Sink = st
			engine, err := rules.NewEngine(ctx, rules.Options{Store: st, Clock: h.clk, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			pipe, err := ingest.New(ingest.Options{Stream: st, Evaluator: engine, Consumer: "test", Clock: h.clk})
			if err != nil {
				t.Fatal(err)
			}
			h.az.setPage("sub-a/", readTestdata(t, "page1.json"))
			h.az.setPage("sub-a/page2", readTestdata(t, "page2.json"))
			minute := func() {
				t.Helper()
				if err := h.c.Poll(ctx); err != nil {
					t.Fatal(err)
				}

				for {
					n, err := pipe.Step(ctx, -1)
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						break
					}
				}
				h.clk.Advance(time.Minute)
				if err := engine.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			open := func() []string {
				t.Helper()
				incs, err := st.Incidents(ctx, model.IncidentFilter{})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, inc := range incs {
					if inc.Status != model.StatusResolved {
						out = append(out, inc.Rule+" "+inc.Subject)
					}
				}
				sort.Strings(out)
				return out
			}

			minute()
			base := []string{"azure-degraded-hardware vm-db-1", "azure-guest-crash batch_3"}
			if got := open(); !slices.Equal(got, base) {
				t.Fatalf("after the baseline: %v, want %v", got, base)
			}
			for range 12 {
				minute()
			}
			if !keepAlive {
				if got := open(); !slices.Contains(got, "source-stopped-reporting azure") {
					t.Fatalf("a quiet fleet without keep-alives: %v, want the azure source reported silent", got)
				}
				return
			}
			if got := open(); !slices.Equal(got, base) {
				t.Fatalf("after 12 quiet minutes: %v, want still only %v", got, base)
			}

			// vm-web-2's host crashes; vm-web-1 drops out of the listing.
			page1 := strings.Replace(readTestdata(t, "page1.json"), `"availabilityState": "Available",
        "title": "Available",
        "summary": "There aren't any known Azure platform problems affecting this virtual machine.",
        "occuredTime": "2026-11-20T07:00:00Z"`, `"availabilityState": "Unavailable",
        "annotationName": "VirtualMachineHostCrashed",
        "occuredTime": "2026-11-22T10:13:30Z"`, 1)
			i := strings.Index(page1, `    {
      "id": "/subscriptions/sub-a/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-2`)
			page1 = `{
  "value": [
` + page1[i:]
			h.az.setPage("sub-a/", page1)
			minute()
			if got := open(); !slices.Contains(got, "azure-platform-unplanned vm-web-2") {
				t.Fatalf("after vm-web-2's host crashed: %v", got)
			}
			// Silence is judged at the keep-alives: after stopped_reporting
			// (10m) plus up to one KeepAlive (5m).
			for range 15 {
				minute()
			}
			if got := open(); !slices.Contains(got, "vm-stopped-reporting vm-web-1") || slices.Contains(got, "source-stopped-reporting azure") {
				t.Fatalf("15 minutes after vm-web-1 left the listing: %v, want it (and only it) stopped reporting", got)
			}
		})
	}
}
