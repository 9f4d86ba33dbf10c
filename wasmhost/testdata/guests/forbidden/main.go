// Command forbidden imports a host function outside the sluice ABI: the
// host must reject it.
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

//go:wasmimport env http_get
func httpGet(url string) int32

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		httpGet("http://example.com")
		return nil
	})
}

func main() {}
