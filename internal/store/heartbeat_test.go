package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/vmtriage/vmtriage/internal/clock"
	"github.com/vmtriage/vmtriage/internal/model"
	"github.com/vmtriage/vmtriage/internal/store"
	"github.com/vmtriage/vmtriage/internal/store/storetest"
)

// TestHeartbeatChangesNothing: a VM observation without a state (a
// heartbeat, for the stopped-reporting rules) must neither wipe the VM's
// state nor, being newer, make the next state report look stale.
func TestHeartbeatChangesNothing(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	st := storetest.New(t, store.Options{Clock: clock.NewFake(t0)})
	state := func(s model.State, gen time.Time) model.Observation {
		return model.Observation{Source: "libvirt", Kind: model.KindVM, ID: "vm-1", Host: "host-1", Site: "pod-a", State: s, TimeGenerated: gen}
	}
	beat := model.Observation{Source: "heartbeat/site-a", Kind: model.KindVM, ID: "vm-1", TimeGenerated: t0.Add(time.Minute)}
	ghost := model.Observation{Source: "heartbeat/site-a", Kind: model.KindVM, ID: "vm-never-reported", TimeGenerated: t0}
	if err := st.Apply(ctx, []model.Observation{state(model.StateRunning, t0), beat, ghost}); err != nil {
		t.Fatal(err)
	}
	vm, err := st.VM(ctx, "vm-1")
	if err != nil {
		t.Fatal(err)
	}
	if vm.State != model.StateRunning || vm.Source != "libvirt" || vm.Host != "host-1" || !vm.Last.Generated.Equal(t0) {
		t.Fatalf("after a heartbeat: %+v", vm)
	}
	if _, err := st.VM(ctx, "vm-never-reported"); err == nil {
		t.Error("a heartbeat created a VM nothing reported")
	}
	// A crash generated before the heartbeat's time still applies.
	if err := st.Apply(ctx, []model.Observation{state(model.StateCrashed, t0.Add(30*time.Second))}); err != nil {
		t.Fatal(err)
	}
	if vm, _ = st.VM(ctx, "vm-1"); vm.State != model.StateCrashed {
		t.Fatalf("the crash after a heartbeat was taken as stale: %+v", vm)
	}
}
