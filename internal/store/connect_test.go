package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		want    store.URLOptions
		wantErr string
	}{
		{
			name: "standalone",
			url:  "redis://127.0.0.1:6379/0",
			want: store.URLOptions{Kind: "standalone", Addrs: []string{"127.0.0.1:6379"}},
		},
		{
			name: "standalone with user, password, db and an option",
			url:  "redis://app:p%40ss@redis.internal:6380/3?pool_size=7",
			want: store.URLOptions{Kind: "standalone", Addrs: []string{"redis.internal:6380"}, DB: 3, Username: "app", Password: "p@ss", PoolSize: 7},
		},
		{
			name: "tls and default port",
			url:  "rediss://:pw@cache.example.com",
			want: store.URLOptions{Kind: "standalone", Addrs: []string{"cache.example.com:6379"}, Password: "pw", TLS: true},
		},
		{
			name: "cluster scheme with one seed",
			url:  "redis+cluster://:pw@10.0.0.1:7000",
			want: store.URLOptions{Kind: "cluster", Addrs: []string{"10.0.0.1:7000"}, Password: "pw"},
		},
		{
			name: "cluster scheme with several seeds",
			url:  "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002?pool_size=5",
			want: store.URLOptions{Kind: "cluster", Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"}, PoolSize: 5},
		},
		{
			name: "several hosts mean cluster",
			url:  "rediss://u:pw@h1:7000,h2:7000",
			want: store.URLOptions{Kind: "cluster", Addrs: []string{"h1:7000", "h2:7000"}, Username: "u", Password: "pw", TLS: true},
		},
		{
			name: "sentinel",
			url:  "redis+sentinel://:pw@s1:26379,s2:26379,s3:26379/mymaster/2",
			want: store.URLOptions{Kind: "sentinel", Addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, DB: 2, Master: "mymaster", Password: "pw"},
		},
		{
			name: "sentinel with its own password",
			url:  "redis+sentinel://s1:26379/mymaster?sentinel_password=spw",
			want: store.URLOptions{Kind: "sentinel", Addrs: []string{"s1:26379"}, Master: "mymaster", SentinelPassword: "spw"},
		},
		{name: "sentinel without master", url: "redis+sentinel://:pw@s1:26379", wantErr: "master name"},
		{name: "cluster with a db", url: "redis+cluster://h1:7000/2", wantErr: "database 0"},
		{name: "unknown scheme", url: "http://h1:7000", wantErr: "unknown scheme"},
		{name: "no scheme", url: "127.0.0.1:6379", wantErr: "want redis://"},
		{name: "no host", url: "redis://", wantErr: "no host"},
		{name: "unknown option", url: "redis://h:1?bogus=1", wantErr: "bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.ParseURLForTest(tc.url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tc.want.Kind || !slices.Equal(got.Addrs, tc.want.Addrs) || got.DB != tc.want.DB ||
				got.Master != tc.want.Master || got.Username != tc.want.Username || got.Password != tc.want.Password ||
				got.SentinelPassword != tc.want.SentinelPassword || got.TLS != tc.want.TLS || got.PoolSize != tc.want.PoolSize {
				t.Errorf("parsed %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}

// TestConnectErrorsHideThePassword points URLs with a password at a port
// nothing listens on, and at malformed forms, and checks no error shows it.
func TestConnectErrorsHideThePassword(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	tests := []struct {
		name string
		url  string
	}{
		{name: "standalone, closed port", url: "redis://app:" + secret + "@127.0.0.1:1/0"},
		{name: "cluster, closed ports", url: "redis+cluster://:" + secret + "@127.0.0.1:1,127.0.0.1:2"},
		{name: "sentinel, closed port", url: "redis+sentinel://:" + secret + "@127.0.0.1:1/mymaster"},
		{name: "bad port", url: "redis://app:" + secret + "@127.0.0.1:notaport/0"},
		{name: "bad db", url: "redis://app:" + secret + "@127.0.0.1:1/zero"},
		{name: "escaped password, bad port", url: "redis://app:" + secret + "%21@127.0.0.1:x/0"},
		{name: "password option, unknown option", url: "redis://127.0.0.1:1/0?password=" + secret + "&bogus=1"},
		{name: "sentinel password option", url: "redis+sentinel://127.0.0.1:1/m?sentinel_password=" + secret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Sentinel clients retry until the deadline: keep it short.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			rdb, err := store.Connect(ctx, tc.url)
			if err == nil {
				_ = rdb.Close()
				t.Fatal("connected to nothing")
			}
			t.Log(err)
			for e := err; e != nil; e = errors.Unwrap(e) {
				if strings.Contains(e.Error(), secret) {
					t.Fatalf("error shows the password: %v", e)
				}
			}
		})
	}
}

// TestEmbedded runs the store end to end on the embedded Redis, through
// Connect, as the demo does; and through a Cluster client, which refuses
// any multi-key command whose keys are not in one slot.
func TestEmbedded(t *testing.T) {
	e, err := store.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !strings.HasPrefix(e.URL(), "redis://127.0.0.1:") || !strings.Contains(e.URL(), e.Addr()) {
		t.Fatalf("URL %s, Addr %s", e.URL(), e.Addr())
	}
	tests := []struct {
		name   string
		url    string
		prefix string
	}{
		{name: "standalone", url: e.URL(), prefix: "emb"},
		{name: "cluster client", url: "redis+cluster://" + e.Addr(), prefix: "embc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			rdb, err := store.Connect(ctx, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			s := store.New(store.Options{Client: rdb, Prefix: tc.prefix})
			exerciseStore(t, ctx, s)
		})
	}

	t.Run("keys expire in real time", func(t *testing.T) {
		ctx := testCtx(t)
		rdb, err := store.Connect(ctx, e.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer rdb.Close()
		if err := rdb.Set(ctx, "ttl-check", "x", 200*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 1500*time.Millisecond, func() bool {
			n, err := rdb.Exists(ctx, "ttl-check").Result()
			if err != nil {
				t.Fatal(err)
			}
			return n == 0
		})
	})
}

// exerciseStore touches every script and multi-key operation once.
func exerciseStore(t *testing.T, ctx context.Context, s *store.Store) {
	t.Helper()
	now := time.Now().UTC()
	obs := []model.Observation{
		vmObs("vm-1", "h1", "pod-a", model.StateRunning, now),
		hostObs("h1", "pod-a", now, map[string]any{model.AttrMCE: 1.0}),
		svcObs("h1", "libvirtd", model.StateUp, now),
	}
	if err := s.AppendObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	ds, err := s.ReadObservations(ctx, "c1", 10, 100*time.Millisecond)
	if err != nil || len(ds) != 1 || len(ds[0].Observations) != 3 {
		t.Fatalf("read = %+v, %v", ds, err)
	}
	if err := s.Apply(ctx, ds[0].Observations); err != nil {
		t.Fatal(err)
	}
	if err := s.AckObservations(ctx, ds[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveHostPeriod(ctx, "h1", model.HostPeriod{Start: now, State: model.HostDegraded}); err != nil {
		t.Fatal(err)
	}
	h, err := s.Host(ctx, "h1", 3)
	if err != nil || h.State != model.HostDegraded || len(h.VMs) != 1 || len(h.Services) != 1 || len(h.Periods) != 1 {
		t.Fatalf("host = %+v, %v", h, err)
	}
	id, err := s.NextIncidentID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inc := newIncident(id, "fp", model.StatusFiring, now)
	mustSave(t, ctx, s, inc)
	evs, err := s.ReadIncidentEvents(ctx, "notifier", "c1", 10, 0)
	if err != nil || len(evs) != 1 || evs[0].Incident.ID != id {
		t.Fatalf("events = %+v, %v", evs, err)
	}
	if err := s.AckIncidentEvents(ctx, "notifier", evs[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.ScheduleEscalation(ctx, id, now); err != nil {
		t.Fatal(err)
	}
	due, err := s.ClaimDueEscalations(ctx, now, 10)
	if err != nil || !slices.Equal(due, []string{id}) {
		t.Fatalf("due = %v, %v", due, err)
	}
	if err := s.SaveSilence(ctx, model.Silence{ID: "sil-1", Host: "h1", EndsAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.ExpireSilence(ctx, "sil-1", now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Backlog(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

var _ redis.UniversalClient = (*redis.ClusterClient)(nil)
