// Package rustsdk carries the source of the Rust SDK (the crate in this
// folder), so that `sluice transform init --lang rust` vendors into a new
// transform the SDK of the binary that made it. Nothing here runs in a
// guest; the crate itself is built by cargo.
package rustsdk

import "embed"

// Files holds the crate: Cargo.toml, README.md and src/*.rs.
//
//go:embed Cargo.toml README.md src/*.rs
var Files embed.FS
