package store_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

func TestAudit(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	st := storetest.New(t, store.Options{Clock: clk})

	if got, err := st.Audit(ctx, time.Time{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty audit = %v, %v; want none", got, err)
	}
	for i, user := range []string{"U1", "U2", "U3"} {
		clk.Set(t0.Add(time.Duration(i) * time.Minute))
		if err := st.AppendAudit(ctx, store.AuditEntry{User: user, Channel: "C1", Origin: "button",
			Command: "approve inc-" + user, Group: "approve", Reason: "you are not an approver"}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := st.Audit(ctx, time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].User != "U3" || all[2].User != "U1" {
		t.Fatalf("audit = %+v, want U3, U2, U1", all)
	}
	if all[0].ID == "" || !all[0].At.Equal(t0.Add(2*time.Minute)) || all[0].Command != "approve inc-U3" || all[0].Reason == "" {
		t.Errorf("newest entry = %+v", all[0])
	}
	if got, _ := st.Audit(ctx, t0.Add(time.Minute), 10); len(got) != 2 {
		t.Errorf("audit since +1m = %d entries, want 2", len(got))
	}
	if got, _ := st.Audit(ctx, time.Time{}, 1); len(got) != 1 || got[0].User != "U3" {
		t.Errorf("audit limit 1 = %+v, want only U3", got)
	}
}

// TestAuditStreamHoldsRemedies checks that SaveRemedy writes each audit
// line to the audit stream with its subjects, that a refused save writes
// nothing, and that the filters select by kind, incident, VM and host.
func TestAuditStreamHoldsRemedies(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	st := storetest.New(t, store.Options{Clock: clk})

	if err := st.AppendAudit(ctx, store.AuditEntry{User: "U9", Command: "approve inc-1", Reason: "you are not an approver",
		Incident: "inc-1"}); err != nil {
		t.Fatal(err)
	}
	r := model.Remedy{ID: "rem-1", Incident: "inc-1", Action: model.ActionMigrateHost, Subject: "h1", Host: "h1",
		State: model.RemedyAwaiting, ExpiresAt: t0.Add(time.Hour),
		Steps: []model.RemedyStep{{Do: model.StepHostMaintenance, Host: "h1"}, {Do: model.StepMigrateVM, VM: "vm-a", Target: "h2"},
			{Do: model.StepMigrateVM, VM: "vm-b", Target: "h3"}}}
	clk.Set(t0.Add(time.Minute))
	if err := st.SaveRemedy(ctx, &r, model.AuditEntry{Who: "vmtriage", What: "requested"}); err != nil {
		t.Fatal(err)
	}
	stale := r
	r.State = model.RemedyApproved
	clk.Set(t0.Add(2 * time.Minute))
	if err := st.SaveRemedy(ctx, &r, model.AuditEntry{Who: "U1", What: "approved"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveRemedy(ctx, &stale, model.AuditEntry{Who: "U2", What: "denied", Result: "no"}); err == nil {
		t.Fatal("stale save succeeded")
	}
	other := model.Remedy{ID: "rem-2", Incident: "inc-2", Action: model.ActionRestartVM, Subject: "vm-z", Host: "h5",
		State: model.RemedyApproved, Steps: []model.RemedyStep{{Do: model.StepRestartVM, VM: "vm-z"}}}
	clk.Set(t0.Add(3 * time.Minute))
	if err := st.SaveRemedy(ctx, &other, model.AuditEntry{Who: "vmtriage", What: "requested"}); err != nil {
		t.Fatal(err)
	}

	all, err := st.Audit(ctx, time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range all {
		got = append(got, e.Kind+" "+e.User+" "+e.Command)
	}
	want := []string{"remedy vmtriage requested", "remedy U1 approved", "remedy vmtriage requested", "refused U9 approve inc-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("audit stream = %q, want %q (the stale denial must not appear)", got, want)
	}
	approved := all[1]
	if approved.Incident != "inc-1" || approved.Remedy != "rem-1" || approved.Host != "h1" ||
		!slices.Equal(approved.VMs, []string{"vm-a", "vm-b"}) || !approved.At.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("approval entry = %+v", approved)
	}

	tests := []struct {
		name string
		f    store.AuditFilter
		want []string // users, newest first
	}{
		{"kind refused", store.AuditFilter{Kind: store.AuditRefused}, []string{"U9"}},
		{"kind remedy", store.AuditFilter{Kind: store.AuditRemedy}, []string{"vmtriage", "U1", "vmtriage"}},
		{"incident", store.AuditFilter{Incident: "inc-1"}, []string{"U1", "vmtriage", "U9"}},
		{"vm of a migration", store.AuditFilter{VM: "vm-b"}, []string{"U1", "vmtriage"}},
		{"vm of a restart", store.AuditFilter{VM: "vm-z"}, []string{"vmtriage"}},
		{"host", store.AuditFilter{Host: "h1"}, []string{"U1", "vmtriage"}},
		{"host and kind", store.AuditFilter{Host: "h1", Kind: store.AuditRefused}, nil},
		{"limit", store.AuditFilter{Incident: "inc-1", Limit: 1}, []string{"U1"}},
		{"since", store.AuditFilter{Incident: "inc-1", Since: t0.Add(time.Minute)}, []string{"U1", "vmtriage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := st.AuditQuery(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var users []string
			for _, e := range es {
				users = append(users, e.User)
			}
			if !slices.Equal(users, tt.want) {
				t.Errorf("users = %q, want %q", users, tt.want)
			}
		})
	}
}

// TestAuditQueryPages checks that a filtered read goes past one page of
// non-matching entries.
func TestAuditQueryPages(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t, store.Options{Clock: clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))})
	if err := st.AppendAudit(ctx, store.AuditEntry{User: "old", Incident: "inc-7", Command: "x", Reason: "y"}); err != nil {
		t.Fatal(err)
	}
	for i := range 1010 { // more than one page (1000) of other entries
		if err := st.AppendAudit(ctx, store.AuditEntry{User: "U" + strconv.Itoa(i), Incident: "inc-1", Command: "x", Reason: "y"}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := st.AuditQuery(ctx, store.AuditFilter{Incident: "inc-7"})
	if err != nil || len(es) != 1 || es[0].User != "old" {
		t.Fatalf("AuditQuery(inc-7) = %+v, %v; want the one old entry", es, err)
	}
}

// BenchmarkSaveRemedyWithAudit measures one remedy change with one audit
// entry: the hash, the indexes, the trail and the audit stream in one
// script.
func BenchmarkSaveRemedyWithAudit(b *testing.B) {
	ctx := context.Background()
	st := storetest.New(b, store.Options{Clock: clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))})
	r := model.Remedy{ID: "rem-1", Incident: "inc-1", Action: model.ActionMigrateHost, Subject: "h1", Host: "h1",
		State: model.RemedyRunning, Steps: []model.RemedyStep{{Do: model.StepMigrateVM, VM: "vm-a", Target: "h2"}}}
	b.ResetTimer()
	for b.Loop() {
		if err := st.SaveRemedy(ctx, &r, model.AuditEntry{Who: "replica-a", What: "migrate vm-a from h1 to h2", Result: "done"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditQueryFiltered measures a filtered read that must page
// through 10 000 entries of other incidents to find the newest 20 of one.
func BenchmarkAuditQueryFiltered(b *testing.B) {
	ctx := context.Background()
	st := storetest.New(b, store.Options{Clock: clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))})
	for i := range 10_020 {
		inc := "inc-busy"
		if i < 20 {
			inc = "inc-old"
		}
		if err := st.AppendAudit(ctx, store.AuditEntry{User: "U1", Command: "approve " + inc, Reason: "no", Incident: inc}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		es, err := st.AuditQuery(ctx, store.AuditFilter{Incident: "inc-old", Limit: 20})
		if err != nil || len(es) != 20 {
			b.Fatalf("got %d entries, %v", len(es), err)
		}
	}
}
