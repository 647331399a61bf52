//! JSON patterns: a small subset-matching language for frames and HTTP bodies.
//!
//! * an object matches an object that has every key of the pattern, each matching (extra keys
//!   are fine); `"$absent"` as a value requires the key to be missing;
//! * an array matches an array of the same length, element by element;
//! * a scalar matches an equal scalar (numbers compare by value);
//! * markers: `"$any"`, `"$absent"`, `"$string"`, `"$nonempty"`, `"$number"`, `"$int"`,
//!   `"$bool"`, `"$array"`, `"$object"`, `"$null"`, `"$uuid"`, `"$prefix:<text>"`;
//! * `{"$eq": v}` — exactly `v`; `{"$contains": p}` — an array with an element matching `p`;
//!   `{"$range": [min, max]}` — a number in the inclusive range;
//!   `{"$not": p}` — present and not matching `p`.

use serde_json::Value;

/// Does `actual` (absent = `None`) match `pat`? `Err` says where and why not.
pub fn check(pat: &Value, actual: Option<&Value>) -> Result<(), String> {
    matches_at(pat, actual, "")
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "absent".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 160 {
                format!("{}…", &s[..s.char_indices().take_while(|(i, _)| *i < 160).last().map_or(0, |(i, c)| i + c.len_utf8())])
            } else {
                s
            }
        }
    }
}

fn at(path: &str) -> String {
    if path.is_empty() { "/".into() } else { path.to_string() }
}

pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5 && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn marker(m: &str, actual: Option<&Value>, path: &str) -> Result<(), String> {
    let fail = |what: &str| Err(format!("at {}: expected {what}, got {}", at(path), show(actual)));
    if m == "$absent" {
        return if actual.is_none() { Ok(()) } else { fail("no value") };
    }
    let Some(v) = actual else { return fail(&m[1..]) };
    let ok = match m {
        "$any" => true,
        "$string" => v.is_string(),
        "$nonempty" => v.as_str().is_some_and(|s| !s.is_empty()),
        "$number" => v.is_number(),
        "$int" => v.is_i64() || v.is_u64(),
        "$bool" => v.is_boolean(),
        "$array" => v.is_array(),
        "$object" => v.is_object(),
        "$null" => v.is_null(),
        "$uuid" => v.as_str().is_some_and(is_uuid),
        _ => match m.strip_prefix("$prefix:") {
            Some(p) => v.as_str().is_some_and(|s| s.starts_with(p)),
            None => return Err(format!("bad pattern marker {m:?}")),
        },
    };
    if ok { Ok(()) } else { fail(&m[1..]) }
}

fn num_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn matches_at(pat: &Value, actual: Option<&Value>, path: &str) -> Result<(), String> {
    match pat {
        Value::String(s) if s.starts_with('$') => marker(s, actual, path),
        Value::Object(o) if o.len() == 1 && o.keys().next().is_some_and(|k| k.starts_with('$')) => {
            let (k, inner) = o.iter().next().expect("one key");
            let v = actual.ok_or_else(|| format!("at {}: expected a value, got absent", at(path)))?;
            match k.as_str() {
                "$eq" => {
                    if v == inner {
                        Ok(())
                    } else {
                        Err(format!("at {}: expected exactly {}, got {}", at(path), show(Some(inner)), show(Some(v))))
                    }
                }
                "$contains" => {
                    let arr = v.as_array().ok_or_else(|| format!("at {}: expected an array, got {}", at(path), show(Some(v))))?;
                    if arr.iter().any(|e| matches_at(inner, Some(e), path).is_ok()) {
                        Ok(())
                    } else {
                        Err(format!("at {}: no element matches {}", at(path), show(Some(inner))))
                    }
                }
                "$range" => {
                    let (lo, hi) = (inner[0].as_f64().unwrap_or(f64::MIN), inner[1].as_f64().unwrap_or(f64::MAX));
                    match v.as_f64() {
                        Some(x) if x >= lo && x <= hi => Ok(()),
                        _ => Err(format!("at {}: expected a number in [{lo}, {hi}], got {}", at(path), show(Some(v)))),
                    }
                }
                "$not" => {
                    if matches_at(inner, Some(v), path).is_ok() {
                        Err(format!("at {}: expected not {}, got {}", at(path), show(Some(inner)), show(Some(v))))
                    } else {
                        Ok(())
                    }
                }
                other => Err(format!("bad pattern operator {other:?}")),
            }
        }
        Value::Object(o) => {
            let Some(Value::Object(a)) = actual else {
                return Err(format!("at {}: expected an object, got {}", at(path), show(actual)));
            };
            for (k, p) in o {
                matches_at(p, a.get(k), &format!("{path}/{k}"))?;
            }
            Ok(())
        }
        Value::Array(ps) => {
            let Some(Value::Array(a)) = actual else {
                return Err(format!("at {}: expected an array, got {}", at(path), show(actual)));
            };
            if a.len() != ps.len() {
                return Err(format!("at {}: expected {} elements, got {}", at(path), ps.len(), show(actual)));
            }
            for (i, (p, v)) in ps.iter().zip(a).enumerate() {
                matches_at(p, Some(v), &format!("{path}/{i}"))?;
            }
            Ok(())
        }
        scalar => match actual {
            Some(v) if num_eq(scalar, v) => Ok(()),
            _ => Err(format!("at {}: expected {}, got {}", at(path), show(Some(scalar)), show(actual))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_and_markers() {
        let v = json!({"a": 1, "b": "xyz", "c": [1, 2], "d": {"e": true}, "u": "05ea8d9c-bee5-4a76-b001-903e38d96a29"});
        assert!(check(&json!({"a": 1, "b": "$prefix:xy", "d": {"e": "$bool"}, "z": "$absent", "u": "$uuid"}), Some(&v)).is_ok());
        assert!(check(&json!({"c": [1, 2]}), Some(&v)).is_ok());
        assert!(check(&json!({"c": [1]}), Some(&v)).is_err());
        assert!(check(&json!({"c": {"$contains": 2}}), Some(&v)).is_ok());
        assert!(check(&json!({"a": {"$range": [0, 2]}}), Some(&v)).is_ok());
        assert!(check(&json!({"d": {"$eq": {"e": true}}}), Some(&v)).is_ok());
        assert!(check(&json!({"b": "$int"}), Some(&v)).is_err());
        assert!(check(&json!({"a": 1.0}), Some(&v)).is_ok());
    }
}
