// Command dropall is a test transform that drops every record: the "bad
// new version" of the admin API's swap and rollback tests.
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		rec.Drop()
		return nil
	})
}

func main() {}
