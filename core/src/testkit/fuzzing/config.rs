//! The `config` target.

use super::*;

fn fields(data: &[u8]) -> Vec<Option<String>> {
    String::from_utf8_lossy(data).split('\n').map(|l| (l != "~").then(|| l.to_string())).collect()
}

/// The config resolvers on arbitrary strings (encoding in the module docs). Checks: resolved
/// ports are 1..=65535 and a valid `--port` wins; bind plans listen on their own host; the auth
/// gate's answers are consistent with the mode and the bind; exit codes are 1 or 78; state dir
/// and config path are never empty.
pub fn config(data: &[u8]) {
    use crate::config::*;
    let (data, file) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(String::from_utf8_lossy(&data[i + 1..]).into_owned())),
        None => (data, None),
    };
    let f = fields(data);
    let get = |i: usize| f.get(i).cloned().flatten();

    let (cli_port, env_port, profile) = (get(0), get(1), get(3));
    let cfg_port = get(2).and_then(|s| s.trim().parse::<i64>().ok());
    if let Some(e) = &env_port {
        if let Some(p) = parse_env_port(e) {
            assert!(p >= 1);
        }
    }
    match resolve_port(cli_port.as_deref(), env_port.as_deref(), cfg_port, profile.as_deref()) {
        Ok(p) => {
            assert!(p >= 1, "port 0 resolved");
            if let Some(c) = &cli_port {
                assert_eq!(c.trim().parse::<u16>().ok(), Some(p), "--port {c:?} did not win");
            }
        }
        Err(e) => assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty()),
    }
    if let Some(p) = &profile {
        let _ = fnv1a32(p.as_bytes());
        // `--profile`: refused, or environment values naming the profile's own state dir.
        let dev = p.len() % 2 == 1;
        if let Ok(vars) = crate::service::profile::profile_env(dev, Some(p.as_str()), |_| None, "/h") {
            assert!(vars.is_empty() || vars[0].0 == "OPENCLAW_PROFILE");
        }
    }
    service_files(file.as_deref().unwrap_or_default(), cli_port.as_deref().unwrap_or_default());
    secrets_files(file.as_deref().unwrap_or_default());

    let mask = get(7).and_then(|s| s.bytes().next()).unwrap_or(0);
    let custom = get(6);
    let plan = match resolve_bind_mode(get(4).as_deref(), get(5).as_deref()) {
        Ok(mode) => {
            assert_eq!(BindMode::parse(mode.as_str()), Some(mode));
            let loopback = IpAddr::from([127, 0, 0, 1]);
            let plan = resolve_bind_plan(mode, custom.as_deref(), |ip| if ip == loopback { mask & 1 != 0 } else { mask & 2 != 0 });
            match &plan {
                Ok(plan) => {
                    assert_eq!(plan.mode, mode);
                    assert!(
                        plan.listeners.iter().any(|(a, optional)| *a == plan.host && !optional),
                        "plan does not listen on its host: {plan:?}"
                    );
                }
                Err(e) => assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty()),
            }
            plan.ok()
        }
        Err(e) => {
            assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty());
            None
        }
    };

    let inputs = |at: usize| AuthInputs { mode: get(at), token: get(at + 1), password: get(at + 2) };
    let (cli, cfg, env, remote) = (inputs(8), inputs(11), inputs(14), inputs(17));
    match resolve_auth(&cli, &cfg, &env, &remote) {
        Ok(auth) => {
            assert_eq!(AuthMode::parse(auth.mode.as_str()), Some(auth.mode));
            for s in [&auth.token, &auth.password].into_iter().flatten() {
                assert!(!s.expose().trim().is_empty(), "blank secret resolved");
            }
            if auth.explicit_secret {
                assert!(auth.token.is_some() || auth.password.is_some());
            }
            if let Some(plan) = &plan {
                match startup_auth_gate(&auth, plan) {
                    Ok(generate) => {
                        if generate {
                            assert!(auth.mode == AuthMode::Token && auth.token.is_none());
                        }
                        if !is_loopback_host(&plan.host) {
                            assert!(auth.explicit_secret || auth.mode == AuthMode::TrustedProxy, "non-loopback bind without a secret");
                        }
                        if auth.mode == AuthMode::Password {
                            assert!(auth.password.is_some());
                        }
                    }
                    Err(e) => assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty()),
                }
            }
        }
        Err(e) => assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty()),
    }

    let os_home = get(20);
    let exists_dir = get(21);
    let env_map: Vec<(String, String)> =
        f.iter().skip(22).flatten().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let env_fn = |k: &str| env_map.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let exists = |p: &str| exists_dir.as_deref().is_some_and(|d| !d.is_empty() && p == d);
    let state_dir = resolve_state_dir(env_fn, os_home.clone(), exists);
    assert!(!state_dir.is_empty(), "empty state dir");
    let config_path = resolve_config_path(env_fn, &state_dir, os_home.as_deref());
    if env_fn("OPENCLAW_CONFIG_PATH").is_none_or(|p| p.trim().is_empty()) {
        assert_eq!(config_path, format!("{state_dir}/openclaw.json"));
    }
    client_target(&get);
    if let Some(text) = file {
        config_file(&text, &env_fn);
    }
}

/// Which gateway a client command goes to, on the same fuzzed fields. Checks: a target is a
/// `ws://`/`wss://` URL, plaintext only to hosts that allow it; credentials are never blank;
/// `--url` never carries implicit credentials; messages are never empty.
fn client_target(get: &dyn Fn(usize) -> Option<String>) {
    use crate::auth::Secret;
    use crate::connection::client_target::*;
    let field = |i: usize| match get(i) {
        None => SecretField::Absent,
        Some(v) if v.starts_with('!') => SecretField::Unresolved(v),
        Some(v) => SecretField::Value(Secret::new(v)),
    };
    let i = ClientInputs {
        url_flag: get(4),
        port_flag: get(0),
        token_flag: get(9),
        password_flag: get(10),
        env_url: get(5),
        env_port: get(1),
        env_token: get(15),
        env_password: get(16),
        env_profile: get(3),
        config_path: "/h/.openclaw/openclaw.json".into(),
        config: get(6).map(|mode| ClientConfig {
            mode: Some(mode),
            port: get(2).and_then(|p| p.trim().parse().ok()),
            auth_mode: get(8).and_then(|m| crate::auth::AuthMode::parse(&m)),
            remote_url: get(7),
            auth_token: field(12),
            auth_password: field(13),
            remote_token: field(18),
            remote_password: field(19),
        }),
        config_error: None,
        running: None,
        kept_token: get(11).map(|t| (Secret::new(t), "/k".to_string())),
        kept_token_path: "/k".into(),
    };
    match resolve(&i) {
        Ok(t) => {
            let (rest, tls) = match (t.url.strip_prefix("ws://"), t.url.strip_prefix("wss://")) {
                (Some(r), _) => (r, false),
                (None, Some(r)) => (r, true),
                _ => panic!("target is not a WebSocket URL: {}", t.url),
            };
            assert!(!rest.is_empty());
            if !tls {
                let authority = rest.split('/').next().unwrap_or_default();
                let host = match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or_default(),
                    None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
                };
                assert!(plaintext_allowed(host), "plaintext ws:// to {host}");
            }
            for c in [&t.token, &t.password].into_iter().flatten() {
                assert!(!c.secret.expose().trim().is_empty(), "blank credential from {}", c.source);
            }
            if t.source == TargetSource::UrlFlag {
                for c in [&t.token, &t.password].into_iter().flatten() {
                    assert!(c.source.starts_with("--"), "--url with an implicit credential from {}", c.source);
                }
            }
            assert!(!unreachable_message(&t, "ECONNREFUSED", &i.config_path).is_empty());
            assert!(!refusal_message(&t, "INVALID_REQUEST", "m", None).is_empty());
        }
        Err(e) => assert!(!e.message.is_empty() && !e.kind.is_empty()),
    }
}

/// Resolves `$include`s of the fuzzed config file from memory.
struct MemIncludes;

impl crate::config::file::IncludeReader for MemIncludes {
    fn read(&mut self, path: &std::path::Path) -> Result<String, String> {
        match path.file_name().and_then(|n| n.to_str()) {
            Some("a.json5") => Ok("{gateway: {port: 28801, auth: {token: '${TOK}'}}, // included\n}".into()),
            Some("self.json5") => Ok(r#"{"$include": "./self.json5"}"#.into()),
            _ => Err("not found".into()),
        }
    }
}

/// The JSON5 config file: parse, load (includes, `${VAR}`, validation), merge patch, writes.
/// Checks: syntax errors point at a line and column >= 1; merge patches are idempotent; a loaded
/// port resolves; a planned write loads and plans again to the same text.
fn config_file(text: &str, env: &dyn Fn(&str) -> Option<String>) {
    use crate::config::file::{self as cf, ConfigError, ConfigWrite, WriteKind};
    const FILE: &str = "/home/u/.openclaw/openclaw.json";
    match cf::parse_json5(FILE, text) {
        Ok(v) => {
            let mut once = json!({"gateway": {"port": 18789, "auth": {"mode": "token"}}, "x": [1]});
            cf::merge_patch(&mut once, &v);
            let mut twice = once.clone();
            cf::merge_patch(&mut twice, &v);
            assert_eq!(once, twice, "merge patch is not idempotent");
            let _ = cf::hash_value(&v);
            // `config.get`'s raw view never shows a secret of the file it scrubbed.
            if let Some(raw) = crate::config::view::scrub_raw(text, &v, &[]) {
                for secret in crate::config::settings::sensitive_values(&v) {
                    assert!(!raw.contains(&secret), "config.get raw shows a secret");
                }
            }
        }
        Err(ConfigError::Syntax { line, column, message, .. }) => assert!(line >= 1 && column >= 1 && !message.is_empty()),
        Err(e) => panic!("parse_json5 failed with a non-syntax error: {e}"),
    }
    // The same bytes as a damaged pairing store: every salvaged record is filed under its id.
    let salvaged = crate::auth::device::salvage_store(text.as_bytes());
    assert!(salvaged.store.devices.iter().all(|(k, d)| *k == d.device_id));
    assert!(salvaged.store.pending.iter().all(|(k, r)| *k == r.request_id));
    match cf::load(FILE, text, env, &mut MemIncludes, &[]) {
        Ok(c) => {
            assert!(c.source.is_object() && c.resolved.is_object());
            if let Ok(p) = crate::config::resolve_port(None, None, c.gateway.port, None) {
                assert!(p >= 1);
            }
        }
        Err(e) => assert!(!e.one_line().is_empty()),
    }
    // `config.apply` of the text over itself, and `config.patch` of it onto no file.
    let current = Some(text.as_bytes());
    let apply = ConfigWrite { kind: WriteKind::Apply, raw: text.to_string(), base_hash: Some(cf::file_hash(text.as_bytes())) };
    let patch = ConfigWrite { kind: WriteKind::Patch, raw: text.to_string(), base_hash: None };
    for (cur, w) in [(current, &apply), (None, &patch)] {
        if let Ok(new) = cf::plan_write(FILE, cur, w) {
            assert!(cf::parse_json5(FILE, &new).is_ok(), "planned config does not parse: {new}");
            let again = ConfigWrite { kind: WriteKind::Apply, raw: new.clone(), base_hash: Some(cf::file_hash(new.as_bytes())) };
            assert_eq!(
                cf::plan_write(FILE, Some(new.as_bytes()), &again).as_ref(),
                Ok(&new),
                "writing the planned config again changes it"
            );
        }
    }
}

/// What the gateway reads back from its own files on a host (issue 15): a state dir's lock
/// record and an installed systemd unit. Any text parses without a panic, and a unit written
/// from what was read back reads back the same.
/// Secrets operations on file text (issue 16): a `.env` file parsed as dotenv and scanned by
/// the audit, the text as a config the audit walks; values never reach the report.
fn secrets_files(text: &str) {
    use crate::secrets::{audit, dotenv};
    for a in dotenv::parse(text) {
        assert!(!a.name.is_empty() && a.line >= 1);
    }
    let config = crate::config::file::parse_json5("fuzz.json5", text).ok();
    let envs = [audit::EnvFile { path: "/s/.env".into(), text: text.to_string() }];
    let store = [("K".to_string(), "v".to_string())];
    let input =
        audit::Input { config_path: "/s/openclaw.json", config: config.as_ref(), env_files: &envs, store: &store, allow_exec: true };
    let r = audit::audit(&input, &mut |r| if r.id.len() % 2 == 0 { Ok(format!("resolved-{}", r.id)) } else { Err("missing".into()) });
    let json = serde_json::to_string(&r).unwrap_or_default();
    assert!(!json.contains("resolved-"), "a resolved value reached the report");
    let _ = audit::text(&r);
    assert!(matches!(audit::exit_code(&r, true), 0..=2));
    // The text as a `secrets apply` plan: refused, or applied to the text's config (every
    // target then holds its ref) and scrubbed from the text as a `.env`.
    if let Ok(plan) = crate::secrets::plan::parse("plan.json", text.as_bytes()) {
        let base = config.clone().unwrap_or_default();
        let (next, migrated) = crate::secrets::plan::apply_to(&base, &plan);
        for t in &plan.targets {
            // The last target of a path wins.
            let last = plan.targets.iter().rev().find(|o| o.segments == t.segments).unwrap_or(t);
            let at = t.segments.iter().try_fold(&next, |n, s| n.get(s.as_str()));
            assert_eq!(at.and_then(|v| v.get("id")).and_then(|v| v.as_str()), Some(last.secret_ref.id.as_str()));
        }
        let _ = crate::secrets::plan::scrub_env(text, &migrated);
    }
}

fn service_files(text: &str, word: &str) {
    use crate::service::{ServiceSpec, lock::LockRecord, unit};
    if let Some(r) = LockRecord::parse(text.as_bytes()) {
        assert_eq!(LockRecord::parse(r.to_json().as_bytes()), Some(r));
    }
    let installed = unit::parse_systemd_unit(text);
    let spec = ServiceSpec {
        profile: installed.profile.clone().filter(|p| crate::config::valid_profile_name(p)),
        exe: installed.exe.clone().unwrap_or_else(|| format!("/bin/{word}")),
        port: installed.port.unwrap_or(18789),
        config_path: installed.config_path.clone().unwrap_or_else(|| word.to_string()),
        state_dir: installed.state_dir.clone().unwrap_or_default(),
        system: word.len() % 2 == 0,
        user: Some(word.to_string()),
        home: word.to_string(),
    };
    let _ = unit::drift(&installed, &spec);
    let again = unit::parse_systemd_unit(&unit::systemd_unit(&spec));
    // Values with line breaks cannot survive a line-based file; everything else round-trips.
    if ![&spec.exe, &spec.config_path, &spec.state_dir].iter().any(|v| v.contains(['\n', '\r'])) {
        assert_eq!(again.exe.as_deref(), Some(spec.exe.as_str()), "{text:?}");
        assert_eq!(again.port, Some(spec.port));
        assert_eq!(again.config_path.as_deref(), Some(spec.config_path.as_str()), "{text:?}");
        assert_eq!(again.state_dir.as_deref(), Some(spec.state_dir.as_str()), "{text:?}");
    }
    let _ = crate::service::platforms::launchd_plist(&spec);
    let _ = crate::service::platforms::windows_task_xml(&spec);
}
