// Command redact is a sluice transform that removes personal data: it
// deletes "ua" and "ip", and replaces "email", when present, with the hex
// SHA-256 of its value (so events stay joinable per user without the
// address).
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o redact.wasm ./redact
package main

import (
	"crypto/sha256"
	"encoding/hex"

	sluice "github.com/sluicehq/sluice/guest-sdk/go"
)

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		if err := rec.Delete("ua"); err != nil {
			return err
		}
		if err := rec.Delete("ip"); err != nil {
			return err
		}
		if email, ok := rec.GetText("email"); ok {
			sum := sha256.Sum256(email)
			return rec.SetString("email", hex.EncodeToString(sum[:]))
		}
		return nil
	})
}

func main() {}
