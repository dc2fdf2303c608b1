package store_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// t0 is a fixed, period-aligned test time.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newStore(t *testing.T) (*store.Store, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0.Add(time.Hour))
	return storetest.New(t, store.Options{Clock: clk}), clk
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func vmObs(id, host, site string, state model.State, at time.Time) model.Observation {
	return model.Observation{Source: "libvirt", Kind: model.KindVM, ID: id, Host: host, Site: site,
		State: state, TimeGenerated: at, TimeReceived: at.Add(time.Second)}
}

func hostObs(id, site string, at time.Time, facts map[string]any) model.Observation {
	return model.Observation{Source: "prometheus", Kind: model.KindHost, ID: id, Site: site,
		Attrs: facts, TimeGenerated: at, TimeReceived: at.Add(time.Second)}
}

func svcObs(host, name string, state model.State, at time.Time) model.Observation {
	return model.Observation{Source: "heartbeat", Kind: model.KindService, ID: name, Host: host,
		State: state, TimeGenerated: at}
}

func vms(n int, host string) []model.Observation {
	out := make([]model.Observation, n)
	for i := range out {
		out[i] = vmObs("vm-"+strconv.Itoa(i), host, "pod-a", model.StateRunning, t0)
	}
	return out
}

func countObs(ds []store.Delivery) int {
	n := 0
	for _, d := range ds {
		n += len(d.Observations)
	}
	return n
}

func ids(ds []store.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// eventually polls f until it returns true, for behaviour that depends on
// Redis's own wall clock (XAUTOCLAIM idle time, key expiry).
func eventually(t *testing.T, within time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestObservationStream(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s *store.Store)
	}{
		{
			name: "append read ack",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				if err := s.AppendObservations(ctx, vms(1203, "host-1")); err != nil {
					t.Fatal(err)
				}
				got, err := s.ReadObservations(ctx, "c1", 10, 100*time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 3 || countObs(got) != 1203 || len(got[0].Observations) != 500 {
					t.Fatalf("got %d entries with %d observations, want 3 chunks (500, 500, 203) of 1203", len(got), countObs(got))
				}
				if o := got[2].Observations[202]; o.ID != "vm-1202" || !o.TimeGenerated.Equal(t0) {
					t.Fatalf("last observation = %+v", o)
				}
				pending, lag, err := s.Backlog(ctx)
				if err != nil || pending != 3 || lag != 0 {
					t.Fatalf("backlog = %d, %d, %v; want 3, 0, nil", pending, lag, err)
				}
				if err := s.AckObservations(ctx, ids(got)...); err != nil {
					t.Fatal(err)
				}
				pending, lag, err = s.Backlog(ctx)
				if err != nil || pending != 0 || lag != 0 {
					t.Fatalf("backlog after ack = %d, %d, %v; want 0, 0, nil", pending, lag, err)
				}
			},
		},
		{
			name: "timeout returns nil",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				for _, block := range []time.Duration{0, -1, 50 * time.Millisecond} {
					got, err := s.ReadObservations(ctx, "c1", 10, block)
					if err != nil || got != nil {
						t.Fatalf("read with block %s = %v, %v; want nil, nil", block, got, err)
					}
				}
			},
		},
		{
			name: "backlog counts undelivered entries as lag",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				if err := s.AppendObservations(ctx, vms(1000, "h")); err != nil {
					t.Fatal(err)
				}
				pending, lag, err := s.Backlog(ctx)
				if err != nil || pending != 0 || lag != 2 {
					t.Fatalf("backlog before any read = %d, %d, %v; want 0, 2, nil", pending, lag, err)
				}
				if _, err := s.ReadObservations(ctx, "c1", 1, 0); err != nil {
					t.Fatal(err)
				}
				pending, lag, err = s.Backlog(ctx)
				if err != nil || pending != 1 || lag != 1 {
					t.Fatalf("backlog after one read = %d, %d, %v; want 1, 1, nil", pending, lag, err)
				}
			},
		},
		{
			name: "reclaim from a dead consumer",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				if err := s.AppendObservations(ctx, vms(10, "h")); err != nil {
					t.Fatal(err)
				}
				dead, err := s.ReadObservations(ctx, "dead", 10, 0)
				if err != nil || len(dead) != 1 {
					t.Fatalf("read = %v, %v", dead, err)
				}
				// The dead consumer never acks. Nothing is stale yet for a
				// long minIdle; with a short one, Redis's clock decides.
				early, err := s.ClaimStaleObservations(ctx, "alive", time.Hour, 10)
				if err != nil || len(early) != 0 {
					t.Fatalf("claim with 1h min idle = %v, %v; want nothing", early, err)
				}
				var claimed []store.Delivery
				eventually(t, 5*time.Second, func() bool {
					claimed, err = s.ClaimStaleObservations(ctx, "alive", 100*time.Millisecond, 10)
					if err != nil {
						t.Fatal(err)
					}
					return len(claimed) > 0
				})
				if len(claimed) != 1 || claimed[0].ID != dead[0].ID || countObs(claimed) != 10 {
					t.Fatalf("claimed %v, want entry %s with 10 observations", ids(claimed), dead[0].ID)
				}
				if err := s.AckObservations(ctx, claimed[0].ID); err != nil {
					t.Fatal(err)
				}
				again, err := s.ClaimStaleObservations(ctx, "alive", 0, 10)
				if err != nil || len(again) != 0 {
					t.Fatalf("claim after ack = %v, %v; want nothing", again, err)
				}
			},
		},
		{
			name: "claim and backlog before any stream or group exists",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				if pending, lag, err := s.Backlog(ctx); err != nil || pending != 0 || lag != 0 {
					t.Fatalf("backlog = %d, %d, %v; want 0, 0, nil", pending, lag, err)
				}
				got, err := s.ClaimStaleObservations(ctx, "c1", 0, 10)
				if err != nil || len(got) != 0 {
					t.Fatalf("claim = %v, %v; want nothing", got, err)
				}
			},
		},
		{
			name: "undecodable entry is delivered empty and can be acked",
			run: func(t *testing.T, ctx context.Context, s *store.Store) {
				rdb := storetest.Client(t)
				stream := store.KeysOf(s).Observations()
				if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"obs", "{not json"}}).Err(); err != nil {
					t.Fatal(err)
				}
				if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"other", "x"}}).Err(); err != nil {
					t.Fatal(err)
				}
				if err := s.AppendObservations(ctx, vms(2, "h")); err != nil {
					t.Fatal(err)
				}
				got, err := s.ReadObservations(ctx, "c1", 10, 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 3 || len(got[0].Observations) != 0 || len(got[1].Observations) != 0 || len(got[2].Observations) != 2 {
					t.Fatalf("got %+v; want two empty deliveries then 2 observations", got)
				}
				if err := s.AckObservations(ctx, ids(got)...); err != nil {
					t.Fatal(err)
				}
				if pending, lag, err := s.Backlog(ctx); err != nil || pending+lag != 0 {
					t.Fatalf("backlog = %d, %d, %v; want empty", pending, lag, err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			tc.run(t, testCtx(t), s)
		})
	}
}

func TestApplyVM(t *testing.T) {
	t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	tests := []struct {
		name    string
		batches [][]model.Observation
		id      string
		want    model.VMStatus // ID, Host, Site, State, Since, Last.Generated checked
		hostVMs map[string][]string
		siteVMs map[string][]string
	}{
		{
			name:    "new vm",
			batches: [][]model.Observation{{vmObs("vm-1", "h1", "pod-a", model.StateRunning, t1)}},
			id:      "vm-1",
			want:    model.VMStatus{Host: "h1", Site: "pod-a", State: model.StateRunning, Since: t1, Last: model.Stamps{Generated: t1}},
			hostVMs: map[string][]string{"h1": {"vm-1"}},
			siteVMs: map[string][]string{"pod-a": {"vm-1"}},
		},
		{
			name: "older record does not regress state",
			batches: [][]model.Observation{
				{vmObs("vm-1", "h1", "pod-a", model.StateRunning, t2)},
				{vmObs("vm-1", "h2", "pod-b", model.StateCrashed, t1)},
			},
			id:      "vm-1",
			want:    model.VMStatus{Host: "h1", Site: "pod-a", State: model.StateRunning, Since: t2, Last: model.Stamps{Generated: t2}},
			hostVMs: map[string][]string{"h1": {"vm-1"}, "h2": nil},
		},
		{
			name: "out of order within one batch",
			batches: [][]model.Observation{{
				vmObs("vm-1", "h1", "pod-a", model.StateCrashed, t2),
				vmObs("vm-1", "h1", "pod-a", model.StateRunning, t1),
			}},
			id:   "vm-1",
			want: model.VMStatus{Host: "h1", Site: "pod-a", State: model.StateCrashed, Since: t2, Last: model.Stamps{Generated: t2}},
		},
		{
			name: "since stays while the state does",
			batches: [][]model.Observation{
				{vmObs("vm-1", "h1", "pod-a", model.StateRunning, t1)},
				{vmObs("vm-1", "h1", "pod-a", model.StateRunning, t2)},
			},
			id:   "vm-1",
			want: model.VMStatus{Host: "h1", Site: "pod-a", State: model.StateRunning, Since: t1, Last: model.Stamps{Generated: t2}},
		},
		{
			name: "since moves with the state",
			batches: [][]model.Observation{
				{vmObs("vm-1", "h1", "pod-a", model.StateRunning, t1)},
				{vmObs("vm-1", "h1", "pod-a", model.StateRunning, t2)},
				{vmObs("vm-1", "h1", "pod-a", model.StateCrashed, t3)},
			},
			id:   "vm-1",
			want: model.VMStatus{Host: "h1", Site: "pod-a", State: model.StateCrashed, Since: t3, Last: model.Stamps{Generated: t3}},
		},
		{
			name: "host move leaves the old host's set",
			batches: [][]model.Observation{
				{vmObs("vm-1", "h1", "pod-a", model.StateRunning, t1), vmObs("vm-2", "h1", "pod-a", model.StateRunning, t1)},
				{vmObs("vm-1", "h2", "pod-b", model.StateRunning, t2)},
			},
			id:      "vm-1",
			want:    model.VMStatus{Host: "h2", Site: "pod-b", State: model.StateRunning, Since: t1, Last: model.Stamps{Generated: t2}},
			hostVMs: map[string][]string{"h1": {"vm-2"}, "h2": {"vm-1"}},
			siteVMs: map[string][]string{"pod-a": {"vm-2"}, "pod-b": {"vm-1"}},
		},
		{
			name: "record without host keeps the known host",
			batches: [][]model.Observation{
				{vmObs("vm-1", "h1", "pod-a", model.StateRunning, t1)},
				{vmObs("vm-1", "", "", model.StateCrashed, t2)},
			},
			id:      "vm-1",
			want:    model.VMStatus{Host: "h1", Site: "pod-a", State: model.StateCrashed, Since: t2, Last: model.Stamps{Generated: t2}},
			hostVMs: map[string][]string{"h1": {"vm-1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			s, clk := newStore(t)
			for _, b := range tc.batches {
				if err := s.Apply(ctx, b); err != nil {
					t.Fatal(err)
				}
				clk.Advance(time.Second)
			}
			got, err := s.VM(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.id || got.Host != tc.want.Host || got.Site != tc.want.Site || got.State != tc.want.State ||
				!got.Since.Equal(tc.want.Since) || !got.Last.Generated.Equal(tc.want.Last.Generated) {
				t.Fatalf("VM = %+v\nwant %+v", got, tc.want)
			}
			for host, want := range tc.hostVMs {
				list, err := s.ListVMs(ctx, "", host)
				if err != nil {
					t.Fatal(err)
				}
				if g := vmIDs(list); !slices.Equal(g, want) {
					t.Errorf("VMs of host %s = %v, want %v", host, g, want)
				}
			}
			for site, want := range tc.siteVMs {
				list, err := s.ListVMs(ctx, site, "")
				if err != nil {
					t.Fatal(err)
				}
				if g := vmIDs(list); !slices.Equal(g, want) {
					t.Errorf("VMs of site %s = %v, want %v", site, g, want)
				}
			}
		})
	}
}

func vmIDs(list []model.VMStatus) []string {
	var out []string
	for _, v := range list {
		out = append(out, v.ID)
	}
	return out
}

func TestApplyStampsAndIsIdempotent(t *testing.T) {
	ctx := testCtx(t)
	s, clk := newStore(t)
	o := vmObs("vm-1", "h1", "pod-a", model.StateCrashed, t0)
	o.Event = "VirtualMachineCrashed"
	o.Attrs = map[string]any{model.AttrCrashReason: "panicked", "n": 3.0}
	batch := []model.Observation{o}
	first := clk.Now()
	if err := s.Apply(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if !batch[0].TimeStored.Equal(first) {
		t.Fatalf("TimeStored = %s, want the clock's %s", batch[0].TimeStored, first)
	}
	clk.Advance(time.Minute)
	again := []model.Observation{o}
	if err := s.Apply(ctx, again); err != nil {
		t.Fatal(err)
	}
	got, err := s.VM(ctx, "vm-1")
	if err != nil {
		t.Fatal(err)
	}
	want := model.Stamps{Generated: t0, Received: t0.Add(time.Second), Stored: first}
	if got.Last != want {
		t.Errorf("Last = %+v, want %+v (re-applying must change nothing)", got.Last, want)
	}
	if got.Event != o.Event || got.Source != "libvirt" || got.Attrs[model.AttrCrashReason] != "panicked" || got.Attrs["n"] != 3.0 {
		t.Errorf("VM = %+v", got)
	}
	if _, err := s.VM(ctx, "vm-404"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown VM: err = %v, want ErrNotFound", err)
	}
	sites, err := s.Sites(ctx)
	if err != nil || !slices.Equal(sites, []string{"pod-a"}) {
		t.Errorf("Sites = %v, %v", sites, err)
	}
	all, err := s.ListVMs(ctx, "", "")
	if err != nil || len(all) != 1 {
		t.Errorf("ListVMs = %v, %v", all, err)
	}
}

func TestApplyHost(t *testing.T) {
	const period = time.Minute
	p0 := t0
	p1 := t0.Add(period)
	tests := []struct {
		name    string
		batches [][]model.Observation
		check   func(t *testing.T, ctx context.Context, s *store.Store)
	}{
		{
			name: "facts of one period merge",
			batches: [][]model.Observation{
				{hostObs("h1", "pod-a", p0.Add(5*time.Second), map[string]any{model.AttrECCUncorrected: 2.0})},
				{hostObs("h1", "pod-a", p0.Add(10*time.Second), map[string]any{model.AttrNICUp: false, model.AttrCrashReason: "x"})},
			},
			check: func(t *testing.T, ctx context.Context, s *store.Store) {
				h := mustHost(t, ctx, s, "h1", 5)
				if len(h.Periods) != 1 || !h.Periods[0].Start.Equal(p0) {
					t.Fatalf("periods = %+v, want one starting %s", h.Periods, p0)
				}
				want := map[string]any{model.AttrECCUncorrected: 2.0, model.AttrNICUp: false, model.AttrCrashReason: "x"}
				if !sameFacts(h.Periods[0].Facts, want) || !sameFacts(h.Facts, want) {
					t.Errorf("period facts %v, latest facts %v; want both %v", h.Periods[0].Facts, h.Facts, want)
				}
				if h.Site != "pod-a" || !h.Last.Generated.Equal(p0.Add(10*time.Second)) {
					t.Errorf("host = %+v", h)
				}
			},
		},
		{
			name: "period facts expire after retention",
			batches: [][]model.Observation{
				{hostObs("h1", "pod-a", p0, map[string]any{model.AttrMCE: 1.0})},
			},
			check: func(t *testing.T, ctx context.Context, s *store.Store) {
				ttl, err := storetest.Client(t).PTTL(ctx, store.KeysOf(s).Period("h1", p0)).Result()
				if err != nil {
					t.Fatal(err)
				}
				want := store.DefaultPeriodRetention * period
				if ttl <= want-time.Minute || ttl > want {
					t.Errorf("period TTL = %s, want about %s", ttl, want)
				}
			},
		},
		{
			name: "periods newest first, old ones dropped from the list",
			batches: [][]model.Observation{
				{hostObs("h1", "", p0, map[string]any{model.AttrMCE: 1.0})},
				{hostObs("h1", "", p1, map[string]any{model.AttrMCE: 2.0})},
				{hostObs("h1", "", p0.Add(store.DefaultPeriodRetention*period+period), map[string]any{model.AttrMCE: 3.0})},
			},
			check: func(t *testing.T, ctx context.Context, s *store.Store) {
				h := mustHost(t, ctx, s, "h1", 10)
				var starts []time.Time
				for _, p := range h.Periods {
					starts = append(starts, p.Start)
				}
				want := []time.Time{p0.Add(store.DefaultPeriodRetention*period + period), p1}
				if !slices.EqualFunc(starts, want, time.Time.Equal) {
					t.Errorf("period starts = %v, want %v", starts, want)
				}
				if n := len(mustHost(t, ctx, s, "h1", 1).Periods); n != 1 {
					t.Errorf("Host(1) returned %d periods", n)
				}
				if n := len(mustHost(t, ctx, s, "h1", 0).Periods); n != 0 {
					t.Errorf("Host(0) returned %d periods", n)
				}
			},
		},
		{
			name: "late fact does not overwrite a newer one",
			batches: [][]model.Observation{
				{hostObs("h1", "pod-a", p0.Add(30*time.Second), map[string]any{model.AttrTempC: 90.0})},
				{hostObs("h1", "pod-a", p0.Add(10*time.Second), map[string]any{model.AttrTempC: 40.0, model.AttrPSUOK: true})},
			},
			check: func(t *testing.T, ctx context.Context, s *store.Store) {
				h := mustHost(t, ctx, s, "h1", 1)
				want := map[string]any{model.AttrTempC: 90.0, model.AttrPSUOK: true}
				if !sameFacts(h.Facts, want) || !sameFacts(h.Periods[0].Facts, want) {
					t.Errorf("facts %v, period facts %v; want %v", h.Facts, h.Periods[0].Facts, want)
				}
				if !h.Last.Generated.Equal(p0.Add(30 * time.Second)) {
					t.Errorf("last generated = %s", h.Last.Generated)
				}
			},
		},
		{
			name: "reported state and vms",
			batches: [][]model.Observation{{
				{Source: "libvirt", Kind: model.KindHost, ID: "h1", Site: "pod-a", State: model.StateUp, TimeGenerated: p0},
				vmObs("vm-2", "h1", "pod-a", model.StateRunning, p0),
				vmObs("vm-1", "h1", "pod-a", model.StateRunning, p0),
			}},
			check: func(t *testing.T, ctx context.Context, s *store.Store) {
				h := mustHost(t, ctx, s, "h1", 3)
				if h.Reported != model.StateUp || h.State != model.HostUnknown || !slices.Equal(h.VMs, []string{"vm-1", "vm-2"}) {
					t.Errorf("host = %+v", h)
				}
				if len(h.Periods) != 0 || h.Facts != nil {
					t.Errorf("host without facts has periods %v and facts %v", h.Periods, h.Facts)
				}
				if _, err := s.Host(ctx, "h404", 1); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("unknown host: err = %v, want ErrNotFound", err)
				}
			},
		},
		{
			name: "services per host and name",
			batches: [][]model.Observation{
				{svcObs("h1", "libvirtd", model.StateUp, p0), svcObs("h2", "libvirtd", model.StateDown, p0)},
				{svcObs("h1", "libvirtd", model.StateUp, p1), svcObs("h2", "libvirtd", model.StateUp, p0.Add(-time.Second))},
				{svcObs("h1", "ovs", model.StateDown, p1)},
			},
			check: func(t *testing.T, ctx context.Context, s *store.Store) {
				h1 := mustHost(t, ctx, s, "h1", 0)
				if len(h1.Services) != 2 || h1.Services[0].Name != "libvirtd" || h1.Services[0].State != model.StateUp ||
					!h1.Services[0].Since.Equal(p0) || !h1.Services[0].Last.Generated.Equal(p1) ||
					h1.Services[1].Name != "ovs" || h1.Services[1].State != model.StateDown || h1.Services[1].Host != "h1" {
					t.Errorf("services of h1 = %+v", h1.Services)
				}
				h2 := mustHost(t, ctx, s, "h2", 0)
				if len(h2.Services) != 1 || h2.Services[0].State != model.StateDown {
					t.Errorf("services of h2 = %+v (late 'up' must not win)", h2.Services)
				}
			},
		},
		{
			name: "derived period state",
			batches: [][]model.Observation{
				{hostObs("h1", "pod-a", p0, map[string]any{model.AttrECCUncorrected: 5.0})},
			},
			check: func(t *testing.T, ctx context.Context, s *store.Store) {
				save := func(start time.Time, st model.HostState, reasons ...string) {
					t.Helper()
					if err := s.SaveHostPeriod(ctx, "h1", model.HostPeriod{Start: start, State: st, Reasons: reasons}); err != nil {
						t.Fatal(err)
					}
				}
				save(p0, model.HostFailed, "ecc_uncorrected=5")
				save(p1, model.HostFailed, "ecc_uncorrected=7")
				save(p0, model.HostHealthy) // an older period does not change the current state
				h := mustHost(t, ctx, s, "h1", 5)
				if h.State != model.HostFailed || !h.Since.Equal(p0) {
					t.Errorf("state %s since %s; want failed since %s", h.State, h.Since, p0)
				}
				if len(h.Periods) != 2 || h.Periods[0].State != model.HostFailed || !slices.Equal(h.Periods[0].Reasons, []string{"ecc_uncorrected=7"}) ||
					h.Periods[1].State != model.HostHealthy || h.Periods[1].Facts[model.AttrECCUncorrected] != 5.0 {
					t.Errorf("periods = %+v", h.Periods)
				}
				save(p1.Add(period), model.HostHealthy)
				h = mustHost(t, ctx, s, "h1", 0)
				if h.State != model.HostHealthy || !h.Since.Equal(p1.Add(period)) {
					t.Errorf("state %s since %s; want healthy since %s", h.State, h.Since, p1.Add(period))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			s, clk := newStore(t)
			for _, b := range tc.batches {
				if err := s.Apply(ctx, b); err != nil {
					t.Fatal(err)
				}
				clk.Advance(time.Second)
			}
			tc.check(t, ctx, s)
		})
	}
}

func mustHost(t *testing.T, ctx context.Context, s *store.Store, id string, periods int) model.HostStatus {
	t.Helper()
	h, err := s.Host(ctx, id, periods)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func sameFacts(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
