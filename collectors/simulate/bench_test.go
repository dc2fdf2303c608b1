package simulate

import (
	"fmt"
	"testing"
)

// BenchmarkStep measures one period of the demo's fleet and of the load
// test's, both with every VM reported and with changes only.
func BenchmarkStep(b *testing.B) {
	for _, size := range []struct{ vms, hosts int }{{1_000, 50}, {100_000, 5_000}} {
		for _, changesOnly := range []bool{false, true} {
			name := fmt.Sprintf("vms=%d/hosts=%d/changes_only=%v", size.vms, size.hosts, changesOnly)
			b.Run(name, func(b *testing.B) {
				f := newFleet(b, Options{Seed: 1, VMs: size.vms, Hosts: size.hosts, Sites: 10, ChangesOnly: changesOnly})
				b.ReportAllocs()
				i := 1 // period 0 is always complete
				for b.Loop() {
					obs := f.Step(f.PeriodStart(i))
					if len(obs) < 2*size.hosts {
						b.Fatalf("period %d: only %d observations", i, len(obs))
					}
					i++
				}
			})
		}
	}
}
