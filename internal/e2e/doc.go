// Package e2e is the shared harness of the test suites that run the real
// sluice binary: cmd/sluice, gateway/admin and the fault suite (faults,
// build tag faults). It is imported only from _test.go files.
//
// The harness builds the binary once per test binary (Sluice; the
// SLUICE_TEST_BINARY environment variable names a prebuilt one instead),
// builds transform guests from Go source (BuildGuests, GuestFiles), starts
// `sluice run` on 127.0.0.1:0 and reads the bound addresses from its
// --ready-file (Start, Proc), stops it with SIGTERM and a kill, starts
// in-process kfake clusters (Kafka) and reads topics back (ReadTopics,
// EndOffsets), sends HTTP requests (Do) and reads /metrics (Metrics).
//
// Every helper that can fail takes a testing.TB and fails the test; the
// few that run before a test exists (BuildGuests, BuildSluice) or inside
// goroutines (ReadMetrics) return errors instead. A package's TestMain
// runs its tests through Main, which stops any process a test left behind
// and removes the files the harness built.
package e2e
