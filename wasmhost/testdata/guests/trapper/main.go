// Command trapper panics on any record whose "trap" field is true and
// passes every other record through.
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		if b, _ := rec.Get("trap").Bool(); b {
			panic("boom on " + rec.Get("id").String())
		}
		return nil
	})
}

func main() {}
