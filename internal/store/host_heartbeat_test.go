package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// TestHostHeartbeatChangesNothing: a host record with neither state nor
// facts (a host heartbeat) must not change the host's reported state,
// source or event, nor, being newer, make its next report look stale, nor
// create a host nothing reported.
func TestHostHeartbeatChangesNothing(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	st := storetest.New(t, store.Options{Clock: clock.NewFake(t0)})
	report := func(s model.State, gen time.Time) model.Observation {
		return model.Observation{Source: "prometheus", Kind: model.KindHost, ID: "host-1", Site: "pod-a", State: s, Event: "bmc", TimeGenerated: gen}
	}
	beat := model.Observation{Source: "heartbeat/pod-a", Kind: model.KindHost, ID: "host-1", TimeGenerated: t0.Add(time.Minute)}
	ghost := model.Observation{Source: "heartbeat/pod-a", Kind: model.KindHost, ID: "host-never-reported", TimeGenerated: t0}
	if err := st.Apply(ctx, []model.Observation{report(model.StateUp, t0), beat, ghost}); err != nil {
		t.Fatal(err)
	}
	h, err := st.Host(ctx, "host-1", 5)
	if err != nil {
		t.Fatal(err)
	}
	if h.Reported != model.StateUp || h.Site != "pod-a" || !h.Last.Generated.Equal(t0) || len(h.Periods) != 0 {
		t.Fatalf("after a heartbeat: %+v", h)
	}
	if _, err := st.Host(ctx, "host-never-reported", 0); err == nil {
		t.Error("a heartbeat created a host nothing reported")
	}
	// A report generated before the heartbeat's time still applies.
	if err := st.Apply(ctx, []model.Observation{report(model.StateDown, t0.Add(30*time.Second))}); err != nil {
		t.Fatal(err)
	}
	if h, _ = st.Host(ctx, "host-1", 0); h.Reported != model.StateDown {
		t.Fatalf("the report after a heartbeat was taken as stale: %+v", h)
	}
}
