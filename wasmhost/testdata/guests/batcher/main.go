// Command batcher uses the batch handler: it drops records whose "id" was
// already seen in the batch, emits one summary record after the first, and
// fails the whole batch (every record dead-lettered) when any record has
// "fail": true.
package main

import (
	"errors"
	"strconv"

	sluice "github.com/sluicehq/sluice/guest-sdk/go"
)

func init() {
	sluice.HandleBatch(func(b *sluice.Batch) error {
		seen := map[string]bool{}
		kept := 0
		for i := 0; i < b.Len(); i++ {
			rec := b.Record(i)
			if f, _ := rec.Get("fail").Bool(); f {
				return errors.New("batch rejected")
			}
			id := rec.Get("id").String()
			if seen[id] {
				rec.Drop()
				continue
			}
			seen[id] = true
			kept++
		}
		if b.Len() > 0 {
			sum, err := b.Record(0).Emit([]byte(`{"unique":` + strconv.Itoa(kept) + `}`))
			if err != nil {
				return err
			}
			return sum.Route("summary")
		}
		return nil
	})
}

func main() {}
