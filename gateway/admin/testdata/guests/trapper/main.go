// Command trapper is a test transform that panics (a wasm trap) on any
// record whose "event" is "boom" and passes every other record through.
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		if rec.Get("event").Equal("boom") {
			panic("boom")
		}
		return nil
	})
}

func main() {}
