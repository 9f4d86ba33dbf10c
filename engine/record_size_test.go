package engine

import (
	"testing"
	"unsafe"
)

// TestRecordSize keeps a Record at 128 bytes on 64-bit platforms: Seq sits
// in Format's padding, and the receiver makes a Record per event a block at
// a time.
func TestRecordSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Logf("note: %d-bit platform; the size is checked on 64-bit ones", 8*unsafe.Sizeof(uintptr(0)))
		return
	}
	if n := unsafe.Sizeof(Record{}); n != 128 {
		t.Fatalf("engine.Record is %d bytes, want 128", n)
	}
}
