package codec

import "errors"

var (
	// ErrNotFound is returned by Get and Value.Lookup when the path does not
	// exist in the document (a missing key, an index past the end, or a
	// segment that traverses a scalar).
	ErrNotFound = errors.New("codec: path not found")

	// ErrInvalid is wrapped by the errors of Parse and Get when the document
	// is not valid JSON.
	ErrInvalid = errors.New("codec: invalid JSON")

	// ErrDuplicateKey is wrapped by the *DuplicateKeyError Check returns for
	// a valid JSON document in which an object repeats a name.
	ErrDuplicateKey = errors.New("codec: duplicate key")

	// ErrBadPath is wrapped by ParsePath for an empty path or an empty
	// segment ("a..b", ".a", "a.").
	ErrBadPath = errors.New("codec: bad path")
)
