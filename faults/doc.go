// Package faults is sluice's fault suite: end-to-end scenarios that start
// the real binary, drive load at it, inject a fault and then check, by
// reading Kafka back, that every event which received 200 is present
// (duplicates are allowed, losses are not) and that the process is still
// alive and serving.
//
// The scenarios live in files with the build tag "faults" and are named
// TestFault...; run them with
//
//	make test-faults
//	go test -timeout 30m -count=1 -tags faults -run 'TestFault' -v ./faults/...
//
// Each scenario logs its outcome (events acknowledged and found, duplicates,
// 503s, peak resident memory) with t.Logf, so -v shows the figures.
//
// The scenarios are:
//
//   - TestFaultKafkaOutage: Kafka is unavailable for 10 s mid-load (every
//     produce fails, or the broker is closed and restarted from its data
//     directory on the same port), then recovers.
//   - TestFaultMemoryFlood: a flood of ten times what --memory-limit allows;
//     peak RSS stays under twice the limit, the gate latches and answers 503.
//   - TestFaultHostileTransforms: guests that trap, loop forever or exhaust
//     their memory on one record in a thousand; those records are
//     dead-lettered with a reason and the rest flow.
//   - TestFaultSIGTERMUnderLoad: SIGTERM while loaded; exit status 0 and no
//     acknowledged event lost.
//   - TestFaultSlowClients: slowloris bodies and headers and idle
//     connections do not starve a normal client; the read timeout ends the
//     requests that never complete.
//   - TestFaultHostileInput: a corpus of malformed requests, each answered
//     with its documented status and a JSON error.
//   - TestFaultPoisonRecords: the example chain against a cluster without
//     topic auto-creation; 6 normal clients and 2 whose every request holds
//     one poison record (a 300-byte event name, an unknown topic, a topic
//     the client may not write, a record over message.max.bytes). Every
//     request of both gets 200, the poison is in the DLQ with the broker's
//     reason, nothing acknowledged is lost; it logs both 200 shares.
//
// The Kafka cluster of each scenario is franz-go's kfake, owned by the test
// process, so that it outlives the sluice process under test.
package faults
