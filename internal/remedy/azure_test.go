package remedy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/collectors/azurehealth"
	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/config"
	"github.com/vmtriage/vmtriage/internal/model"
)

const (
	azSecret = "s3cret-value-never-shown"
	azToken  = "bearer-token-xyz"
	azSub    = "sub-1"
	azVMID   = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-a"
)

// fakeAzure serves a token endpoint and the Resource Manager calls the
// actuator makes, and checks their shapes.
type fakeAzure struct {
	t        testing.TB
	srv      *httptest.Server
	mu       sync.Mutex
	calls    []string
	power    string // PowerState code of vm-a
	polls    int    // in-progress polls before an operation ends
	fail     bool   // the operation ends Failed
	throttle int    // 429 answers before the first action post
	location bool   // use Location instead of Azure-AsyncOperation
}

func newFakeAzure(t testing.TB) *fakeAzure {
	f := &fakeAzure{t: t, power: "PowerState/running", polls: 2}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAzure) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/tenant/oauth2/v2.0/token" {
		form, _ := url.ParseQuery(string(body))
		if r.Method != http.MethodPost || form.Get("client_secret") != azSecret {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, azToken)
		return
	}
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if got := r.Header.Get("Authorization"); got != "Bearer "+azToken {
		f.t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, got)
	}
	if len(body) != 0 {
		f.t.Errorf("%s %s: unexpected body %q", r.Method, r.URL.Path, body)
	}
	if r.URL.Path != "/op/1" && r.URL.Query().Get("api-version") != DefaultAzureComputeAPIVersion {
		f.t.Errorf("%s %s: api-version %q", r.Method, r.URL.Path, r.URL.Query().Get("api-version"))
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/subscriptions/"+azSub+"/providers/Microsoft.Compute/virtualMachines":
		if r.URL.Query().Get("page") == "" {
			fmt.Fprintf(w, `{"value":[{"id":"/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/other","name":"other"}],"nextLink":%q}`,
				f.srv.URL+r.URL.Path+"?api-version="+DefaultAzureComputeAPIVersion+"&page=2")
			return
		}
		fmt.Fprintf(w, `{"value":[{"id":%q,"name":"vm-a"}]}`, azVMID)
	case r.Method == http.MethodGet && r.URL.Path == azVMID+"/instanceView":
		fmt.Fprintf(w, `{"statuses":[{"code":"ProvisioningState/succeeded"},{"code":%q}]}`, f.power)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, azVMID+"/"):
		if f.throttle > 0 {
			f.throttle--
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if f.location {
			w.Header().Set("Location", f.srv.URL+"/op/1")
		} else {
			w.Header().Set("Azure-AsyncOperation", f.srv.URL+"/op/1")
		}
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodGet && r.URL.Path == "/op/1":
		if f.polls > 0 {
			f.polls--
			if f.location {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			fmt.Fprint(w, `{"status":"InProgress"}`)
			return
		}
		switch {
		case f.location:
			w.WriteHeader(http.StatusOK)
		case f.fail:
			fmt.Fprint(w, `{"status":"Failed","error":{"code":"AllocationFailed","message":"no capacity"}}`)
		default:
			fmt.Fprint(w, `{"status":"Succeeded"}`)
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"NotFound","message":"no such thing"}}`)
	}
}

func newTestAzure(t *testing.T, f *fakeAzure, secret string) (*Azure, *clock.Fake, *[]time.Duration) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	var waits []time.Duration
	a, err := NewAzure(AzureOptions{
		Subscriptions: []string{azSub},
		Endpoint:      f.srv.URL,
		Token:         azurehealth.NewTokenSource(f.srv.URL, "tenant", "client", config.Secret(secret), f.srv.URL+"/.default", f.srv.Client(), clk),
		MaxWait:       time.Minute,
		Clock:         clk,
		Wait: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			clk.Advance(d)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, clk, &waits
}

func TestAzureActions(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fakeAzure)
		act      func(ctx context.Context, a *Azure) error
		wantPost string
		wantErr  string
		wantWait []time.Duration
	}{
		{name: "restart running vm", act: func(ctx context.Context, a *Azure) error {
			return a.RestartVM(ctx, Target{VM: "vm-a", Host: "h1"})
		}, wantPost: "restart", wantWait: []time.Duration{5 * time.Second, 10 * time.Second, 10 * time.Second}},
		{name: "start stopped vm", setup: func(f *fakeAzure) { f.power = "PowerState/deallocated" }, act: func(ctx context.Context, a *Azure) error {
			return a.RestartVM(ctx, Target{VM: "vm-a"})
		}, wantPost: "start", wantWait: []time.Duration{5 * time.Second, 10 * time.Second, 10 * time.Second}},
		{name: "migrate is redeploy, location polling, 429 honoured", setup: func(f *fakeAzure) { f.location = true; f.throttle = 1; f.polls = 1 },
			act:      func(ctx context.Context, a *Azure) error { return a.MigrateVM(ctx, Target{VM: "vm-a"}, "ignored-host") },
			wantPost: "redeploy", wantWait: []time.Duration{7 * time.Second, 5 * time.Second, 10 * time.Second}},
		{name: "operation failed", setup: func(f *fakeAzure) { f.fail = true; f.polls = 0 },
			act:      func(ctx context.Context, a *Azure) error { return a.MigrateVM(ctx, Target{VM: "vm-a"}, "") },
			wantPost: "redeploy", wantErr: "AllocationFailed", wantWait: []time.Duration{5 * time.Second}},
		{name: "operation too slow", setup: func(f *fakeAzure) { f.polls = 100 },
			act:      func(ctx context.Context, a *Azure) error { return a.RestartVM(ctx, Target{VM: "vm-a"}) },
			wantPost: "restart", wantErr: "gave up waiting"},
		{name: "unknown vm", act: func(ctx context.Context, a *Azure) error { return a.RestartVM(ctx, Target{VM: "nope"}) },
			wantErr: "no such VM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAzure(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			a, _, waits := newTestAzure(t, f, azSecret)
			err := tc.act(context.Background(), a)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), azSecret) || strings.Contains(err.Error(), azToken)) {
				t.Fatalf("error leaks a credential: %v", err)
			}
			if tc.wantPost != "" {
				want := "POST " + azVMID + "/" + tc.wantPost
				found := false
				for _, c := range f.calls {
					if c == want {
						found = true
					}
					if strings.HasPrefix(c, "POST ") && c != want {
						t.Errorf("unexpected call %s", c)
					}
				}
				if !found {
					t.Errorf("calls %v lack %s", f.calls, want)
				}
			}
			if tc.wantWait != nil && fmt.Sprint(*waits) != fmt.Sprint(tc.wantWait) {
				t.Errorf("waits %v, want %v", *waits, tc.wantWait)
			}
		})
	}
}

func TestAzureNotSupported(t *testing.T) {
	f := newFakeAzure(t)
	a, _, _ := newTestAzure(t, f, azSecret)
	for _, err := range []error{a.RestartService(context.Background(), "h1", "libvirtd"), a.HostMaintenance(context.Background(), "h1")} {
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("error %v, want ErrNotSupported", err)
		}
	}
	if len(f.calls) != 0 {
		t.Errorf("calls %v, want none", f.calls)
	}
}

func TestAzureBadSecretDoesNotLeak(t *testing.T) {
	f := newFakeAzure(t)
	const wrong = "wrong-secret-value"
	a, _, _ := newTestAzure(t, f, wrong)
	err := a.RestartVM(context.Background(), Target{VM: "vm-a"})
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("error %v, want a token error", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func TestNewAzureRefusesBadOptions(t *testing.T) {
	tok := func(context.Context) (string, error) { return "t", nil }
	tests := []struct {
		name string
		o    AzureOptions
		want string
	}{
		{"no token", AzureOptions{Subscriptions: []string{"s"}}, "token source"},
		{"no subscriptions", AzureOptions{Token: tok}, "subscriptions"},
		{"bad subscription", AzureOptions{Token: tok, Subscriptions: []string{"a/b"}}, `"a/b"`},
		{"bad endpoint", AzureOptions{Token: tok, Subscriptions: []string{"s"}, Endpoint: "ftp://x"}, "endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewAzure(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestAzureMigrateHostThroughExecutor: a migrate-host remedy run by the
// executor with the Azure actuator skips host maintenance (not an Azure
// action) and redeploys the VM, and the step says that Azure chose the
// host.
func TestAzureMigrateHostThroughExecutor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.host(t, "host-1", model.HostFailed, 0, 0)
	f.host(t, "host-2", model.HostHealthy, 64, 65536)
	inc := f.incident(t, hostIncident(f.vms(t, "host-1", 1)))
	m := f.manager(t, Options{})
	if _, err := m.Request(ctx, inc); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Decide(ctx, inc.ID, Approve, "U1", ""); err != nil {
		t.Fatal(err)
	}
	fa := newFakeAzure(t)
	fa.polls = 0
	a, err := NewAzure(AzureOptions{VMs: map[string]string{"vm-1": azVMID}, Endpoint: fa.srv.URL,
		Token: azurehealth.NewTokenSource(fa.srv.URL, "tenant", "client", config.Secret(azSecret), fa.srv.URL+"/.default", fa.srv.Client(), f.clk),
		Clock: f.clk, Wait: func(_ context.Context, d time.Duration) error { f.clk.Advance(d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.executor(t, "replica-1", a).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := f.st.RemedyForIncident(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.Steps {
		got = append(got, fmt.Sprintf("%s %s: %s", s.Do, s.State, s.Detail))
	}
	want := []string{
		fmt.Sprintf("%s %s: maintenance of host-1: azure manages its hosts: %s", model.StepHostMaintenance, model.StepSkipped, ErrNotSupported),
		fmt.Sprintf("%s %s: %s", model.StepMigrateVM, model.StepDone, a.MigrateNote()),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("steps:\n got %q\nwant %q", got, want)
	}
	if fmt.Sprint(fa.calls) != fmt.Sprint([]string{"POST " + azVMID + "/redeploy", "GET /op/1"}) {
		t.Errorf("azure calls = %q", fa.calls)
	}
}

// BenchmarkAzureRestartVM measures one restart against the fake: VM list
// (two pages), instance view, the post and one poll.
func BenchmarkAzureRestartVM(b *testing.B) {
	f := newFakeAzure(b)
	clk := clock.NewFake(t0)
	a, err := NewAzure(AzureOptions{Subscriptions: []string{azSub}, Endpoint: f.srv.URL,
		Token: azurehealth.NewTokenSource(f.srv.URL, "tenant", "client", config.Secret(azSecret), f.srv.URL+"/.default", f.srv.Client(), clk),
		Clock: clk, Wait: func(_ context.Context, d time.Duration) error { clk.Advance(d); return nil }})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.mu.Lock()
		f.polls, f.calls = 0, nil
		f.mu.Unlock()
		if err := a.RestartVM(ctx, Target{VM: "vm-a"}); err != nil {
			b.Fatal(err)
		}
	}
}
