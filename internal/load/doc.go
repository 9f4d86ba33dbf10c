// Package load is an HTTP load generator for sluice (or any HTTP ingest
// endpoint). Its entry point is Main, which the sluice binary runs as
// "sluice load" and cmd/sluice-load runs on its own.
package load
