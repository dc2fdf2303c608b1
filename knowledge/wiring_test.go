package knowledge_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/httpapi"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
	"github.com/vmtriage/vmtriage/knowledge"
	"github.com/vmtriage/vmtriage/rules"
)

// These tests wire the knowledge base the way the application does: they
// are the integrator's reference and prove the consumers' types fit.

// The rule engine fills each incident's Runbooks through kb.Links, and the
// incident is stored with those links.
func TestEngineFillsRunbookLinks(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 5, 0, time.UTC))
	st := storetest.New(t, store.Options{Clock: clk})
	kb, err := knowledge.New(knowledge.Options{ServerURL: "https://vmtriage.example.com", Notes: st, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := rules.NewEngine(ctx, rules.Options{Store: st, Clock: clk, Logger: slog.New(slog.DiscardHandler), Runbooks: kb.Links})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	err = engine.Observe(ctx, []model.Observation{
		{Source: "libvirt", Kind: model.KindVM, ID: "vm-42", Host: "host-7", Site: "pod-a", State: model.StateCrashed, TimeGenerated: now},
		{Source: "prometheus", Kind: model.KindHost, ID: "host-7", Site: "pod-a", TimeGenerated: now,
			Attrs: map[string]any{"ecc_uncorrected": 2.0, "mce": 0.0, "nic_up": true, "psu_ok": true, "temp_c": 45.0, "storage_reachable": true, "network_reachable": true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	open, err := st.OpenIncidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var inc *model.Incident
	for i := range open {
		if open[i].Rule == "vm-crash-on-failing-host" {
			inc = &open[i]
		}
	}
	if inc == nil {
		t.Fatalf("no vm-crash-on-failing-host incident among %v", open)
	}
	want := []string{"https://vmtriage.example.com/kb/host-hardware-fault"}
	if !slices.Equal(inc.Runbooks, want) {
		t.Fatalf("stored incident runbooks = %v, want %v", inc.Runbooks, want)
	}

	// A resolution note on it is shown for the next incident of the cause.
	if err := st.AddNote(ctx, store.Note{Incident: inc.ID, Cause: inc.Cause, Text: "replaced DIMM B2", Author: "U1"}); err != nil {
		t.Fatal(err)
	}
	fixes, err := kb.PreviousFixes(ctx, "host-hardware-fault")
	if err != nil || len(fixes) != 1 || fixes[0].Text != "replaced DIMM B2" || fixes[0].Incident != inc.ID {
		t.Fatalf("PreviousFixes = %v, %v", fixes, err)
	}
}

// The handler mounts on the API's mux as "GET /kb/"; a method-less "/kb/"
// would conflict with a "GET /" status page.
func TestHandlerMountsOnTheAPI(t *testing.T) {
	kb, err := knowledge.New(knowledge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Options{Extra: map[string]http.Handler{
		"GET /kb/": kb.Handler(),
		"GET /":    http.NotFoundHandler(), // stands in for the status page
	}})
	srv := httptest.NewServer(api)
	defer srv.Close()
	for target, want := range map[string]int{"/kb/": 200, "/kb/guest-crash": 200, "/kb/nope": 404} {
		res, err := http.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", target, res.StatusCode, want)
		}
		if want == 200 && !strings.Contains(string(b), "vmtriage runbooks") {
			t.Errorf("GET %s did not serve a runbook page", target)
		}
	}
	res, err := http.Post(srv.URL+"/kb/guest-crash", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /kb/guest-crash = %d, want 405", res.StatusCode)
	}
}
