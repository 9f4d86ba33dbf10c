// Command looper spins forever on any record whose "loop" field is true.
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

var sink int

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		if b, _ := rec.Get("loop").Bool(); b {
			for i := 0; ; i++ {
				sink = i
			}
		}
		return nil
	})
}

func main() {}
