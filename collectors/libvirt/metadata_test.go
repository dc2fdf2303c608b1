package libvirt

import (
	"context"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

func TestParseServiceMetadata(t *testing.T) {
	tests := []struct {
		name, raw, want, err string
	}{
		{"the element itself", `<service xmlns="` + MetadataURI + `">payments-api</service>`, "payments-api", ""},
		{"a prefixed element", `<vmtriage:service xmlns:vmtriage="` + MetadataURI + `"> ledger </vmtriage:service>`, "ledger", ""},
		{"a child of another element", `<vm xmlns="` + MetadataURI + `"><service>search</service><owner>x</owner></vm>`, "search", ""},
		{"no service", `<vm xmlns="` + MetadataURI + `"><owner>x</owner></vm>`, "", "metadata element <vm> has no <service>"},
		{"empty", `<service/>`, "", "metadata <service> is empty"},
		{"spaces", `<service>pay ments</service>`, "", `metadata service "pay ments" contains spaces or control characters`},
		{"not XML", `<service>`, "", "metadata is not XML"},
		{"too long", `<service>` + strings.Repeat("a", 129) + `</service>`, "", "longer than 128 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseServiceMetadata(tc.raw)
			if got != tc.want {
				t.Errorf("service = %q, want %q", got, tc.want)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("error = %v, want none", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error = %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// metaDomainXML is a running test-driver domain with metadata inside
// <metadata> ("" for none).
func metaDomainXML(name, metadata string) string {
	x := domainXML(name, golibvirt.DomainRunning)
	if metadata == "" {
		return x
	}
	return strings.Replace(x, "</domain>", "<metadata>"+metadata+"</metadata></domain>", 1)
}

// libvirtLayer returns the VM → service relations of the libvirt-metadata
// layer as vm=service.
func libvirtLayer(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	_, layers, err := st.InventoryLayers(context.Background(), []string{InventorySource})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range layers[InventorySource] {
		if r.Kind == "vm" && r.Field == "service" {
			out[r.Name] = r.Value
		}
	}
	return out
}

// TestDaemonMetadataFeedsTheInventory defines domains with and without
// vmtriage metadata on the real test libvirtd, lets the collector list
// them into a real store's libvirt-metadata layer, then changes and
// removes metadata and checks the next listing follows, with history.
func TestDaemonMetadataFeedsTheInventory(t *testing.T) {
	sock, _ := daemon(t)
	ctl := control(t, sock, golibvirt.TestDefault)
	ns := `xmlns:vmtriage="` + MetadataURI + `"`
	doms := map[string]golibvirt.Domain{}
	for _, d := range []struct{ name, meta string }{
		{"vm-meta-pay", `<vmtriage:service ` + ns + `>payments-api</vmtriage:service>`},
		{"vm-meta-nested", `<vmtriage:vm ` + ns + `><vmtriage:service>ledger</vmtriage:service></vmtriage:vm>`},
		{"vm-meta-none", ""},
		{"vm-meta-bad", `<vmtriage:service ` + ns + `>bad name</vmtriage:service>`},
	} {
		dom, err := ctl.DomainCreateXML(metaDomainXML(d.name, d.meta), 0)
		if err != nil {
			t.Fatalf("create %s: %v", d.name, err)
		}
		doms[d.name] = dom
		t.Cleanup(func() { _ = ctl.DomainDestroy(dom) })
	}
	st := storetest.New(t, store.Options{})
	c, sink, _ := start(t, Options{
		Targets:   []Target{{URI: "test:///default?socket=" + sock, Host: "host-meta"}},
		Inventory: st,
	})
	sink.waitFor(t, "the first listing", func(obs []model.Observation) bool { return len(vmLines(obs, "vm-meta-none")) > 0 })

	want := map[string]string{"vm-meta-pay": "payments-api", "vm-meta-nested": "ledger"}
	if got := libvirtLayer(t, st); !mapsEqualOn(got, want, doms) {
		t.Fatalf("libvirt-metadata layer = %v, want %v", got, want)
	}
	if got := value(c.m.errors.WithLabelValues("metadata")); got < 1 {
		t.Errorf("errors{kind=metadata} = %v, want at least 1 (vm-meta-bad)", got)
	}

	// Move vm-meta-pay to another service, drop vm-meta-nested's metadata.
	if err := ctl.DomainSetMetadata(doms["vm-meta-pay"], int32(golibvirt.DomainMetadataElement),
		golibvirt.OptString{"<service>payments-batch</service>"}, golibvirt.OptString{"vmtriage"}, golibvirt.OptString{MetadataURI}, 0); err != nil {
		t.Fatalf("set metadata: %v", err)
	}
	if err := ctl.DomainSetMetadata(doms["vm-meta-nested"], int32(golibvirt.DomainMetadataElement),
		nil, nil, golibvirt.OptString{MetadataURI}, 0); err != nil {
		t.Fatalf("remove metadata: %v", err)
	}
	if err := c.Poll(t.Context()); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	want = map[string]string{"vm-meta-pay": "payments-batch"}
	if got := libvirtLayer(t, st); !mapsEqualOn(got, want, doms) {
		t.Fatalf("after the change, libvirt-metadata layer = %v, want %v", got, want)
	}
	hist, err := st.InventoryHistory(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, h := range hist {
		if h.Source != InventorySource || h.Actor != "libvirt host-meta" {
			t.Errorf("change %+v: source %q actor %q, want %s, libvirt host-meta", h, h.Source, h.Actor, InventorySource)
		}
		if doms[h.Name] != (golibvirt.Domain{}) {
			lines = append(lines, h.Name+" "+h.Old+"→"+h.New)
		}
	}
	wantLines := []string{"vm-meta-nested →ledger", "vm-meta-pay →payments-api", "vm-meta-nested ledger→", "vm-meta-pay payments-api→payments-batch"}
	if !sameSet(lines[:min(2, len(lines))], wantLines[:2]) || !sameSet(lines[min(2, len(lines)):], wantLines[2:]) {
		t.Errorf("history = %q, want %q (first listing, then the change)", lines, wantLines)
	}
}

// mapsEqualOn compares got and want on the keys of doms only (the shared
// test:///default driver may hold other tests' domains).
func mapsEqualOn(got, want map[string]string, doms map[string]golibvirt.Domain) bool {
	for name := range doms {
		if got[name] != want[name] {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}
