// Command wrongabi is a test module with the right exports but built for
// ABI version 99: the host must reject it naming both versions.
package main

//go:wasmexport sluice_abi_version
func abiVersion() int32 { return 99 }

//go:wasmexport sluice_process
func process(n int32) int32 { return 0 }

func main() {}
