//! `secrets apply` plans (the reference's secrets plan contract): the file limits, the target
//! types and their path shapes, and what a valid plan does to a config. Pure: the shell reads
//! the plan and the files, resolves the refs, and writes what this returns.

use serde_json::{Map, Value};

use super::surface::{Pattern, config_patterns};
use crate::config::secrets::{SecretRef, SecretSource};

/// Largest plan file, in bytes (the whole serialised file).
pub const MAX_PLAN_BYTES: u64 = 16 * 1024 * 1024;

/// Segments a path may never contain.
const FORBIDDEN: &[&str] = &["__proto__", "prototype", "constructor"];

/// The reference's per-agent auth-profile store targets: clawgate keeps no such store.
const AUTH_PROFILE_TYPES: &[&str] = &["auth-profiles.api_key.key", "auth-profiles.token.token"];

/// Why a plan is refused (nothing is written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("Malformed JSON in secrets plan file: {path}")]
    Malformed { path: String, cause: String },
    #[error("Invalid secrets plan file: {0}. Generate a fresh plan with openclaw secrets configure --plan-out <path>.")]
    Invalid(String),
    #[error(
        "Plan target type {0} writes a per-agent auth-profile store, which clawgate does not keep; map the credential in openclaw.json instead (e.g. models.providers.<id>.apiKey)."
    )]
    AuthProfile(String),
}

impl PlanError {
    /// The plain-text form: the cause chain after ` | `, as the reference prints it.
    pub fn with_cause(&self) -> String {
        match self {
            PlanError::Malformed { cause, .. } => format!("{self} | {cause}"),
            _ => self.to_string(),
        }
    }
}

/// One validated target of `openclaw.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub segments: Vec<String>,
    pub secret_ref: SecretRef,
}

impl Target {
    pub fn path(&self) -> String {
        self.segments.join(".")
    }
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub provider_upserts: Map<String, Value>,
    pub provider_deletes: Vec<String>,
    /// Remove migrated plaintext from `.env` files (default on).
    pub scrub_env: bool,
}

impl Plan {
    /// Whether the plan would run an exec provider (a target's ref, or an upserted provider).
    pub fn has_exec(&self) -> bool {
        self.targets.iter().any(|t| t.secret_ref.source == SecretSource::Exec)
            || self.provider_upserts.values().any(|p| p.get("source").and_then(Value::as_str) == Some("exec"))
    }
}

/// The type names a pattern answers to: its id, and for the model provider and skill families
/// the id without its `*` segments (`models.providers.apiKey`), which is the canonical name.
/// Channel and plugin targets exist only with those channels and plugins, which clawgate does
/// not host: none is accepted (the reference without them refuses them too).
fn type_names(p: &Pattern) -> Vec<String> {
    if p.id.starts_with("channels.") || p.id.starts_with("plugins.") {
        return Vec::new();
    }
    let mut names = vec![p.id.clone()];
    if p.id.starts_with("models.providers.") || p.id.starts_with("skills.entries.") {
        names.push(p.segments.iter().filter(|s| *s != "*").cloned().collect::<Vec<_>>().join("."));
    }
    names
}

/// The type a plan names a pattern's targets by (the canonical one: for model providers and
/// skills the id without its `*` segments); `None` for targets clawgate's apply refuses.
pub fn plan_type(p: &Pattern) -> Option<String> {
    type_names(p).pop()
}

fn matches(p: &Pattern, segments: &[String]) -> bool {
    p.segments.len() == segments.len() && p.segments.iter().zip(segments).all(|(a, b)| a == "*" || a == b)
}

fn target(v: &Value) -> Result<Target, PlanError> {
    let invalid = || PlanError::Invalid(String::new());
    let o = v.as_object().ok_or_else(invalid)?;
    let ty = o.get("type").and_then(Value::as_str).ok_or_else(invalid)?;
    if AUTH_PROFILE_TYPES.contains(&ty) {
        return Err(PlanError::AuthProfile(ty.to_string()));
    }
    let path = o.get("path").and_then(Value::as_str).filter(|p| !p.trim().is_empty()).ok_or_else(invalid)?;
    let segments: Vec<String> = path.split('.').map(str::to_string).collect();
    if segments.iter().any(|s| s.is_empty() || FORBIDDEN.contains(&s.as_str())) {
        return Err(invalid());
    }
    if let Some(given) = o.get("pathSegments") {
        let given: Vec<&str> =
            given.as_array().ok_or_else(invalid)?.iter().map(|s| s.as_str().ok_or_else(invalid)).collect::<Result<_, _>>()?;
        if given != segments.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(invalid());
        }
    }
    let pattern = config_patterns().iter().find(|p| matches(p, &segments) && type_names(p).iter().any(|n| n == ty)).ok_or_else(invalid)?;
    if let Some(id) = o.get("providerId") {
        let provider = (pattern.id.starts_with("models.providers.")).then(|| segments[2].as_str());
        if id.as_str().is_none() || id.as_str() != provider {
            return Err(invalid());
        }
    }
    let secret_ref = o.get("ref").ok_or_else(invalid).and_then(|r| SecretRef::from_object(r).map_err(|_| invalid()))?;
    Ok(Target { segments, secret_ref })
}

/// Parse and validate a plan file's bytes (`path` names it in errors).
pub fn parse(path: &str, bytes: &[u8]) -> Result<Plan, PlanError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| PlanError::Malformed { path: path.to_string(), cause: e.to_string() })?;
    let invalid = || PlanError::Invalid(path.to_string());
    let o = v.as_object().ok_or_else(invalid)?;
    for k in ["version", "protocolVersion"] {
        if o.get(k).is_some_and(|x| x.as_u64() != Some(1)) {
            return Err(invalid());
        }
    }
    let targets = o.get("targets").and_then(Value::as_array).ok_or_else(invalid)?;
    let targets = targets
        .iter()
        .map(|t| {
            target(t).map_err(|e| match e {
                PlanError::Invalid(_) => invalid(),
                other => other,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let provider_upserts = match o.get("providerUpserts") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) if m.values().all(Value::is_object) && m.keys().all(|k| !FORBIDDEN.contains(&k.as_str())) => m.clone(),
        Some(_) => return Err(invalid()),
    };
    let provider_deletes = match o.get("providerDeletes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(invalid)).collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid()),
    };
    let scrub_env = o.get("options").and_then(|x| x.get("scrubEnv")).or_else(|| o.get("scrubEnv")).and_then(Value::as_bool).unwrap_or(true);
    Ok(Plan { targets, provider_upserts, provider_deletes, scrub_env })
}

fn set_at(root: &mut Value, segments: &[String], value: Value) {
    let mut node = root;
    for (i, s) in segments.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Some(map) = node.as_object_mut() else { return };
        if i + 1 == segments.len() {
            map.insert(s.clone(), value);
            return;
        }
        node = map.entry(s.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
}

fn ref_value(r: &SecretRef) -> Value {
    serde_json::json!({"source": r.source.as_str(), "provider": r.provider, "id": r.id})
}

/// The config after the plan: provider upserts first (a target may use an alias the plan
/// introduces), then deletes, then each target's ref. Also the plaintext values the targets
/// replace (for the `.env` scrub).
pub fn apply_to(config: &Value, plan: &Plan) -> (Value, Vec<String>) {
    let mut next = if config.is_object() { config.clone() } else { Value::Object(Map::new()) };
    for (alias, def) in &plan.provider_upserts {
        set_at(&mut next, &["secrets".into(), "providers".into(), alias.clone()], def.clone());
    }
    if let Some(providers) = next.pointer_mut("/secrets/providers").and_then(Value::as_object_mut) {
        for alias in &plan.provider_deletes {
            providers.remove(alias);
        }
    }
    let mut replaced = Vec::new();
    for t in &plan.targets {
        let old = t.segments.iter().try_fold(config, |node, s| node.get(s.as_str()));
        if let Some(Value::String(s)) = old {
            if !s.is_empty() {
                replaced.push(s.clone());
            }
        }
        set_at(&mut next, &t.segments, ref_value(&t.secret_ref));
    }
    (next, replaced)
}

/// A `.env` text without the lines that assign a known secret name one of `migrated` values
/// (comments and every other line kept); `None` when nothing would change.
pub fn scrub_env(text: &str, migrated: &[String]) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let drop = super::dotenv::line_assignment(bare).is_some_and(|(name, raw)| {
            let value = super::dotenv::parse(bare).into_iter().next().map(|a| a.value).unwrap_or_else(|| raw.to_string());
            super::audit::KNOWN_SECRET_ENV_NAMES.contains(&name) && migrated.contains(&value)
        });
        if drop {
            changed = true;
        } else {
            out.push_str(line);
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(targets: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"version": 1, "protocolVersion": 1, "targets": targets})).unwrap()
    }

    fn t(ty: &str, path: &str) -> Value {
        json!({"type": ty, "path": path, "ref": {"source": "env", "provider": "default", "id": "K"}})
    }

    #[test]
    fn types_and_paths_as_the_reference_accepts_them() {
        for (ty, path) in [
            ("models.providers.apiKey", "models.providers.openai.apiKey"),
            ("models.providers.*.apiKey", "models.providers.openai.apiKey"),
            ("models.providers.headers", "models.providers.openai.headers.X-Key"),
            ("models.providers.request.tls.key", "models.providers.o.request.tls.key"),
            ("skills.entries.apiKey", "skills.entries.s.apiKey"),
            ("gateway.auth.token", "gateway.auth.token"),
            ("tts.providers.*.apiKey", "tts.providers.x.apiKey"),
            ("agents.entries.*.memory.search.remote.apiKey", "agents.entries.main.memory.search.remote.apiKey"),
        ] {
            assert!(parse("p", &plan(json!([t(ty, path)]))).is_ok(), "{ty} {path}");
        }
        for (ty, path) in [
            ("models.providers.apiKey", "models.providers.openai.baseUrl"),
            ("nope.type", "gateway.auth.token"),
            ("tts.providers.apiKey", "tts.providers.x.apiKey"),
            ("channels.discord.token", "channels.discord.token"),
            ("models.providers.apiKey", "models.providers.__proto__.apiKey"),
            ("models.providers.apiKey", "models..apiKey"),
        ] {
            assert_eq!(parse("p", &plan(json!([t(ty, path)]))), Err(PlanError::Invalid("p".into())), "{ty} {path}");
        }
        let mut x = t("models.providers.apiKey", "models.providers.openai.apiKey");
        x["pathSegments"] = json!(["models", "providers", "other", "apiKey"]);
        assert!(parse("p", &plan(json!([x.clone()]))).is_err());
        x["pathSegments"] = json!(["models", "providers", "openai", "apiKey"]);
        x["providerId"] = json!("anthropic");
        assert!(parse("p", &plan(json!([x]))).is_err());
        let e = parse(
            "p",
            &plan(
                json!([{"type": "auth-profiles.api_key.key", "path": "profiles.a.key", "agentId": "main", "ref": {"source": "env", "provider": "default", "id": "K"}}]),
            ),
        );
        assert!(matches!(e, Err(PlanError::AuthProfile(_))));
        let e = parse("/x/plan.json", b"{ nope").unwrap_err();
        assert!(e.to_string() == "Malformed JSON in secrets plan file: /x/plan.json" && e.with_cause().contains(" | "));
    }

    #[test]
    fn applying_upserts_first_then_targets_and_scrubbing_env() {
        let p = parse(
            "p",
            &serde_json::to_vec(&json!({"version": 1, "providerUpserts": {"vault": {"source": "file", "path": "/s.json", "mode": "json"}},
                "providerDeletes": ["old"], "targets": [t("models.providers.apiKey", "models.providers.openai.apiKey")]}))
            .unwrap(),
        )
        .unwrap();
        let cfg = json!({"secrets": {"providers": {"old": {"source": "env"}}}, "models": {"providers": {"openai": {"apiKey": "sk-1", "baseUrl": "u"}}}});
        let (next, replaced) = apply_to(&cfg, &p);
        assert_eq!(
            next["models"]["providers"]["openai"],
            json!({"apiKey": {"source": "env", "provider": "default", "id": "K"}, "baseUrl": "u"})
        );
        assert_eq!(next["secrets"]["providers"], json!({"vault": {"source": "file", "path": "/s.json", "mode": "json"}}));
        assert_eq!(replaced, vec!["sk-1".to_string()]);
        let env = "# keep\nOPENAI_API_KEY=sk-1\nANTHROPIC_API_KEY=other\nMY=sk-1\n";
        assert_eq!(scrub_env(env, &replaced).as_deref(), Some("# keep\nANTHROPIC_API_KEY=other\nMY=sk-1\n"));
        assert_eq!(scrub_env("OPENAI_API_KEY=zzz\n", &replaced), None);
    }
}
