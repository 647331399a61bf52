//! A small JSON-Schema validator for the closed-object schemas of the protocol.
//!
//! The reference validates frames and params with a JSON-Schema validator in "all errors" mode
//! and formats the errors as `at <instancePath>: <message>` joined with `; `. Clients show those
//! texts to users, so we reproduce the keyword order and the wording (observed on the wire):
//!
//! * object keywords in the order `required` (first missing property only), `additionalProperties`,
//!   `properties` (schema order), `patternProperties`;
//! * string `maxLength` before `minLength`, number `maximum` before `minimum`;
//! * a failing `type` stops the other keywords of that schema;
//! * at most [`MAX_RAW_ERRORS`] raw errors are reported, duplicates removed.
//!
//! Only the keywords the protocol schemas use are supported; an unknown keyword is ignored.

use serde_json::{Map, Value};

/// The reference stops collecting after this many raw errors.
pub const MAX_RAW_ERRORS: usize = 8;

/// One validation failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// JSON pointer of the failing value (`""` for the root).
    pub instance_path: String,
    pub kind: SchemaErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaErrorKind {
    Required(String),
    Additional(String),
    Other(String),
}

impl SchemaError {
    fn format(&self) -> String {
        let at = |p: &str| if p.is_empty() { String::new() } else { format!("at {p}: ") };
        match &self.kind {
            SchemaErrorKind::Additional(name) => {
                let place = if self.instance_path.is_empty() { "at root".to_string() } else { format!("at {}", self.instance_path) };
                format!("{place}: unexpected property '{name}'")
            }
            SchemaErrorKind::Required(name) => format!("{}must have required property '{name}'", at(&self.instance_path)),
            SchemaErrorKind::Other(msg) => format!("{}{msg}", at(&self.instance_path)),
        }
    }
}

/// Validate `value` against `schema`; `Ok(())` or the reference-formatted error text.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    let errors = collect_errors(schema, value);
    if errors.is_empty() { Ok(()) } else { Err(format_errors(&errors)) }
}

/// All raw errors (capped at [`MAX_RAW_ERRORS`]).
pub fn collect_errors(schema: &Value, value: &Value) -> Vec<SchemaError> {
    let mut v = Validator { errors: Vec::new() };
    let mut path = String::new();
    v.check(schema, value, &mut path);
    v.errors.truncate(MAX_RAW_ERRORS);
    v.errors
}

/// Join errors the way the reference does: formatted, de-duplicated, `; `-separated.
pub fn format_errors(errors: &[SchemaError]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in errors {
        let s = e.format();
        if !s.trim().is_empty() && !parts.contains(&s) {
            parts.push(s);
        }
    }
    if parts.is_empty() { "unknown validation error".to_string() } else { parts.join("; ") }
}

struct Validator {
    errors: Vec<SchemaError>,
}

fn escape_pointer(seg: &str) -> String {
    seg.replace('~', "~0").replace('/', "~1")
}

fn type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => match value {
            Value::Number(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.is_finite()),
            _ => false,
        },
        _ => true,
    }
}

fn json_len(s: &str) -> usize {
    // JSON-Schema string lengths count Unicode code points.
    s.chars().count()
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { format!("{f}") }
}

impl Validator {
    fn full(&self) -> bool {
        self.errors.len() >= MAX_RAW_ERRORS
    }

    fn push(&mut self, path: &str, kind: SchemaErrorKind) {
        if !self.full() {
            self.errors.push(SchemaError { instance_path: path.to_string(), kind });
        }
    }

    fn other(&mut self, path: &str, msg: impl Into<String>) {
        self.push(path, SchemaErrorKind::Other(msg.into()));
    }

    fn check(&mut self, schema: &Value, value: &Value, path: &mut String) {
        if self.full() {
            return;
        }
        let obj = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                self.other(path, "schema is false");
                return;
            }
            Value::Object(o) => o,
            _ => return,
        };
        // type
        if let Some(t) = obj.get("type") {
            let ok = match t {
                Value::String(s) => type_matches(s, value),
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|s| type_matches(s, value)),
                _ => true,
            };
            if !ok {
                let name = match t {
                    Value::String(s) => s.clone(),
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
                    _ => String::new(),
                };
                self.other(path, format!("must be {name}"));
                return;
            }
        }
        // type-specific groups
        match value {
            Value::Number(_) => self.check_number(obj, value, path),
            Value::String(s) => self.check_string(obj, s, path),
            Value::Array(items) => self.check_array(obj, items, path),
            Value::Object(map) => self.check_object(obj, map, path),
            _ => {}
        }
        // keywords for any type
        if let Some(c) = obj.get("const") {
            if c != value {
                self.other(path, "must be equal to constant");
            }
        }
        if let Some(Value::Array(options)) = obj.get("enum") {
            if !options.iter().any(|o| o == value) {
                self.other(path, "must be equal to one of the allowed values");
            }
        }
        if let Some(Value::Array(branches)) = obj.get("anyOf") {
            let mut branch_errors = Vec::new();
            let mut matched = false;
            for b in branches {
                let mut sub = Validator { errors: Vec::new() };
                let mut p = path.clone();
                sub.check(b, value, &mut p);
                if sub.errors.is_empty() {
                    matched = true;
                    break;
                }
                branch_errors.extend(sub.errors);
            }
            if !matched {
                for e in branch_errors {
                    self.push(&e.instance_path.clone(), e.kind);
                }
                self.other(path, "must match a schema in anyOf");
            }
        }
    }

    fn check_number(&mut self, obj: &Map<String, Value>, value: &Value, path: &str) {
        let Some(x) = num(value) else { return };
        if let Some(max) = obj.get("maximum").and_then(num) {
            if x > max {
                self.other(path, format!("must be <= {}", fmt_num(max)));
            }
        }
        if let Some(min) = obj.get("minimum").and_then(num) {
            if x < min {
                self.other(path, format!("must be >= {}", fmt_num(min)));
            }
        }
    }

    fn check_string(&mut self, obj: &Map<String, Value>, s: &str, path: &str) {
        let len = json_len(s);
        if let Some(max) = obj.get("maxLength").and_then(Value::as_u64) {
            if len as u64 > max {
                self.other(path, format!("must not have more than {max} characters"));
            }
        }
        if let Some(min) = obj.get("minLength").and_then(Value::as_u64) {
            if (len as u64) < min {
                self.other(path, format!("must not have fewer than {min} characters"));
            }
        }
        if let Some(p) = obj.get("pattern").and_then(Value::as_str) {
            if !pattern_matches(p, s) {
                self.other(path, format!("must match pattern \"{p}\""));
            }
        }
    }

    fn check_array(&mut self, obj: &Map<String, Value>, items: &[Value], path: &mut String) {
        if let Some(max) = obj.get("maxItems").and_then(Value::as_u64) {
            if items.len() as u64 > max {
                self.other(path, format!("must not have more than {max} items"));
            }
        }
        if let Some(min) = obj.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                self.other(path, format!("must not have fewer than {min} items"));
            }
        }
        if let Some(item_schema) = obj.get("items") {
            for (i, item) in items.iter().enumerate() {
                if self.full() {
                    return;
                }
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                self.check(item_schema, item, path);
                path.truncate(len);
            }
        }
        // The reference's wording (secrets.store.set allowedHosts, captured): no item indices.
        if obj.get("uniqueItems") == Some(&Value::Bool(true)) && (1..items.len()).any(|j| items[..j].contains(&items[j])) {
            self.other(path, "must not have duplicate items".to_string());
        }
    }

    fn check_object(&mut self, obj: &Map<String, Value>, map: &Map<String, Value>, path: &mut String) {
        if let Some(Value::Array(req)) = obj.get("required") {
            if let Some(missing) = req.iter().filter_map(Value::as_str).find(|k| !map.contains_key(*k)) {
                self.push(path, SchemaErrorKind::Required(missing.to_string()));
            }
        }
        let props = obj.get("properties").and_then(Value::as_object);
        let pattern_props = obj.get("patternProperties").and_then(Value::as_object);
        let is_declared = |k: &str| {
            props.is_some_and(|p| p.contains_key(k)) || pattern_props.is_some_and(|pp| pp.keys().any(|pat| pattern_matches(pat, k)))
        };
        match obj.get("additionalProperties") {
            Some(Value::Bool(false)) => {
                for k in map.keys() {
                    if !is_declared(k) {
                        self.push(path, SchemaErrorKind::Additional(k.clone()));
                    }
                }
            }
            Some(extra @ Value::Object(_)) => {
                for (k, v) in map {
                    if !is_declared(k) {
                        let len = path.len();
                        path.push('/');
                        path.push_str(&escape_pointer(k));
                        self.check(extra, v, path);
                        path.truncate(len);
                    }
                }
            }
            _ => {}
        }
        if let Some(props) = props {
            for (k, sub) in props {
                if let Some(v) = map.get(k) {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&escape_pointer(k));
                    self.check(sub, v, path);
                    path.truncate(len);
                }
            }
        }
        if let Some(pp) = pattern_props {
            for (pat, sub) in pp {
                for (k, v) in map {
                    if pattern_matches(pat, k) {
                        let len = path.len();
                        path.push('/');
                        path.push_str(&escape_pointer(k));
                        self.check(sub, v, path);
                        path.truncate(len);
                    }
                }
            }
        }
    }
}

/// The few regular expressions the protocol schemas use, matched without a regex engine.
fn pattern_matches(pattern: &str, s: &str) -> bool {
    match pattern {
        "^.*$" | ".*" | "" => !s.contains('\n'),
        "^[a-f0-9]{64}$" => s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        // `config.schema.lookup` paths (operator §2.3).
        "^[A-Za-z0-9_./\\[\\]\\-*]+$" => !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./[]-*".contains(&b)),
        // Cron job ids in `cron.runs` (operator §6.2): no path separators.
        "^[^/\\\\]+$" => !s.is_empty() && !s.contains(['/', '\\']),
        // Non-blank names and destinations.
        "\\S" => s.chars().any(|c| !c.is_whitespace()),
        // `sessionTarget: "session:<key>"`.
        "^session:.+" => s.strip_prefix("session:").is_some_and(|rest| !rest.is_empty() && !rest.starts_with('\n')),
        // Team secret store names (`secrets.store.set|delete`), and the GitHub setup entries.
        "^(?:[A-Z][A-Z0-9_]{0,127}|github-setup-[a-f0-9]{32})$" => {
            let env_name = s.len() <= 128
                && s.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
                && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            let setup =
                s.strip_prefix("github-setup-").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            env_name || setup
        }
        // Unknown patterns are not enforced rather than wrongly rejecting input.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cron_patterns_are_enforced() {
        assert!(!pattern_matches("^[^/\\\\]+$", "a/b") && !pattern_matches("^[^/\\\\]+$", "a\\b"));
        assert!(pattern_matches("^[^/\\\\]+$", "job-1"));
        assert!(!pattern_matches("\\S", " \t") && pattern_matches("\\S", " x"));
        assert!(pattern_matches("^session:.+", "session:agent:main:x") && !pattern_matches("^session:.+", "session:"));
        let store = "^(?:[A-Z][A-Z0-9_]{0,127}|github-setup-[a-f0-9]{32})$";
        assert!(pattern_matches(store, "OPENAI_API_KEY") && pattern_matches(store, "github-setup-0123456789abcdef0123456789abcdef"));
        assert!(!pattern_matches(store, "lower") && !pattern_matches(store, "1X") && !pattern_matches(store, "github-setup-0"));
        assert!(!pattern_matches(store, &"A".repeat(129)) && !pattern_matches(store, ""));
    }

    #[test]
    fn reports_in_reference_order() {
        let schema = json!({"type":"object","required":["a","b"],"properties":{
            "a":{"type":"integer","minimum":1},"b":{},
            "c":{"type":"string","minLength":1,"maxLength":3}},
            "additionalProperties":false});
        let err = validate(&schema, &json!({"c":"", "zz":1})).unwrap_err();
        assert_eq!(err, "must have required property 'a'; at root: unexpected property 'zz'; at /c: must not have fewer than 1 characters");
        let err = validate(&schema, &json!({"a":0,"b":1,"c":"abcd"})).unwrap_err();
        assert_eq!(err, "at /a: must be >= 1; at /c: must not have more than 3 characters");
        assert!(validate(&schema, &json!({"a":2,"b":null})).is_ok());
        assert_eq!(validate(&schema, &json!([])).unwrap_err(), "must be object");
    }

    #[test]
    fn caps_raw_errors_at_eight() {
        let schema = json!({"type":"object","properties":{},"additionalProperties":false});
        let v = json!({"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"j":1});
        assert_eq!(collect_errors(&schema, &v).len(), MAX_RAW_ERRORS);
    }

    #[test]
    fn any_of_reports_branches_then_summary() {
        let schema = json!({"anyOf":[
            {"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false},
            {"type":"object","required":["s"],"properties":{"s":{"type":"string"}},"additionalProperties":false}]});
        let err = validate(&schema, &json!({"zz":1})).unwrap_err();
        assert_eq!(
            err,
            "unexpected property 'zz'; must have required property 's'; must match a schema in anyOf"
                .replace("unexpected", "at root: unexpected")
        );
    }
}
