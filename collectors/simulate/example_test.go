package simulate_test

import (
	"fmt"
	"time"

	"github.com/vmtriage/vmtriage/collectors/simulate"
	"github.com/vmtriage/vmtriage/internal/model"
)

// The demo narrates what it injects, period by period. The opening of the
// default schedule shows every fault kind within five periods.
func ExampleFleet_Schedule() {
	fleet, err := simulate.New(simulate.Options{Seed: 1, Start: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)})
	if err != nil {
		panic(err)
	}
	for i := range 6 {
		for _, f := range fleet.Schedule(i, i+1) {
			fmt.Printf("period %d: injected: %s\n", i, f)
		}
	}
	// Output:
	// period 1: injected: host hardware failure on host-006 in pod-c (uncorrected ECC memory errors): its VMs crash in the same period; repaired after 3 periods
	// period 1: injected: guest crash on vm-0299 (kernel panic; host host-049 is healthy), running again after 2 periods
	// period 2: injected: external storage unreachable from host-047 in pod-b for 4 periods in a row
	// period 2: injected: libvirtd down on host-023 in pod-b (hardware healthy) for 2 periods
	// period 3: injected: planned maintenance reboot of vm-0737 announced by the platform (host host-037), unavailable for 2 periods
	// period 3: injected: user-initiated restart of vm-0011 (host host-011), unavailable for 1 period
	// period 4: injected: heartbeat loss: vm-0826 (host host-026) is not reported at all for 3 periods
}

// A test builds its own schedule to see one fault in a known period.
func ExampleFleet_Step() {
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	fleet, err := simulate.New(simulate.Options{
		VMs: 4, Hosts: 2, Sites: 1, Start: start,
		Faults: []simulate.Fault{{Kind: simulate.HostHardware, Target: "host-002", Start: 1, Duration: 2, Hardware: simulate.HardwareMCE}},
	})
	if err != nil {
		panic(err)
	}
	for _, o := range fleet.Step(fleet.PeriodStart(1)) {
		switch o.Kind {
		case model.KindHost:
			fmt.Println(o.Kind, o.ID, "mce:", o.Num(model.AttrMCE))
		case model.KindService:
			fmt.Println(o.Kind, o.Host+"/"+o.ID, o.State)
		case model.KindVM:
			line := fmt.Sprint(o.Kind, " ", o.ID, " on ", o.Host, " ", o.State)
			if r := o.Str(model.AttrCrashReason); r != "" {
				line += " (crash_reason " + r + ")"
			}
			fmt.Println(line)
		}
	}
	// Output:
	// host host-001 mce: 0
	// host host-002 mce: 2
	// service host-001/libvirtd up
	// service host-002/libvirtd up
	// vm vm-0001 on host-001 running
	// vm vm-0002 on host-002 crashed (crash_reason unknown)
	// vm vm-0003 on host-001 running
	// vm vm-0004 on host-002 crashed (crash_reason unknown)
}
