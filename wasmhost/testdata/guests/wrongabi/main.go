// Command wrongabi claims ABI version 2: the host must reject it.
package main

//go:wasmexport sluice_abi_version
func abiVersion() int32 { return 2 }

//go:wasmexport sluice_process
func process(n int32) int32 { return 0 }

func main() {}
