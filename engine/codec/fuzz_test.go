package codec

import (
	"encoding/json"
	"errors"
	"testing"
	"unsafe"
)

var fuzzSeeds = []string{
	event, `{}`, `[]`, `"s"`, `1`, `null`, `{"a":{"b":[1,{"c":"d"}]}}`, `{"a":}`, `{"a":1`,
	`"\q"`, `"\u00"`, "\"\x01\"", "{\"a\":\"\t\"}", `{"a":"\\"}`, `{"a":"\""}`, `[1,]`, `01`,
	`{"0":[true,false]}`, `{"a":1,"a":2}`, "\n{\"a\" : [ 1 , 2 ] }\r\n",
}

// FuzzValid holds Valid equal to encoding/json.Valid, the strict reference.
func FuzzValid(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if got, want := Valid(doc), json.Valid(doc); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", doc, got, want)
		}
	})
}

// FuzzGet checks on valid documents that a found value is valid JSON lying
// inside the document, and that a miss is ErrNotFound, never ErrInvalid.
func FuzzGet(f *testing.F) {
	for _, s := range fuzzSeeds {
		for _, p := range []string{"a", "a.b", "a.b.1.c", "0", "type", "user.geo.country", "items.1.sku"} {
			f.Add([]byte(s), p)
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		p, err := ParsePath(path)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("ParsePath(%q) err = %v", path, err)
			}
			return
		}
		if !json.Valid(doc) {
			// Contract: Get assumes a validated document. It must not panic.
			_, _ = Get(doc, p)
			return
		}
		got, err := Get(doc, p)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(%q, %q) on a valid document: %v", doc, path, err)
			}
			return
		}
		if !json.Valid(got) {
			t.Fatalf("Get(%q, %q) = %q, not valid JSON", doc, path, got)
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(doc)))
		at := uintptr(unsafe.Pointer(unsafe.SliceData(got)))
		if at < start || at+uintptr(len(got)) > start+uintptr(len(doc)) {
			t.Fatalf("Get(%q, %q) = %q does not alias the document", doc, path, got)
		}
	})
}
