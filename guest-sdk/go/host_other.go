//go:build !wasip1

package sluice

import "unsafe"

// Outside a wasip1 build there is no host: these stubs let the package
// compile (and its pure helpers be tested) on any platform. Calling one is a
// programming error.

func noHost() int32 {
	panic("sluice: host functions exist only in a GOOS=wasip1 GOARCH=wasm guest")
}

func hostRecordCount() int32                                       { return noHost() }
func hostRecordValue(int32, unsafe.Pointer, uint32) int32          { return noHost() }
func hostGetField(int32, string, unsafe.Pointer, uint32) int32     { return noHost() }
func hostGetString(int32, string, unsafe.Pointer, uint32) int32    { return noHost() }
func hostRecordTopic(int32, unsafe.Pointer, uint32) int32          { return noHost() }
func hostRecordKey(int32, unsafe.Pointer, uint32) int32            { return noHost() }
func hostRecordHeader(int32, string, unsafe.Pointer, uint32) int32 { return noHost() }
func hostDrop(int32) int32                                         { return noHost() }
func hostSetField(int32, string, unsafe.Pointer, uint32) int32     { return noHost() }
func hostSetString(int32, string, string) int32                    { return noHost() }
func hostDeleteField(int32, string) int32                          { return noHost() }
func hostSetValue(int32, unsafe.Pointer, uint32) int32             { return noHost() }
func hostSetTopic(int32, string) int32                             { return noHost() }
func hostSetKey(int32, unsafe.Pointer, uint32) int32               { return noHost() }
func hostSetHeader(int32, string, unsafe.Pointer, uint32) int32    { return noHost() }
func hostDeadLetter(int32, string) int32                           { return noHost() }
func hostEmit(int32, unsafe.Pointer, uint32) int32                 { return noHost() }
func hostHashField(int32, string, int32) int32                     { return noHost() }
func hostFetchField(string, int32, unsafe.Pointer, unsafe.Pointer, uint32) int32 {
	return noHost()
}
func hostRecordKinds(unsafe.Pointer, uint32) int32                   { return noHost() }
func hostApply(unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 { return noHost() }
