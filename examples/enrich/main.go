// Command enrich is a sluice transform that adds "region" from
// "geo.country": apac, amer, emea or other.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o enrich.wasm ./enrich
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

// regions maps ISO 3166-1 alpha-2 country codes to a sales region.
var regions = map[string]string{
	"AU": "apac", "NZ": "apac", "JP": "apac", "SG": "apac",
	"US": "amer", "CA": "amer", "BR": "amer", "MX": "amer",
	"GB": "emea", "DE": "emea", "FR": "emea", "NL": "emea", "IE": "emea",
}

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		region := "other"
		// GetText does not allocate, nor does a map lookup by string(bytes).
		if c, ok := rec.GetText("geo.country"); ok {
			if r, ok := regions[string(c)]; ok {
				region = r
			}
		}
		return rec.SetString("region", region)
	})
}

func main() {}
