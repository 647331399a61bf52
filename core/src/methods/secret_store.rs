//! `secrets.store.list|set|delete`: the team secret store over the gateway (the Control UI's
//! Settings › Secrets; the reference's methods, captured against it — params, the store's
//! refusals in its words, result shapes). The rows live in the shell's store
//! (`<stateDir>/clawgate/secrets.sqlite`, the same one `clawgate secrets store` edits); a write
//! to a name a `{source: "store"}` ref of the active config uses re-resolves the secrets
//! (`reloaded: true`), as `secrets.reload` would.

use serde_json::{Value, json};

use super::validate_params;
use crate::connection::Caller;
use crate::secrets::store::{self, Entry, Kind, StoreError};
use crate::wire::{ErrorShape, Reply};

/// What the shell does for a store method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretStoreCall {
    List,
    Set(SetEntry),
    Delete { name: String },
}

impl SecretStoreCall {
    pub fn method(&self) -> &'static str {
        match self {
            SecretStoreCall::List => "secrets.store.list",
            SecretStoreCall::Set(_) => "secrets.store.set",
            SecretStoreCall::Delete { .. } => "secrets.store.delete",
        }
    }

    /// The entry a write changes (`None` for a listing).
    pub fn name(&self) -> Option<&str> {
        match self {
            SecretStoreCall::List => None,
            SecretStoreCall::Set(s) => Some(&s.name),
            SecretStoreCall::Delete { name } => Some(name),
        }
    }
}

/// A checked `secrets.store.set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetEntry {
    pub name: String,
    pub value: String,
    pub kind: Kind,
    /// Normalised, sorted; `None`: keep a secret's hosts as they are.
    pub allowed_hosts: Option<Vec<String>>,
    /// Who wrote it: the client's display name, else its id.
    pub updated_by: String,
}

const NAME_PATTERN: &str = "^(?:[A-Z][A-Z0-9_]{0,127}|github-setup-[a-f0-9]{32})$";

fn name_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": NAME_PATTERN})
}

fn schema(method: &str) -> Value {
    match method {
        "secrets.store.set" => json!({
            "type": "object", "required": ["name", "value", "kind"],
            "properties": {
                "name": name_schema(),
                "value": {"type": "string", "maxLength": store::MAX_VALUE_BYTES},
                "kind": {"anyOf": [{"type": "string", "const": "secret"}, {"type": "string", "const": "env"}]},
                "allowedHosts": {"type": "array", "maxItems": 128, "uniqueItems": true,
                    "items": {"type": "string", "minLength": 1, "maxLength": 253}},
            },
            "additionalProperties": false,
        }),
        "secrets.store.delete" => {
            json!({"type": "object", "required": ["name"], "properties": {"name": name_schema()}, "additionalProperties": false})
        }
        _ => json!({"type": "object", "properties": {}, "additionalProperties": false}),
    }
}

fn refused(e: StoreError) -> ErrorShape {
    ErrorShape::invalid_request(e.to_string())
}

/// Parse and check a store method's params: the schema, then the store's own rules in the
/// reference's order (placeholder, size in bytes, empty secret, hosts on an env entry, hosts).
pub fn parse(method: &str, params: Option<&Value>, caller: &Caller) -> Result<SecretStoreCall, ErrorShape> {
    validate_params(method, &schema(method), params)?;
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    match method {
        "secrets.store.list" => Ok(SecretStoreCall::List),
        "secrets.store.delete" => Ok(SecretStoreCall::Delete { name: text("name") }),
        _ => {
            let (name, value) = (text("name"), text("value"));
            let kind = if text("kind") == "secret" { Kind::Secret } else { Kind::Env };
            if store::is_placeholder(&value) {
                return Err(refused(StoreError::Placeholder(name)));
            }
            if value.len() > store::MAX_VALUE_BYTES {
                return Err(refused(StoreError::TooLarge));
            }
            if kind == Kind::Secret && value.is_empty() {
                return Err(refused(StoreError::EmptySecret));
            }
            let hosts: Option<Vec<String>> =
                p.get("allowedHosts").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
            if kind == Kind::Env && hosts.is_some() {
                return Err(refused(StoreError::HostsOnEnv));
            }
            let allowed_hosts = hosts.map(|h| store::normalize_hosts(&h)).transpose().map_err(refused)?;
            Ok(SecretStoreCall::Set(SetEntry { name, value, kind, allowed_hosts, updated_by: updated_by(caller) }))
        }
    }
}

/// The writer recorded beside an entry: the client's display name, else its id, else
/// `gateway`.
fn updated_by(caller: &Caller) -> String {
    [caller.client.display_name.as_deref(), Some(caller.client.id.as_str())]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or("gateway")
        .to_string()
}

/// `secrets.store.list`: `{entries}` by name; a secret's value never leaves (its hosts do), an
/// env entry's value does; the GitHub setup entries are not listed.
pub fn list_result(entries: &[Entry]) -> Value {
    let rows: Vec<Value> = entries
        .iter()
        .filter(|e| !store::is_hidden_name(&e.name))
        .map(|e| {
            let mut o = serde_json::Map::new();
            o.insert("name".into(), json!(e.name));
            o.insert("scopeKind".into(), json!("team"));
            o.insert("scopeId".into(), json!(""));
            o.insert("createdAtMs".into(), json!(e.created_at_ms));
            o.insert("updatedAtMs".into(), json!(e.updated_at_ms));
            if !e.updated_by.trim().is_empty() {
                o.insert("updatedBy".into(), json!(e.updated_by));
            }
            o.insert("kind".into(), json!(e.kind.as_str()));
            match e.kind {
                Kind::Env => o.insert("value".into(), json!(e.value)),
                Kind::Secret => o.insert("allowedHosts".into(), json!(e.allowed_hosts)),
            };
            Value::Object(o)
        })
        .collect();
    json!({"entries": rows})
}

/// What the shell did after a committed write or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// No ref of the active config uses the name: nothing to re-resolve.
    NotReferenced,
    /// The secrets were re-resolved and swapped in, with this many warnings.
    Reloaded(usize),
    /// The re-resolve failed; the write stays (there is no rollback) and the old secrets stay
    /// active.
    Failed,
}

/// The answer to a committed `secrets.store.set|delete`.
pub fn written_reply(method: &str, refresh: Refresh) -> Reply {
    match refresh {
        Refresh::NotReferenced => Reply::Ok(Some(json!({"ok": true, "reloaded": false}))),
        Refresh::Reloaded(n) => Reply::Ok(Some(json!({"ok": true, "reloaded": true, "warningCount": n}))),
        Refresh::Failed if method == "secrets.store.delete" => Reply::err(ErrorShape::unavailable(
            "Secret store entry was deleted, but the active runtime could not refresh. Update the config reference or restore the entry, then retry secrets.reload.",
        )),
        Refresh::Failed => Reply::err(ErrorShape::unavailable(
            "Secret store entry was saved, but post-write runtime refresh failed. Resolve provider errors and retry secrets.reload.",
        )),
    }
}

/// The store could not be read or written.
pub fn store_failed(method: &str) -> Reply {
    Reply::err(ErrorShape::unavailable(format!("{method} failed")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ClientInfo;

    fn caller(display: Option<&str>) -> Caller {
        let client = ClientInfo { id: "openclaw-control-ui".into(), display_name: display.map(str::to_string), ..ClientInfo::default() };
        Caller { conn_id: "c".into(), role: crate::auth::scopes::Role::Operator, scopes: vec![], client }
    }

    fn err(method: &str, p: Value) -> String {
        parse(method, Some(&p), &caller(None)).unwrap_err().message
    }

    #[test]
    fn params_and_store_rules_answer_in_the_references_words() {
        // Captured from the reference (secrets.store.set / delete / list).
        assert_eq!(err("secrets.store.set", json!({})), "invalid secrets.store.set params: must have required property 'name'");
        assert_eq!(
            err("secrets.store.set", json!({"name": "X", "value": "v"})),
            "invalid secrets.store.set params: must have required property 'kind'"
        );
        assert_eq!(
            err("secrets.store.set", json!({"name": "lower", "value": "v", "kind": "env"})),
            format!("invalid secrets.store.set params: at /name: must match pattern \"{NAME_PATTERN}\"")
        );
        assert_eq!(
            err("secrets.store.set", json!({"name": "X", "value": "v", "kind": "foo"})),
            "invalid secrets.store.set params: at /kind: must be equal to constant; at /kind: must match a schema in anyOf"
        );
        assert_eq!(
            err("secrets.store.set", json!({"name": "X", "value": "v", "kind": "env", "extra": 1})),
            "invalid secrets.store.set params: at root: unexpected property 'extra'"
        );
        assert_eq!(
            err("secrets.store.set", json!({"name": "X", "value": "v", "kind": "secret", "allowedHosts": ["a.com", "a.com"]})),
            "invalid secrets.store.set params: at /allowedHosts: must not have duplicate items"
        );
        assert_eq!(err("secrets.store.list", json!({"x": 1})), "invalid secrets.store.list params: at root: unexpected property 'x'");
        assert_eq!(err("secrets.store.delete", json!({})), "invalid secrets.store.delete params: must have required property 'name'");
        assert!(err("secrets.store.set", json!({"name": "K", "value": " *** ", "kind": "secret"})).contains("redaction placeholder"));
        assert_eq!(
            err("secrets.store.set", json!({"name": "K", "value": "é".repeat(40_000), "kind": "env"})),
            "Secret store value exceeds 65536 UTF-8 bytes."
        );
        assert_eq!(
            err("secrets.store.set", json!({"name": "K", "value": "", "kind": "secret"})),
            "Secret store value is empty. Secret entries require a value; check the command that produced it."
        );
        assert_eq!(
            err("secrets.store.set", json!({"name": "K", "value": "v", "kind": "env", "allowedHosts": []})),
            "Allowed hosts apply only to secret entries."
        );
        assert_eq!(
            err("secrets.store.set", json!({"name": "K", "value": "v", "kind": "secret", "allowedHosts": ["*.example.com"]})),
            "Allowed host \"*.example.com\" cannot contain a wildcard; use one exact hostname."
        );
        assert_eq!(
            err("secrets.store.set", json!({"name": "K", "value": "v", "kind": "secret", "allowedHosts": ["api.example.com:443"]})),
            "Allowed host \"api.example.com:443\" must be a hostname without a scheme, path, wildcard, or port."
        );
        assert_eq!(
            err("secrets.store.set", json!({"name": "K", "value": "v", "kind": "secret", "allowedHosts": ["a..b"]})),
            "Allowed host \"a..b\" is not a valid hostname."
        );
    }

    #[test]
    fn a_set_is_normalised_and_signed_by_its_client() {
        let p = json!({"name": "OPENAI_API_KEY", "value": "sk-1", "kind": "secret", "allowedHosts": ["b.example.com", "API.example.com", "api.example.com"]});
        let SecretStoreCall::Set(s) = parse("secrets.store.set", Some(&p), &caller(Some("  Ops  "))).unwrap() else { panic!() };
        assert_eq!(s.allowed_hosts, Some(vec!["api.example.com".to_string(), "b.example.com".to_string()]));
        assert_eq!(s.updated_by, "Ops");
        let p = json!({"name": "github-setup-0123456789abcdef0123456789abcdef", "value": "v", "kind": "secret"});
        let SecretStoreCall::Set(s) = parse("secrets.store.set", Some(&p), &caller(None)).unwrap() else { panic!() };
        assert_eq!((s.allowed_hosts, s.updated_by.as_str()), (None, "openclaw-control-ui"));
    }

    #[test]
    fn listings_never_carry_a_secrets_value() {
        let e = |name: &str, kind: Kind, value: &str| Entry {
            name: name.into(),
            kind,
            value: value.into(),
            created_at_ms: 1,
            updated_at_ms: 2,
            updated_by: String::new(),
            allowed_hosts: vec![],
        };
        let v = list_result(&[
            e("A_URL", Kind::Env, "https://x\nline2"),
            e("OPENAI_API_KEY", Kind::Secret, "sk-secret"),
            e("github-setup-0123456789abcdef0123456789abcdef", Kind::Secret, "hidden"),
        ]);
        assert_eq!(
            v,
            json!({"entries": [
                {"name": "A_URL", "scopeKind": "team", "scopeId": "", "createdAtMs": 1, "updatedAtMs": 2, "kind": "env", "value": "https://x\nline2"},
                {"name": "OPENAI_API_KEY", "scopeKind": "team", "scopeId": "", "createdAtMs": 1, "updatedAtMs": 2, "kind": "secret", "allowedHosts": []},
            ]})
        );
        assert!(!v.to_string().contains("sk-secret"));
    }
}
