package heartbeat_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/collectors/heartbeat"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/ingest"
	"github.com/vmtriage/vmtriage/internal/latency"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
	"github.com/vmtriage/vmtriage/rules"
)

// TestHeartbeatsFeedStoppedReporting runs heartbeats through the real
// path — handler, Redis stream, ingest, state store, default rules — and
// checks that they feed exactly the stopped-reporting rules: a VM that only
// heartbeats is kept alive without its state or source changing, a VM
// whose heartbeats stop is reported, and so is the sender that goes quiet.
func TestHeartbeatsFeedStoppedReporting(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	st := storetest.New(t, store.Options{Clock: clk})
	engine, err := rules.NewEngine(ctx, rules.Options{Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tracker := latency.New(latency.Options{Clock: clk})
	pipe, err := ingest.New(ingest.Options{Stream: st, Evaluator: tracker.Tee(engine), Consumer: "test", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	h, err := heartbeat.New(heartbeat.Options{
		Tokens: map[string]config.Secret{"site-a": "token-site-a-0123456789"}, Sink: st, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	drain := func() {
		t.Helper()
		for {
			n, err := pipe.Step(ctx, -1)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
	}
	report := func(ids ...string) {
		t.Helper()
		var obs []model.Observation
		for _, id := range ids {
			obs = append(obs, model.Observation{Source: "libvirt", Kind: model.KindVM, ID: id, Host: "host-1", Site: "pod-a",
				State: model.StateRunning, TimeGenerated: clk.Now(), TimeReceived: clk.Now()})
		}
		if err := st.AppendObservations(ctx, obs); err != nil {
			t.Fatal(err)
		}
	}
	beat := func(ids ...string) {
		t.Helper()
		var parts []string
		for _, id := range ids {
			parts = append(parts, fmt.Sprintf(`{"computer":%q,"time_generated":%q}`, id, clk.Now().Add(-2*time.Second).Format(time.RFC3339)))
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/heartbeats", strings.NewReader("["+strings.Join(parts, ",")+"]"))
		req.Header.Set("Authorization", "Bearer token-site-a-0123456789")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("POST /v1/heartbeats: %d %s", rec.Code, rec.Body)
		}
	}
	minute := func() {
		t.Helper()
		clk.Advance(time.Minute)
		drain()
		if err := engine.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	open := func() map[string]model.Incident {
		t.Helper()
		incs, err := st.Incidents(ctx, model.IncidentFilter{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]model.Incident{}
		for _, inc := range incs {
			if inc.Status != model.StatusResolved {
				out[inc.Rule+" "+inc.Subject] = inc
			}
		}
		return out
	}

	// libvirt reports both VMs once; from then on it reports only vm-2,
	// and vm-1 lives on heartbeats alone.
	report("vm-1", "vm-2")
	drain()
	for range 12 {
		minute()
		report("vm-2")
		beat("vm-1")
	}
	minute()
	if got := open(); len(got) != 0 {
		t.Fatalf("incidents while vm-1 heartbeats: %v", keys(got))
	}
	vm, err := st.VM(ctx, "vm-1")
	if err != nil {
		t.Fatal(err)
	}
	if vm.State != model.StateRunning || vm.Source != "libvirt" || vm.Host != "host-1" {
		t.Fatalf("heartbeats changed vm-1 in the store: state %q source %q host %q", vm.State, vm.Source, vm.Host)
	}

	// vm-1's heartbeats stop while libvirt and the sender go on (the
	// sender beats for vm-3 instead).
	for range 11 {
		minute()
		report("vm-2")
		beat("vm-3")
	}
	minute()
	got := open()
	if _, ok := got["vm-stopped-reporting vm-1"]; !ok || len(got) != 1 {
		t.Fatalf("after vm-1's heartbeats stopped: %v, want only vm-stopped-reporting for vm-1", keys(got))
	}

	// The sender goes quiet altogether: one incident for the source.
	for range 11 {
		minute()
		report("vm-1", "vm-2")
	}
	minute()
	got = open()
	if _, ok := got["source-stopped-reporting heartbeat/site-a"]; !ok {
		t.Fatalf("after the sender went quiet: %v, want source-stopped-reporting for heartbeat/site-a", keys(got))
	}

	// The tracker saw the same: heartbeat/site-a is stopped, its latency
	// (received − generated) is the 2 s the test put in.
	r := tracker.Report("heartbeat/site-a")
	if len(r.Sources) != 1 || !r.Sources[0].Stopped {
		t.Fatalf("latency report: %+v", r.Sources)
	}
}

func keys(m map[string]model.Incident) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
