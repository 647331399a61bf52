//! What the HTTP API and agent runs read from the config file (spec http §5, §6; issue: agents,
//! providers, `memory.search`, endpoints, tools policy, admin RPC, hooks), typed once per config
//! load. Lenient: a malformed optional section is skipped (with a warning), never fatal — the
//! gateway keeps serving its control plane.
//!
//! Secrets (`apiKey`, `hooks.token`) may be SecretRefs: [`secret_fields`] lists them for the
//! shell to resolve, and [`ApiConfig::from_config`] takes the resolved values by JSON pointer.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::auth::Secret;
use crate::config::secrets::SecretInput;

/// `models.providers.<id>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderConfig {
    pub id: String,
    /// Without a trailing slash.
    pub base_url: String,
    /// `api` (only `openai-completions` is served).
    pub api: String,
    /// `None` when not configured or when its SecretRef did not resolve (see `api_key_error`).
    pub api_key: Option<Secret>,
    pub api_key_error: Option<String>,
    pub headers: Vec<(String, String)>,
    /// `models[].id` → `maxTokens`.
    pub models: Vec<(String, Option<u64>)>,
    /// `models[].id` → `name` / `contextWindow`, when given.
    pub model_names: BTreeMap<String, String>,
    pub context_windows: BTreeMap<String, u64>,
    /// `models[].cost` (USD per million tokens), when given: what `usage.cost` prices with.
    pub costs: BTreeMap<String, ModelCost>,
}

/// A model's price, USD per million tokens (`models.providers.*.models[].cost`; the base rates —
/// `tieredPricing` is not applied).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelCost {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl ModelCost {
    /// `{input, output, cacheRead, cacheWrite}`; missing rates are 0, a non-object is no price.
    pub fn from_json(v: &Value) -> Option<ModelCost> {
        let o = v.as_object()?;
        let rate = |k: &str| o.get(k).and_then(Value::as_f64).filter(|r| r.is_finite() && *r >= 0.0).unwrap_or(0.0);
        Some(ModelCost { input: rate("input"), output: rate("output"), cache_read: rate("cacheRead"), cache_write: rate("cacheWrite") })
    }
}

/// `memory.search` (embeddings for `/v1/embeddings`).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsConfig {
    /// `provider` (`openai-compatible`, `openai`; `auto` means `openai`).
    pub provider: String,
    pub model: String,
    pub base_url: String,
    pub api_key: Option<Secret>,
}

/// `hooks`.
#[derive(Debug, Clone, PartialEq)]
pub struct HooksConfig {
    pub token: Secret,
    /// `hooks.path` (default `/hooks`), without a trailing slash.
    pub path: String,
}

/// An agent's settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentConfig {
    pub id: String,
    pub name: Option<String>,
    /// `provider/model` (or a bare model id of the only provider).
    pub model: Option<String>,
}

/// The API-facing configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    pub agents: Agents,
    pub agent_configs: BTreeMap<String, AgentConfig>,
    /// `agents.defaults.model.primary`.
    pub default_model: Option<String>,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub embeddings: Option<EmbeddingsConfig>,
    /// `gateway.http.endpoints.chatCompletions.enabled` (default false).
    pub chat_completions: bool,
    /// `gateway.http.endpoints.responses.enabled` (default false).
    pub responses: bool,
    /// `gateway.http.securityHeaders.strictTransportSecurity` (non-empty string).
    pub hsts: Option<String>,
    /// `gateway.tools.allow` / `deny` (adjust the HTTP hard-deny list).
    pub tools_allow: Vec<String>,
    pub tools_deny: Vec<String>,
    /// `plugins.entries["admin-http-rpc"].enabled`.
    pub admin_rpc: bool,
    /// `hooks` when enabled with a token.
    pub hooks: Option<HooksConfig>,
    /// `gateway.controlUi.enabled` (default true) and `basePath`.
    pub control_ui_enabled: bool,
    pub control_ui_base_path: String,
    /// Everything the Control UI reads (`gateway.controlUi.*`: root, basePath, …).
    pub control_ui: UiConfig,
    /// `cron.*` (operator §6).
    pub cron: CronConfig,
    /// Agents with a heartbeat configured (`agents.defaults.heartbeat`, merged under
    /// `agents.entries.<id>.heartbeat`), by agent id.
    pub heartbeats: BTreeMap<String, HeartbeatConfig>,
    pub warnings: Vec<String>,
}

/// `cron.enabled` (default true: scheduled jobs fire) and `cron.skipMissedJobs` (default false:
/// a recurring fire missed while the gateway was down runs once after start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronConfig {
    pub enabled: bool,
    pub skip_missed_jobs: bool,
}

impl Default for CronConfig {
    fn default() -> Self {
        CronConfig { enabled: true, skip_missed_jobs: false }
    }
}

/// One agent's heartbeat (`agents.*.heartbeat`): a periodic agent turn in its heartbeat session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatConfig {
    pub every_ms: u64,
    /// `activeHours`: `(start minute of day, end minute of day, IANA zone)`; `end` may be 1440.
    pub active_hours: Option<(u32, u32, Option<String>)>,
    pub session: Option<String>,
    pub prompt: Option<String>,
    /// `owner` (the default), `last`, `none` or a channel id.
    pub target: String,
    pub model: Option<String>,
    pub timeout_seconds: Option<u64>,
}

/// A duration like `30m`, `1h`, `1h30m`, `45s`, `500ms`, `2d` (a bare number is minutes).
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return None;
    }
    if let Ok(n) = t.parse::<u64>() {
        return n.checked_mul(60_000);
    }
    let mut total: u64 = 0;
    let mut rest = t.as_str();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" | "sec" | "secs" => 1_000.0,
            "m" | "min" | "mins" => 60_000.0,
            "h" | "hr" | "hrs" => 3_600_000.0,
            "d" | "day" | "days" => 86_400_000.0,
            _ => return None,
        };
        rest = rest[unit_len..].trim_start();
        total = total.checked_add((n * unit).round() as u64)?;
    }
    Some(total)
}

/// `HH:MM` as minutes of the day (`24:00` is 1440).
fn minute_of_day(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

impl HeartbeatConfig {
    /// The heartbeats of the configured agents: an agent has one when a heartbeat object is
    /// configured for it (or for all, in `agents.defaults`) with a non-zero `every` (default
    /// 30m). clawgate starts none unasked: with no channel, the reference's default target
    /// (`owner`) would only ever skip.
    pub fn from_config(cfg: &Value, agents: &Agents) -> BTreeMap<String, HeartbeatConfig> {
        let defaults = cfg.pointer("/agents/defaults/heartbeat").and_then(Value::as_object);
        let mut out = BTreeMap::new();
        for id in &agents.ids {
            let own = cfg.pointer(&format!("/agents/entries/{}/heartbeat", seg(id))).and_then(Value::as_object);
            if defaults.is_none() && own.is_none() {
                continue;
            }
            let get = |k: &str| own.and_then(|o| o.get(k)).or_else(|| defaults.and_then(|d| d.get(k)));
            let text = |k: &str| get(k).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
            let every_ms = text("every").map_or(Some(1_800_000), |e| parse_duration_ms(&e)).unwrap_or(0);
            if every_ms == 0 {
                continue;
            }
            let active_hours = get("activeHours").and_then(|h| {
                let start = minute_of_day(h.get("start")?.as_str()?)?;
                let end = minute_of_day(h.get("end")?.as_str()?)?;
                Some((start, end, h.get("timezone").and_then(Value::as_str).map(str::to_string)))
            });
            out.insert(
                id.clone(),
                HeartbeatConfig {
                    every_ms,
                    active_hours,
                    session: text("session"),
                    prompt: text("prompt"),
                    target: text("target").unwrap_or_else(|| "owner".into()),
                    model: text("model"),
                    timeout_seconds: get("timeoutSeconds").and_then(Value::as_u64),
                },
            );
        }
        out
    }
}

impl CronConfig {
    pub fn from_config(cfg: &Value) -> CronConfig {
        let flag = |p: &str| cfg.pointer(p).and_then(Value::as_bool);
        CronConfig { enabled: flag("/cron/enabled").unwrap_or(true), skip_missed_jobs: flag("/cron/skipMissedJobs").unwrap_or(false) }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig::from_config(&Value::Null, &BTreeMap::new())
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str).map(str::trim).filter(|x| !x.is_empty())
}

fn b(v: &Value, ptr: &str) -> Option<bool> {
    v.pointer(ptr).and_then(Value::as_bool)
}

fn strings(v: &Value, ptr: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(|x| x.trim().to_string()).collect())
        .unwrap_or_default()
}

/// Escape one JSON-pointer segment.
fn seg(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// The secret-bearing fields of a config: `(JSON pointer, input)`. The shell resolves each and
/// passes the results to [`ApiConfig::from_config`].
pub fn secret_fields(cfg: &Value) -> Vec<(String, SecretInput)> {
    let mut out = Vec::new();
    let mut push = |ptr: String| {
        if let Some(v) = cfg.pointer(&ptr).filter(|v| !v.is_null()) {
            if let Ok(i) = SecretInput::from_value(v) {
                out.push((ptr, i));
            }
        }
    };
    if let Some(ps) = cfg.pointer("/models/providers").and_then(Value::as_object) {
        for id in ps.keys() {
            push(format!("/models/providers/{}/apiKey", seg(id)));
        }
    }
    push("/memory/search/remote/apiKey".into());
    push("/hooks/token".into());
    out
}

/// The plain value of a secret field: resolved (by pointer), else a plain string in the config
/// (never the text of an unresolved reference).
fn secret_at(cfg: &Value, resolved: &BTreeMap<String, Secret>, ptr: &str) -> Option<Secret> {
    if let Some(s) = resolved.get(ptr) {
        return Some(s.clone());
    }
    match SecretInput::from_value(cfg.pointer(ptr)?) {
        Ok(SecretInput::Plain(p)) if !p.is_empty() => Some(Secret::new(p)),
        _ => None,
    }
}

fn is_ref(cfg: &Value, ptr: &str) -> bool {
    cfg.pointer(ptr).and_then(|v| SecretInput::from_value(v).ok()).is_some_and(|i| i.is_ref())
}

fn model_ref(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(x) => Some(x.trim().to_string()).filter(|x| !x.is_empty()),
        Value::Object(o) => o.get("primary").and_then(Value::as_str).map(|x| x.trim().to_string()).filter(|x| !x.is_empty()),
        _ => None,
    }
}

impl ApiConfig {
    /// Build from the resolved config (`Value::Null` when there is no config file).
    pub fn from_config(cfg: &Value, resolved: &BTreeMap<String, Secret>) -> ApiConfig {
        let mut warnings = Vec::new();
        let agents = Agents::from_config(cfg);
        let mut agent_configs = BTreeMap::new();
        for id in &agents.ids {
            let e = cfg.pointer(&format!("/agents/entries/{}", seg(id))).cloned().unwrap_or(Value::Null);
            agent_configs.insert(
                id.clone(),
                AgentConfig {
                    id: id.clone(),
                    name: e.get("name").and_then(Value::as_str).map(str::to_string),
                    model: model_ref(e.get("model")),
                },
            );
        }
        let mut providers = BTreeMap::new();
        if let Some(ps) = cfg.pointer("/models/providers").and_then(Value::as_object) {
            for (id, p) in ps {
                let Some(base_url) = p.get("baseUrl").and_then(Value::as_str).map(|u| u.trim().trim_end_matches('/').to_string()) else {
                    warnings.push(format!("models.providers.{id}: baseUrl is missing; provider ignored"));
                    continue;
                };
                let ptr = format!("/models/providers/{}/apiKey", seg(id));
                let key_is_ref = is_ref(cfg, &ptr);
                let api_key = secret_at(cfg, resolved, &ptr);
                let api_key_error = (key_is_ref && api_key.is_none()).then(|| format!("models.providers.{id}.apiKey did not resolve"));
                let headers = p
                    .get("headers")
                    .and_then(Value::as_object)
                    .map(|h| h.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_string()))).collect())
                    .unwrap_or_default();
                let models = p
                    .get("models")
                    .and_then(Value::as_array)
                    .map(|ms| {
                        ms.iter()
                            .filter_map(|m| Some((m.get("id")?.as_str()?.to_string(), m.get("maxTokens").and_then(Value::as_u64))))
                            .collect()
                    })
                    .unwrap_or_default();
                let listed = p.get("models").and_then(Value::as_array).cloned().unwrap_or_default();
                let field = |k: &str| -> BTreeMap<String, Value> {
                    listed.iter().filter_map(|m| Some((m.get("id")?.as_str()?.to_string(), m.get(k)?.clone()))).collect()
                };
                let model_names = field("name").into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_string()))).collect();
                let context_windows = field("contextWindow").into_iter().filter_map(|(k, v)| Some((k, v.as_u64()?))).collect();
                let costs = field("cost").into_iter().filter_map(|(k, v)| Some((k, ModelCost::from_json(&v)?))).collect();
                providers.insert(
                    id.clone(),
                    ProviderConfig {
                        model_names,
                        costs,
                        context_windows,
                        id: id.clone(),
                        base_url,
                        api: p.get("api").and_then(Value::as_str).unwrap_or("openai-completions").to_string(),
                        api_key,
                        api_key_error,
                        headers,
                        models,
                    },
                );
            }
        }
        let embeddings = cfg.pointer("/memory/search").filter(|m| m.is_object()).and_then(|m| {
            let provider = s(m, "/provider").unwrap_or("auto").to_string();
            let provider = if provider == "auto" { "openai".to_string() } else { provider };
            let model = s(m, "/model")?.to_string();
            let base_url = s(m, "/remote/baseUrl")
                .map(|u| u.trim_end_matches('/').to_string())
                .or_else(|| (provider == "openai").then(|| "https://api.openai.com/v1".to_string()))?;
            Some(EmbeddingsConfig { provider, model, base_url, api_key: secret_at(cfg, resolved, "/memory/search/remote/apiKey") })
        });
        let hooks = if b(cfg, "/hooks/enabled") == Some(true) {
            match secret_at(cfg, resolved, "/hooks/token") {
                Some(token) => {
                    let path = s(cfg, "/hooks/path").unwrap_or("/hooks").trim_end_matches('/').to_string();
                    let path = if path.starts_with('/') { path } else { format!("/{path}") };
                    Some(HooksConfig { token, path })
                }
                None => {
                    warnings.push("hooks.enabled needs a non-empty hooks.token; hooks are off".into());
                    None
                }
            }
        } else {
            None
        };
        let control_ui = UiConfig::from_config(cfg);
        let heartbeats = HeartbeatConfig::from_config(cfg, &agents);
        ApiConfig {
            agents,
            agent_configs,
            default_model: model_ref(cfg.pointer("/agents/defaults/model")),
            providers,
            embeddings,
            chat_completions: b(cfg, "/gateway/http/endpoints/chatCompletions/enabled") == Some(true),
            responses: b(cfg, "/gateway/http/endpoints/responses/enabled") == Some(true),
            hsts: s(cfg, "/gateway/http/securityHeaders/strictTransportSecurity").map(str::to_string),
            tools_allow: strings(cfg, "/gateway/tools/allow"),
            tools_deny: strings(cfg, "/gateway/tools/deny"),
            admin_rpc: b(cfg, "/plugins/entries/admin-http-rpc/enabled") == Some(true),
            hooks,
            control_ui_enabled: control_ui.enabled,
            control_ui_base_path: control_ui.base_path.clone(),
            control_ui,
            cron: CronConfig::from_config(cfg),
            heartbeats,
            warnings,
        }
    }

    /// `/v1/models*` and `/v1/embeddings` are served when either OpenAI endpoint is on (§2 stage 8).
    pub fn openai_enabled(&self) -> bool {
        self.chat_completions || self.responses
    }

    /// The `provider/model` an agent runs on: the override, else the agent's model, else the
    /// default model.
    pub fn model_for(&self, agent_id: &str, override_model: Option<&str>) -> Option<String> {
        override_model
            .map(str::to_string)
            .or_else(|| self.agent_configs.get(agent_id).and_then(|a| a.model.clone()))
            .or_else(|| self.default_model.clone())
    }

    /// Split `provider/model` (a bare id means the only provider, if there is exactly one).
    pub fn split_model<'a>(&'a self, model: &'a str) -> Option<(&'a ProviderConfig, &'a str)> {
        match model.split_once('/') {
            Some((p, m)) => self.providers.get(p).map(|pc| (pc, m)),
            None if self.providers.len() == 1 => self.providers.values().next().map(|pc| (pc, model)),
            None => None,
        }
    }
}

/// The agent a gateway without `agents.entries` serves.
pub const DEFAULT_AGENT_ID: &str = "main";

/// The configured agents (`agents.entries`; `main` when none is configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agents {
    pub ids: Vec<String>,
    /// An explicit multi-agent fleet has no default agent (spec §5.1).
    pub default: Option<String>,
}

impl Agents {
    pub fn from_config(cfg: &Value) -> Agents {
        let entries: Vec<String> = cfg
            .pointer("/agents/entries")
            .and_then(Value::as_object)
            .map(|m| m.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        if entries.is_empty() {
            return Agents { ids: vec!["main".into()], default: Some("main".into()) };
        }
        let explicit = entries.len() > 1 || cfg.pointer("/agents/ownership").and_then(Value::as_str) == Some("explicit");
        let default = if explicit { None } else { entries.first().cloned() };
        Agents { ids: entries, default }
    }

    /// The agent a request without one runs on: the configured default, else `main`, else the
    /// first configured agent.
    pub fn default_agent(&self) -> String {
        self.default
            .clone()
            .or_else(|| self.ids.iter().find(|a| *a == DEFAULT_AGENT_ID).cloned())
            .or_else(|| self.ids.first().cloned())
            .unwrap_or_else(|| DEFAULT_AGENT_ID.to_string())
    }

    /// The agent that owns an operation naming none, where ownership must be unambiguous (the
    /// session tools): the configured default; an explicit fleet has none (the caller must name
    /// one).
    pub fn ambient_owner(&self) -> Option<&str> {
        self.default.as_deref()
    }

    /// `openclaw`, `openclaw/default`, then `openclaw/<id>` for each agent (§6.2).
    pub fn model_ids(&self) -> Vec<String> {
        let mut out = vec!["openclaw".to_string(), "openclaw/default".to_string()];
        for id in &self.ids {
            let m = format!("openclaw/{id}");
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }
}

// ---- the Control UI's keys ----------------------------------------------------------------

/// `gateway.controlUi.*` (and the few neighbouring keys the config JSON reports).
#[derive(Debug, Clone, PartialEq)]
pub struct UiConfig {
    /// `gateway.controlUi.enabled` (default true).
    pub enabled: bool,
    /// `gateway.controlUi.basePath`, normalised ([`normalize_base_path`]).
    pub base_path: String,
    /// `gateway.controlUi.root` as written (a leading `~` is expanded by the shell, see
    /// [`expand_root`]); `None`: no UI directory configured.
    pub root: Option<String>,
    /// `gateway.terminal.enabled` (default true): `data-openclaw-terminal-enabled`, and
    /// `'wasm-unsafe-eval'` in the HTML CSP.
    pub terminal_enabled: bool,
    /// `gateway.controlUi.embedSandbox`: `scripts` (default), `trusted` or `strict`.
    pub embed_sandbox: &'static str,
    pub allow_external_embed_urls: bool,
    pub automatically_fetch_favicons: bool,
    pub community_invite: bool,
    /// `gateway.cliAgents.enabled` (default true).
    pub cli_agents_enabled: bool,
    /// `ui.seamColor`.
    pub seam_color: Option<String>,
    /// `gateway.controlUi.environment`.
    pub environment: Option<Value>,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig::from_config(&Value::Null)
    }
}

impl UiConfig {
    pub fn from_config(cfg: &Value) -> UiConfig {
        let b = |ptr: &str| cfg.pointer(ptr).and_then(Value::as_bool);
        let s = |ptr: &str| cfg.pointer(ptr).and_then(Value::as_str).map(str::trim).filter(|x| !x.is_empty()).map(str::to_string);
        UiConfig {
            enabled: b("/gateway/controlUi/enabled") != Some(false),
            base_path: normalize_base_path(cfg.pointer("/gateway/controlUi/basePath").and_then(Value::as_str).unwrap_or("")),
            root: s("/gateway/controlUi/root"),
            terminal_enabled: b("/gateway/terminal/enabled") != Some(false),
            embed_sandbox: match cfg.pointer("/gateway/controlUi/embedSandbox").and_then(Value::as_str) {
                Some("trusted") => "trusted",
                Some("strict") => "strict",
                _ => "scripts",
            },
            allow_external_embed_urls: b("/gateway/controlUi/allowExternalEmbedUrls") == Some(true),
            automatically_fetch_favicons: b("/gateway/controlUi/automaticallyFetchFavicons") != Some(false),
            community_invite: b("/gateway/controlUi/communityInvite") != Some(false),
            cli_agents_enabled: b("/gateway/cliAgents/enabled") != Some(false),
            seam_color: s("/ui/seamColor"),
            environment: cfg.pointer("/gateway/controlUi/environment").filter(|v| !v.is_null()).cloned(),
        }
    }
}

/// `basePath` as the reference normalises it: trimmed, no leading or trailing `/` runs, then one
/// leading `/`; `""` for the root.
pub fn normalize_base_path(raw: &str) -> String {
    let t = raw.trim().trim_matches('/');
    if t.is_empty() { String::new() } else { format!("/{t}") }
}

/// The configured root with a leading `~` (alone or `~/…`) replaced by `home`.
pub fn expand_root(raw: &str, home: Option<&str>) -> String {
    match (raw.strip_prefix('~'), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => format!("{h}{rest}"),
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_config_a() {
        let cfg = json!({
            "gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}}}},
            "models": {"providers": {"fake": {"baseUrl": "http://127.0.0.1:28812/v1/", "apiKey": "k", "api": "openai-completions",
                "models": [{"id": "fake-model", "maxTokens": 4096}]}}},
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}, "entries": {"main": {"name": "Main"}, "research": {}}},
            "memory": {"search": {"provider": "openai-compatible", "model": "fake-embed", "remote": {"baseUrl": "http://127.0.0.1:28812/v1"}}},
            "plugins": {"entries": {"admin-http-rpc": {"enabled": true}}},
            "hooks": {"enabled": true, "token": "hooktoken", "path": "/hooks"},
        });
        let a = ApiConfig::from_config(&cfg, &BTreeMap::new());
        assert!(a.chat_completions && a.responses && a.admin_rpc);
        assert_eq!(a.agents.default, None, "two agents: explicit fleet");
        assert_eq!(a.model_for("research", None).as_deref(), Some("fake/fake-model"));
        let (p, m) = a.split_model("fake/fake-model").unwrap();
        assert_eq!((p.base_url.as_str(), m), ("http://127.0.0.1:28812/v1", "fake-model"));
        assert_eq!(p.api_key.as_ref().map(|k| k.expose().to_string()).as_deref(), Some("k"));
        assert_eq!(a.embeddings.as_ref().map(|e| e.model.as_str()), Some("fake-embed"));
        assert_eq!(a.hooks.as_ref().map(|h| h.path.as_str()), Some("/hooks"));
        let none = ApiConfig::default();
        assert!(!none.openai_enabled() && none.control_ui_enabled && none.hooks.is_none());
        assert_eq!(none.agents.ids, ["main"]);
    }

    #[test]
    fn secret_refs_are_listed_and_taken_resolved() {
        let cfg = json!({"models": {"providers": {"p": {"baseUrl": "http://x", "apiKey": {"source": "env", "provider": "default", "id": "P_KEY"}}}}});
        let f = secret_fields(&cfg);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "/models/providers/p/apiKey");
        let unresolved = ApiConfig::from_config(&cfg, &BTreeMap::new());
        assert!(unresolved.providers["p"].api_key.is_none() && unresolved.providers["p"].api_key_error.is_some());
        let mut r = BTreeMap::new();
        r.insert("/models/providers/p/apiKey".to_string(), Secret::new("resolved"));
        assert_eq!(
            ApiConfig::from_config(&cfg, &r).providers["p"].api_key.as_ref().map(|k| k.expose().to_string()).as_deref(),
            Some("resolved")
        );
    }
}
