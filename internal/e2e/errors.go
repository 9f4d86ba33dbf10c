package e2e

import "errors"

// ErrNoModule is returned by Root when no go.mod is found in the working
// directory or any of its parents.
var ErrNoModule = errors.New("e2e: no go.mod above the working directory")

// ErrNotReady is returned by ParseReady when the ready file does not name
// both the ingest and the admin address.
var ErrNotReady = errors.New("e2e: ready file lacks http= or admin=")
