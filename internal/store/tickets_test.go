package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

func TestTicketOpsStream(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t, store.Options{})

	if err := s.EnqueueTicketOp(ctx, store.TicketOp{Reason: "change"}); err == nil {
		t.Fatal("an operation without incident was accepted")
	}
	// Reading before anything was written creates the group.
	ops, err := s.ReadTicketOps(ctx, "w1", 10, 0)
	if err != nil || ops != nil {
		t.Fatalf("read on an empty stream = %v, %v; want nil, nil", ops, err)
	}
	if err := s.EnqueueTicketOp(ctx, store.TicketOp{Incident: "inc-1", Reason: "change"}); err != nil {
		t.Fatal(err)
	}
	if err := s.EnqueueTicketOp(ctx, store.TicketOp{Incident: "inc-2", Force: true, Reason: "command", Note: "migrate-host done: 12 VMs moved"}); err != nil {
		t.Fatal(err)
	}
	ops, err = s.ReadTicketOps(ctx, "w1", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0].Incident != "inc-1" || ops[0].Force || ops[0].Reason != "change" ||
		ops[1].Incident != "inc-2" || !ops[1].Force || ops[1].Reason != "command" || ops[1].Note != "migrate-host done: 12 VMs moved" || ops[0].Note != "" {
		t.Fatalf("ops = %+v", ops)
	}
	if n, err := s.TicketBacklog(ctx); err != nil || n != 2 {
		t.Fatalf("backlog = %d, %v; want 2", n, err)
	}
	// w1 "dies": w2 takes over what w1 read and did not acknowledge.
	claimed, err := s.ClaimTicketOps(ctx, "w2", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 2 || claimed[0].ID != ops[0].ID {
		t.Fatalf("claimed = %+v", claimed)
	}
	if err := s.AckTicketOps(ctx, ops[0].ID, ops[1].ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.TicketBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog after ack = %d, %v; want 0 (handled entries are deleted)", n, err)
	}
	if claimed, err := s.ClaimTicketOps(ctx, "w2", 0, 10); err != nil || len(claimed) != 0 {
		t.Fatalf("claim after ack = %+v, %v; want nothing", claimed, err)
	}
}

func TestTicketRecord(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	s := storetest.New(t, store.Options{Clock: clk})

	if _, err := s.TicketRecord(ctx, "inc-9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing record: err = %v; want ErrNotFound", err)
	}
	if err := s.SaveTicketRecord(ctx, &store.TicketRecord{}); err == nil {
		t.Fatal("a record without incident was saved")
	}
	rec := store.TicketRecord{Incident: "inc-9", Key: "OPS-1", URL: "https://jira.example/browse/OPS-1",
		Forced: true, Synced: &model.Incident{ID: "inc-9", Level: 2}, Done: []string{"ack"},
		Error: "priority 'P0' does not exist", ErrorAt: clk.Now()}
	if err := s.SaveTicketRecord(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.TicketRecord(ctx, "inc-9")
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != "OPS-1" || got.URL != rec.URL || !got.Forced || got.Synced == nil || got.Synced.Level != 2 ||
		len(got.Done) != 1 || got.Error != rec.Error || !got.ErrorAt.Equal(clk.Now()) || !got.UpdatedAt.Equal(clk.Now()) {
		t.Fatalf("record = %+v", got)
	}
}

func TestTicketLock(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t, store.Options{})

	tests := []struct {
		name  string
		owner string
		want  bool
	}{
		{"first owner takes it", "a", true},
		{"holder extends it", "a", true},
		{"another owner waits", "b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LockTicket(ctx, "inc-1", tc.owner, time.Minute)
			if err != nil || got != tc.want {
				t.Fatalf("LockTicket(%s) = %v, %v; want %v", tc.owner, got, err, tc.want)
			}
		})
	}
	if err := s.UnlockTicket(ctx, "inc-1", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.LockTicket(ctx, "inc-1", "b", time.Minute); ok {
		t.Fatal("a non-holder's unlock released the lock")
	}
	if err := s.UnlockTicket(ctx, "inc-1", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.LockTicket(ctx, "inc-1", "b", time.Minute); err != nil || !ok {
		t.Fatalf("lock after release = %v, %v", ok, err)
	}
	if _, err := s.LockTicket(ctx, "inc-1", "", time.Minute); err == nil {
		t.Fatal("a lock without owner was accepted")
	}

	// Many contenders at once: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.LockTicket(ctx, "inc-2", string(rune('a'+i)), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d contenders got the lock; want 1", winners)
	}
}
