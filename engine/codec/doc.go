// Package codec reads JSON records on demand: the one record check of every
// ingest path (Check: strict validity plus I-JSON's unique names), a field
// by dotted path without a full parse (Get), strict validation (Valid), and
// a full parse for the pre-parsed driver path (Parse).
//
// The central type is Path, compiled once from a dotted path and reused for
// every record. Data enters as a record's Value bytes and leaves as raw JSON
// value bytes that alias the input (Get) or as a decoded Value (Parse).
//
// Check (and Checker, its reusable form) validates a document with the
// strictness of encoding/json.Valid and rejects an object that repeats a
// name (RFC 7493 I-JSON §2.3), names compared after unescaping ("\u0069p"
// is "ip"), with a *DuplicateKeyError naming it. A repeated name would let
// a transform edit one value while downstream readers, most of which keep
// the last, read the other. It is a single Go pass, SWAR eight bytes at a
// time through strings; FuzzCheck holds it to encoding/json on validity and
// to encoding/json's decoder on repeated names.
//
// Get is built on sonic's searcher with whole-document validation switched
// off: it scans only as far as the target, so it is fast (about 100–150 ns
// for a field of a 300-byte event) and it does NOT validate the document. It
// assumes a document that already passed Check or Valid; on a broken
// document it may report ErrNotFound or return bytes from a document that is
// invalid further on. The gateway checks every record once at ingress
// (Check), after which any number of transforms may Get from it.
//
// Valid is strict (RFC 8259 as encoding/json reads it) but allows repeated
// names: sonic.Valid alone accepts bad string escapes and raw control
// characters, so Valid runs sonic's fast structural check and falls back to
// encoding/json only for documents that contain a backslash or a control
// byte. FuzzValid holds it equal to encoding/json.Valid.
//
// sonic uses its native (JIT/SIMD) implementation only on amd64 and arm64
// with Go < 1.28; elsewhere it silently falls back to encoding/json. Native
// reports whether the fast path is in use; a test asserts it on amd64/arm64.
package codec
