// Command kitchen exercises every operation of the Go SDK, driven by each
// record's "op" field. Its twin in ../rust does the same with the Rust SDK,
// step for step; TestSDKKitchenGoRustDifferential requires the same output.
package main

import (
	"errors"
	"strconv"
	"strings"

	sluice "github.com/sluicehq/sluice/guest-sdk/go"
)

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func init() {
	sluice.HandleRecord(func(rec *sluice.Record) error {
		id := rec.Get("id").String()
		switch rec.Get("op").String() {
		case "dlq":
			rec.DeadLetter("bad " + id)
		case "err":
			return errors.New("handler error " + id)
		case "drop-err":
			rec.Drop()
			return errors.New("ignored")
		case "dlq-err":
			rec.DeadLetter("first " + id)
			return errors.New("ignored")
		case "split":
			// {"op":"split","items":[...]} → one record per item, parent dropped.
			for i := 0; ; i++ {
				it := rec.Get("items." + strconv.Itoa(i))
				if !it.Exists() {
					break
				}
				child, err := rec.Emit(it)
				if err != nil {
					return err
				}
				if err := child.Route("items." + strconv.Itoa(i)); err != nil {
					return err
				}
				if err := child.SetString("from", id); err != nil {
					return err
				}
				if err := child.SetHeader("seen", []byte(child.Topic()+"|"+child.Get("x").String())); err != nil {
					return err
				}
			}
			rec.Drop()
		case "meta":
			if err := rec.Route("meta.t"); err != nil {
				return err
			}
			if err := rec.SetKey([]byte("k-" + id)); err != nil {
				return err
			}
			if err := rec.SetHeader("h1", []byte("v1")); err != nil {
				return err
			}
			h, ok := rec.Header("h1")
			h2, ok2 := rec.Header("nope")
			seen := "key=" + string(rec.Key()) + " h1=" + string(h) + "/" + strconv.FormatBool(ok) +
				" h2=" + string(h2) + "/" + strconv.FormatBool(ok2) + " topic=" + rec.Topic()
			if err := rec.SetHeader("seen", []byte(seen)); err != nil {
				return err
			}
			return rec.SetHeader("h1", []byte("replaced"))
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
			return rec.SetString("echo", rec.Get("a.b.c").String()+"/"+rec.Get("n").String()+"/"+rec.Get("gone").String())
		case "types":
			for _, kv := range []struct {
				k string
				v any
			}{
				{"i", -7}, {"u", uint64(18446744073709551615)}, {"f", 1234567.0}, {"f2", 0.000015}, {"f3", 1.5},
				{"b", false}, {"nil", nil}, {"s", "q\"\\\n\t\x01é😀</>"}, {"copy", rec.Get("src")},
				{"missing_copy", rec.Get("nope")}, {"raw", sluice.RawJSON(`[1,{"x":2}]`)},
			} {
				if err := rec.Set(kv.k, kv.v); err != nil {
					return err
				}
			}
		case "big":
			// A value larger than the SDKs' first buffers.
			if n := len(rec.Get("blob").String()); n > 0 {
				return rec.Set("blob_len", n)
			}
		case "str":
			s, ok := rec.GetString("s")
			_, okNum := rec.GetString("n")
			_, okMissing := rec.GetString("missing")
			return rec.SetString("got", s+"/"+strconv.FormatBool(ok)+"/"+strconv.FormatBool(okNum)+"/"+strconv.FormatBool(okMissing))
		case "raw":
			return rec.SetValue([]byte(`{"wrapped":` + string(rec.Raw()) + `}`))
		case "badjson":
			return rec.SetString("checked", strings.Join([]string{
				errText(rec.SetValue([]byte("{nope"))),
				errText(rec.Set("x", sluice.RawJSON("[1,"))),
				errText(rec.Set("a..b", 1)),
				errText(rec.Set("", 1)),
				errText(rec.Delete("a..b")),
				func() string { _, err := rec.Emit([]byte("{nope")); return errText(err) }(),
			}, "|"))
		case "hash":
			var out []string
			for _, p := range []string{"email", "n", "missing", "nested.email", "nested.n", "obj"} {
				ok, err := rec.HashSHA256(p)
				out = append(out, p+"="+strconv.FormatBool(ok)+"/"+errText(err))
			}
			return rec.SetString("hashed", strings.Join(out, ","))
		case "hash-after-edit":
			// Edits first: what the hash sees is the edited value.
			if err := rec.SetString("email", "new@example.com"); err != nil {
				return err
			}
			if err := rec.Set("n", "now a string"); err != nil {
				return err
			}
			if err := rec.Delete("gone"); err != nil {
				return err
			}
			var out []string
			for _, p := range []string{"email", "n", "gone"} {
				ok, err := rec.HashSHA256(p)
				out = append(out, p+"="+strconv.FormatBool(ok)+"/"+errText(err))
			}
			return rec.SetString("hashed", strings.Join(out, ","))
		case "set-nested-bad":
			// geo.country is a string: no parent object for x.
			return rec.Set("geo.country.x", 1)
		case "delete-nested":
			return rec.SetString("deleted", strings.Join([]string{
				errText(rec.Delete("geo.city")), errText(rec.Delete("geo.none")),
				errText(rec.Delete("geo.country.x")), errText(rec.Delete("list.0")),
			}, "|"))
		case "value":
			var out []string
			for _, p := range []string{"v.s", "v.esc", "v.n", "v.f", "v.t", "v.null", "v.obj", "v.missing", "v.bad"} {
				v := rec.Get(p)
				s, isStr := v.Str()
				n, isInt := v.Int()
				f, isFloat := v.Float()
				b, isBool := v.Bool()
				out = append(out, p+":"+strconv.FormatBool(v.Exists())+","+strconv.FormatBool(v.IsNull())+","+
					strconv.FormatBool(v.IsString())+","+s+","+strconv.FormatBool(isStr)+","+string(v.Bytes())+","+
					strconv.FormatInt(n, 10)+","+strconv.FormatBool(isInt)+","+strconv.FormatFloat(f, 'g', -1, 64)+","+
					strconv.FormatBool(isFloat)+","+strconv.FormatBool(b)+","+strconv.FormatBool(isBool)+","+
					strconv.FormatBool(v.Equal("x"))+","+strconv.FormatBool(v.Equal("é\n")))
			}
			return rec.SetString("described", strings.Join(out, ";"))
		case "paths":
			// More distinct paths than a batch keeps columns for.
			sum := 0
			for i := 0; i < 24; i++ {
				if n, ok := rec.Get("p." + strconv.Itoa(i)).Int(); ok {
					sum += int(n)
				}
			}
			return rec.Set("sum", sum)
		case "emit-edit":
			child, err := rec.Emit([]byte(`{"child":1}`))
			if err != nil {
				return err
			}
			if err := child.SetString("c", "x"); err != nil {
				return err
			}
			if err := child.Route("kids"); err != nil {
				return err
			}
			if err := child.SetKey(nil); err != nil {
				return err
			}
			return rec.SetString("child_seen", string(child.Raw())+"|"+child.Topic()+"|"+strconv.FormatBool(child.Index() > rec.Index()))
		case "long-reason":
			return errors.New("raison: ünïcödé 😀 " + strings.Repeat("é", 600))
		case "array-shift":
			// A delete of an element moves the later ones: reads after it
			// see the array as it now is.
			if err := rec.Delete("list.0"); err != nil {
				return err
			}
			return rec.SetString("shifted", rec.Get("list.0").String()+"/"+rec.Get("list.1").String()+"/"+rec.Get("list.2").String())
		case "edit-others":
			// Edits of other fields, then a hash and reads of untouched
			// ones (their columns stay good), and of edited ones.
			if err := rec.Delete("ua"); err != nil {
				return err
			}
			if err := rec.SetString("tag", "t-"+id); err != nil {
				return err
			}
			if err := rec.Delete("geo.city"); err != nil {
				return err
			}
			ok, err := rec.HashSHA256("email")
			return rec.SetString("seen", strconv.FormatBool(ok)+"/"+errText(err)+"/"+rec.Get("ua").String()+"/"+
				rec.Get("tag").String()+"/"+rec.Get("geo").String()+"/"+rec.Get("geo.country").String()+"/"+
				rec.Get("email").String()+"/"+rec.Get("n").String())
		case "route-to":
			if err := rec.RouteTo("rt.", []byte(id)); err != nil {
				return err
			}
			return rec.SetHeader("t", []byte(rec.Topic()))
		case "key":
			return rec.SetKey(rec.Get("user_id").Bytes())
		}
		return nil
	})
}

func main() {}
