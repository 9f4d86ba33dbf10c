// Command kitchen exercises every host function, driven by each record's
// "op" field, so the host's side of the ABI can be tested end to end.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	sluice "github.com/sluicehq/sluice/guest-sdk/go"
)

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		switch op := rec.Get("op").String(); op {
		case "dlq":
			rec.DeadLetter("bad " + rec.Get("id").String())
		case "err":
			return errors.New("handler error")
		case "split":
			// {"op":"split","items":[...]} → one record per item, parent dropped.
			for i := 0; ; i++ {
				it := rec.Get(fmt.Sprintf("items.%d", i))
				if !it.Exists() {
					break
				}
				child, err := rec.Emit(it)
				if err != nil {
					return err
				}
				if err := child.Route(fmt.Sprintf("items.%d", i)); err != nil {
					return err
				}
			}
			rec.Drop()
		case "meta":
			key := rec.Key()
			h, ok := rec.Header("h1")
			if err := rec.SetHeader("seen", []byte(fmt.Sprintf("key=%s h1=%s/%v topic=%s", key, h, ok, rec.Topic()))); err != nil {
				return err
			}
			if err := rec.SetHeader("h1", []byte("replaced")); err != nil {
				return err
			}
		case "edit":
			if err := rec.Set("n", 42); err != nil {
				return err
			}
			if err := rec.Set("a.b.c", true); err != nil {
				return err
			}
			if err := rec.Delete("gone"); err != nil {
				return err
			}
			// Reads see the edits of this call.
			if err := rec.SetString("echo", rec.Get("a.b.c").String()+"/"+rec.Get("n").String()); err != nil {
				return err
			}
		case "big":
			// A value larger than the SDK's initial 4 KiB buffer.
			if n := len(rec.Get("blob").String()); n > 0 {
				return rec.Set("blob_len", n)
			}
		case "str":
			s, ok := rec.GetString("s")
			_, okNum := rec.GetString("n")
			_, okMissing := rec.GetString("missing")
			return rec.SetString("got", fmt.Sprintf("%s/%v/%v/%v", s, ok, okNum, okMissing))
		case "raw":
			raw := rec.Raw()
			return rec.SetValue([]byte(fmt.Sprintf(`{"wrapped":%s}`, raw)))
		case "env":
			// The environment the host gives a guest.
			return rec.SetString("env", strings.Join(os.Environ(), " "))
		case "rand":
			// random_get: 16 bytes from the host's source.
			var b [16]byte
			rand.Read(b[:])
			return rec.SetString("rand", hex.EncodeToString(b[:]))
		case "badjson":
			if err := rec.SetValue([]byte("{nope")); !errors.Is(err, sluice.ErrInvalidJSON) {
				return fmt.Errorf("want ErrInvalidJSON, got %v", err)
			}
			if err := rec.Set("x", sluice.RawJSON("[1,")); !errors.Is(err, sluice.ErrInvalidJSON) {
				return fmt.Errorf("want ErrInvalidJSON, got %v", err)
			}
			if err := rec.Set("a..b", 1); !errors.Is(err, sluice.ErrBadPath) {
				return fmt.Errorf("want ErrBadPath, got %v", err)
			}
			if _, err := sluice.Emit(1<<20, []byte("{}")); !errors.Is(err, sluice.ErrBadRecord) {
				return fmt.Errorf("want ErrBadRecord, got %v", err)
			}
			return rec.SetString("checked", "ok")
		}
		return nil
	})
}

func main() {}
