package sluice

import "strconv"

// Value is a raw JSON value as the host returned it: `"DE"` (quotes
// included), `42`, `{"a":1}`, `null`. A nil Value means the path does not
// exist. It is valid until the handler returns.
type Value []byte

// Exists reports whether the path existed.
func (v Value) Exists() bool { return v != nil }

// IsNull reports whether the value is JSON null.
func (v Value) IsNull() bool { return string(v) == "null" }

// IsString reports whether the value is a JSON string.
func (v Value) IsString() bool { return len(v) >= 2 && v[0] == '"' }

// Str returns the decoded string of a JSON string value, and false for any
// other kind of value.
func (v Value) Str() (string, bool) {
	if !v.IsString() {
		return "", false
	}
	s, ok := unquote(v)
	return s, ok
}

// String returns the decoded string of a JSON string value, and the raw JSON
// text of any other value ("" when missing).
func (v Value) String() string {
	if s, ok := v.Str(); ok {
		return s
	}
	return string(v)
}

// Equal reports whether v is the JSON string s, without allocating when the
// string has no escapes.
func (v Value) Equal(s string) bool {
	if !v.IsString() {
		return false
	}
	inner := v[1 : len(v)-1]
	if equalString(inner, s) {
		// Equal raw bytes decode to s unless they hold an escape.
		return plainString(inner)
	}
	if plainString(inner) {
		return false
	}
	u, ok := unquote(v)
	return ok && u == s
}

// Bytes returns the decoded bytes of a JSON string value (aliasing v when
// it has no escapes: no allocation) and the raw JSON text of any other
// value (nil when missing).
func (v Value) Bytes() []byte {
	if v.IsString() {
		inner := v[1 : len(v)-1]
		if plainString(inner) {
			return inner
		}
		s, _ := unquote(v)
		return []byte(s)
	}
	return v
}

// Int returns the value as an int64 when it is a JSON integer.
func (v Value) Int() (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// Float returns the value as a float64 when it is a JSON number.
func (v Value) Float() (float64, bool) {
	if len(v) == 0 || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return f, err == nil
}

// Bool returns the value as a bool when it is true or false.
func (v Value) Bool() (bool, bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// RawJSON is JSON text that Set writes as is (it must be valid JSON).
type RawJSON []byte
