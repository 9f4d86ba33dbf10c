//go:build !linux

package wasmhost

import "github.com/tetratelabs/wazero/experimental"

// guestAllocator is the allocator of guest linear memory, and whether it
// lies outside the Go heap: wazero's default (Go slices) here.
func guestAllocator() (experimental.MemoryAllocator, bool) { return nil, false }
