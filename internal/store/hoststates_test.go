package store_test

import (
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/bot"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

// The site status reads host states in one go through the store.
var _ bot.HostStateReader = (*store.Store)(nil)

// TestHostStates checks that HostStates gives what Host gives for state,
// since, site and reported state, for many hosts at once, and leaves out
// hosts the store does not know.
func TestHostStates(t *testing.T) {
	ctx := testCtx(t)
	s, _ := newStore(t)
	p0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	if err := s.Apply(ctx, []model.Observation{
		{Source: "libvirt", Kind: model.KindHost, ID: "h1", Site: "pod-a", State: model.StateUp, TimeGenerated: p0},
		{Source: "libvirt", Kind: model.KindHost, ID: "h2", Site: "pod-a", State: model.StateUp, TimeGenerated: p0},
		{Source: "libvirt", Kind: model.KindHost, ID: "h3", Site: "pod-b", State: model.StateDown, TimeGenerated: p0},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveHostPeriod(ctx, "h1", model.HostPeriod{Start: p0, State: model.HostDegraded}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveHostPeriod(ctx, "h2", model.HostPeriod{Start: p0, State: model.HostFailed}); err != nil {
		t.Fatal(err)
	}
	got, err := s.HostStates(ctx, []string{"h1", "h2", "h3", "h404"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["h404"]; ok || len(got) != 3 {
		t.Errorf("got %d hosts (%v), want h1, h2, h3", len(got), got)
	}
	for _, id := range []string{"h1", "h2", "h3"} {
		want, err := s.Host(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		h := got[id]
		if h.ID != id || h.Site != want.Site || h.Reported != want.Reported || h.State != want.State || !h.Since.Equal(want.Since) {
			t.Errorf("HostStates[%s] = %+v, Host gives %s %s %s since %s", id, h, want.Site, want.Reported, want.State, want.Since)
		}
	}
	if got["h1"].State != model.HostDegraded || got["h2"].State != model.HostFailed || got["h3"].State != model.HostUnknown {
		t.Errorf("states = %s, %s, %s; want degraded, failed, unknown", got["h1"].State, got["h2"].State, got["h3"].State)
	}
}
