// Command route is a sluice transform that routes each event to the topic
// "events.<event>" and keys it by "user_id", so one user's events stay in
// order on one partition.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o route.wasm ./route
package main

import sluice "github.com/sluicehq/sluice/guest-sdk/go"

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		if ev, ok := rec.GetText("event"); ok && len(ev) > 0 {
			// RouteTo joins the topic on the host side of the call, without
			// building a string per record in the guest.
			if err := rec.RouteTo("events.", ev); err != nil {
				return err
			}
		}
		if uid := rec.Get("user_id"); uid.Exists() && !uid.IsNull() {
			return rec.SetKey(uid.Bytes())
		}
		return nil
	})
}

func main() {}
