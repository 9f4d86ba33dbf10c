// Command noop passes every record through untouched.
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error { return nil })
}

func main() {}
