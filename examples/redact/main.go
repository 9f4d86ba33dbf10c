// Command redact is a sluice transform that removes personal data: it
// deletes "ua" and "ip", and replaces "email", when it is a string, with the
// hex SHA-256 of its value (so events stay joinable per user without the
// address). The hash is computed on the host (hash_field), which is several
// times cheaper than hashing in the guest; with a hash key on the host
// (SLUICE_HASH_KEY) it is an HMAC-SHA-256, see README.md.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o redact.wasm ./redact
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		if err := rec.Delete("ua"); err != nil {
			return err
		}
		if err := rec.Delete("ip"); err != nil {
			return err
		}
		// A missing email is fine, and one that is not a string is left as
		// it is.
		if _, err := rec.HashSHA256("email"); err != nil && err != sluice.ErrWrongType {
			return err
		}
		return nil
	})
}

func main() {}
