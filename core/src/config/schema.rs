//! `config.schema` and `config.schema.lookup` (operator §2.2, §2.3): the JSON Schema of the config
//! clawgate reads, with the reference's UI hints, so the Control UI's forms can edit it.
//!
//! The schema is the reference's own (captured in `testdata/vectors/ws/op-config-schema.jsonl`)
//! pruned by [`schema_from_reference`] to the keys clawgate reads ([`USED_KEYS`]) and stored in
//! `core/data/config-schema.json` (a test derives it again from the capture and fails when the two
//! differ). An object that lost keys in the pruning no longer says `additionalProperties: false`:
//! the keys clawgate does not read stay valid (the loader checks them against the reference's
//! key tree) and a form save keeps them, since the form edits the whole config object.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::config::keys::USED_KEYS;
use crate::config::reload::{Kind, classify};
use crate::wire::ErrorShape;

/// clawgate's config schema and UI hints (`{"schema": …, "uiHints": …}`).
pub const CLAWGATE_SCHEMA: &str = include_str!("../../data/config-schema.json");

/// The parsed [`CLAWGATE_SCHEMA`], read on first use.
pub struct ConfigSchema {
    pub schema: Value,
    pub ui_hints: Map<String, Value>,
}

/// The schema clawgate serves (parsed once; the data file is checked by a test, so a parse
/// failure cannot ship — it degrades to an empty schema rather than a panic).
pub fn clawgate() -> &'static ConfigSchema {
    static PARSED: OnceLock<ConfigSchema> = OnceLock::new();
    PARSED.get_or_init(|| {
        let v: Value = serde_json::from_str(CLAWGATE_SCHEMA).unwrap_or_default();
        ConfigSchema {
            schema: v.get("schema").cloned().unwrap_or_else(|| json!({"type": "object"})),
            ui_hints: v.get("uiHints").and_then(Value::as_object).cloned().unwrap_or_default(),
        }
    })
}

/// The `config.schema` result: `{schema, uiHints, version, generatedAt}`.
pub fn schema_result(version: &str, generated_at: &str) -> Value {
    let s = clawgate();
    json!({"schema": s.schema, "uiHints": s.ui_hints, "version": version, "generatedAt": generated_at})
}

/// One step of a schema path: `*` (any map key), `[]` (array items) or a key.
fn segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        while let Some(name) = rest.strip_suffix("[]") {
            rest = name;
        }
        if !rest.is_empty() {
            out.push(rest);
        }
        out.extend(std::iter::repeat_n("[]", (part.len() - rest.len()) / 2));
    }
    out
}

/// The hint path of a list of segments: `models.providers.*.models[].id`.
fn join(segs: &[&str]) -> String {
    let mut s = String::new();
    for seg in segs {
        if *seg == "[]" {
            s.push_str("[]");
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(seg);
        }
    }
    s
}

/// The keys clawgate reads as a tree: a node is `None` for "the whole subtree" or the children.
#[derive(Debug, Default)]
struct UsedTree(Vec<(String, Option<UsedTree>)>);

impl UsedTree {
    fn from_keys(keys: &[&str]) -> UsedTree {
        let mut root = UsedTree::default();
        for key in keys.iter().filter(|k| !k.starts_with('$')) {
            let mut node = &mut root;
            let segs: Vec<&str> = key.split('.').collect();
            for (i, seg) in segs.iter().enumerate() {
                let last = i + 1 == segs.len();
                let pos = match node.0.iter().position(|(k, _)| k == seg) {
                    Some(p) => p,
                    None => {
                        node.0.push((seg.to_string(), Some(UsedTree::default())));
                        node.0.len() - 1
                    }
                };
                if last {
                    node.0[pos].1 = None;
                    break;
                }
                match &mut node.0[pos].1 {
                    Some(child) => node = child,
                    None => break,
                }
            }
        }
        root
    }

    fn child(&self, key: &str) -> Option<&Option<UsedTree>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, c)| c)
    }
}

/// Reduce the reference's `config.schema` result (`schema`, `uiHints`) to the keys clawgate
/// reads: `{"schema": …, "uiHints": …}`.
pub fn schema_from_reference(schema: &Value, ui_hints: &Value) -> Value {
    let used = UsedTree::from_keys(USED_KEYS);
    let pruned = prune(schema, &used);
    let mut hints = Map::new();
    if let Some(h) = ui_hints.as_object() {
        for (path, hint) in h {
            if hint_is_kept(&segments(path), &used) {
                hints.insert(path.clone(), hint.clone());
            }
        }
    }
    json!({"schema": pruned, "uiHints": hints})
}

/// Keep `node`'s own description and only the properties in `used` (whole subtrees below a
/// leaf of `used`).
fn prune(node: &Value, used: &UsedTree) -> Value {
    let Value::Object(o) = node else { return node.clone() };
    let mut out = Map::new();
    let mut dropped = false;
    for (k, v) in o {
        match k.as_str() {
            "properties" => {
                let mut props = Map::new();
                if let Value::Object(p) = v {
                    for (name, child) in p {
                        match used.child(name) {
                            Some(None) => {
                                props.insert(name.clone(), child.clone());
                            }
                            Some(Some(sub)) => {
                                props.insert(name.clone(), prune(child, sub));
                            }
                            None => dropped = true,
                        }
                    }
                }
                out.insert(k.clone(), Value::Object(props));
            }
            "additionalProperties" if v.is_object() => match used.child("*") {
                Some(None) => {
                    out.insert(k.clone(), v.clone());
                }
                Some(Some(sub)) => {
                    out.insert(k.clone(), prune(v, sub));
                }
                None => dropped = true,
            },
            "additionalProperties" => {
                out.insert(k.clone(), v.clone());
            }
            "anyOf" | "oneOf" | "allOf" => {
                let branches = v.as_array().map(|b| b.iter().map(|b| prune(b, used)).collect()).unwrap_or_default();
                out.insert(k.clone(), Value::Array(branches));
            }
            "required" => {
                let kept: Vec<Value> = v
                    .as_array()
                    .map(|r| r.iter().filter(|n| n.as_str().is_some_and(|n| used.child(n).is_some())).cloned().collect())
                    .unwrap_or_default();
                if !kept.is_empty() {
                    out.insert(k.clone(), Value::Array(kept));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if dropped && out.get("additionalProperties") == Some(&Value::Bool(false)) {
        out.remove("additionalProperties");
    }
    Value::Object(out)
}

/// A hint stays when its path leads to a key clawgate reads or lies inside one.
fn hint_is_kept(segs: &[&str], used: &UsedTree) -> bool {
    let mut node = used;
    for seg in segs {
        match node.child(seg) {
            Some(None) => return true,
            Some(Some(sub)) => node = sub,
            None => return false,
        }
    }
    true
}

/// The reload kind clawgate applies to a path (the rule table of [`crate::config::reload`]).
pub fn reload_kind(path: &str) -> &'static str {
    let concrete = path.replace("[]", "");
    match classify(&concrete).0 {
        Kind::None => "none",
        Kind::Hot => "hot",
        Kind::Restart => "restart",
    }
}

/// `config.schema.lookup` params (operator §2.3): `{path}`, closed, 1–1024 chars of
/// `[A-Za-z0-9_./\[\]\-*]`.
pub fn parse_lookup_params(params: Option<&Value>) -> Result<String, ErrorShape> {
    let schema = json!({
        "type": "object",
        "required": ["path"],
        "properties": {"path": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "^[A-Za-z0-9_./\\[\\]\\-*]+$"}},
        "additionalProperties": false,
    });
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&schema, p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid config.schema.lookup params: {d}")))?;
    Ok(p["path"].as_str().unwrap_or_default().to_string())
}

/// The object or array branch of a node (an `anyOf` of string-or-object looks into the object).
fn container_of(node: &Value) -> &Value {
    if node.get("properties").is_some() || node.get("additionalProperties").is_some_and(Value::is_object) || node.get("items").is_some() {
        return node;
    }
    for k in ["anyOf", "oneOf", "allOf"] {
        if let Some(branches) = node.get(k).and_then(Value::as_array) {
            if let Some(b) =
                branches.iter().find(|b| b.get("properties").is_some() || b.get("additionalProperties").is_some_and(Value::is_object))
            {
                return b;
            }
        }
    }
    node
}

/// Walk one segment down; a concrete map key (`models.providers.fake`) reads as `*`.
fn step<'a>(node: &'a Value, seg: &str) -> Option<(&'a Value, &'static str)> {
    let c = container_of(node);
    if seg == "[]" {
        return c.get("items").filter(|i| i.is_object()).map(|i| (i, "[]"));
    }
    if seg != "*" {
        if let Some(child) = c.get("properties").and_then(|p| p.get(seg)) {
            return Some((child, ""));
        }
    }
    c.get("additionalProperties").filter(|a| a.is_object()).map(|a| (a, "*"))
}

/// Children as the reference lists them: the node's own properties, map values or items (an
/// `anyOf` of string-or-object has none).
fn has_children(c: &Value) -> bool {
    c.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty())
        || c.get("additionalProperties").is_some_and(Value::is_object)
        || c.get("items").is_some_and(Value::is_object)
}

/// `config.schema.lookup {path}` → `{path, schema, reloadKind, hint?, hintPath?, children}`; an
/// unknown path is `INVALID_REQUEST` `config schema path not found`.
pub fn lookup(path: &str) -> Result<Value, ErrorShape> {
    let not_found = || ErrorShape::invalid_request("config schema path not found");
    let s = clawgate();
    let mut node = &s.schema;
    let mut hint_segs: Vec<String> = Vec::new();
    for seg in segments(path) {
        let (next, as_seg) = step(node, seg).ok_or_else(not_found)?;
        hint_segs.push(if as_seg.is_empty() { seg.to_string() } else { as_seg.to_string() });
        node = next;
    }
    if hint_segs.is_empty() {
        return Err(not_found());
    }
    let hint_path = join(&hint_segs.iter().map(String::as_str).collect::<Vec<_>>());
    let required: Vec<&str> =
        node.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let mut children = Vec::new();
    if let Some(Value::Object(props)) = node.get("properties") {
        for (key, child) in props {
            let child_path = format!("{path}.{key}");
            let child_hint_path = format!("{hint_path}.{key}");
            let mut c = json!({
                "key": key,
                "path": child_path,
                "required": required.contains(&key.as_str()),
                "hasChildren": has_children(child),
                "reloadKind": reload_kind(&child_path),
            });
            if let Some(t) = child.get("type").filter(|t| t.is_string()) {
                c["type"] = t.clone();
            }
            if let Some(h) = s.ui_hints.get(&child_hint_path) {
                c["hint"] = h.clone();
                c["hintPath"] = json!(child_hint_path);
            }
            children.push(c);
        }
    }
    let mut stripped = node.clone();
    if let Some(o) = stripped.as_object_mut() {
        o.remove("properties");
    }
    let mut out = json!({"path": path, "schema": stripped, "reloadKind": reload_kind(path), "children": children});
    if let Some(h) = s.ui_hints.get(&hint_path) {
        out["hint"] = h.clone();
        out["hintPath"] = json!(hint_path);
    }
    Ok(out)
}

/// Hint paths marked `sensitive` (the values `config.get` redacts).
pub fn sensitive_paths() -> Vec<&'static str> {
    clawgate().ui_hints.iter().filter(|(_, h)| h.get("sensitive") == Some(&Value::Bool(true))).map(|(p, _)| p.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_keys_maps_and_arrays() {
        assert_eq!(segments("models.providers.*.models[].id"), ["models", "providers", "*", "models", "[]", "id"]);
        assert_eq!(join(&segments("models.providers.*.models[].id")), "models.providers.*.models[].id");
        assert_eq!(segments("gateway"), ["gateway"]);
    }

    #[test]
    fn pruning_keeps_read_keys_and_opens_objects_that_lost_some() {
        let reference = json!({
            "type": "object", "additionalProperties": false,
            "properties": {
                "gateway": {"type": "object", "additionalProperties": false, "required": ["port", "push"],
                    "properties": {"port": {"type": "integer"}, "push": {"type": "object"}}},
                "channels": {"type": "object"},
            }
        });
        let hints = json!({"gateway.port": {"label": "Port"}, "gateway.push": {"label": "Push"}, "gateway": {"label": "G"}});
        let out = schema_from_reference(&reference, &hints);
        let s = &out["schema"];
        assert!(s["properties"]["gateway"]["properties"]["port"].is_object());
        assert!(s["properties"]["gateway"]["properties"].get("push").is_none());
        assert!(s["properties"].get("channels").is_none());
        assert!(s.get("additionalProperties").is_none(), "unread top-level keys stay valid");
        assert!(s["properties"]["gateway"].get("additionalProperties").is_none());
        assert_eq!(s["properties"]["gateway"]["required"], json!(["port"]));
        assert_eq!(out["uiHints"], json!({"gateway.port": {"label": "Port"}, "gateway": {"label": "G"}}));
    }
}
