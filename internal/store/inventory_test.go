package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/model"
)

func rel(kind, name, field, value string) model.InventoryRelation {
	return model.InventoryRelation{Kind: kind, Name: name, Field: field, Value: value}
}

func TestApplyInventoryRecordsEveryChange(t *testing.T) {
	st, clk := newStore(t)
	ctx := testCtx(t)

	if v, err := st.InventoryVersion(ctx); err != nil || v != 0 {
		t.Fatalf("InventoryVersion before any change = %d, %v; want 0, nil", v, err)
	}
	// A file layer: replaced whole.
	n, err := st.ApplyInventory(ctx, "file", true, "file inv.yaml", []model.InventoryRelation{
		rel("vm", "vm-1", "service", "pay"),
		rel("vm", "vm-2", "service", "pay"),
		rel("service", "pay", "team", "team-pay"),
	})
	if err != nil || n != 3 {
		t.Fatalf("first ApplyInventory = %d, %v; want 3 changes", n, err)
	}
	clk.Advance(time.Minute)
	// Same content again: nothing changes, nothing is recorded.
	if n, err := st.ApplyInventory(ctx, "file", true, "file inv.yaml", []model.InventoryRelation{
		rel("vm", "vm-2", "service", "pay"), rel("vm", "vm-1", "service", "pay"), rel("service", "pay", "team", "team-pay"),
	}); err != nil || n != 0 {
		t.Fatalf("repeated ApplyInventory = %d, %v; want 0 changes", n, err)
	}
	clk.Advance(time.Minute)
	// The file drops vm-2 and moves vm-1: one change and one removal.
	if n, err := st.ApplyInventory(ctx, "file", true, "file inv.yaml", []model.InventoryRelation{
		rel("vm", "vm-1", "service", "web"), rel("service", "pay", "team", "team-pay"),
	}); err != nil || n != 2 {
		t.Fatalf("replacing ApplyInventory = %d, %v; want 2 changes", n, err)
	}
	clk.Advance(time.Minute)
	// An API push merges: vm-3 is added, the file layer is untouched.
	if n, err := st.ApplyInventory(ctx, "api", false, "cmdb (token 1a2b)", []model.InventoryRelation{
		rel("vm", "vm-3", "service", "pay"),
	}); err != nil || n != 1 {
		t.Fatalf("merging ApplyInventory = %d, %v; want 1 change", n, err)
	}

	ver, layers, err := st.InventoryLayers(ctx, []string{"api", "file", "azure-tags"})
	if err != nil {
		t.Fatal(err)
	}
	if ver != 6 {
		t.Errorf("version = %d, want 6 (one per change)", ver)
	}
	if got, want := fmt.Sprint(layers["file"]), fmt.Sprint([]model.InventoryRelation{
		rel("service", "pay", "team", "team-pay"), rel("vm", "vm-1", "service", "web"),
	}); got != want {
		t.Errorf("file layer = %s, want %s", got, want)
	}
	if got := fmt.Sprint(layers["api"]); got != fmt.Sprint([]model.InventoryRelation{rel("vm", "vm-3", "service", "pay")}) {
		t.Errorf("api layer = %s", got)
	}
	if len(layers["azure-tags"]) != 0 {
		t.Errorf("empty layer = %v", layers["azure-tags"])
	}

	hist, err := st.InventoryHistory(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Hour)
	want := []model.InventoryChange{
		{Seq: 1, Time: t1, Source: "file", Actor: "file inv.yaml", Kind: "vm", Name: "vm-1", Field: "service", New: "pay"},
		{Seq: 2, Time: t1, Source: "file", Actor: "file inv.yaml", Kind: "vm", Name: "vm-2", Field: "service", New: "pay"},
		{Seq: 3, Time: t1, Source: "file", Actor: "file inv.yaml", Kind: "service", Name: "pay", Field: "team", New: "team-pay"},
		{Seq: 4, Time: t1.Add(2 * time.Minute), Source: "file", Actor: "file inv.yaml", Kind: "vm", Name: "vm-1", Field: "service", Old: "pay", New: "web"},
		{Seq: 5, Time: t1.Add(2 * time.Minute), Source: "file", Actor: "file inv.yaml", Kind: "vm", Name: "vm-2", Field: "service", Old: "pay"},
		{Seq: 6, Time: t1.Add(3 * time.Minute), Source: "api", Actor: "cmdb (token 1a2b)", Kind: "vm", Name: "vm-3", Field: "service", New: "pay"},
	}
	if len(hist) != len(want) {
		t.Fatalf("history has %d changes, want %d: %+v", len(hist), len(want), hist)
	}
	for i := range want {
		if !hist[i].Time.Equal(want[i].Time) {
			t.Errorf("change %d time = %s, want %s", i, hist[i].Time, want[i].Time)
		}
		hist[i].Time = want[i].Time
		if hist[i] != want[i] {
			t.Errorf("change %d = %+v\n        want %+v", i, hist[i], want[i])
		}
	}
	since, err := st.InventoryHistory(ctx, t1.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(since) != 3 || since[0].Seq != 4 {
		t.Errorf("history since the third minute = %+v, want changes 4 to 6", since)
	}
}

func TestApplyInventoryRefusesBadRelations(t *testing.T) {
	st, _ := newStore(t)
	ctx := testCtx(t)
	for _, tc := range []struct {
		name   string
		source string
		rel    model.InventoryRelation
	}{
		{"source with a space", "my file", rel("vm", "vm-1", "service", "x")},
		{"empty source", "", rel("vm", "vm-1", "service", "x")},
		{"empty name", "api", rel("vm", "", "service", "x")},
		{"kind with a space", "api", rel("v m", "vm-1", "service", "x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := st.ApplyInventory(ctx, tc.source, false, "t", []model.InventoryRelation{rel("vm", "ok", "service", "x"), tc.rel}); err == nil {
				t.Fatal("ApplyInventory accepted a bad relation")
			}
		})
	}
	if v, _ := st.InventoryVersion(ctx); v != 0 {
		t.Errorf("a refused update changed the inventory (version %d)", v)
	}
}

func TestVMPlacements(t *testing.T) {
	st, clk := newStore(t)
	ctx := testCtx(t)
	now := clk.Now()
	if err := st.Apply(ctx, []model.Observation{
		{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "h1", Site: "pod-a", State: model.StateRunning, TimeGenerated: now},
		{Source: "libvirt", Kind: model.KindVM, ID: "vm-2", Host: "h2", Site: "pod-b", State: model.StateCrashed, TimeGenerated: now},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := st.VMPlacements(ctx, []string{"vm-2", "vm-unknown", "vm-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []model.VMStatus{
		{ID: "vm-2", Host: "h2", Site: "pod-b", State: model.StateCrashed},
		{ID: "vm-1", Host: "h1", Site: "pod-a", State: model.StateRunning},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("VMPlacements = %+v\nwant %+v", got, want)
	}
}
