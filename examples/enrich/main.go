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

// byCode is regions as a table indexed by the code's two letters: a Go map
// lookup costs a guest dozens of runtime calls per record, the table none.
var byCode [26 * 26]string

func init() {
	for code, region := range regions {
		byCode[int(code[0]-'A')*26+int(code[1]-'A')] = region
	}
	sluice.HandleRecord(func(rec *sluice.Record) error {
		region := "other"
		// GetText does not allocate.
		if c, ok := rec.GetText("geo.country"); ok && len(c) == 2 && c[0]-'A' < 26 && c[1]-'A' < 26 {
			if r := byCode[int(c[0]-'A')*26+int(c[1]-'A')]; r != "" {
				region = r
			}
		}
		return rec.SetString("region", region)
	})
}

func main() {}
