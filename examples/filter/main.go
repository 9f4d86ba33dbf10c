// Command filter is a sluice transform that drops heartbeat events: every
// record whose "event" field is the string "heartbeat".
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm ./filter
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		if rec.Get("event").Equal("heartbeat") {
			rec.Drop()
		}
		return nil
	})
}

func main() {}
