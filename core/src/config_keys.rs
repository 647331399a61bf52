//! Which config keys exist: the reference's own config schema reduced to its key tree, and the
//! keys clawgate reads.
//!
//! The reference rejects a config with a key its schema does not know (`gateway: Unrecognized
//! key: "prot"`, exit 78 at startup; config-auth-reload §1). clawgate does the same from the same
//! schema — captured from the reference's `config.schema` (testdata/vectors/ws/
//! op-config-schema.jsonl) and reduced by [`key_tree_from_schema`] to `core/data/config-keys.json`
//! (a test keeps the two in step) — and adds a "did you mean". A key the reference knows but
//! clawgate does not read is kept untouched and reported by [`unused_keys`], so the operator
//! learns that it has no effect here.
//!
//! Key tree format (compact JSON): a node is `0` (a value whose inner keys are not checked) or an
//! object with `p` (known properties → node), `a` (other properties: `false` = rejected,
//! `true` = anything, a node = each value has that shape) and `i` (array items → node).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The reference's config key tree (openclaw 2026.9.6), derived from its `config.schema`.
pub const REFERENCE_KEY_TREE: &str = include_str!("../data/config-keys.json");

/// A key the reference's schema does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// Dotted path of the object holding the key (`gateway.auth`; `""` for the top level).
    pub parent: String,
    pub key: String,
    /// The closest allowed key, when one is close enough to be a likely typo.
    pub suggestion: Option<String>,
}

impl UnknownKey {
    /// The reference's wording, plus a suggestion: `Unrecognized key: "prot" (did you mean "port"?)`.
    pub fn message(&self) -> String {
        match &self.suggestion {
            Some(s) => format!("Unrecognized key: \"{}\" (did you mean \"{s}\"?)", self.key),
            None => format!("Unrecognized key: \"{}\"", self.key),
        }
    }
}

/// Keys allowed at the top level besides the schema's (editor hints; the reference accepts it).
const TOP_LEVEL_EXTRA: &[&str] = &["$schema"];

/// Every key of `config` that the key tree rejects, in document order.
pub fn unknown_keys(config: &Value) -> Vec<UnknownKey> {
    let tree: Value = match serde_json::from_str(REFERENCE_KEY_TREE) {
        Ok(t) => t,
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    walk_unknown(&tree, config, &mut String::new(), true, &mut out);
    out
}

fn walk_unknown(node: &Value, value: &Value, path: &mut String, top: bool, out: &mut Vec<UnknownKey>) {
    let Value::Object(n) = node else { return };
    match value {
        Value::Object(fields) if n.contains_key("p") || n.contains_key("a") => {
            let props = n.get("p").and_then(Value::as_object);
            let additional = n.get("a").unwrap_or(&Value::Bool(true));
            for (key, child) in fields {
                let known = props.and_then(|p| p.get(key));
                let next = match (known, additional) {
                    (Some(k), _) => Some(k),
                    (None, Value::Bool(true)) => None,
                    (None, Value::Object(_)) => Some(additional),
                    (None, _) if top && TOP_LEVEL_EXTRA.contains(&key.as_str()) => None,
                    (None, _) => {
                        let candidates = props.map(|p| p.keys().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default();
                        out.push(UnknownKey { parent: path.clone(), key: key.clone(), suggestion: closest(key, &candidates) });
                        None
                    }
                };
                if let Some(next) = next {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    walk_unknown(next, child, path, false, out);
                    path.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = n.get("i") {
                for (i, v) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!(".{i}"));
                    walk_unknown(item, v, path, false, out);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

/// The closest candidate to a mistyped key: same letters in another case, or within a small
/// edit distance (a transposition counts as one edit).
pub fn closest(key: &str, candidates: &[&str]) -> Option<String> {
    let lower = key.to_lowercase();
    let max = match key.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    };
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = if c.to_lowercase() == lower { 0 } else { osa_distance(&lower, &c.to_lowercase()) };
        if d <= max.max(usize::from(c.to_lowercase() == lower)) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

/// The config keys clawgate reads (`*` = any key of a map). A listed path covers its whole
/// subtree; anything else the reference knows is accepted, kept, and has no effect here.
pub const USED_KEYS: &[&str] = &[
    "gateway.mode",
    "gateway.port",
    "gateway.bind",
    "gateway.customBindHost",
    "gateway.auth.mode",
    "gateway.auth.token",
    "gateway.auth.password",
    "gateway.auth.rateLimit",
    "gateway.auth.trustedProxy.userHeader",
    "gateway.auth.trustedProxy.requiredHeaders",
    "gateway.auth.trustedProxy.allowUsers",
    "gateway.auth.trustedProxy.allowLoopback",
    "gateway.trustedProxies",
    "gateway.allowRealIpFallback",
    "gateway.controlUi.enabled",
    "gateway.controlUi.root",
    "gateway.controlUi.basePath",
    "gateway.controlUi.allowedOrigins",
    "gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback",
    "gateway.controlUi.allowExternalEmbedUrls",
    "gateway.controlUi.automaticallyFetchFavicons",
    "gateway.controlUi.communityInvite",
    "gateway.controlUi.embedSandbox",
    "gateway.controlUi.environment",
    "gateway.cliAgents.enabled",
    "gateway.terminal.enabled",
    "gateway.nodes.pairing.autoApproveLocal",
    "gateway.reload.mode",
    "gateway.remote.url",
    "gateway.remote.token",
    "gateway.remote.password",
    "gateway.http.endpoints.chatCompletions.enabled",
    "gateway.http.endpoints.responses.enabled",
    "gateway.http.securityHeaders.strictTransportSecurity",
    "gateway.tools.allow",
    "gateway.tools.deny",
    "models.providers.*.baseUrl",
    "models.providers.*.apiKey",
    "models.providers.*.api",
    "models.providers.*.headers",
    "models.providers.*.models",
    "agents.ownership",
    "agents.defaults.model",
    "agents.entries.*.name",
    "agents.entries.*.model",
    "memory.search.provider",
    "memory.search.model",
    "memory.search.remote.baseUrl",
    "memory.search.remote.apiKey",
    "hooks.enabled",
    "hooks.token",
    "hooks.path",
    "plugins.entries.admin-http-rpc.enabled",
    "secrets.providers",
    "ui.seamColor",
    "$schema",
];

/// The top-most keys of `config` that clawgate does not read (dotted paths, document order):
/// `channels` when nothing under it is read, `gateway.auth.allowTailscale` inside a partly read
/// object. Arrays and scalars below a read object are not descended into.
pub fn unused_keys(config: &Value) -> Vec<String> {
    let used: Vec<Vec<&str>> = USED_KEYS.iter().map(|k| k.split('.').collect()).collect();
    let mut out = Vec::new();
    if let Value::Object(fields) = config {
        walk_unused(fields, &used.iter().map(Vec::as_slice).collect::<Vec<_>>(), &mut Vec::new(), &mut out);
    }
    out
}

fn walk_unused(fields: &Map<String, Value>, used: &[&[&str]], path: &mut Vec<String>, out: &mut Vec<String>) {
    for (key, value) in fields {
        // The used paths that go through this key, with it removed.
        let below: Vec<&[&str]> = used.iter().filter(|u| !u.is_empty() && (u[0] == key || u[0] == "*")).map(|u| &u[1..]).collect();
        if below.is_empty() {
            path.push(key.clone());
            out.push(path.join("."));
            path.pop();
            continue;
        }
        if below.iter().any(|rest| rest.is_empty()) {
            continue; // the whole subtree is read
        }
        if let Value::Object(inner) = value {
            path.push(key.clone());
            walk_unused(inner, &below, path, out);
            path.pop();
        }
    }
}

/// Reduce a JSON Schema (draft 7, as the reference's `config.schema` serves it) to the key tree
/// format above: objects keep their property names and their `additionalProperties` policy,
/// arrays their item shape; `anyOf`/`oneOf`/`allOf` branches are merged (a key allowed by any
/// branch is allowed); local `$ref`s to `$defs` are followed.
pub fn key_tree_from_schema(schema: &Value) -> Value {
    reduce(schema, &BTreeMap::new(), 0)
}

const MAX_SCHEMA_DEPTH: usize = 64;

fn reduce(schema: &Value, defs: &BTreeMap<String, Value>, depth: usize) -> Value {
    let Value::Object(s) = schema else { return json!(0) };
    if depth > MAX_SCHEMA_DEPTH {
        return json!(0);
    }
    let mut defs = defs.clone();
    if let Some(Value::Object(d)) = s.get("$defs").or_else(|| s.get("definitions")) {
        for (k, v) in d {
            defs.insert(k.clone(), v.clone());
        }
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        return match defs.get(name).cloned() {
            Some(target) => reduce(&target, &defs, depth + 1),
            None => json!(0),
        };
    }
    let mut node = json!(0);
    let is_object =
        s.get("type").and_then(Value::as_str) == Some("object") || s.contains_key("properties") || s.contains_key("additionalProperties");
    if is_object {
        let mut props = Map::new();
        if let Some(Value::Object(p)) = s.get("properties") {
            for (k, v) in p {
                props.insert(k.clone(), reduce(v, &defs, depth + 1));
            }
        }
        let additional = match s.get("additionalProperties") {
            None | Some(Value::Bool(true)) => json!(true),
            Some(Value::Bool(false)) => json!(false),
            Some(other) => match reduce(other, &defs, depth + 1) {
                Value::Object(o) => Value::Object(o),
                _ => json!(true),
            },
        };
        node = json!({"p": props, "a": additional});
    }
    if let Some(items @ Value::Object(_)) = s.get("items") {
        if let Value::Object(i) = reduce(items, &defs, depth + 1) {
            node = merge(node, json!({"i": i}));
        }
    }
    for k in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = s.get(k) {
            for b in branches {
                node = merge(node, reduce(b, &defs, depth + 1));
            }
        }
    }
    node
}

/// Union of two nodes: a key allowed by either is allowed.
fn merge(a: Value, b: Value) -> Value {
    let (Value::Object(mut a), Value::Object(b)) = (a.clone(), b.clone()) else {
        return if a.is_object() { a } else { b };
    };
    for (k, bv) in b {
        let merged = match (k.as_str(), a.remove(&k)) {
            (_, None) => bv,
            ("p", Some(Value::Object(mut ap))) => {
                if let Value::Object(bp) = bv {
                    for (pk, pv) in bp {
                        let m = match ap.remove(&pk) {
                            Some(existing) => merge(existing, pv),
                            None => pv,
                        };
                        ap.insert(pk, m);
                    }
                }
                Value::Object(ap)
            }
            ("a", Some(av)) => match (av, bv) {
                (Value::Bool(true), _) | (_, Value::Bool(true)) => json!(true),
                (Value::Bool(false), other) | (other, Value::Bool(false)) => other,
                (x, y) => merge(x, y),
            },
            (_, Some(av)) => merge(av, bv),
        };
        a.insert(k, merged);
    }
    Value::Object(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_rejected_with_a_suggestion() {
        let cfg = json!({"gateway": {"prot": 1, "auth": {"tokn": "x", "mode": "token"}}, "foo": 1, "$schema": "x"});
        let u = unknown_keys(&cfg);
        let msgs: Vec<String> =
            u.iter().map(|k| format!("{}: {}", if k.parent.is_empty() { "<root>" } else { &k.parent }, k.message())).collect();
        assert_eq!(
            msgs,
            [
                "gateway: Unrecognized key: \"prot\" (did you mean \"port\"?)",
                "gateway.auth: Unrecognized key: \"tokn\" (did you mean \"token\"?)",
                "<root>: Unrecognized key: \"foo\"",
            ]
        );
    }

    #[test]
    fn maps_arrays_and_unions_follow_the_schema() {
        let cfg = json!({
            "models": {"providers": {"any-name": {"baseUrl": "http://x", "apiKey": {"source": "env", "provider": "default", "id": "K"},
                "models": [{"id": "m", "maxTokens": 1, "bogus": true}]}}},
            "agents": {"entries": {"main": {"name": "Main"}}},
        });
        let u = unknown_keys(&cfg);
        assert_eq!(u.len(), 1, "{u:?}");
        assert_eq!((u[0].parent.as_str(), u[0].key.as_str()), ("models.providers.any-name.models.0", "bogus"));
    }

    #[test]
    fn unused_keys_are_the_topmost_unread_ones() {
        let cfg = json!({
            "gateway": {"port": 1, "auth": {"token": "x", "allowTailscale": true}, "tailscale": {"mode": "off"}},
            "channels": {"telegram": {"enabled": true}},
            "models": {"providers": {"p": {"baseUrl": "u", "authHeader": true}}},
            "agents": {"entries": {"main": {"name": "M", "skills": []}}},
        });
        assert_eq!(
            unused_keys(&cfg),
            ["gateway.auth.allowTailscale", "gateway.tailscale", "channels", "models.providers.p.authHeader", "agents.entries.main.skills"]
        );
    }

    #[test]
    fn every_used_key_is_known_to_the_reference() {
        for k in USED_KEYS.iter().filter(|k| **k != "$schema") {
            // Build a config holding just this key (maps get a sample name) and check it passes.
            let mut v = json!(1);
            for seg in k.split('.').rev() {
                let name = if seg == "*" { "sample" } else { seg };
                v = json!({ name: v });
            }
            let unknown = unknown_keys(&v);
            assert!(unknown.is_empty(), "{k}: {unknown:?}");
        }
    }

    #[test]
    fn closest_suggestions() {
        assert_eq!(closest("prot", &["port", "mode"]).as_deref(), Some("port"));
        assert_eq!(closest("Port", &["port"]).as_deref(), Some("port"));
        assert_eq!(closest("xyz", &["port"]), None);
        assert_eq!(closest("allowedOrigin", &["allowedOrigins"]).as_deref(), Some("allowedOrigins"));
    }

    #[test]
    fn schema_reduction() {
        let schema = json!({"type": "object", "additionalProperties": false, "$defs": {"ref": {"type": "object", "properties": {"id": {"type": "string"}}, "additionalProperties": false}},
            "properties": {"a": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/ref"}]}, "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {"x": {}}, "additionalProperties": false}},
            "l": {"type": "array", "items": {"type": "object", "properties": {"y": {}}}}}});
        assert_eq!(
            key_tree_from_schema(&schema),
            json!({"p": {"a": {"p": {"id": 0}, "a": false}, "m": {"p": {}, "a": {"p": {"x": 0}, "a": false}}, "l": {"i": {"p": {"y": 0}, "a": true}}}, "a": false})
        );
    }
}
