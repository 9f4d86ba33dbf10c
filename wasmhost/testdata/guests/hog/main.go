// Command hog allocates until it runs out of memory on any record whose
// "hog" field is true.
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

var keep [][]byte

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		if b, _ := rec.Get("hog").Bool(); b {
			for {
				keep = append(keep, make([]byte, 1<<20))
			}
		}
		return nil
	})
}

func main() {}
