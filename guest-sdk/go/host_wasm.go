//go:build wasip1

package sluice

import "unsafe"

// The sluice_v1 host functions. A string parameter is lowered to
// (ptr i32, len i32); unsafe.Pointer and uint32 to i32.

//go:wasmimport sluice_v1 record_count
func hostRecordCount() int32

//go:wasmimport sluice_v1 record_value
func hostRecordValue(rec int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice_v1 get_field
func hostGetField(rec int32, path string, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice_v1 get_string
func hostGetString(rec int32, path string, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice_v1 record_topic
func hostRecordTopic(rec int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice_v1 record_key
func hostRecordKey(rec int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice_v1 record_header
func hostRecordHeader(rec int32, name string, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice_v1 drop
func hostDrop(rec int32) int32

//go:wasmimport sluice_v1 set_field
func hostSetField(rec int32, path string, val unsafe.Pointer, n uint32) int32

//go:wasmimport sluice_v1 set_string
func hostSetString(rec int32, path string, val string) int32

//go:wasmimport sluice_v1 delete_field
func hostDeleteField(rec int32, path string) int32

//go:wasmimport sluice_v1 set_value
func hostSetValue(rec int32, val unsafe.Pointer, n uint32) int32

//go:wasmimport sluice_v1 set_topic
func hostSetTopic(rec int32, topic string) int32

//go:wasmimport sluice_v1 set_key
func hostSetKey(rec int32, key unsafe.Pointer, n uint32) int32

//go:wasmimport sluice_v1 set_header
func hostSetHeader(rec int32, name string, val unsafe.Pointer, n uint32) int32

//go:wasmimport sluice_v1 dead_letter
func hostDeadLetter(rec int32, reason string) int32

//go:wasmimport sluice_v1 emit
func hostEmit(parent int32, val unsafe.Pointer, n uint32) int32

//go:wasmimport sluice_v1 hash_field
func hostHashField(rec int32, path string, algo int32) int32

//go:wasmimport sluice_v1 fetch_field
func hostFetchField(path string, mode int32, tab unsafe.Pointer, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice_v1 record_kinds
func hostRecordKinds(buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport sluice_v1 apply
func hostApply(ops unsafe.Pointer, n uint32, res unsafe.Pointer, resCap uint32) int32
