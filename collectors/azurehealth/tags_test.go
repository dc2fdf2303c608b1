package azurehealth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vmtriage/vmtriage/internal/model"
)

// fakeCompute serves virtualMachines listings (pages keyed by
// $skipToken, "" for the first) and empty Resource Health listings, and
// checks the token fakeAzure issued.
type fakeCompute struct {
	srv   *httptest.Server
	mu    sync.Mutex
	pages map[string]string
	calls []string
}

func newFakeCompute(t *testing.T) *fakeCompute {
	f := &fakeCompute{pages: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /subscriptions/{sub}/providers/Microsoft.ResourceHealth/availabilityStatuses", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"value":[]}`)
	})
	mux.HandleFunc("GET /subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		key := r.PathValue("sub") + "/" + r.URL.Query().Get("$skipToken")
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-") || r.URL.Query().Get("api-version") != ComputeAPIVersion {
			f.calls = append(f.calls, key+" 401")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}}`)
			return
		}
		body, ok := f.pages[key]
		if !ok {
			f.calls = append(f.calls, key+" 404")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"NotFound","message":"No such page."}}`)
			return
		}
		f.calls = append(f.calls, key+" 200")
		fmt.Fprint(w, strings.ReplaceAll(body, "{{base}}", f.srv.URL))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCompute) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// fakeInventory records what the collector applies.
type fakeInventory struct {
	mu      sync.Mutex
	applied []string
	failing bool
}

func (f *fakeInventory) ApplyInventory(_ context.Context, source string, replace bool, actor string, rels []model.InventoryRelation) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return 0, fmt.Errorf("redis is down")
	}
	var parts []string
	for _, r := range rels {
		parts = append(parts, r.Kind+" "+r.Name+" "+r.Field+"="+r.Value)
	}
	f.applied = append(f.applied, fmt.Sprintf("%s replace=%v actor=%q [%s]", source, replace, actor, strings.Join(parts, "; ")))
	return len(rels), nil
}

func (f *fakeInventory) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.applied
	f.applied = nil
	return a
}

func vmJSON(rg, name string, tags map[string]string) string {
	b, _ := json.Marshal(map[string]any{
		"id":   "/subscriptions/sub-a/resourceGroups/" + rg + "/providers/Microsoft.Compute/virtualMachines/" + name,
		"name": name, "location": "westeurope", "tags": tags,
	})
	return string(b)
}

const tagsPage1 = `{"value":[%s,%s,{"id":"/subscriptions/sub-a/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic-1"}],
 "nextLink":"{{base}}/subscriptions/sub-a/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01&$skipToken=p2"}`

const tagsPage2 = `{"value":[%s,%s,%s]}`

func newTagsHarness(t *testing.T, every int) (*harness, *fakeCompute, *fakeInventory) {
	t.Helper()
	inv := &fakeInventory{}
	var comp *fakeCompute
	comp = newFakeCompute(t)
	h := newHarness(t, func(o *Options) {
		o.Endpoint = comp.srv.URL
		o.Scope = o.LoginEndpoint + "/.default" // fakeAzure's token endpoint checks it
		o.Inventory = inv
		o.TagsEvery = every
	})
	comp.pages["sub-a/"] = fmt.Sprintf(tagsPage1,
		vmJSON("rg-web", "web-1", map[string]string{"Service": "payments-api", "env": "prod"}),
		vmJSON("rg-web", "web-2", nil))
	comp.pages["sub-a/p2"] = fmt.Sprintf(tagsPage2,
		vmJSON("rg-db", "db-1", map[string]string{"service": "billing api"}),
		vmJSON("rg-db", "db-2", map[string]string{"service": " billing "}),
		vmJSON("rg-db", "db 3", map[string]string{"service": "billing"}))
	return h, comp, inv
}

// TestTagsPoll reads tags over two pages on the first and every TagsEvery-th
// poll, skips and counts a VM without tags, a tag with spaces and a VM
// name that is not usable, and replaces the azure-tags layer.
func TestTagsPoll(t *testing.T) {
	h, comp, inv := newTagsHarness(t, 2)
	ctx := context.Background()
	want := []string{`azure-tags replace=true actor="azure azure" [vm web-1 service=payments-api; vm db-2 service=billing]`}

	if err := h.c.Poll(ctx); err != nil {
		t.Fatalf("poll 1: %v", err)
	}
	if got := comp.takeCalls(); !slices.Equal(got, []string{"sub-a/ 200", "sub-a/p2 200"}) {
		t.Errorf("poll 1 calls = %v", got)
	}
	if got := inv.take(); !slices.Equal(got, want) {
		t.Errorf("poll 1 applied:\n%v\nwant\n%v", got, want)
	}
	if got := h.counter("vmtriage_azurehealth_errors_total", "kind", "tags"); got != 3 {
		t.Errorf("tags errors = %v, want 3 (no tags, spaces, bad name)", got)
	}
	if logs := h.logs.String(); !strings.Contains(logs, `level=DEBUG msg="skipping a VM's service tag"`) ||
		!strings.Contains(logs, `level=WARN msg="skipping a VM's service tag"`) {
		t.Errorf("want an untagged VM logged at debug and a bad tag at warn:\n%s", logs)
	}
	if got := h.counter("vmtriage_azurehealth_polls_total", "result", "ok"); got != 1 {
		t.Errorf("ok polls = %v, want 1", got)
	}

	if err := h.c.Poll(ctx); err != nil {
		t.Fatalf("poll 2: %v", err)
	}
	if got := comp.takeCalls(); len(got) != 0 {
		t.Errorf("poll 2 (TagsEvery 2) read tags: %v", got)
	}
	if got := inv.take(); len(got) != 0 {
		t.Errorf("poll 2 applied %v", got)
	}

	// Poll 3 reads tags again; page 2 is gone, so the listing is
	// incomplete and the layer is left as it was.
	delete(comp.pages, "sub-a/p2")
	err := h.c.Poll(ctx)
	if err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("poll 3 error = %v, want the incomplete listing", err)
	}
	if got := comp.takeCalls(); !slices.Equal(got, []string{"sub-a/ 200", "sub-a/p2 404"}) {
		t.Errorf("poll 3 calls = %v", got)
	}
	if got := inv.take(); len(got) != 0 {
		t.Errorf("poll 3 applied %v from an incomplete listing", got)
	}
	if got := h.counter("vmtriage_azurehealth_errors_total", "kind", "tags"); got != 3+1+1 {
		t.Errorf("tags errors = %v, want 5 (3, web-2 again, the incomplete listing)", got)
	}
	if got := h.counter("vmtriage_azurehealth_polls_total", "result", "ok"); got != 3 {
		t.Errorf("ok polls = %v, want 3: tags do not decide a poll's result", got)
	}

	// A refusing inventory is an error counted as "inventory".
	comp.pages["sub-a/p2"] = `{"value":[]}`
	h.c.Poll(ctx) // poll 4: no tags
	inv.failing = true
	if err := h.c.Poll(ctx); err == nil || !strings.Contains(err.Error(), "redis is down") {
		t.Errorf("poll 5 error = %v, want the inventory's", err)
	}
	if got := h.counter("vmtriage_azurehealth_errors_total", "kind", "inventory"); got != 1 {
		t.Errorf("inventory errors = %v, want 1", got)
	}
}

// TestTagsOff checks that without an Inventory no VM listing is made.
func TestTagsOff(t *testing.T) {
	comp := newFakeCompute(t)
	h := newHarness(t, func(o *Options) {
		o.Endpoint = comp.srv.URL
		o.Scope = o.LoginEndpoint + "/.default"
	})
	if err := h.c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := comp.takeCalls(); len(got) != 0 {
		t.Errorf("calls without an inventory: %v", got)
	}
}

// TestVMService checks the reading of one listing entry.
func TestVMService(t *testing.T) {
	c := &Collector{opts: Options{ServiceTag: "app"}}
	for _, tc := range []struct {
		name, raw string
		wantVM    string
		wantSvc   string
		wantErr   string
	}{
		{"tagged", vmJSON("rg", "vm-1", map[string]string{"app": "payments-api"}), "vm-1", "payments-api", ""},
		{"key case", vmJSON("rg", "vm-1", map[string]string{"APP": "payments-api"}), "vm-1", "payments-api", ""},
		{"trimmed", vmJSON("rg", "vm-1", map[string]string{"app": "  payments-api\t"}), "vm-1", "payments-api", ""},
		{"other tag only", vmJSON("rg", "vm-1", map[string]string{"service": "x"}), "", "", `no "app" tag`},
		{"no tags", vmJSON("rg", "vm-1", nil), "", "", `no "app" tag`},
		{"empty", vmJSON("rg", "vm-1", map[string]string{"app": " "}), "", "", "is empty"},
		{"spaces", vmJSON("rg", "vm-1", map[string]string{"app": "payments api"}), "", "", "spaces"},
		{"control", vmJSON("rg", "vm-1", map[string]string{"app": "pay\u0007"}), "", "", "control"},
		{"too long", vmJSON("rg", "vm-1", map[string]string{"app": strings.Repeat("a", 129)}), "", "", "longer than"},
		{"bad name", vmJSON("rg", "vm{1}", map[string]string{"app": "x"}), "", "", "not usable"},
		{"not a VM", `{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip"}`, "", "", ""},
		{"not JSON", `[1]`, "", "", "decode VM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm, svc, err := c.vmService(json.RawMessage(tc.raw))
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			if vm != tc.wantVM || svc != tc.wantSvc {
				t.Errorf("got %q %q, want %q %q", vm, svc, tc.wantVM, tc.wantSvc)
			}
		})
	}
}
