package sluice

import (
	"errors"
	"strconv"
	"unsafe"
)

// Record is a handle on one record the host keeps. Methods pull data from
// the host or push a decision to it; nothing is copied into the guest unless
// asked for. A Record is valid only during the handler call that received it.
type Record struct {
	idx    int32
	k      int32 // path-taking calls made so far: the next site
	flags  uint8
	nEdits uint8 // field edits made (buffered or not), for reads
	edits  [maxEdits]string
}

// Index returns the record's position in the batch (emitted records come
// after the batch's records).
func (r *Record) Index() int { return int(r.idx) }

// Get returns the JSON value at a dotted path ("geo.country", "items.0.sku"),
// parsed on the host. A missing path returns a Value whose Exists is false.
func (r *Record) Get(path string) Value { return Value(r.get(path, FetchRaw)) }

// GetString returns the decoded string at a dotted path, decoded on the
// host. ok is false when the path is missing or not a JSON string.
func (r *Record) GetString(path string) (s string, ok bool) {
	v, ok := r.GetText(path)
	return string(v), ok
}

// GetText is GetString without the copy: the decoded bytes live in the
// batch's buffers (valid until the handler returns). Use it to compare or
// look up (m[string(b)] does not allocate) without allocating.
func (r *Record) GetText(path string) ([]byte, bool) {
	v := r.get(path, FetchString)
	return v, v != nil
}

// Raw returns the record's value bytes as the host currently holds them
// (including edits made so far in this call).
func (r *Record) Raw() []byte {
	flushFor()
	v, _ := fetch(getValue, r.idx, "")
	return v
}

// Topic returns the record's output topic ("" means the default topic).
func (r *Record) Topic() string {
	flushFor()
	v, _ := fetch(getTopic, r.idx, "")
	return string(v)
}

// Key returns the record's key, or nil when it has none.
func (r *Record) Key() []byte {
	flushFor()
	v, _ := fetch(getKey, r.idx, "")
	return v
}

// Header returns the value of the first header named name and whether it
// exists.
func (r *Record) Header(name string) ([]byte, bool) {
	flushFor()
	v, st := fetch(getHeader, r.idx, name)
	return v, st == StatusOK
}

// Drop removes the record from the output.
func (r *Record) Drop() { r.decide(OpDrop, "") }

// DeadLetter sends the record to the dead-letter queue with reason instead of
// the output.
func (r *Record) DeadLetter(reason string) { r.decide(OpDeadLetter, reason) }

// decide is Drop and DeadLetter.
func (r *Record) decide(op byte, reason string) {
	r.flags |= recDecided
	if r.flags&recDirect != 0 {
		if op == OpDrop {
			hostDrop(r.idx)
		} else {
			hostDeadLetter(r.idx, reason)
		}
		return
	}
	at := opAt(OpHeaderSize + len(reason))
	putOp(at, op, 0, r.idx, len(reason), 0)
	copy(ops[at+OpHeaderSize:], reason)
	r.flags |= recPending
}

// Set sets the field at path to v, creating missing parent objects. v is
// encoded as JSON without reflection: nil, string, bool, every integer and
// float type, Value and RawJSON (valid JSON text, checked by the host),
// []byte (base64, as encoding/json does), a type with MarshalJSON or
// MarshalText, and slices of any, string, int, int64, float64 and bool and
// maps from string to any, string, int, int64, float64 and bool, whose
// contents are encoded exactly as encoding/json would. Any other type is
// ErrCannotEncode: marshal it (encoding/json) and pass RawJSON. (The SDK
// does not link encoding/json: it would cost every module about 450 KB and
// the host four times that in compiled code.)
func (r *Record) Set(path string, v any) error {
	raw, err := appendJSON(arena[len(arena):], v)
	if err != nil {
		r.k++ // the call still takes its site
		return err
	}
	if userText(v) {
		// Text from the handler: the host checks it.
		k := r.k
		r.k++
		r.track(path, k, true)
		flushFor()
		st := hostSetField(r.idx, path, ptr(raw), uint32(len(raw)))
		r.noteEdit(path)
		return statusErr("set", path, st)
	}
	return r.set(OpSetField, path, unsafeString(raw))
}

// SetString sets the field at path to the JSON string s (quoted on the
// host).
func (r *Record) SetString(path, s string) error { return r.set(OpSetString, path, s) }

// set is Set (val is JSON text the SDK encoded) and SetString. Its fast
// path (a record on track, a top-level key, an object) makes no call.
func (r *Record) set(op byte, path, val string) error {
	k := r.k
	r.k = k + 1
	if uint32(k) < maxSites && r.flags&(recDirect|recOffTrack) == 0 && kindsOK {
		if s := &sites[k]; s.edit && s.info == pathKey && sameConst(s.path, path) && kinds[r.idx] == KindObject {
			at := opAt(OpHeaderSize + len(path) + len(val))
			putOp(at, op, 0, r.idx, len(path), len(val))
			copy(ops[at+OpHeaderSize:], path)
			copy(ops[at+OpHeaderSize+len(path):], val)
			r.flags |= recPending
			r.noteEdit(path)
			return nil
		}
	}
	return r.setSlow(op, path, val, k)
}

func (r *Record) setSlow(op byte, path, val string, k int32) error {
	if s := r.track(path, k, true); s != nil {
		switch s.info {
		case pathBad:
			return statusErr("set", path, StatusBadPath)
		case pathKey:
			s.wanted = true
			if kindsOK || fetchKinds() {
				switch kinds[r.idx] {
				case KindObject:
					appendOp(op, 0, r.idx, path, val)
					r.flags |= recPending
					r.noteEdit(path)
					return nil
				case KindNotJSON:
					return statusErr("set", path, StatusInvalidJSON)
				case KindArray, KindScalar:
					return statusErr("set", path, StatusNotFound) // only an object takes a new key
				}
			}
		}
	}
	flushFor()
	var st int32
	if op == OpSetString {
		st = hostSetString(r.idx, path, val)
	} else {
		st = hostSetField(r.idx, path, unsafe.Pointer(unsafe.StringData(val)), uint32(len(val)))
	}
	r.noteEdit(path)
	return statusErr("set", path, st)
}

// Delete removes the field at path; deleting a missing field is not an error.
func (r *Record) Delete(path string) error {
	k := r.k
	r.k = k + 1
	if uint32(k) < maxSites && r.flags&(recDirect|recOffTrack) == 0 && kindsOK {
		if s := &sites[k]; s.edit && s.info >= pathKey && sameConst(s.path, path) && kinds[r.idx] != KindNotJSON {
			at := opAt(OpHeaderSize + len(path))
			putOp(at, OpDeleteField, DeleteMissingOK, r.idx, len(path), 0)
			copy(ops[at+OpHeaderSize:], path)
			r.flags |= recPending
			r.noteEdit(path)
			return nil
		}
	}
	return r.deleteSlow(path, k)
}

func (r *Record) deleteSlow(path string, k int32) error {
	if s := r.track(path, k, true); s != nil {
		switch s.info {
		case pathBad:
			return statusErr("delete", path, StatusBadPath)
		case pathKey, pathNested:
			s.wanted = true
			if kindsOK || fetchKinds() {
				if kinds[r.idx] == KindNotJSON {
					return statusErr("delete", path, StatusInvalidJSON)
				}
				// OK or NOT_FOUND: both success.
				appendOp(OpDeleteField, DeleteMissingOK, r.idx, path, "")
				r.flags |= recPending
				r.noteEdit(path)
				return nil
			}
		}
	}
	flushFor()
	st := hostDeleteField(r.idx, path)
	r.noteEdit(path)
	if st == StatusNotFound {
		return nil
	}
	return statusErr("delete", path, st)
}

// HashSHA256 replaces the JSON string at path with the lowercase hex
// SHA-256 of its decoded value (escapes resolved), as a JSON string: a
// field is pseudonymised without the address leaving the host, and records
// stay joinable on it. The host hashes (a guest-side SHA-256 in Go's wasm
// code costs microseconds per record). It
// reports whether the field was replaced: a missing field is false with no
// error (the record is unchanged), a value that is not a string is false
// with ErrWrongType. When the operator set a hash key on the host, the
// digest is HMAC-SHA-256 with that key (the guest never sees it); without
// one it is a plain SHA-256 that anyone can recompute from a guessed value:
// pseudonymisation, not anonymisation (ABI.md, hash_field).
func (r *Record) HashSHA256(path string) (bool, error) {
	k := r.k
	r.k = k + 1
	// The field's string column says how the hash ends.
	if uint32(k) < maxSites && r.flags&(recDirect|recOffTrack) == 0 {
		if c := fast[k]; c != nil && c.mode == FetchString && sites[k].edit && sameConst(c.path, path) {
			c.uses++
			if st := int32(*(*uint64)(unsafe.Add(c.tabp, uintptr(r.idx)*8)) >> 32); st >= 0 {
				at := opAt(OpHeaderSize + len(path))
				putOp(at, OpHashField, byte(HashSHA256), r.idx, len(path), 0)
				copy(ops[at+OpHeaderSize:], path)
				r.flags |= recPending
				r.noteEdit(path)
				return true, nil
			} else if st == StatusNotFound {
				return false, nil
			} else {
				return false, statusErr("hash", path, st)
			}
		}
	}
	return r.hashSlow(path, k)
}

func (r *Record) hashSlow(path string, k int32) (bool, error) {
	if s := r.track(path, k, true); s != nil {
		if c := s.column(path, FetchString); c != nil && c.ready && !r.touches(path) {
			switch st := int32(c.tab[r.idx] >> 32); {
			case st >= 0:
				appendOp(OpHashField, byte(HashSHA256), r.idx, path, "")
				r.flags |= recPending
				r.noteEdit(path)
				return true, nil
			case st == StatusNotFound:
				return false, nil
			default:
				return false, statusErr("hash", path, st)
			}
		}
	}
	flushFor()
	st := hostHashField(r.idx, path, HashSHA256)
	r.noteEdit(path)
	if st == StatusNotFound {
		return false, nil
	}
	return st == StatusOK, statusErr("hash", path, st)
}

// SetValue replaces the record's whole value; it must be valid JSON.
func (r *Record) SetValue(raw []byte) error {
	flushFor()
	r.flags |= recDirect // every field of the record may have changed
	return statusErr("set value", "", hostSetValue(r.idx, ptr(raw), uint32(len(raw))))
}

// Route sets the record's output topic.
func (r *Record) Route(topic string) error {
	if r.flags&recDirect != 0 {
		return statusErr("route", "", hostSetTopic(r.idx, topic))
	}
	at := opAt(OpHeaderSize + len(topic))
	putOp(at, OpSetTopic, 0, r.idx, len(topic), 0)
	copy(ops[at+OpHeaderSize:], topic)
	r.flags |= recPending
	return nil
}

// RouteTo sets the record's output topic to prefix followed by name:
// rec.RouteTo("events.", ev) is rec.Route("events." + string(ev)) without
// building the string in the guest.
func (r *Record) RouteTo(prefix string, name []byte) error {
	if r.flags&recDirect != 0 {
		return r.Route(prefix + string(name))
	}
	at := opAt(OpHeaderSize + len(prefix) + len(name))
	putOp(at, OpSetTopic, 0, r.idx, len(prefix)+len(name), 0)
	copy(ops[at+OpHeaderSize:], prefix)
	copy(ops[at+OpHeaderSize+len(prefix):], name)
	r.flags |= recPending
	return nil
}

// SetKey sets the record's partitioning key.
func (r *Record) SetKey(key []byte) error {
	if r.flags&recDirect != 0 {
		return statusErr("set key", "", hostSetKey(r.idx, ptr(key), uint32(len(key))))
	}
	at := opAt(OpHeaderSize + len(key))
	putOp(at, OpSetKey, 0, r.idx, len(key), 0)
	copy(ops[at+OpHeaderSize:], key)
	r.flags |= recPending
	return nil
}

// SetHeader sets (replaces or adds) the header name.
func (r *Record) SetHeader(name string, value []byte) error {
	if r.flags&recDirect != 0 {
		return statusErr("set header", "", hostSetHeader(r.idx, name, ptr(value), uint32(len(value))))
	}
	appendOp(OpSetHeader, 0, r.idx, name, unsafeString(value))
	r.flags |= recPending
	return nil
}

// Emit adds a new record after this one (fan-out) with value raw, which must
// be valid JSON. The new record starts with this record's topic, key and
// headers; the returned handle routes or edits it.
func (r *Record) Emit(raw []byte) (*Record, error) {
	flushFor()
	st := hostEmit(r.idx, ptr(raw), uint32(len(raw)))
	if st < 0 {
		return nil, statusErr("emit", "", st)
	}
	return &Record{idx: st, flags: recDirect}, nil
}

// Emit is Record.Emit on the record at index parent of the current batch.
func Emit(parent int, raw []byte) (*Record, error) {
	r := Record{idx: int32(parent), flags: recDirect}
	return r.Emit(raw)
}

// unsafeString views b as a string without copying; b must not change
// while the string is used.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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
