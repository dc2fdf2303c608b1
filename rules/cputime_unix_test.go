//go:build unix

package rules

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the test process has
// used so far. Benchmarks report it per operation next to the wall-clock
// ns/op: on a machine shared with other work the wall clock counts the
// time spent waiting for a core, the CPU time does not.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
