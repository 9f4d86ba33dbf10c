//go:build wasip1

package sluice

import "runtime"

//go:wasmexport sluice_abi_version
func exportABIVersion() int32 { return ABIVersion }

// exportProcess is called by the host once per batch. The deferred
// runtime.Gosched lets the guest's background GC workers run: a Go reactor
// runs no other goroutine between export calls, and without the yield its
// heap grows without bound.
//
//go:wasmexport sluice_process
func exportProcess(n int32) int32 {
	defer runtime.Gosched()
	return process(n)
}
