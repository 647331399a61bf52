//! `secrets configure`, the interactive planner's decisions (the reference's planner, captured
//! in a TTY): which credential fields it offers, what it proposes for each, what every answer
//! must look like (the reference's validation messages), the provider entries its answers make,
//! and the plan it writes — a plan `secrets apply` (clawgate's and the reference's) accepts.
//! The shell asks the questions and resolves the refs.

use serde_json::{Map, Value, json};

use super::plan::plan_type;
use super::surface;
use crate::config::secrets::{SecretRef, SecretSource};

/// A credential field of the config the planner offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub segments: Vec<String>,
    /// The plan target type (`models.providers.apiKey`, `gateway.auth.token`, …).
    pub plan_type: String,
    /// `models.providers.<id>.…`: the provider id (a plan target's `providerId`).
    pub provider_id: Option<String>,
    /// The ref the field holds now, if it holds one.
    pub current: Option<SecretRef>,
}

impl Candidate {
    pub fn path(&self) -> String {
        self.segments.join(".")
    }
}

/// The credential fields of `config` that a plan can target, plaintext or already a ref,
/// sorted by path (case-insensitively, as the reference lists them). Channel and plugin fields
/// are left out: clawgate hosts neither, and its `apply` refuses them.
pub fn candidates(config: &Value) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = surface::find(config)
        .into_iter()
        .filter_map(|f| {
            let plan_type = plan_type(f.pattern)?;
            Some(Candidate {
                provider_id: f.provider().map(str::to_string),
                current: f.value.is_object().then(|| SecretRef::from_object(f.value).ok()).flatten(),
                plan_type,
                segments: f.segments.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.path().to_lowercase().cmp(&b.path().to_lowercase()).then_with(|| a.path().cmp(&b.path())));
    out
}

/// Provider aliases: `^[a-z][a-z0-9_-]{0,63}$`.
pub fn check_alias(alias: &str) -> Result<(), &'static str> {
    let mut c = alias.chars();
    if alias.is_empty() {
        return Err("Required");
    }
    let ok = matches!(c.next(), Some('a'..='z'))
        && alias.len() <= 64
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_' || x == '-');
    if ok { Ok(()) } else { Err("Must match /^[a-z][a-z0-9_-]{0,63}$/") }
}

fn env_name_ok(s: &str) -> bool {
    crate::config::secrets::valid_store_name(s)
}

/// A ref's id for its source, in the reference's words.
pub fn check_ref_id(source: SecretSource, id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err("Required".into());
    }
    match source {
        SecretSource::Env if !env_name_ok(id) => Err("env ids must match /^[A-Z][A-Z0-9_]{0,127}$/".into()),
        SecretSource::Store if !env_name_ok(id) => Err("store ids must match /^[A-Z][A-Z0-9_]{0,127}$/".into()),
        SecretSource::Exec => {
            let chars_ok = id.len() <= 256
                && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && id.chars().all(|c| c.is_ascii_alphanumeric() || "._:/#-".contains(c));
            if chars_ok && !id.split('/').any(|s| s == "." || s == "..") {
                Ok(())
            } else {
                Err("Exec secret reference id must match /^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,255}$/ and must not include \".\" or \"..\" path segments (example: \"vault/openai/api-key\" or \"aws/secret#json_key\").".into())
            }
        }
        _ => Ok(()),
    }
}

/// A comma-separated list of env names (blank: none).
pub fn parse_env_names(csv: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = csv.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    match names.iter().find(|n| !env_name_ok(n)) {
        Some(bad) => Err(format!("Invalid env name: {bad}")),
        None => Ok(names),
    }
}

/// A comma-separated list of absolute directories (blank: none).
pub fn parse_trusted_dirs(csv: &str) -> Result<Vec<String>, String> {
    let dirs: Vec<String> = csv.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    match dirs.iter().find(|d| !d.starts_with('/')) {
        Some(bad) => Err(format!("Trusted dir must be absolute: {bad}")),
        None => Ok(dirs),
    }
}

/// An optional bounded integer (blank: the default).
pub fn parse_optional_int(s: &str, max: u64) -> Result<Option<u64>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(format!("Must be an integer between 1 and {max}")),
    }
}

pub fn check_absolute_path(s: &str) -> Result<(), &'static str> {
    if s.trim().is_empty() {
        Err("Required")
    } else if !s.trim().starts_with('/') {
        Err("Must be an absolute path")
    } else {
        Ok(())
    }
}

/// An exec provider's command: absolute, and no shell syntax (it is run without a shell).
pub fn check_command(s: &str) -> Result<(), &'static str> {
    check_absolute_path(s)?;
    if s.chars().any(|c| ";&|`$<>\"'\r\n\0".contains(c)) { Err("Command value is not allowed") } else { Ok(()) }
}

/// `Args JSON array (blank for none)`.
pub fn parse_args(s: &str) -> Result<Vec<String>, &'static str> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(s).map_err(|_| "Must be valid JSON")?;
    v.as_array()
        .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
        .ok_or("Must be a JSON array of strings")
}

/// The answers for one provider (`secrets.providers.<alias>`), as the config keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderAnswers {
    Env { allowlist: Vec<String> },
    File { path: String, single_value: bool, timeout_ms: Option<u64>, max_bytes: Option<u64> },
    Exec(ExecAnswers),
    Store,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecAnswers {
    pub command: String,
    pub args: Vec<String>,
    pub timeout_ms: Option<u64>,
    pub no_output_timeout_ms: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub json_only: bool,
    pub pass_env: Vec<String>,
    pub trusted_dirs: Vec<String>,
}

impl ProviderAnswers {
    /// The provider entry, keys in the reference's order.
    pub fn to_value(&self) -> Value {
        let mut o = Map::new();
        match self {
            ProviderAnswers::Env { allowlist } => {
                o.insert("source".into(), json!("env"));
                if !allowlist.is_empty() {
                    o.insert("allowlist".into(), json!(allowlist));
                }
            }
            ProviderAnswers::File { path, single_value, timeout_ms, max_bytes } => {
                o.insert("source".into(), json!("file"));
                o.insert("path".into(), json!(path));
                o.insert("mode".into(), json!(if *single_value { "singleValue" } else { "json" }));
                if let Some(t) = timeout_ms {
                    o.insert("timeoutMs".into(), json!(t));
                }
                if let Some(m) = max_bytes {
                    o.insert("maxBytes".into(), json!(m));
                }
            }
            ProviderAnswers::Exec(e) => {
                o.insert("source".into(), json!("exec"));
                o.insert("command".into(), json!(e.command));
                if !e.args.is_empty() {
                    o.insert("args".into(), json!(e.args));
                }
                for (k, v) in
                    [("timeoutMs", e.timeout_ms), ("noOutputTimeoutMs", e.no_output_timeout_ms), ("maxOutputBytes", e.max_output_bytes)]
                {
                    if let Some(v) = v {
                        o.insert(k.into(), json!(v));
                    }
                }
                o.insert("jsonOnly".into(), json!(e.json_only));
                if !e.pass_env.is_empty() {
                    o.insert("passEnv".into(), json!(e.pass_env));
                }
                if !e.trusted_dirs.is_empty() {
                    o.insert("trustedDirs".into(), json!(e.trusted_dirs));
                }
            }
            ProviderAnswers::Store => {
                o.insert("source".into(), json!("store"));
            }
        }
        Value::Object(o)
    }

    /// A provider entry's answers, to pre-fill an edit (`None`: not one the planner makes).
    pub fn from_value(v: &Value) -> Option<ProviderAnswers> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let strs = |k: &str| {
            v.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
        };
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        Some(match s("source")?.as_str() {
            "env" => ProviderAnswers::Env { allowlist: strs("allowlist") },
            "file" => ProviderAnswers::File {
                path: s("path").unwrap_or_default(),
                single_value: s("mode").as_deref() == Some("singleValue"),
                timeout_ms: n("timeoutMs"),
                max_bytes: n("maxBytes"),
            },
            "exec" => ProviderAnswers::Exec(ExecAnswers {
                command: s("command").unwrap_or_default(),
                args: strs("args"),
                timeout_ms: n("timeoutMs"),
                no_output_timeout_ms: n("noOutputTimeoutMs"),
                max_output_bytes: n("maxOutputBytes"),
                json_only: v.get("jsonOnly").and_then(Value::as_bool).unwrap_or(true),
                pass_env: strs("passEnv"),
                trusted_dirs: strs("trustedDirs"),
            }),
            "store" => ProviderAnswers::Store,
            _ => return None,
        })
    }
}

/// How a provider is described in the edit/remove lists.
pub fn provider_hint(v: &Value) -> String {
    match ProviderAnswers::from_value(v) {
        Some(ProviderAnswers::Env { allowlist }) if !allowlist.is_empty() => format!("env ({} allowlisted)", allowlist.len()),
        Some(ProviderAnswers::Env { .. }) => "env".into(),
        Some(ProviderAnswers::File { single_value, .. }) => format!("file ({})", if single_value { "singleValue" } else { "json" }),
        Some(ProviderAnswers::Exec(e)) => format!("exec ({})", if e.json_only { "json" } else { "json+text" }),
        Some(ProviderAnswers::Store) => "store".into(),
        None => v.get("source").and_then(Value::as_str).unwrap_or("?").to_string(),
    }
}

/// The sources a field can be mapped to: env and store always, file and exec when a provider
/// of that source is configured.
pub fn offered_sources(providers: &Map<String, Value>) -> Vec<SecretSource> {
    let has = |s: &str| providers.values().any(|p| p.get("source").and_then(Value::as_str) == Some(s));
    let mut out = vec![SecretSource::Env, SecretSource::Store];
    if has("file") {
        out.push(SecretSource::File);
    }
    if has("exec") {
        out.push(SecretSource::Exec);
    }
    out
}

/// The provider alias proposed for a field: its ref's (same source), else
/// `secrets.defaults.<source>`, else the first configured provider of that source, else
/// `default`.
pub fn proposed_alias(c: &Candidate, source: SecretSource, config: &Value, providers: &Map<String, Value>) -> String {
    if let Some(r) = c.current.as_ref().filter(|r| r.source == source) {
        return r.provider.clone();
    }
    if let Some(d) = config.pointer(&format!("/secrets/defaults/{}", source.as_str())).and_then(Value::as_str) {
        return d.to_string();
    }
    providers
        .iter()
        .find(|(_, p)| p.get("source").and_then(Value::as_str) == Some(source.as_str()))
        .map_or_else(|| crate::config::secrets::DEFAULT_PROVIDER.to_string(), |(alias, _)| alias.clone())
}

/// Well-known model providers' usual environment variable.
const PROVIDER_ENV: &[(&str, &str)] = &[
    ("openai", "OPENAI_API_KEY"),
    ("anthropic", "ANTHROPIC_API_KEY"),
    ("google", "GEMINI_API_KEY"),
    ("gemini", "GEMINI_API_KEY"),
    ("xai", "XAI_API_KEY"),
    ("openrouter", "OPENROUTER_API_KEY"),
    ("groq", "GROQ_API_KEY"),
    ("mistral", "MISTRAL_API_KEY"),
    ("deepseek", "DEEPSEEK_API_KEY"),
    ("together", "TOGETHER_API_KEY"),
    ("fireworks", "FIREWORKS_API_KEY"),
    ("perplexity", "PERPLEXITY_API_KEY"),
    ("cerebras", "CEREBRAS_API_KEY"),
];

/// The secret id proposed for a field: its ref's (same source); for env and store a provider
/// key's usual variable (`OPENAI_API_KEY`, or `<ID>_API_KEY`), the gateway token's
/// `OPENCLAW_GATEWAY_TOKEN`; `value` for a single-value file; else nothing.
pub fn proposed_id(c: &Candidate, source: SecretSource, provider: Option<&Value>) -> String {
    if let Some(r) = c.current.as_ref().filter(|r| r.source == source) {
        return r.id.clone();
    }
    match source {
        SecretSource::Env | SecretSource::Store => {
            if c.plan_type == "gateway.auth.token" {
                return "OPENCLAW_GATEWAY_TOKEN".into();
            }
            if c.plan_type == "gateway.auth.password" {
                return "OPENCLAW_GATEWAY_PASSWORD".into();
            }
            let Some(id) = c.provider_id.as_deref().filter(|_| c.segments.last().is_some_and(|l| l == "apiKey")) else {
                return String::new();
            };
            let id = id.to_ascii_lowercase();
            if let Some((_, var)) = PROVIDER_ENV.iter().find(|(p, _)| *p == id) {
                return (*var).to_string();
            }
            let name: String = id.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch.to_ascii_uppercase() } else { '_' }).collect();
            let name = format!("{name}_API_KEY");
            if env_name_ok(&name) { name } else { String::new() }
        }
        SecretSource::File if provider.and_then(|p| p.get("mode")).and_then(Value::as_str) == Some("singleValue") => "value".into(),
        _ => String::new(),
    }
}

/// The plan the answers make: targets in the order chosen, `providerUpserts` (every staged
/// provider that differs from the original, in the staged order), `providerDeletes` (sorted),
/// both left out when empty — the reference's plan shape.
pub fn build_plan(
    targets: &[(Candidate, SecretRef)],
    original: &Map<String, Value>,
    staged: &Map<String, Value>,
    generated_at: &str,
    generated_by: &str,
) -> Value {
    let targets: Vec<Value> = targets
        .iter()
        .map(|(c, r)| {
            let mut t = Map::new();
            t.insert("type".into(), json!(c.plan_type));
            t.insert("path".into(), json!(c.path()));
            t.insert("pathSegments".into(), json!(c.segments));
            t.insert("ref".into(), json!({"source": r.source.as_str(), "provider": r.provider, "id": r.id}));
            if let Some(p) = &c.provider_id {
                t.insert("providerId".into(), json!(p));
            }
            Value::Object(t)
        })
        .collect();
    let mut plan = Map::new();
    plan.insert("version".into(), json!(1));
    plan.insert("protocolVersion".into(), json!(1));
    plan.insert("generatedAt".into(), json!(generated_at));
    plan.insert("generatedBy".into(), json!(generated_by));
    plan.insert("targets".into(), Value::Array(targets));
    let upserts: Map<String, Value> =
        staged.iter().filter(|(k, v)| original.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    if !upserts.is_empty() {
        plan.insert("providerUpserts".into(), Value::Object(upserts));
    }
    let mut deletes: Vec<&String> = original.keys().filter(|k| !staged.contains_key(*k)).collect();
    deletes.sort();
    if !deletes.is_empty() {
        plan.insert("providerDeletes".into(), json!(deletes));
    }
    plan.insert("options".into(), json!({"scrubEnv": true, "scrubAuthProfilesForProviderTargets": true, "scrubLegacyAuthJson": false}));
    Value::Object(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Value {
        json!({
            "models": {"providers": {"openai": {"baseUrl": "https://api.openai.com/v1", "apiKey": "sk-plain-123", "models": []},
                                      "My-Local": {"baseUrl": "http://x", "apiKey": {"source": "env", "provider": "default", "id": "MY_LOCAL"}}}},
            "gateway": {"auth": {"mode": "token", "token": "plain-token-abcdef"}},
            "channels": {"telegram": {"botToken": "123:abc"}},
        })
    }

    #[test]
    fn candidates_are_the_plannable_fields_sorted_by_path() {
        let c = candidates(&cfg());
        let paths: Vec<String> = c.iter().map(Candidate::path).collect();
        assert_eq!(paths, ["gateway.auth.token", "models.providers.My-Local.apiKey", "models.providers.openai.apiKey"]);
        assert_eq!(c[1].current.as_ref().map(|r| r.id.as_str()), Some("MY_LOCAL"));
        assert_eq!((c[2].plan_type.as_str(), c[2].provider_id.as_deref()), ("models.providers.apiKey", Some("openai")));
        assert_eq!(c[0].plan_type, "gateway.auth.token");
    }

    #[test]
    fn proposals_and_validation() {
        let c = candidates(&cfg());
        let none = Map::new();
        assert_eq!(proposed_id(&c[2], SecretSource::Env, None), "OPENAI_API_KEY");
        assert_eq!(proposed_id(&c[1], SecretSource::Env, None), "MY_LOCAL", "the current ref's id");
        assert_eq!(proposed_id(&c[1], SecretSource::Store, None), "MY_LOCAL_API_KEY");
        assert_eq!(proposed_id(&c[0], SecretSource::Store, None), "OPENCLAW_GATEWAY_TOKEN");
        assert_eq!(proposed_alias(&c[2], SecretSource::Env, &cfg(), &none), "default");
        let providers = json!({"vault": {"source": "exec", "command": "/bin/v"}}).as_object().cloned().unwrap();
        assert_eq!(proposed_alias(&c[2], SecretSource::Exec, &cfg(), &providers), "vault");
        assert_eq!(offered_sources(&providers), [SecretSource::Env, SecretSource::Store, SecretSource::Exec]);
        assert_eq!(check_alias("Bad"), Err("Must match /^[a-z][a-z0-9_-]{0,63}$/"));
        assert_eq!(check_ref_id(SecretSource::Env, "lower"), Err("env ids must match /^[A-Z][A-Z0-9_]{0,127}$/".into()));
        assert!(check_ref_id(SecretSource::Exec, "vault/../x").is_err() && check_ref_id(SecretSource::Exec, "vault/openai#k").is_ok());
        assert_eq!(parse_env_names("HOME, VAULT_ADDR"), Ok(vec!["HOME".to_string(), "VAULT_ADDR".to_string()]));
        assert_eq!(parse_env_names("HOME,bad"), Err("Invalid env name: bad".into()));
        assert_eq!(parse_optional_int("0", 120_000), Err("Must be an integer between 1 and 120000".into()));
        assert_eq!(check_command("/bin/sh -c 'x'"), Err("Command value is not allowed"));
        assert_eq!(parse_args("[\"a\", 1]"), Err("Must be a JSON array of strings"));
    }

    #[test]
    fn the_plan_has_the_references_shape_and_passes_the_plan_contract() {
        let c = candidates(&cfg());
        let original = json!({"legacy": {"source": "env"}, "keep": {"source": "store"}}).as_object().cloned().unwrap();
        let mut staged = original.clone();
        staged.remove("legacy");
        let exec = ProviderAnswers::Exec(ExecAnswers { command: "/usr/bin/vault".into(), json_only: true, ..ExecAnswers::default() });
        staged.insert("vault".into(), exec.to_value());
        assert_eq!(ProviderAnswers::from_value(&exec.to_value()), Some(exec));
        let targets = vec![(c[2].clone(), SecretRef::env("OPENAI_API_KEY")), (c[0].clone(), SecretRef::env("OPENCLAW_GATEWAY_TOKEN"))];
        let plan = build_plan(&targets, &original, &staged, "2026-12-07T16:11:39.803Z", "clawgate secrets configure");
        let keys: Vec<&String> = plan.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["version", "protocolVersion", "generatedAt", "generatedBy", "targets", "providerUpserts", "providerDeletes", "options"]
        );
        assert_eq!(plan["providerUpserts"], json!({"vault": {"source": "exec", "command": "/usr/bin/vault", "jsonOnly": true}}));
        assert_eq!(plan["providerDeletes"], json!(["legacy"]));
        let t0: Vec<&String> = plan["targets"][0].as_object().unwrap().keys().collect();
        assert_eq!(t0, ["type", "path", "pathSegments", "ref", "providerId"]);
        assert!(plan["targets"][1].get("providerId").is_none());
        let parsed = super::super::plan::parse("plan.json", plan.to_string().as_bytes()).expect("clawgate's apply accepts it");
        assert_eq!(parsed.targets.len(), 2);
        assert_eq!(parsed.provider_deletes, ["legacy"]);
    }
}
