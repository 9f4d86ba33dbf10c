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
// EndOffsets), sends HTTP requests (Do), reads /metrics (Metrics) and
// lints it with promtool (Promtool).
//
// Browser tests drive Debian's headless Chromium through its chromedriver
// over the W3C WebDriver protocol (browser.go): StartBrowser starts
// chromedriver on a free port of 127.0.0.1 and a Chromium session with a
// fresh profile; a Browser opens pages (Open), finds elements (Find,
// FindAll, WaitFind, Active), types, clicks and presses keys (Element.Type,
// Element.Click, Keys with the Key* constants), runs scripts (Exec, Eval),
// waits for conditions (Wait, WaitJS, WaitText) and saves screenshots
// (Screenshot) under ArtifactsDir (the SLUICE_TEST_ARTIFACTS folder, else
// a temporary one that is kept; every path is logged). A failed test gets
// a "failure" screenshot and the page's console in its log. Without
// Chromium the test fails with what to install: browser tests are never
// skipped.
//
// Every helper that can fail takes a testing.TB and fails the test; the
// few that run before a test exists (BuildGuests, BuildSluice) or inside
// goroutines (ReadMetrics) return errors instead. A package's TestMain
// runs its tests through Main, which stops any process a test left behind
// and removes the files the harness built.
package e2e
