//! kitchen exercises every operation of the Rust SDK, driven by each
//! record's "op" field: the twin of ../go, step for step.
//! TestSDKKitchenGoRustDifferential requires the same output.

use sluice::{Error, RawJson, Record, ToJson, Value};

/// The Go SDK's `Value.String`: a string's decoded bytes, else the raw text.
fn vstr(v: &Value) -> Vec<u8> {
    match v.text() {
        Some(t) => t.into_owned(),
        None => v.raw().unwrap_or(b"").to_vec(),
    }
}

fn err_text<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn go_float(f: f64) -> Vec<u8> {
    let mut out = Vec::new();
    f.append_json(&mut out).unwrap();
    out
}

fn handle(rec: &Record) -> Result<(), Box<dyn std::error::Error>> {
    let id = vstr(&rec.get("id"));
    let id_s = String::from_utf8_lossy(&id).into_owned();
    match &vstr(&rec.get("op"))[..] {
        b"dlq" => rec.dead_letter(&format!("bad {}", id_s)),
        b"err" => return Err(format!("handler error {}", id_s).into()),
        b"drop-err" => {
            rec.drop();
            return Err("ignored".into());
        }
        b"dlq-err" => {
            rec.dead_letter(&format!("first {}", id_s));
            return Err("ignored".into());
        }
        b"split" => {
            let mut i = 0;
            loop {
                let it = rec.get(&format!("items.{}", i));
                if !it.exists() {
                    break;
                }
                let child = rec.emit(it.raw().unwrap())?;
                child.route(format!("items.{}", i))?;
                child.set_text("from", &id)?;
                child.set_header("seen", cat(&[child.topic(), b"|", &vstr(&child.get("x"))]))?;
                i += 1;
            }
            rec.drop();
        }
        b"meta" => {
            rec.route("meta.t")?;
            rec.set_key(cat(&[b"k-", &id]))?;
            rec.set_header("h1", "v1")?;
            let h = rec.header("h1");
            let h2 = rec.header("nope");
            let seen = cat(&[
                b"key=",
                rec.key().unwrap_or(b""),
                b" h1=",
                h.unwrap_or(b""),
                b"/",
                h.is_some().to_string().as_bytes(),
                b" h2=",
                h2.unwrap_or(b""),
                b"/",
                h2.is_some().to_string().as_bytes(),
                b" topic=",
                rec.topic(),
            ]);
            rec.set_header("seen", seen)?;
            rec.set_header("h1", "replaced")?;
        }
        b"edit" => {
            rec.set("n", &42)?;
            rec.set("a.b.c", &true)?;
            rec.delete("gone")?;
            let echo = cat(&[&vstr(&rec.get("a.b.c")), b"/", &vstr(&rec.get("n")), b"/", &vstr(&rec.get("gone"))]);
            rec.set_text("echo", &echo)?;
        }
        b"types" => {
            rec.set("i", &-7)?;
            rec.set("u", &u64::MAX)?;
            rec.set("f", &1234567.0)?;
            rec.set("f2", &0.000015)?;
            rec.set("f3", &1.5)?;
            rec.set("b", &false)?;
            rec.set("nil", &None::<i32>)?;
            rec.set("s", "q\"\\\n\t\x01é😀</>")?;
            rec.set("copy", &rec.get("src"))?;
            rec.set("missing_copy", &rec.get("nope"))?;
            rec.set("raw", &RawJson(br#"[1,{"x":2}]"#))?;
        }
        b"big" => {
            let n = vstr(&rec.get("blob")).len();
            if n > 0 {
                rec.set("blob_len", &n)?;
            }
        }
        b"str" => {
            let s = rec.get_text("s");
            let got = cat(&[
                s.unwrap_or(b""),
                b"/",
                s.is_some().to_string().as_bytes(),
                b"/",
                rec.get_text("n").is_some().to_string().as_bytes(),
                b"/",
                rec.get_text("missing").is_some().to_string().as_bytes(),
            ]);
            rec.set_text("got", &got)?;
        }
        b"raw" => {
            let wrapped = cat(&[br#"{"wrapped":"#, rec.raw(), b"}"]);
            rec.set_value(&wrapped)?;
        }
        b"badjson" => {
            let checked = [
                err_text(rec.set_value(b"{nope")),
                err_text(rec.set("x", &RawJson(b"[1,"))),
                err_text(rec.set("a..b", &1)),
                err_text(rec.set("", &1)),
                err_text(rec.delete("a..b")),
                err_text(rec.emit(b"{nope")),
            ]
            .join("|");
            rec.set_str("checked", &checked)?;
        }
        b"hash" => {
            let out: Vec<String> = ["email", "n", "missing", "nested.email", "nested.n", "obj"]
                .iter()
                .map(|p| match rec.hash_sha256(p) {
                    Ok(ok) => format!("{}={}/ok", p, ok),
                    Err(e) => format!("{}=false/{}", p, e),
                })
                .collect();
            rec.set_str("hashed", &out.join(","))?;
        }
        b"hash-after-edit" => {
            rec.set_str("email", "new@example.com")?;
            rec.set("n", "now a string")?;
            rec.delete("gone")?;
            let out: Vec<String> = ["email", "n", "gone"]
                .iter()
                .map(|p| match rec.hash_sha256(p) {
                    Ok(ok) => format!("{}={}/ok", p, ok),
                    Err(e) => format!("{}=false/{}", p, e),
                })
                .collect();
            rec.set_str("hashed", &out.join(","))?;
        }
        b"set-nested-bad" => rec.set("geo.country.x", &1)?,
        b"delete-nested" => {
            let deleted = [
                err_text(rec.delete("geo.city")),
                err_text(rec.delete("geo.none")),
                err_text(rec.delete("geo.country.x")),
                err_text(rec.delete("list.0")),
            ]
            .join("|");
            rec.set_str("deleted", &deleted)?;
        }
        b"value" => {
            let mut out: Vec<Vec<u8>> = Vec::new();
            for p in ["v.s", "v.esc", "v.n", "v.f", "v.t", "v.null", "v.obj", "v.missing", "v.bad"] {
                let v = rec.get(p);
                let b = |x: bool| x.to_string().into_bytes();
                let text = v.text();
                let (n, is_int) = match v.int() {
                    Some(n) => (n, true),
                    None => (0, false),
                };
                let (f, is_float) = match v.float() {
                    Some(f) => (f, true),
                    None => (0.0, false),
                };
                let (bo, is_bool) = match v.bool() {
                    Some(x) => (x, true),
                    None => (false, false),
                };
                out.push(
                    [
                        format!("{}:", p).into_bytes(),
                        b(v.exists()),
                        b",".to_vec(),
                        b(v.is_null()),
                        b",".to_vec(),
                        b(v.is_string()),
                        b",".to_vec(),
                        text.as_deref().unwrap_or(b"").to_vec(),
                        b",".to_vec(),
                        b(text.is_some()),
                        b",".to_vec(),
                        v.bytes().into_owned(),
                        b",".to_vec(),
                        n.to_string().into_bytes(),
                        b",".to_vec(),
                        b(is_int),
                        b",".to_vec(),
                        go_float(f),
                        b",".to_vec(),
                        b(is_float),
                        b",".to_vec(),
                        b(bo),
                        b",".to_vec(),
                        b(is_bool),
                        b",".to_vec(),
                        b(v.equal("x")),
                        b",".to_vec(),
                        b(v.equal("é\n")),
                    ]
                    .concat(),
                );
            }
            rec.set_text("described", &out.join(&b";"[..]))?;
        }
        b"paths" => {
            let mut sum = 0i64;
            for i in 0..24 {
                if let Some(n) = rec.get(&format!("p.{}", i)).int() {
                    sum += n;
                }
            }
            rec.set("sum", &sum)?;
        }
        b"emit-edit" => {
            let child = rec.emit(br#"{"child":1}"#)?;
            child.set_str("c", "x")?;
            child.route("kids")?;
            child.set_key(b"")?;
            let seen = cat(&[child.raw(), b"|", child.topic(), b"|", (child.index() > rec.index()).to_string().as_bytes()]);
            rec.set_text("child_seen", &seen)?;
        }
        b"long-reason" => return Err(format!("raison: ünïcödé 😀 {}", "é".repeat(600)).into()),
        b"array-shift" => {
            // A delete of an element moves the later ones: reads after it
            // see the array as it now is.
            rec.delete("list.0")?;
            let shifted = cat(&[&vstr(&rec.get("list.0")), b"/", &vstr(&rec.get("list.1")), b"/", &vstr(&rec.get("list.2"))]);
            rec.set_text("shifted", &shifted)?;
        }
        b"edit-others" => {
            // Edits of other fields, then a hash and reads of untouched
            // ones (their columns stay good), and of edited ones.
            rec.delete("ua")?;
            rec.set_text("tag", &cat(&[b"t-", &id]))?;
            rec.delete("geo.city")?;
            let (ok, err) = match rec.hash_sha256("email") {
                Ok(ok) => (ok, "ok".to_string()),
                Err(e) => (false, e.to_string()),
            };
            let seen = cat(&[
                format!("{}/{}/", ok, err).as_bytes(),
                &vstr(&rec.get("ua")),
                b"/",
                &vstr(&rec.get("tag")),
                b"/",
                &vstr(&rec.get("geo")),
                b"/",
                &vstr(&rec.get("geo.country")),
                b"/",
                &vstr(&rec.get("email")),
                b"/",
                &vstr(&rec.get("n")),
            ]);
            rec.set_text("seen", &seen)?;
        }
        b"route-to" => {
            rec.route_to("rt.", &id)?;
            rec.set_header("t", rec.topic())?;
        }
        b"key" => rec.set_key(rec.get("user_id").bytes())?,
        _ => {}
    }
    Ok(())
}

sluice::handle_record!(handle);
