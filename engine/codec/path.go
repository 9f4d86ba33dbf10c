package codec

import (
	"fmt"
	"strconv"
	"strings"
)

// Path is a compiled dotted path such as "geo.country" or "items.0.sku".
// Compile it once with ParsePath and reuse it for every record; a Path is
// immutable and safe for concurrent use.
//
// A segment made only of ASCII digits indexes an array; any other segment is
// an object key. Keys that contain a dot cannot be addressed.
type Path struct {
	src  string
	segs []any // string (object key) or int (array index), as sonic expects
}

// ParsePath compiles a dotted path. An empty path or an empty segment is an
// error wrapping ErrBadPath.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return Path{}, fmt.Errorf("%w: empty path", ErrBadPath)
	}
	parts := strings.Split(s, ".")
	segs := make([]any, len(parts))
	for i, part := range parts {
		if part == "" {
			return Path{}, fmt.Errorf("%w: empty segment %d in %q", ErrBadPath, i, s)
		}
		if isIndex(part) {
			n, err := strconv.Atoi(part)
			if err != nil {
				return Path{}, fmt.Errorf("%w: index %q in %q: %v", ErrBadPath, part, s, err)
			}
			segs[i] = n
			continue
		}
		segs[i] = part
	}
	return Path{src: s, segs: segs}, nil
}

// MustParsePath is ParsePath that panics on error, for paths fixed at
// compile time.
func MustParsePath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the dotted source of the path.
func (p Path) String() string { return p.src }

// Len returns the number of segments (0 for the zero Path).
func (p Path) Len() int { return len(p.segs) }

func isIndex(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
