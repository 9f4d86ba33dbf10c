// Command sequences runs, per record, the sequence of SDK calls its "seq"
// header names: reads after edits of the same, parent or child paths, edits
// the SDK cannot predict, reads of the record's metadata after buffered
// decisions, emits after edits, errors after decisions. The host's
// differential test compares its outputs with those of the SDK that made
// one host call per operation.
package main

import (
	"errors"
	"fmt"

	sluice "github.com/sluicehq/sluice/guest-sdk/go"
)

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		h, _ := rec.Header("seq")
		seq := string(h)
		note := func(k string, v any) error { return rec.Set("out_"+k, v) }
		switch seq {
		case "read-after-delete":
			if err := rec.Delete("a"); err != nil {
				return err
			}
			return note("a", rec.Get("a").Exists())
		case "read-child-after-set":
			if err := rec.Set("a", map[string]int{"b": 1}); err != nil {
				return err
			}
			return note("ab", rec.Get("a.b").String())
		case "read-parent-after-nested-delete":
			if err := rec.Delete("x.y"); err != nil {
				return err
			}
			return note("x", rec.Get("x").String())
		case "hash-twice":
			ok1, err1 := rec.HashSHA256("email")
			ok2, err2 := rec.HashSHA256("email")
			return note("h", fmt.Sprint(ok1, err1, ok2, err2))
		case "hash-after-set":
			if err := rec.SetString("email", "new@x.y"); err != nil {
				return err
			}
			ok, err := rec.HashSHA256("email")
			return note("h", fmt.Sprint(ok, err))
		case "set-nested":
			if err := rec.Set("p.q.r", 1); err != nil {
				return err
			}
			return note("p", rec.Get("p").String())
		case "set-top":
			return rec.SetString("k", "v")
		case "delete-top":
			return rec.Delete("a")
		case "meta":
			if err := rec.Route("t.new"); err != nil {
				return err
			}
			if err := rec.SetKey([]byte("k.new")); err != nil {
				return err
			}
			if err := rec.SetHeader("h", []byte("v.new")); err != nil {
				return err
			}
			h, ok := rec.Header("h")
			return note("meta", fmt.Sprintf("%s|%s|%s|%v", rec.Topic(), rec.Key(), h, ok))
		case "emit-after-edits":
			if err := rec.SetString("a", "edited"); err != nil {
				return err
			}
			child, err := rec.Emit(rec.Raw())
			if err != nil {
				return err
			}
			if err := child.Route("child"); err != nil {
				return err
			}
			return child.SetString("child", "yes")
		case "drop-then-error":
			rec.Drop()
			return errors.New("after drop")
		case "dead-then-edit":
			rec.DeadLetter("dead first")
			return rec.SetString("a", "after")
		case "bad-path":
			return rec.Delete("a..b")
		case "digit-key":
			return rec.SetString("0", "x")
		case "set-value-then-get":
			if err := rec.SetValue([]byte(`{"n":5,"a":"x"}`)); err != nil {
				return err
			}
			return note("n", rec.Get("n").String())
		case "text-and-raw":
			t, ok := rec.GetText("s")
			return note("s", fmt.Sprintf("%s|%v|%s", t, ok, rec.Get("s")))
		case "many-edits":
			for _, k := range []string{"e1", "e2", "e3", "e4", "e5", "e6"} {
				if err := rec.SetString(k, k); err != nil {
					return err
				}
			}
			return note("e", rec.Get("e5").String()+rec.Get("a").String())
		case "conditional":
			if rec.Get("a").Exists() {
				return note("c", rec.Get("b").String())
			}
			return note("c", rec.Get("c").String())
		case "long-index":
			return note("li", rec.Get("items.1234567890123456789012").Exists())
		case "unicode-key":
			return rec.SetString("ключ", "v")
		case "raw-set":
			return rec.Set("r", sluice.RawJSON(`{"raw":[1,2]}`))
		case "bad-raw-set":
			return rec.Set("r", sluice.RawJSON(`{"raw":`))
		case "value-set":
			return rec.Set("copy", rec.Get("a"))
		}
		return nil
	})
}

func main() {}
