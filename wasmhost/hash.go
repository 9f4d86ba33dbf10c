package wasmhost

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/tetratelabs/wazero/api"
)

// MinHashKey is the shortest Config.HashKey, in bytes.
const MinHashKey = 16

// fieldHasher is hash_field's keyed hash of one instance: HMAC-SHA-256 with
// the host's key, reset for each value (no allocation after the first).
type fieldHasher struct {
	mac hash.Hash
	sum []byte
}

// newFieldHasher returns the keyed hash of key (nil without a key: plain
// SHA-256).
func newFieldHasher(key []byte) *fieldHasher {
	if len(key) == 0 {
		return nil
	}
	return &fieldHasher{mac: hmac.New(sha256.New, key), sum: make([]byte, 0, sha256.Size)}
}

// warnUnkeyed logs that a module importing hash_field gets unkeyed digests
// when the host has no hash key.
func (h *Host) warnUnkeyed(name string, v *version) {
	if len(h.cfg.HashKey) > 0 {
		return
	}
	for _, f := range v.compiled.ImportedFunctions() {
		if mod, fn, _ := f.Import(); mod == ImportModule && fn == FuncHashField {
			h.cfg.Logger.Warn("transform hashes fields with an unkeyed SHA-256: anyone can hash a guessed value (an e-mail address) and compare, so this pseudonymises, it does not anonymise; set a hash key to make it an HMAC",
				"transform", name)
			return
		}
	}
}

// keyed returns HMAC-SHA-256(key, str), valid until the next call.
func (h *fieldHasher) keyed(str []byte) []byte {
	h.mac.Reset()
	h.mac.Write(str)
	h.sum = h.mac.Sum(h.sum[:0])
	return h.sum
}

// hashField is hash_field(rec, path_ptr, path_len, algo): the string at the
// path is replaced by the lowercase hex digest of its decoded bytes, as a
// JSON string: SHA-256, or HMAC-SHA-256 keyed with the host's hash key when
// it has one (Config.HashKey). The lookup goes through the per-record cache and the edit is
// spliced like set_string's; the only allocation is the edited record's
// new bytes (none when the host already owns them and they have room).
func hashField(ctx context.Context, mod api.Module, stack []uint64) {
	s, idx, ok := recordArg(ctx, stack)
	if !ok {
		return
	}
	rawPath, ok := read(mod, stack[1], stack[2])
	if !ok {
		ret(stack, StatusBadMemory)
		return
	}
	ret(stack, s.hashField(idx, rawPath, api.DecodeI32(stack[3])))
}

// hashField is hash_field on record idx.
func (s *callState) hashField(idx int32, rawPath []byte, algo int32) int32 {
	if algo != HashSHA256 {
		return StatusUnsupported
	}
	hp, ok := s.path(rawPath)
	if !ok {
		return StatusBadPath
	}
	r := s.record(idx)
	if r.Format != engine.FormatJSON {
		return StatusInvalidJSON
	}
	var d *doc
	ni := int32(-1)
	var v []byte
	if useIndex {
		d = s.doc(idx)
		var ok bool
		if ni, ok = d.find(hp.segs); !ok {
			d = nil // broken: the byte-level path below
		} else if ni < 0 {
			return StatusNotFound
		} else {
			n := &d.nodes[ni]
			v = d.val[n.vs:n.ve]
		}
	}
	if d == nil {
		var err error
		if v, err = codec.Get(r.Value, hp.p); err != nil {
			return editStatus(err)
		}
	}
	// The scratch holds the decoded string (when it has escapes), then the
	// quoted digest after it.
	str, scratch, st := unescapeInto(s.quoted[:0], v)
	if st != StatusOK {
		return st
	}
	at := len(scratch)
	scratch = append(scratch, '"')
	if s.hasher == nil {
		sum := sha256.Sum256(str)
		scratch = hex.AppendEncode(scratch, sum[:])
	} else {
		scratch = hex.AppendEncode(scratch, s.hasher.keyed(str))
	}
	scratch = append(scratch, '"')
	s.quoted = scratch
	if d != nil {
		s.setValue(idx, d.replace(s.editor(idx), ni, scratch[at:]))
		return StatusOK
	}
	return s.setPath(idx, r, hp, scratch[at:])
}

// unescapeInto returns the decoded contents of the JSON string token raw,
// as decodeString does, and scratch (dst, grown when the string had to be
// decoded into it). A string without escapes is a subslice of raw; common
// escapes are decoded into dst without allocating; anything decodeString
// treats specially (a lone surrogate, invalid UTF-8 or a control character
// next to an escape) is left to it.
func unescapeInto(dst, raw []byte) (str, scratch []byte, st int32) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, dst, StatusWrongType
	}
	inner := raw[1 : len(raw)-1]
	if !hasEscape(inner) {
		return inner, dst, StatusOK
	}
	start := len(dst)
	for i := 0; i < len(inner); {
		c := inner[i]
		switch {
		case c == '\\':
			if i+1 >= len(inner) {
				return slow(dst, raw)
			}
			switch e := inner[i+1]; e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(inner[i+2:])
				if !ok {
					return slow(dst, raw)
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if i+1 >= len(inner) || inner[i] != '\\' || inner[i+1] != 'u' {
						return slow(dst, raw)
					}
					r2, ok := hex4(inner[i+2:])
					if !ok {
						return slow(dst, raw)
					}
					if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
						return slow(dst, raw)
					}
					i += 6
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return slow(dst, raw)
			}
			i += 2
		case c < 0x20 || c == '"':
			return slow(dst, raw)
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(inner[i:])
			if r == utf8.RuneError && n <= 1 {
				return slow(dst, raw)
			}
			dst = append(dst, inner[i:i+n]...)
			i += n
		}
	}
	return dst[start:], dst, StatusOK
}

// slow decodes raw with decodeString (an allocation, for the rare strings
// the fast path leaves alone).
func slow(dst, raw []byte) ([]byte, []byte, int32) {
	str, st := decodeString(raw)
	return str, dst, st
}

func hasEscape(b []byte) bool { return bytes.IndexByte(b, '\\') >= 0 }

// hex4 decodes the 4 hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
