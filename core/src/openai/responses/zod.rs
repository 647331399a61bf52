//! zod-like validation helpers: issues with paths, hard and soft, unions.

use serde_json::{Map, Value};

/// One schema issue. `hard` issues abort their value (type errors, unknown keys, bad literals);
/// soft ones are failed checks (ranges, lengths, refinements). Inside a union only an option
/// with soft issues alone surfaces its own issues; otherwise the union reports `Invalid input`.
#[derive(Debug, Clone)]
pub(super) struct Issue {
    pub(super) path: String,
    pub(super) message: String,
    pub(super) hard: bool,
}

#[derive(Debug, Default)]
pub(super) struct Issues(pub(super) Vec<Issue>);

impl Issues {
    pub(super) fn hard(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(Issue { path: path.to_string(), message: message.into(), hard: true });
    }
    pub(super) fn soft(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(Issue { path: path.to_string(), message: message.into(), hard: false });
    }
    pub(super) fn aborted(&self) -> bool {
        self.0.iter().any(|i| i.hard)
    }
    pub(super) fn merge(&mut self, other: Issues) {
        self.0.extend(other.0);
    }
}

pub(super) fn at(path: &str, key: impl std::fmt::Display) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

pub(super) fn invalid_type(iss: &mut Issues, path: &str, expected: &str, v: Option<&Value>) {
    iss.hard(path, crate::wire::zod_type_issue(expected, v));
}

pub(super) fn req_string(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        other => {
            invalid_type(iss, path, "string", other);
            None
        }
    }
}

pub(super) fn opt_string(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<String> {
    v.and_then(|v| req_string(iss, path, Some(v)))
}

/// `z.string().nullable().optional()`.
pub(super) fn opt_nullable_string(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        other => req_string(iss, path, other),
    }
}

pub(super) fn opt_bool(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<bool> {
    match v {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        other => {
            invalid_type(iss, path, "boolean", other);
            None
        }
    }
}

pub(super) fn req_object<'a>(iss: &mut Issues, path: &str, v: Option<&'a Value>) -> Option<&'a Map<String, Value>> {
    match v {
        Some(Value::Object(o)) => Some(o),
        other => {
            invalid_type(iss, path, "object", other);
            None
        }
    }
}

pub(super) fn quoted(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// `z.enum` / `z.literal` over strings.
pub(super) fn one_of(iss: &mut Issues, path: &str, v: Option<&Value>, values: &[&str]) -> Option<String> {
    match v {
        Some(Value::String(s)) if values.contains(&s.as_str()) => Some(s.clone()),
        _ => {
            let message = match values {
                [one] => format!("Invalid input: expected {}", quoted(one)),
                many => format!("Invalid option: expected one of {}", many.iter().map(|x| quoted(x)).collect::<Vec<_>>().join("|")),
            };
            iss.hard(path, message);
            None
        }
    }
}

/// `.strict()`: keys outside `allowed` are one issue at the object's path.
pub(super) fn strict_keys(iss: &mut Issues, path: &str, o: &Map<String, Value>, allowed: &[&str]) {
    let extra: Vec<String> = o.keys().filter(|k| !allowed.contains(&k.as_str())).map(|k| quoted(k)).collect();
    if !extra.is_empty() {
        let s = if extra.len() > 1 { "s" } else { "" };
        iss.hard(path, format!("Unrecognized key{s}: {}", extra.join(", ")));
    }
}

/// `z.number().min(lo).max(hi)`: the number as sent.
pub(super) fn bounded(iss: &mut Issues, path: &str, v: &Value, lo: (f64, &str), hi: (f64, &str)) -> Option<Value> {
    let Some(x) = v.as_f64().filter(|_| v.is_number()) else {
        invalid_type(iss, path, "number", Some(v));
        return None;
    };
    if x < lo.0 {
        iss.soft(path, format!("Too small: expected number to be >={}", lo.1));
        return None;
    }
    if x > hi.0 {
        iss.soft(path, format!("Too big: expected number to be <={}", hi.1));
        return None;
    }
    Some(v.clone())
}

/// `z.number().int().positive()`.
pub(super) fn positive_int(iss: &mut Issues, path: &str, v: &Value) -> Option<u64> {
    let Some(x) = v.as_f64().filter(|_| v.is_number()) else {
        invalid_type(iss, path, "number", Some(v));
        return None;
    };
    if x.fract() != 0.0 {
        iss.hard(path, "Invalid input: expected int, received number");
        return None;
    }
    if x > 9_007_199_254_740_991.0 {
        iss.soft(path, "Too big: expected int to be <=9007199254740991");
        return None;
    }
    if x <= 0.0 {
        iss.soft(path, "Too small: expected number to be >0");
        return None;
    }
    v.as_u64().or(Some(x as u64))
}

/// `z.record(z.string(), z.string())`.
pub(super) fn string_record(iss: &mut Issues, path: &str, v: &Value) -> Option<Map<String, Value>> {
    let Some(o) = v.as_object() else {
        invalid_type(iss, path, "record", Some(v));
        return None;
    };
    let mut ok = true;
    for (k, x) in o {
        if !x.is_string() {
            invalid_type(iss, &at(path, k), "string", Some(x));
            ok = false;
        }
    }
    ok.then(|| o.clone())
}

/// Resolve a union from one option's issues: clean → the value; only soft issues → those;
/// anything aborting → `Invalid input` at the union's path.
pub(super) fn union_result<T>(iss: &mut Issues, path: &str, sub: Issues, value: Option<T>) -> Option<T> {
    if sub.0.is_empty() {
        value
    } else if sub.aborted() {
        iss.hard(path, "Invalid input");
        None
    } else {
        iss.merge(sub);
        None
    }
}
