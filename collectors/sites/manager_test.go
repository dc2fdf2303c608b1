package sites

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// recSink records what the manager and pollers send.
type recSink struct {
	mu  sync.Mutex
	obs []model.Observation
	err error
}

func (s *recSink) AppendObservations(_ context.Context, obs []model.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.obs = append(s.obs, obs...)
	return nil
}

// take returns and forgets what was sent.
func (s *recSink) take() []model.Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.obs
	s.obs = nil
	return out
}

// fakeKind makes pollers that count their polls and fail while told to.
type fakeKind struct {
	mu      sync.Mutex
	made    []string
	polls   map[string]int
	failing map[string]bool
}

func newFakeKind() *fakeKind {
	return &fakeKind{polls: map[string]int{}, failing: map[string]bool{}}
}

func (k *fakeKind) kind() Kind {
	return Kind{Field: "url", Schemes: []string{"https"}, New: func(site string, ep store.SiteEndpoint, _ Deps) (Poller, error) {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.made = append(k.made, site+" "+ep.URL)
		return fakePoller{k: k, key: site + " " + ep.URL}, nil
	}}
}

func (k *fakeKind) fail(key string, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failing[key] = on
}

func (k *fakeKind) count(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.polls[key]
}

type fakePoller struct {
	k   *fakeKind
	key string
}

func (p fakePoller) Poll(context.Context) error {
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	p.k.polls[p.key]++
	if p.k.failing[p.key] {
		return errors.New("connection refused")
	}
	return nil
}

type rig struct {
	t    testing.TB
	ctx  context.Context
	clk  *clock.Fake
	st   *store.Store
	sink *recSink
	kind *fakeKind
	m    *Manager
}

func newRig(t testing.TB) *rig {
	t.Helper()
	clk := clock.NewFake(t0)
	r := &rig{t: t, ctx: context.Background(), clk: clk, st: storetest.New(t, store.Options{Clock: clk}),
		sink: &recSink{}, kind: newFakeKind()}
	r.m = r.manager("replica-1", r.st)
	return r
}

func (r *rig) manager(owner string, reg Registry) *Manager {
	r.t.Helper()
	m, err := NewManager(ManagerOptions{Registry: reg, Sink: r.sink, Kinds: map[string]Kind{"fake": r.kind.kind()},
		Owner: owner, PollInterval: time.Minute, FailAfter: 3, Clock: r.clk,
		Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *rig) register(site string, urls ...string) {
	r.t.Helper()
	rs := store.RegisteredSite{Site: site}
	for _, u := range urls {
		rs.Endpoints = append(rs.Endpoints, store.SiteEndpoint{Kind: "fake", URL: u})
	}
	if err := r.st.RegisterSite(r.ctx, rs); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) step() {
	r.t.Helper()
	if err := r.m.Step(r.ctx); err != nil {
		r.t.Fatal(err)
	}
}

// siteStates lists the site-collectors observations sent, as "site=state".
func siteStates(obs []model.Observation) []string {
	var out []string
	for _, o := range obs {
		if o.Kind == model.KindService && o.ID == ServiceID {
			out = append(out, o.Site+"="+string(o.State))
		}
	}
	slices.Sort(out)
	return out
}

func TestManagerFollowsRegistry(t *testing.T) {
	r := newRig(t)
	steps := []struct {
		name   string
		change func()
		want   []string
	}{
		{"nothing registered", func() {}, nil},
		{"a site with two endpoints", func() { r.register("pod-a", "https://a1", "https://a2") },
			[]string{"pod-a fake https://a1", "pod-a fake https://a2"}},
		{"a second site", func() { r.register("pod-b", "https://b1") },
			[]string{"pod-a fake https://a1", "pod-a fake https://a2", "pod-b fake https://b1"}},
		{"pod-a re-registers with one endpoint changed", func() { r.register("pod-a", "https://a1", "https://a3") },
			[]string{"pod-a fake https://a1", "pod-a fake https://a3", "pod-b fake https://b1"}},
		{"pod-b unregisters", func() {
			if err := r.st.UnregisterSite(r.ctx, "pod-b"); err != nil {
				t.Fatal(err)
			}
		}, []string{"pod-a fake https://a1", "pod-a fake https://a3"}},
	}
	for _, s := range steps {
		s.change()
		r.step()
		if got := r.m.Endpoints(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: pollers %v, want %v", s.name, got, s.want)
		}
		r.clk.Advance(10 * time.Second)
	}
	// Each endpoint got one poller, kept across re-registration.
	if want := []string{"pod-a https://a1", "pod-a https://a2", "pod-b https://b1", "pod-a https://a3"}; !slices.Equal(r.kind.made, want) {
		t.Errorf("pollers made %v, want %v", r.kind.made, want)
	}
	// The statuses of endpoints no longer registered are gone.
	all, err := r.st.EndpointStatuses(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for site, eps := range all {
		for id := range eps {
			ids = append(ids, site+" "+id)
		}
	}
	slices.Sort(ids)
	if want := []string{"pod-a fake https://a1", "pod-a fake https://a3"}; !slices.Equal(ids, want) {
		t.Errorf("statuses kept for %v, want %v", ids, want)
	}
}

func TestManagerPollsEveryPollInterval(t *testing.T) {
	r := newRig(t)
	r.register("pod-a", "https://a1")
	tests := []struct {
		advance time.Duration
		want    int
	}{
		{0, 1},                // polled when first seen
		{10 * time.Second, 1}, // not due yet
		{50 * time.Second, 2}, // a minute after the first
		{59 * time.Second, 2},
		{time.Second, 3},
	}
	for i, tt := range tests {
		r.clk.Advance(tt.advance)
		r.step()
		if got := r.kind.count("pod-a https://a1"); got != tt.want {
			t.Fatalf("step %d: %d polls, want %d", i, got, tt.want)
		}
	}
	st := mustStatus(t, r, "pod-a", "fake https://a1")
	if !st.LastPoll.Equal(r.clk.Now()) || !st.LastSuccess.Equal(st.LastPoll) || st.Failures != 0 {
		t.Errorf("status %+v", st)
	}
}

func mustStatus(t *testing.T, r *rig, site, id string) store.EndpointStatus {
	t.Helper()
	all, err := r.st.EndpointStatuses(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := all[site][id]
	if !ok {
		t.Fatalf("no status for %s %s in %+v", site, id, all)
	}
	return st
}

func TestSiteDownWhenEveryEndpointFails(t *testing.T) {
	r := newRig(t)
	r.register("pod-a", "https://a1", "https://a2")
	r.register("pod-b", "https://b1", "https://b2")
	// pod-a loses both endpoints; pod-b only one.
	for _, k := range []string{"pod-a https://a1", "pod-a https://a2", "pod-b https://b1"} {
		r.kind.fail(k, true)
	}
	steps := []struct {
		name string
		fix  string // endpoint that recovers before the step
		want []string
	}{
		{name: "first poll: pod-b answers, pod-a has failed once", want: []string{"pod-b=up"}},
		{name: "second failure", want: nil},
		{name: "third failure: pod-a is down, once", want: []string{"pod-a=down"}},
		{name: "still down: nothing new", want: nil},
		{name: "one endpoint back: up", fix: "pod-a https://a2", want: []string{"pod-a=up"}},
		{name: "pod-b unchanged for 5m: sent again as a keep-alive", want: []string{"pod-b=up"}},
		{name: "and not again a minute later", want: nil},
	}
	for _, s := range steps {
		if s.fix != "" {
			r.kind.fail(s.fix, false)
		}
		r.step()
		if got := siteStates(r.sink.take()); !slices.Equal(got, s.want) {
			t.Fatalf("%s: sent %v, want %v", s.name, got, s.want)
		}
		r.clk.Advance(time.Minute)
	}
	st := mustStatus(t, r, "pod-a", "fake https://a1")
	if st.Failures != 7 || st.LastError != "connection refused" || !st.LastSuccess.IsZero() {
		t.Errorf("a1 status %+v", st)
	}
}

func TestSiteDownObservation(t *testing.T) {
	r := newRig(t)
	r.register("pod-a", "https://a1")
	r.kind.fail("pod-a https://a1", true)
	var sent []model.Observation
	for range 3 {
		r.step()
		sent = append(sent, r.sink.take()...)
		r.clk.Advance(time.Minute)
	}
	if len(sent) != 1 {
		t.Fatalf("sent %+v, want one observation", sent)
	}
	o := sent[0]
	want := model.Observation{Source: "sites", Kind: model.KindService, ID: "site-collectors", Host: "site:pod-a", Site: "pod-a",
		State: model.StateDown, TimeGenerated: t0.Add(2 * time.Minute)}
	if o.Source != want.Source || o.Kind != want.Kind || o.ID != want.ID || o.Host != want.Host || o.Site != want.Site ||
		o.State != want.State || !o.TimeGenerated.Equal(want.TimeGenerated) {
		t.Fatalf("sent %+v, want %+v", o, want)
	}
	if err := o.Validate(r.clk.Now()); err != nil {
		t.Fatalf("the site observation is not valid: %v", err)
	}

	// Unregistered while down: its state becomes unknown, which clears
	// the incident, and nothing more is sent for it.
	if err := r.st.UnregisterSite(r.ctx, "pod-a"); err != nil {
		t.Fatal(err)
	}
	r.step()
	if got := siteStates(r.sink.take()); !slices.Equal(got, []string{"pod-a=unknown"}) {
		t.Fatalf("after unregistering: %v", got)
	}
	r.clk.Advance(time.Minute)
	r.step()
	if got := r.sink.take(); len(got) != 0 {
		t.Fatalf("sent %+v for an unregistered site", got)
	}
}

func TestSiteStateRetriedWhenTheSinkFails(t *testing.T) {
	r := newRig(t)
	r.register("pod-a", "https://a1")
	r.sink.err = errors.New("redis down")
	r.step()
	r.sink.err = nil
	r.clk.Advance(10 * time.Second)
	r.step()
	if got := siteStates(r.sink.take()); !slices.Equal(got, []string{"pod-a=up"}) {
		t.Fatalf("sent %v, want the up state retried", got)
	}
}

func TestLeaseOneReplicaPolls(t *testing.T) {
	r := newRig(t)
	other := r.manager("replica-2", r.st)
	r.register("pod-a", "https://a1")
	for range 3 {
		r.step()
		if err := other.Step(r.ctx); err != nil {
			t.Fatal(err)
		}
		r.clk.Advance(time.Minute)
	}
	if got := r.kind.count("pod-a https://a1"); got != 3 {
		t.Fatalf("%d polls by two replicas over 3 minutes, want 3 (one replica)", got)
	}
}

func TestManagerRunStops(t *testing.T) {
	r := newRig(t)
	r.register("pod-a", "https://a1")
	stepped := make(chan struct{})
	m, err := NewManager(ManagerOptions{Registry: r.st, Sink: r.sink, Kinds: map[string]Kind{"fake": r.kind.kind()}, Clock: r.clk,
		Wait: func(ctx context.Context, _ time.Duration) error {
			close(stepped)
			<-ctx.Done()
			return ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-stepped
	if got := r.kind.count("pod-a https://a1"); got != 1 {
		t.Fatalf("%d polls before the first wait, want 1", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestNewManagerChecksOptions(t *testing.T) {
	_, err := NewManager(ManagerOptions{})
	if err == nil || !strings.Contains(err.Error(), "a registry is required; a sink is required; at least one endpoint kind") {
		t.Fatalf("NewManager: %v", err)
	}
}

// obsServer serves the body (or the status) an observations endpoint
// answers, over TLS.
type obsServer struct {
	mu     sync.Mutex
	body   string
	status int
	srv    *httptest.Server
}

func newObsServer(t *testing.T) *obsServer {
	s := &obsServer{status: http.StatusOK}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.WriteHeader(s.status)
		fmt.Fprint(w, s.body)
	}))
	// A client refusing the certificate is a test case, not news.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *obsServer) set(status int, body string) {
	s.mu.Lock()
	s.body, s.status = body, status
	s.mu.Unlock()
}

func TestObservationsPoller(t *testing.T) {
	srv := newObsServer(t)
	sink := &recSink{}
	clk := clock.NewFake(t0.Add(time.Minute))
	p, err := NewObservationsPoller("pod-a", store.SiteEndpoint{Kind: KindObservations, URL: srv.srv.URL + "/v1/observations"},
		Deps{Sink: sink, HTTPClient: srv.srv.Client(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	gen := t0.Format(time.RFC3339)
	line := func(id, site string) string {
		s := `{"source":"libvirt","kind":"vm","id":"` + id + `","host":"host-1","state":"running","time_generated":"` + gen + `"`
		if site != "" {
			s += `,"site":"` + site + `"`
		}
		return s + "}\n"
	}
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
		wantIDs []string
	}{
		{name: "JSON lines, site filled in", status: 200, body: line("vm-1", "") + line("vm-2", "pod-a"), wantIDs: []string{"vm-1", "vm-2"}},
		{name: "a JSON array", status: 200, body: "[" + strings.TrimSpace(line("vm-3", "")) + "]", wantIDs: []string{"vm-3"}},
		{name: "nothing new", status: 200, body: ""},
		{name: "another site's record refuses the poll", status: 200, body: line("vm-1", "") + line("vm-9", "pod-b"),
			wantErr: `record 1 (vm vm-9) names site "pod-b", not the registered "pod-a"; nothing was applied`},
		{name: "an invalid record refuses the poll", status: 200, body: line("vm-1", "") + `{"source":"x","kind":"vm","id":"vm-2","state":"exploded","time_generated":"` + gen + `"}`,
			wantErr: "nothing was applied"},
		{name: "server error", status: 503, body: "down", wantErr: "status 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.set(tt.status, tt.body)
			err := p.Poll(context.Background())
			got := sink.take()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Poll: %v, want …%s…", err, tt.wantErr)
				}
				if len(got) != 0 {
					t.Fatalf("a refused poll sent %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Poll: %v", err)
			}
			var ids []string
			for _, o := range got {
				ids = append(ids, o.ID)
				if o.Site != "pod-a" || !o.TimeReceived.Equal(clk.Now()) || !o.TimeGenerated.Equal(t0) {
					t.Errorf("observation %+v: want site pod-a, received now, generated at the source", o)
				}
			}
			if !slices.Equal(ids, tt.wantIDs) {
				t.Fatalf("sent %v, want %v", ids, tt.wantIDs)
			}
		})
	}
}

// TestObservationsPollerRefusesUntrustedTLS: the endpoint's certificate
// must verify; a poll through a client that does not trust it fails.
func TestObservationsPollerRefusesUntrustedTLS(t *testing.T) {
	srv := newObsServer(t)
	p, err := NewObservationsPoller("pod-a", store.SiteEndpoint{Kind: KindObservations, URL: srv.srv.URL},
		Deps{Sink: &recSink{}, HTTPClient: &http.Client{}, Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Poll: %v, want a certificate error", err)
	}
}

// TestPrometheusKind: a registered prometheus endpoint is read with
// collectors/prometheus, under the site's own source.
func TestPrometheusKind(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"host-7:9100"},"value":[%d,"0"]}]}}`, t0.Unix())
	}))
	t.Cleanup(srv.Close)
	sink := &recSink{}
	p, err := DefaultKinds()[KindPrometheus].New("pod-a", store.SiteEndpoint{Kind: KindPrometheus, URL: srv.URL},
		Deps{Sink: sink, HTTPClient: srv.Client(), Clock: clock.NewFake(t0), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(context.Background()); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	got := sink.take()
	if len(got) != 1 || got[0].Kind != model.KindHost || got[0].ID != "host-7" || got[0].Site != "pod-a" || got[0].Source != "prometheus/pod-a" {
		t.Fatalf("sent %+v, want one host-7 observation of source prometheus/pod-a", got)
	}
}

// TestEndpointOfAnUnknownKind: a registry entry this replica cannot poll
// (registered through a replica that knows more kinds) is reported as a
// failing endpoint with the reason, not skipped in silence.
func TestEndpointOfAnUnknownKind(t *testing.T) {
	r := newRig(t)
	if err := r.st.RegisterSite(r.ctx, store.RegisteredSite{Site: "pod-a",
		Endpoints: []store.SiteEndpoint{{Kind: "libvirt", URI: "qemu+tls://h1/system"}}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r.step()
		r.clk.Advance(time.Minute)
	}
	st := mustStatus(t, r, "pod-a", "libvirt qemu+tls://h1/system")
	if st.Failures != 3 || !strings.Contains(st.LastError, `kind "libvirt" is not polled by this server`) {
		t.Fatalf("status %+v", st)
	}
	if got := siteStates(r.sink.take()); !slices.Equal(got, []string{"pod-a=down"}) {
		t.Fatalf("sent %v, want pod-a down", got)
	}
}
