package sluice

import (
	"errors"
	"strconv"
)

// Record is a handle on one record the host keeps. Methods pull data from
// the host or push a decision to it; nothing is copied into the guest unless
// asked for. A Record is valid only during the handler call that received it.
type Record struct {
	idx     int32
	decided bool // dropped or dead-lettered
}

// Index returns the record's position in the batch (emitted records come
// after the batch's records).
func (r *Record) Index() int { return int(r.idx) }

// Get returns the JSON value at a dotted path ("geo.country", "items.0.sku"),
// parsed on the host. A missing path returns a Value whose Exists is false.
func (r *Record) Get(path string) Value {
	// The common case inline: the value fits the arena's free capacity.
	start := len(arena)
	free := arena[start:cap(arena)]
	n := hostGetField(r.idx, path, ptr(free), uint32(len(free)))
	if n >= 0 && int(n) <= len(free) {
		end := start + int(n)
		arena = arena[:end]
		return Value(arena[start:end:end])
	}
	if n < 0 {
		return nil
	}
	v, _ := fetch(getField, r.idx, path)
	return Value(v)
}

// GetString returns the decoded string at a dotted path, decoded on the
// host. ok is false when the path is missing or not a JSON string.
func (r *Record) GetString(path string) (s string, ok bool) {
	v, ok := r.GetText(path)
	return string(v), ok
}

// GetText is GetString without the copy: the decoded bytes live in the
// batch's arena (valid until the handler returns). Use it to compare or
// look up (m[string(b)] does not allocate) without allocating.
func (r *Record) GetText(path string) ([]byte, bool) {
	start := len(arena)
	free := arena[start:cap(arena)]
	n := hostGetString(r.idx, path, ptr(free), uint32(len(free)))
	if n >= 0 && int(n) <= len(free) {
		end := start + int(n)
		arena = arena[:end]
		return arena[start:end:end], true
	}
	if n < 0 {
		return nil, false
	}
	v, st := fetch(getString, r.idx, path)
	return v, st == StatusOK
}

// Raw returns the record's value bytes as the host currently holds them
// (including edits made so far in this call).
func (r *Record) Raw() []byte {
	v, _ := fetch(getValue, r.idx, "")
	return v
}

// Topic returns the record's output topic ("" means the default topic).
func (r *Record) Topic() string {
	v, _ := fetch(getTopic, r.idx, "")
	return string(v)
}

// Key returns the record's key, or nil when it has none.
func (r *Record) Key() []byte {
	v, _ := fetch(getKey, r.idx, "")
	return v
}

// Header returns the value of the first header named name and whether it
// exists.
func (r *Record) Header(name string) ([]byte, bool) {
	v, st := fetch(getHeader, r.idx, name)
	return v, st == StatusOK
}

// Drop removes the record from the output.
func (r *Record) Drop() {
	r.decided = true
	hostDrop(r.idx)
}

// DeadLetter sends the record to the dead-letter queue with reason instead of
// the output.
func (r *Record) DeadLetter(reason string) {
	r.decided = true
	hostDeadLetter(r.idx, reason)
}

// Set sets the field at path to v, creating missing parent objects. v is
// encoded as JSON: string, bool, integers, floats, nil, Value and RawJSON are
// encoded without reflection; anything else goes through encoding/json.
func (r *Record) Set(path string, v any) error {
	raw, err := appendJSON(arena[len(arena):], v)
	if err != nil {
		return err
	}
	return statusErr("set", path, hostSetField(r.idx, path, ptr(raw), uint32(len(raw))))
}

// SetString sets the field at path to the JSON string s (quoted on the
// host).
func (r *Record) SetString(path, s string) error {
	return statusErr("set", path, hostSetString(r.idx, path, s))
}

// Delete removes the field at path; deleting a missing field is not an error.
func (r *Record) Delete(path string) error {
	st := hostDeleteField(r.idx, path)
	if st == StatusNotFound {
		return nil
	}
	return statusErr("delete", path, st)
}

// HashSHA256 replaces the JSON string at path with the lowercase hex
// SHA-256 of its decoded value (escapes resolved), as a JSON string: a
// field is pseudonymised without the address leaving the host, and records
// stay joinable on it. The host hashes (a guest-side SHA-256 costs several
// microseconds per record under the runtime's interruption checks). It
// reports whether the field was replaced: a missing field is false with no
// error (the record is unchanged), a value that is not a string is false
// with ErrWrongType. When the operator set a hash key on the host, the
// digest is HMAC-SHA-256 with that key (the guest never sees it); without
// one it is a plain SHA-256 that anyone can recompute from a guessed value:
// pseudonymisation, not anonymisation (ABI.md, hash_field).
func (r *Record) HashSHA256(path string) (bool, error) {
	st := hostHashField(r.idx, path, HashSHA256)
	if st == StatusNotFound {
		return false, nil
	}
	return st == StatusOK, statusErr("hash", path, st)
}

// SetValue replaces the record's whole value; it must be valid JSON.
func (r *Record) SetValue(raw []byte) error {
	return statusErr("set value", "", hostSetValue(r.idx, ptr(raw), uint32(len(raw))))
}

// Route sets the record's output topic.
func (r *Record) Route(topic string) error {
	return statusErr("route", "", hostSetTopic(r.idx, topic))
}

// SetKey sets the record's partitioning key.
func (r *Record) SetKey(key []byte) error {
	return statusErr("set key", "", hostSetKey(r.idx, ptr(key), uint32(len(key))))
}

// SetHeader sets (replaces or adds) the header name.
func (r *Record) SetHeader(name string, value []byte) error {
	return statusErr("set header", "", hostSetHeader(r.idx, name, ptr(value), uint32(len(value))))
}

// Emit adds a new record after this one (fan-out) with value raw, which must
// be valid JSON. The new record starts with this record's topic, key and
// headers; the returned handle routes or edits it.
func (r *Record) Emit(raw []byte) (*Record, error) {
	st := hostEmit(r.idx, ptr(raw), uint32(len(raw)))
	if st < 0 {
		return nil, statusErr("emit", "", st)
	}
	return &Record{idx: st}, nil
}

// Emit is Record.Emit on the record at index parent of the current batch.
func Emit(parent int, raw []byte) (*Record, error) {
	r := Record{idx: int32(parent)}
	return r.Emit(raw)
}

// Status errors.
var (
	// ErrNotFound: the field, key or header does not exist.
	ErrNotFound = errors.New("sluice: not found")
	// ErrBadRecord: the record index is out of range.
	ErrBadRecord = errors.New("sluice: bad record index")
	// ErrBadMemory: the host could not read a guest buffer.
	ErrBadMemory = errors.New("sluice: bad guest memory range")
	// ErrInvalidJSON: a value is not valid JSON, or the record is not JSON.
	ErrInvalidJSON = errors.New("sluice: invalid JSON")
	// ErrBadPath: an empty path or an empty path segment.
	ErrBadPath = errors.New("sluice: bad path")
	// ErrLimit: a per-call host limit was hit.
	ErrLimit = errors.New("sluice: host limit reached")
	// ErrWrongType: the value is not of the requested JSON type.
	ErrWrongType = errors.New("sluice: wrong JSON type")
	// ErrUnsupported: the host does not implement what was asked (an
	// unknown hash algorithm).
	ErrUnsupported = errors.New("sluice: unsupported by the host")
)

// StatusError is a host status code that maps to no sentinel.
type StatusError struct {
	Op     string // the operation ("set", "route", …)
	Arg    string // its path or name, when it has one
	Status int32  // the host's status code
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.Arg != "" {
		return "sluice: " + e.Op + " " + e.Arg + ": status " + strconv.Itoa(int(e.Status))
	}
	return "sluice: " + e.Op + ": status " + strconv.Itoa(int(e.Status))
}

func statusErr(op, arg string, st int32) error {
	switch {
	case st >= 0:
		return nil
	case st == StatusNotFound:
		return ErrNotFound
	case st == StatusBadRecord:
		return ErrBadRecord
	case st == StatusBadMemory:
		return ErrBadMemory
	case st == StatusInvalidJSON:
		return ErrInvalidJSON
	case st == StatusBadPath:
		return ErrBadPath
	case st == StatusLimit:
		return ErrLimit
	case st == StatusWrongType:
		return ErrWrongType
	case st == StatusUnsupported:
		return ErrUnsupported
	}
	return &StatusError{Op: op, Arg: arg, Status: st}
}
