package codec

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/bytedance/sonic"
)

// parseAPI decodes like encoding/json (strings validated and copied) and
// keeps numbers as json.Number so 64-bit ids survive a round trip.
var parseAPI = sonic.Config{
	EscapeHTML:       true,
	SortMapKeys:      true,
	CompactMarshaler: true,
	CopyString:       true,
	ValidateString:   true,
	UseNumber:        true,
}.Froze()

// Kind is the JSON type of a Value.
type Kind uint8

const (
	// KindNull is JSON null (and the zero Value).
	KindNull Kind = iota
	// KindBool is true or false.
	KindBool
	// KindNumber is a JSON number, held as json.Number.
	KindNumber
	// KindString is a JSON string.
	KindString
	// KindArray is a JSON array ([]any).
	KindArray
	// KindObject is a JSON object (map[string]any).
	KindObject
)

// String returns the kind's JSON name.
func (k Kind) String() string {
	switch k {
	case KindNull:
		return "null"
	case KindBool:
		return "bool"
	case KindNumber:
		return "number"
	case KindString:
		return "string"
	case KindArray:
		return "array"
	case KindObject:
		return "object"
	default:
		return "unknown"
	}
}

// Value is a fully decoded JSON value. It owns its data (strings are
// copied out of the source document) and is safe for concurrent reads.
// The zero Value is JSON null.
//
// The decoded form is the encoding/json one (map[string]any, []any, string,
// bool, nil) with numbers as json.Number. It was chosen over sonic's ast.Node
// with LoadAll by BenchmarkParse: decoding into a map is faster and, unlike a
// lazily loaded ast.Node, safe to read from several goroutines.
type Value struct{ v any }

// Parse decodes doc completely. Invalid JSON (including bad escapes and raw
// control characters in strings) returns an error wrapping ErrInvalid.
func Parse(doc []byte) (Value, error) {
	var v any
	if err := parseAPI.Unmarshal(doc, &v); err != nil {
		return Value{}, fmt.Errorf("%w: %s", ErrInvalid, err.Error())
	}
	return Value{v: v}, nil
}

// Kind returns the value's JSON type.
func (v Value) Kind() Kind {
	switch v.v.(type) {
	case bool:
		return KindBool
	case json.Number:
		return KindNumber
	case string:
		return KindString
	case []any:
		return KindArray
	case map[string]any:
		return KindObject
	default:
		return KindNull
	}
}

// Interface returns the decoded value (map[string]any, []any, string, bool,
// json.Number or nil). Callers must not mutate maps or slices they did not
// create, since Values are shared read-only.
func (v Value) Interface() any { return v.v }

// Lookup returns the value at p. A missing key, an index out of range, or a
// segment that does not match the container type returns ErrNotFound. The
// zero Path returns v itself.
func (v Value) Lookup(p Path) (Value, error) {
	cur := v.v
	for _, seg := range p.segs {
		switch s := seg.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return Value{}, ErrNotFound
			}
			next, ok := m[s]
			if !ok {
				return Value{}, ErrNotFound
			}
			cur = next
		case int:
			switch c := cur.(type) {
			case []any:
				if s >= len(c) {
					return Value{}, ErrNotFound
				}
				cur = c[s]
			case map[string]any:
				// A digit segment against an object reads it as a key.
				next, ok := c[strconv.Itoa(s)]
				if !ok {
					return Value{}, ErrNotFound
				}
				cur = next
			default:
				return Value{}, ErrNotFound
			}
		}
	}
	return Value{v: cur}, nil
}

// Str returns the string and true when v is a JSON string.
func (v Value) Str() (string, bool) {
	s, ok := v.v.(string)
	return s, ok
}

// Bool returns the boolean and true when v is true or false.
func (v Value) Bool() (bool, bool) {
	b, ok := v.v.(bool)
	return b, ok
}

// Int64 returns the number as an int64 and true when v is an integral
// number that fits.
func (v Value) Int64() (int64, bool) {
	n, ok := v.v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// Float64 returns the number as a float64 and true when v is a number.
func (v Value) Float64() (float64, bool) {
	n, ok := v.v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// MarshalJSON encodes the value back to JSON (object keys sorted).
func (v Value) MarshalJSON() ([]byte, error) {
	return parseAPI.Marshal(v.v)
}
