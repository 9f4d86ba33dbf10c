package codec

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/ast"
)

// Native reports whether sonic runs its native implementation (amd64/arm64,
// Go < 1.28). When false every codec call works but runs several times
// slower, through encoding/json and sonic's pure-Go paths.
func Native() bool { return sonic.APIKind == sonic.UseSonicJSON }

// nativeExpected reports whether this platform should have the native path.
func nativeExpected() bool { return runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" }

// Get returns the raw JSON value at p in doc without parsing the rest of the
// document: for {"geo":{"country":"FR"}} and "geo.country" it returns
// `"FR"` (quotes included, escapes as in the source).
//
// The result aliases doc: doc must not be mutated or reused while the result
// is in use. Get does not allocate beyond sonic's searcher (one small
// allocation per call).
//
// Get assumes doc already passed Valid. It scans only up to the target, so a
// syntax error after the target goes unnoticed and one before it may be
// reported as ErrNotFound rather than ErrInvalid. A path that does not exist
// returns ErrNotFound, as does one that runs into a value of another type
// ("type.x" where type is a string); when sonic reports a syntax error, Get
// validates the document to return ErrInvalid only for a broken one. The zero
// Path returns the whole document.
func Get(doc []byte, p Path) ([]byte, error) {
	if len(p.segs) == 0 {
		return doc, nil
	}
	if len(doc) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrInvalid)
	}
	// doc is not copied: the searcher and the node reference it.
	s := ast.NewSearcher(unsafe.String(unsafe.SliceData(doc), len(doc)))
	s.ValidateJSON = false
	n, err := s.GetByPath(p.segs...)
	if err != nil {
		if errors.Is(err, ast.ErrNotExist) {
			return nil, ErrNotFound
		}
		// sonic also reports a path that runs into a value of another type
		// ("a.b" where a is a string) as a syntax error. Only on this error
		// path, tell the two apart by validating the whole document.
		if Valid(doc) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("%w: get %q: %s", ErrInvalid, p.src, err.Error())
	}
	raw, err := n.Raw()
	if err != nil {
		return nil, fmt.Errorf("%w: get %q: %s", ErrInvalid, p.src, err.Error())
	}
	if len(raw) == 0 {
		return nil, ErrNotFound
	}
	return unsafe.Slice(unsafe.StringData(raw), len(raw)), nil
}
