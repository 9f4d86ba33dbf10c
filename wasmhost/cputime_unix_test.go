//go:build unix

package wasmhost

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process used so far:
// on a shared machine a benchmark's CPU per operation is steadier than its
// wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
