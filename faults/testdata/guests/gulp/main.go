// Command gulp asks for 256 MiB at once, past any instance memory limit,
// on any record whose "gulp" field is true, and passes every other record
// through. Unlike a guest that grows step by step, it runs out of memory
// well within any call deadline.
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

var keep []byte

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		if b, _ := rec.Get("gulp").Bool(); b {
			keep = make([]byte, 256<<20)
			keep[len(keep)-1] = 1
		}
		return nil
	})
}

func main() {}
