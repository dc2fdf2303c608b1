package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

func TestRegisteredSites(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	st := storetest.New(t, store.Options{Clock: clock.NewFake(t0)})
	prom := store.SiteEndpoint{Kind: "prometheus", URL: "https://prom.pod-b.example"}
	obs := store.SiteEndpoint{Kind: "observations", URL: "https://coll.pod-a.example/v1/observations"}
	for _, rs := range []store.RegisteredSite{
		{Site: "pod-b", Endpoints: []store.SiteEndpoint{prom}},
		{Site: "pod-a", Endpoints: []store.SiteEndpoint{obs, prom}},
		{Site: "pod-a", Endpoints: []store.SiteEndpoint{obs}}, // re-registration replaces
	} {
		if err := st.RegisterSite(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.RegisteredSites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Site != "pod-a" || got[1].Site != "pod-b" || len(got[0].Endpoints) != 1 ||
		got[0].Endpoints[0] != obs || !got[0].RegisteredAt.Equal(t0) {
		t.Fatalf("registered sites %+v", got)
	}
	// Observed sites are another list and stay empty.
	if seen, err := st.Sites(ctx); err != nil || len(seen) != 0 {
		t.Fatalf("Sites() = %v, %v; registration must not add observed sites", seen, err)
	}

	status := store.EndpointStatus{Site: "pod-a", Endpoint: obs.ID(), LastPoll: t0, LastError: "status 503", Failures: 2}
	if err := st.SaveEndpointStatus(ctx, status); err != nil {
		t.Fatal(err)
	}
	all, err := st.EndpointStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := all["pod-a"][obs.ID()]; s.Failures != 2 || s.LastError != "status 503" || !s.LastPoll.Equal(t0) {
		t.Fatalf("status %+v", all)
	}
	if err := st.DeleteEndpointStatus(ctx, "pod-a", obs.ID()); err != nil {
		t.Fatal(err)
	}
	if all, _ = st.EndpointStatuses(ctx); len(all) != 0 {
		t.Fatalf("status kept after delete: %+v", all)
	}

	if err := st.UnregisterSite(ctx, "pod-b"); err != nil {
		t.Fatal(err)
	}
	if err := st.UnregisterSite(ctx, "pod-b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unregistering twice: %v, want ErrNotFound", err)
	}
	if got, _ = st.RegisteredSites(ctx); len(got) != 1 || got[0].Site != "pod-a" {
		t.Fatalf("after unregister: %+v", got)
	}
}

func TestLeaseEndpoint(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t, store.Options{})
	tests := []struct {
		name  string
		owner string
		want  bool
	}{
		{"the first replica takes it", "r1", true},
		{"another replica is refused", "r2", false},
		{"the holder renews it", "r1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.LeaseEndpoint(ctx, "pod-a", "prometheus https://p", tt.owner, time.Minute)
			if err != nil || got != tt.want {
				t.Fatalf("LeaseEndpoint(%s) = %v, %v; want %v", tt.owner, got, err, tt.want)
			}
		})
	}
}
