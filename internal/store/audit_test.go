package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
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
