//! The config / auth / bind / reload / secrets decisions as tables (config-auth-reload §1.3, §2,
//! §3, §4.2–4.8, §5, §6, §7 and the §11 decision tables A–L). Every row names the spec line it
//! checks, in a comment or in the assertion message.
//!
//! Documented deviations of clawgate that these tables take as given (README "Configuration"):
//! * table B rows 3–4: no Tailscale and no container detection — an unconfigured gateway binds
//!   loopback, never `auto`;
//! * §1.3 step 5: unknown keys are kept, not schema errors (a reference config must start us);
//! * §6.1: `gateway.reload.mode` keeps the retired `hot`/`restart` values;
//! * §4.3 step 7: a token-mode gateway without a token uses the token kept in the state dir
//!   (`needs_kept_token`) rather than an ephemeral one;
//! * no config file ⇒ no mode guard (clawgate starts with defaults; README "Running it").

// The tables are tuples, one per row.
#![allow(clippy::type_complexity)]

use crate::common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clawgate_core::auth::ingress::{Attribution, IpNet, RequestFacts, attribute};
use clawgate_core::auth::origin::{OriginAllow, OriginDeny, check_origin};
use clawgate_core::auth::{AuthMode, Secret, trusted_proxy_check};
use clawgate_core::config::file::{
    self as config_file, ConfigError, ConfigWrite, IncludeReader, LoadedConfig, TrustedProxyConfig, WriteKind, WriteRefused, file_hash,
    load, plan_write,
};
use clawgate_core::config::reload::{self, Kind, Plan, classify, diff_paths};
use clawgate_core::config::secrets::{self, SecretError, SecretInput, SecretIo, SecretRef, SecretSource};
use clawgate_core::config::settings::{self, CliInputs, EnvInputs, Inputs, Resolved, ResolvedSecrets, seed_origins};
use clawgate_core::config::{
    BindMode, EXIT_CONFIG, EXIT_FAILURE, INVALID_AUTH, INVALID_BIND, INVALID_PORT, StartupError, fnv1a32, parse_env_port,
    resolve_bind_mode, resolve_bind_plan, resolve_port,
};
use clawgate_core::connection::Phase;
use common::{Gw, Outs, client_params, connect_frame};
use serde_json::{Value, json};

// ---- fakes and helpers ----------------------------------------------------------------------

const CFG: &str = "/cfg/openclaw.json";

/// `$include` files served from memory; `links` maps a path to its "realpath" (symlinks).
#[derive(Default, Clone)]
struct Files {
    files: HashMap<PathBuf, String>,
    links: HashMap<PathBuf, PathBuf>,
    reads: Vec<PathBuf>,
}

impl Files {
    fn with(mut self, path: &str, text: &str) -> Self {
        self.files.insert(PathBuf::from(path), text.to_string());
        self
    }
    fn link(mut self, path: &str, target: &str) -> Self {
        self.links.insert(PathBuf::from(path), PathBuf::from(target));
        self
    }
}

impl IncludeReader for Files {
    fn read(&mut self, path: &Path) -> Result<String, String> {
        self.reads.push(path.to_path_buf());
        self.files.get(path).cloned().ok_or_else(|| "No such file or directory".into())
    }
    fn canonical(&mut self, path: &Path) -> Option<PathBuf> {
        Some(self.links.get(path).cloned().unwrap_or_else(|| path.to_path_buf()))
    }
}

fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load_with(text: &str, env: &[(&str, &str)], files: &mut Files) -> Result<LoadedConfig, ConfigError> {
    let env = env_of(env);
    let lookup = move |n: &str| env.get(n).cloned();
    load(CFG, text, &lookup, files, &[])
}

fn load_ok(text: &str, env: &[(&str, &str)]) -> LoadedConfig {
    load_with(text, env, &mut Files::default()).unwrap_or_else(|e| panic!("config must load: {e}\n{text}"))
}

fn load_err(text: &str) -> ConfigError {
    match load_with(text, &[], &mut Files::default()) {
        Ok(c) => panic!("config must not load: {text}\n{:?}", c.source),
        Err(e) => e,
    }
}

/// SecretRef IO from memory: environment, files with their modes, exec answers.
#[derive(Default)]
struct FakeIo {
    env: HashMap<String, String>,
    files: HashMap<String, (u32, String)>,
    exec: HashMap<String, Result<String, String>>,
    runs: Vec<(String, Vec<String>, String, Duration, usize)>,
}

impl SecretIo for FakeIo {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn read_private_file(&mut self, path: &str, max: usize) -> Result<String, String> {
        // What the shell does: mode check first, then the size bound.
        let (mode, text) = self.files.get(path).ok_or_else(|| format!("{path}: No such file or directory"))?;
        secrets::check_file_mode(path, *mode)?;
        if text.len() > max {
            return Err(format!("{path} is larger than {max} bytes"));
        }
        Ok(text.clone())
    }
    fn run(&mut self, command: &str, args: &[String], stdin: &str, timeout: Duration, max: usize) -> Result<String, String> {
        self.runs.push((command.to_string(), args.to_vec(), stdin.to_string(), timeout, max));
        self.exec.get(command).cloned().unwrap_or_else(|| Err(format!("cannot run {command}: not found")))
    }
}

/// The shell's startup pipeline on fakes: load → resolve the gateway SecretInputs → decide.
/// `env` is the process environment (also the source of `OPENCLAW_GATEWAY_*`).
fn decide(text: Option<&str>, env: &[(&str, &str)], cli: CliInputs) -> Result<Resolved, StartupError> {
    let cfg = text.map(|t| load_with(t, env, &mut Files::default()).map_err(|e| StartupError::config(e.to_string()))).transpose()?;
    let mut io = FakeIo { env: env_of(env), ..Default::default() };
    let secrets = match &cfg {
        Some(c) => {
            let providers = secrets::providers(&c.resolved).map_err(StartupError::failure)?;
            let mut one = |s: Option<&SecretInput>| {
                s.map(|s| secrets::resolve(s, &providers, &mut io))
                    .transpose()
                    .map_err(|e| StartupError::failure(format!("Startup failed: required secrets are unavailable. ({e})")))
            };
            let g = &c.gateway;
            ResolvedSecrets {
                token: one(g.auth_token.as_ref())?,
                password: one(g.auth_password.as_ref())?,
                remote_token: one(g.remote_token.as_ref())?,
                remote_password: one(g.remote_password.as_ref())?,
                api: Default::default(),
                degraded: 0,
            }
        }
        None => ResolvedSecrets::default(),
    };
    let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
    let inputs = Inputs {
        cli,
        env: EnvInputs {
            port: get("OPENCLAW_GATEWAY_PORT"),
            token: get("OPENCLAW_GATEWAY_TOKEN"),
            password: get("OPENCLAW_GATEWAY_PASSWORD"),
            profile: get("OPENCLAW_PROFILE"),
            limits: clawgate_core::limits::LIMIT_VARIABLES.iter().filter_map(|n| get(n).map(|v| (n.to_string(), v))).collect(),
        },
        config: cfg.as_ref(),
        secrets,
        kept_token: None,
        can_bind: Some(|_| true),
        reload: false,
    };
    settings::resolve(&inputs)
}

fn cli() -> CliInputs {
    CliInputs::default()
}

fn cli_with(f: impl FnOnce(&mut CliInputs)) -> CliInputs {
    let mut c = CliInputs::default();
    f(&mut c);
    c
}

fn ok(r: Result<Resolved, StartupError>, row: &str) -> Resolved {
    r.unwrap_or_else(|e| panic!("{row}: expected to start, got exit {}: {}", e.exit_code, e.message))
}

fn err(r: Result<Resolved, StartupError>, row: &str) -> StartupError {
    match r {
        Ok(r) => panic!("{row}: expected a startup failure, got mode {:?} port {}", r.settings.auth.mode, r.port),
        Err(e) => e,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Does a gateway with these settings accept this secret (sent in `auth.<field>`)? A real
/// `connect` on the core (loopback, failures are let out of their delay).
fn accepts(r: &Resolved, field: &str, secret: &str) -> bool {
    let gw = Gw::with_settings(r.settings.clone());
    let mut c = gw.open(gw.t0);
    let mut p = client_params("cli", "cli", None, &["operator.read"]);
    p["auth"] = json!({ field: secret });
    let mut outs = c.text(&connect_frame("c1", p));
    if c.phase() == Phase::ConnectPending {
        let until = c.sock.conn.poll_timeout().expect("a pending connect has a deadline");
        outs.extend(c.advance_to(until));
    }
    outs.response("c1")["ok"] == json!(true)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A config with `gateway.mode: "local"` plus these `gateway` keys.
fn gw_cfg(gateway_keys: &str) -> String {
    format!("{{gateway: {{mode: \"local\", {gateway_keys}}}}}")
}

// ---- A. port resolution (§3.1, table A) -----------------------------------------------------

#[test]
fn table_a_port_resolution() {
    let rows: &[(&str, Option<&str>, Option<&str>, Option<i64>, Option<&str>, u16)] = &[
        (
            "A1 --port beats env and config (§3.1 live 28824/28825/28822, checklist 5)",
            Some("28824"),
            Some("28825"),
            Some(28822),
            None,
            28824,
        ),
        ("A1 --port beats a profile", Some("28824"), None, None, Some("p2440"), 28824),
        ("A1 --port 65535 is the top of the range", Some("65535"), None, None, None, 65535),
        ("A1 --port 1 is the bottom of the range", Some("1"), None, None, None, 1),
        ("A3 env N beats config (§3.1 live: env 28825 ⇒ 28825)", None, Some("28825"), Some(28822), None, 28825),
        ("A3 env host:N (checklist 6: localhost:28825 ⇒ 28825)", None, Some("localhost:28825"), Some(28822), None, 28825),
        ("A3 env host:N with an IPv4 host", None, Some("127.0.0.1:28826"), None, None, 28826),
        ("A3 env [v6]:N", None, Some("[::1]:28827"), Some(28822), None, 28827),
        ("A3 env [v6]:N with a long v6 literal", None, Some("[2001:db8::1]:28828"), None, None, 28828),
        ("A3 env beats a profile", None, Some("28829"), None, Some("p2440"), 28829),
        ("A4 config port (§3.1 live: config only ⇒ 28822)", None, None, Some(28822), None, 28822),
        ("A4 config port beats a profile", None, None, Some(28822), Some("p2440"), 28822),
        ("A5 profile p2440 ⇒ 28821 (checklist 7)", None, None, None, Some("p2440"), 28821),
        ("A5 profile rescue ⇒ 23532 (§3.1 row 4)", None, None, None, Some("rescue"), 23532),
        ("A5 profile foo ⇒ 47223 (§3.1 row 4)", None, None, None, Some("foo"), 47223),
        ("A5 profile dev ⇒ 38556 (§3.1 row 4)", None, None, None, Some("dev"), 38556),
        ("A6 profile default means no profile (§1.2)", None, None, None, Some("default"), 18789),
        ("A6 profile DEFAULT (any case) means no profile (§1.2)", None, None, None, Some("DEFAULT"), 18789),
        ("A6 nothing ⇒ 18789 (§3.1 row 5)", None, None, None, None, 18789),
    ];
    for (row, cli, env, cfg, profile, want) in rows {
        assert_eq!(resolve_port(*cli, *env, *cfg, *profile), Ok(*want), "{row}");
    }
    // Deliberate deviation from §3.1 row 2: the reference ignores an unparsable
    // OPENCLAW_GATEWAY_PORT and silently starts elsewhere; we refuse it, naming the variable
    // (exit 78: a restart cannot fix the environment). A blank value is no value.
    for bad in ["junk", "a:b:28825", "99999", "localhost:0", "localhost:", "[::1]", "localhost:http", "-1", "0"] {
        let e = resolve_port(None, Some(bad), Some(28822), Some("p2440")).unwrap_err();
        assert_eq!((e.exit_code, e.message.clone()), (78, clawgate_core::config::invalid_env_port(bad)), "A3 env {bad:?}");
        assert!(e.message.contains("OPENCLAW_GATEWAY_PORT"), "{}", e.message);
    }
    assert_eq!(resolve_port(None, Some("  "), Some(28822), None), Ok(28822), "A3 blank env is unset");
    // §3.1 row 4: 20000 + FNV-1a-32 mod 40000 (offset 2166136261, prime 16777619).
    assert_eq!(fnv1a32(b""), 2_166_136_261, "§3.1 row 4: FNV offset basis");
    assert_eq!(fnv1a32(b"a"), 0xe40c_292c, "§3.1 row 4: FNV-1a-32 of \"a\"");
    for name in ["p2440", "rescue", "foo", "dev", "x", "my-profile_1"] {
        assert_eq!(u32::from(resolve_port(None, None, None, Some(name)).unwrap()), 20_000 + fnv1a32(name.as_bytes()) % 40_000, "{name}");
    }
    // The env parser on its own (§3.1 row 2 formats).
    for (s, want) in [
        ("28825", Some(28825)),
        (" 28825 ", Some(28825)),
        ("h:1", Some(1)),
        ("[::1]:2", Some(2)),
        ("", None),
        ("+5", None),
        ("5.0", None),
        ("0", None),
        ("65536", None),
    ] {
        assert_eq!(parse_env_port(s), want, "§3.1 row 2: OPENCLAW_GATEWAY_PORT={s:?}");
    }
}

#[test]
fn table_a_invalid_port_flags_exit_1() {
    // §3.1 row 1 / checklist 8: anything but a strict integer 1..=65535 ⇒ the reference's text, exit 1.
    for bad in ["99999", "abc", "0", "-1", "1.5", "", " ", "18789x", "65536", "0x50"] {
        let e = resolve_port(Some(bad), Some("28825"), Some(28822), None).unwrap_err();
        assert_eq!(e.message, INVALID_PORT, "--port {bad:?}");
        assert_eq!(e.message, "Invalid --port. Use a port number from 1 to 65535, for example 18789.");
        assert_eq!(e.exit_code, EXIT_FAILURE, "--port {bad:?} exits 1 (§3.1 row 1)");
    }
}

#[test]
fn table_a_through_the_config_file() {
    // §3.1 row 3 + §4.3 step 1: a config port outside 1..=65535 is a config error (exit 78).
    for bad in ["0", "65536", "\"abc\"", "1.5", "-3"] {
        let e = err(decide(Some(&gw_cfg(&format!("port: {bad}"))), &[], cli()), "A config port");
        assert_eq!(e.exit_code, EXIT_CONFIG, "gateway.port: {bad} exits 78 (§4.3 step 1)");
        assert!(e.message.contains("gateway.port"), "the error names the key path: {}", e.message);
    }
    // Precedence end to end: --port > env > config.
    let text = gw_cfg("port: 28822");
    let env = [("OPENCLAW_GATEWAY_PORT", "localhost:28825")];
    assert_eq!(ok(decide(Some(&text), &env, cli()), "A3").port, 28825, "env host:N beats config (checklist 6)");
    assert_eq!(ok(decide(Some(&text), &env, cli_with(|c| c.port = Some("28824".into()))), "A1").port, 28824, "checklist 5");
    let e = err(decide(Some(&text), &[("OPENCLAW_GATEWAY_PORT", "nope")], cli()), "A3 unparsable env");
    assert_eq!(e.exit_code, 78, "an unparsable OPENCLAW_GATEWAY_PORT is refused, naming the variable: {}", e.message);
    assert!(e.message.starts_with("Invalid OPENCLAW_GATEWAY_PORT \"nope\"."), "{}", e.message);
    // host:N sets the port only; a host that is not where we listen is pointed out.
    let r = ok(decide(Some(&text), &[("OPENCLAW_GATEWAY_PORT", "10.1.1.1:28825")], cli()), "A3 host:N");
    assert_eq!(r.port, 28825);
    assert!(r.warnings.iter().any(|w| w.contains("the host part \"10.1.1.1\" is ignored")), "{:?}", r.warnings);
    let r = ok(decide(Some(&text), &[("OPENCLAW_GATEWAY_PORT", "127.0.0.1:28825")], cli()), "A3 loopback host:N");
    assert!(!r.warnings.iter().any(|w| w.contains("OPENCLAW_GATEWAY_PORT")), "a loopback host matches a loopback bind: {:?}", r.warnings);
    assert_eq!(ok(decide(Some(LOCAL_CFG), &[("OPENCLAW_PROFILE", "p2440")], cli()), "A5").port, 28821, "checklist 7");
}

const LOCAL_CFG: &str = r#"{gateway: {mode: "local"}}"#;

#[test]
fn control_ui_root_and_base_path_must_be_strings() {
    for (key, bad) in [("root", "42"), ("root", "[\"/srv/ui\"]"), ("basePath", "true")] {
        let e = err(decide(Some(&gw_cfg(&format!("controlUi: {{{key}: {bad}}}"))), &[], cli()), "controlUi type");
        assert_eq!(e.exit_code, EXIT_CONFIG, "gateway.controlUi.{key}: {bad}");
        assert!(e.message.contains(&format!("gateway.controlUi.{key}")), "the error names the key path: {}", e.message);
    }
    ok(decide(Some(&gw_cfg(r#"controlUi: {root: "/srv/ui", basePath: "/openclaw"}"#)), &[], cli()), "strings are fine");
}

#[test]
fn table_a_invalid_profile_name_uses_the_default_port() {
    // Table A row 6: profile "none/`default`/invalid" ⇒ 18789 (a profile name must match
    // ^[a-z0-9][a-z0-9_-]{0,63}$, §1.2).
    for bad in ["Bad Name!", "-x", "a/b", &"p".repeat(65)] {
        assert_eq!(resolve_port(None, None, None, Some(bad)), Ok(18789), "table A row 6: invalid profile {bad:?}");
    }
}

// ---- B. bind mode (§3.2, table B) -----------------------------------------------------------

#[test]
fn table_b_bind_mode() {
    let rows: &[(&str, Option<&str>, Option<&str>, BindMode)] = &[
        ("B1 --bind beats config", Some("lan"), Some("loopback"), BindMode::Lan),
        ("B1 --bind loopback", Some("loopback"), Some("lan"), BindMode::Loopback),
        ("B1 --bind tailnet", Some("tailnet"), None, BindMode::Tailnet),
        ("B1 --bind auto", Some("auto"), None, BindMode::Auto),
        ("B1 --bind custom", Some("custom"), None, BindMode::Custom),
        ("B3 gateway.bind", None, Some("lan"), BindMode::Lan),
        ("B3 gateway.bind custom", None, Some("custom"), BindMode::Custom),
        // Rows 4–5 (Tailscale ⇒ loopback, container ⇒ auto): documented deviation, always loopback.
        ("B6 nothing ⇒ loopback (no container switch: documented deviation)", None, None, BindMode::Loopback),
    ];
    for (row, cli, cfg, want) in rows {
        assert_eq!(resolve_bind_mode(*cli, *cfg), Ok(*want), "{row}");
    }
    // B2 / checklist 9: an invalid flag ⇒ the reference's text, exit 1.
    for bad in ["bogus", "LAN", "", "0.0.0.0"] {
        let e = resolve_bind_mode(Some(bad), Some("lan")).unwrap_err();
        assert_eq!(e.message, INVALID_BIND, "--bind {bad:?}");
        assert_eq!(e.message, "Invalid --bind. Use \"loopback\", \"lan\", \"tailnet\", \"auto\", or \"custom\".");
        assert_eq!(e.exit_code, EXIT_FAILURE, "--bind {bad:?} exits 1 (§3.2 step 1)");
    }
    // An invalid gateway.bind never gets here: the loader refuses it (§2, exit 78).
    let e = err(decide(Some(&gw_cfg("bind: \"bogus\"")), &[], cli()), "B config");
    assert_eq!(e.exit_code, EXIT_CONFIG);
    assert!(e.message.contains("gateway.bind"), "{}", e.message);
    // And through the whole decision: flag > config > default.
    let r = ok(decide(Some(&gw_cfg("bind: \"loopback\"")), &[], cli_with(|c| c.bind = Some("tailnet".into()))), "B1");
    assert_eq!(r.plan.mode, BindMode::Tailnet);
    assert_eq!(ok(decide(Some(LOCAL_CFG), &[], cli()), "B6").plan.mode, BindMode::Loopback);
}

// ---- C. bind plans (§3.3, §3.4, table C) ----------------------------------------------------

#[test]
fn table_c_bind_plans() {
    let v4lo = ip("127.0.0.1");
    let v6lo = ip("::1");
    let any = ip("0.0.0.0");
    let loopback_listeners = vec![(v4lo, false), (v6lo, true)];
    let yes = |_: IpAddr| true;
    let no = |_: IpAddr| false;
    // (row, mode, custom host, can_bind answers, host, listeners (addr, optional))
    let rows: Vec<(&str, BindMode, Option<&str>, bool, IpAddr, Vec<(IpAddr, bool)>)> = vec![
        ("C loopback ⇒ 127.0.0.1 + [::1] (checklist 10)", BindMode::Loopback, None, true, v4lo, loopback_listeners.clone()),
        ("C lan ⇒ 0.0.0.0 only, no :: (checklist 11)", BindMode::Lan, None, true, any, vec![(any, false)]),
        (
            "C tailnet without a Tailscale address ⇒ 127.0.0.1 + ::1 (checklist 12)",
            BindMode::Tailnet,
            None,
            true,
            v4lo,
            loopback_listeners.clone(),
        ),
        ("C auto, can_bind(127.0.0.1) ⇒ 127.0.0.1", BindMode::Auto, None, true, v4lo, loopback_listeners.clone()),
        ("C auto, 127.0.0.1 not bindable ⇒ 0.0.0.0", BindMode::Auto, None, false, any, vec![(any, false)]),
        (
            "C custom 192.0.2.2 ⇒ [192.0.2.2, 127.0.0.1], both required (checklist 13)",
            BindMode::Custom,
            Some("192.0.2.2"),
            true,
            ip("192.0.2.2"),
            vec![(ip("192.0.2.2"), false), (v4lo, false)],
        ),
        (
            "C custom host is trimmed",
            BindMode::Custom,
            Some(" 192.0.2.2 "),
            true,
            ip("192.0.2.2"),
            vec![(ip("192.0.2.2"), false), (v4lo, false)],
        ),
        ("C custom 0.0.0.0 ⇒ [0.0.0.0] only (checklist 13)", BindMode::Custom, Some("0.0.0.0"), true, any, vec![(any, false)]),
        (
            "C custom 127.0.0.1 ⇒ 127.0.0.1 + ::1 (checklist 13)",
            BindMode::Custom,
            Some("127.0.0.1"),
            true,
            v4lo,
            loopback_listeners.clone(),
        ),
    ];
    for (row, mode, custom, bindable, host, listeners) in rows {
        let plan = if bindable { resolve_bind_plan(mode, custom, yes) } else { resolve_bind_plan(mode, custom, no) };
        let plan = plan.unwrap_or_else(|e| panic!("{row}: {e}"));
        assert_eq!(plan.mode, mode, "{row}");
        assert_eq!(plan.host, host, "{row}: bind host");
        assert_eq!(plan.listeners, listeners, "{row}: listen sockets");
    }
    // §3.4 errors, in order; all exit 1.
    let errors: &[(&str, Option<&str>, bool, &str)] = &[
        ("§3.4 row 3 / checklist 14: no customBindHost", None, true, "gateway.bind=custom requires gateway.customBindHost"),
        ("§3.4 row 3: blank customBindHost", Some("   "), true, "gateway.bind=custom requires gateway.customBindHost"),
        (
            "§3.4 row 4 / checklist 15: not canonical IPv4",
            Some("10.999.1.1"),
            true,
            "gateway.bind=custom requires a valid IPv4 customBindHost (got 10.999.1.1)",
        ),
        (
            "§3.4 row 4: a host name is not an IPv4",
            Some("gateway.local"),
            true,
            "gateway.bind=custom requires a valid IPv4 customBindHost (got gateway.local)",
        ),
        ("§3.4 row 4: IPv6 is not an IPv4", Some("::1"), true, "gateway.bind=custom requires a valid IPv4 customBindHost (got ::1)"),
        (
            "§3.4 row 4: leading zeros are not canonical",
            Some("010.0.0.1"),
            true,
            "gateway.bind=custom requires a valid IPv4 customBindHost (got 010.0.0.1)",
        ),
        (
            "§3.4 row 5 / checklist 15: not a local address",
            Some("203.0.113.9"),
            false,
            "gateway bind=custom requested 203.0.113.9 but resolved 0.0.0.0; refusing fallback",
        ),
    ];
    for (row, custom, bindable, want) in errors {
        let e =
            if *bindable { resolve_bind_plan(BindMode::Custom, *custom, yes) } else { resolve_bind_plan(BindMode::Custom, *custom, no) }
                .unwrap_err();
        // The reference's message first, then the fix (naming the flag as well as the key).
        assert_eq!(first_line(&e.message), *want, "{row}");
        assert!(e.message.lines().nth(1).is_some_and(|l| l.starts_with("Fix: ")), "{row}: {}", e.message);
        assert_eq!(e.exit_code, EXIT_FAILURE, "{row}: exit 1 (§3.4)");
    }
    // Custom host rules through the whole decision: flag host beats config host.
    let text = gw_cfg(r#"bind: "custom", customBindHost: "10.999.1.1", auth: {token: "s3cret-token"}"#);
    let e = err(decide(Some(&text), &[], cli()), "config custom host");
    assert_eq!(first_line(&e.message), "gateway.bind=custom requires a valid IPv4 customBindHost (got 10.999.1.1)");
    let r = ok(decide(Some(&text), &[], cli_with(|c| c.custom_bind_host = Some("192.0.2.2".into()))), "flag custom host");
    assert_eq!(r.plan.host, ip("192.0.2.2"));
    let e = err(decide(Some(&gw_cfg(r#"bind: "custom""#)), &[], cli()), "custom without host");
    assert_eq!((first_line(&e.message), e.exit_code), ("gateway.bind=custom requires gateway.customBindHost", 1));
    assert!(e.message.contains("--custom-bind-host"), "{}", e.message);
}

// ---- D. auth resolution (§4.2 "Live confirmation", table D) --------------------------------

#[test]
fn table_d_auth_resolution_live_rows() {
    // Every row of §4.2's live table: (row, config, env, cli, mode, accepted, refused).
    struct Row<'a> {
        row: &'a str,
        config: String,
        env: Vec<(&'a str, &'a str)>,
        cli: CliInputs,
        mode: AuthMode,
        accepted: (&'a str, &'a str),
        refused: Vec<&'a str>,
    }
    let rows = vec![
        Row {
            row: "§4.2 row 1: config token cfgtoken + env token envtoken ⇒ cfgtoken only",
            config: gw_cfg(r#"auth: {token: "cfgtoken"}"#),
            env: vec![("OPENCLAW_GATEWAY_TOKEN", "envtoken")],
            cli: cli(),
            mode: AuthMode::Token,
            accepted: ("token", "cfgtoken"),
            refused: vec!["envtoken"],
        },
        Row {
            row: "§4.2 row 2: config token + env token + --token clitoken ⇒ clitoken only (checklist 18)",
            config: gw_cfg(r#"auth: {token: "cfgtoken"}"#),
            env: vec![("OPENCLAW_GATEWAY_TOKEN", "envtoken")],
            cli: cli_with(|c| c.token = Some("clitoken".into())),
            mode: AuthMode::Token,
            accepted: ("token", "clitoken"),
            refused: vec!["cfgtoken", "envtoken"],
        },
        Row {
            row: "§4.2 row 3: env SecretRef MYTOK=reftoken beats OPENCLAW_GATEWAY_TOKEN (checklist 19)",
            config: gw_cfg(r#"auth: {token: {source: "env", provider: "default", id: "MYTOK"}}"#),
            env: vec![("MYTOK", "reftoken"), ("OPENCLAW_GATEWAY_TOKEN", "envtoken")],
            cli: cli(),
            mode: AuthMode::Token,
            accepted: ("token", "reftoken"),
            refused: vec!["envtoken"],
        },
        Row {
            row: "§4.2 row 4: \"${MYTOK}\" with MYTOK=subtoken ⇒ subtoken (checklist 20)",
            config: gw_cfg(r#"auth: {token: "${MYTOK}"}"#),
            env: vec![("MYTOK", "subtoken")],
            cli: cli(),
            mode: AuthMode::Token,
            accepted: ("token", "subtoken"),
            refused: vec!["${MYTOK}"],
        },
        Row {
            row: "§4.2 row 5: only gateway.remote.token remtoken ⇒ remtoken (checklist 21)",
            config: gw_cfg(r#"remote: {token: "remtoken"}"#),
            env: vec![],
            cli: cli(),
            mode: AuthMode::Token,
            accepted: ("token", "remtoken"),
            refused: vec!["other"],
        },
        Row {
            row: "§4.2 row 5: only gateway.remote.token, also on --bind lan (passes the no-auth guard)",
            config: gw_cfg(r#"remote: {token: "remtoken"}"#),
            env: vec![],
            cli: cli_with(|c| c.bind = Some("lan".into())),
            mode: AuthMode::Token,
            accepted: ("token", "remtoken"),
            refused: vec!["other"],
        },
        Row {
            row: "§4.2 row 6: env token et + env password ep, no mode ⇒ password mode, ep (checklist 22)",
            config: LOCAL_CFG.to_string(),
            env: vec![("OPENCLAW_GATEWAY_TOKEN", "et"), ("OPENCLAW_GATEWAY_PASSWORD", "ep")],
            cli: cli(),
            mode: AuthMode::Password,
            accepted: ("password", "ep"),
            refused: vec!["et"],
        },
        Row {
            row: "§4.2 row 7: config token ct (no mode) + env password ep ⇒ password mode, ep; ct rejected (checklist 23)",
            config: gw_cfg(r#"auth: {token: "ct"}"#),
            env: vec![("OPENCLAW_GATEWAY_PASSWORD", "ep")],
            cli: cli(),
            mode: AuthMode::Password,
            accepted: ("password", "ep"),
            refused: vec!["ct"],
        },
        Row {
            row: "§4.2 row 8: --password clipw only ⇒ password mode, clipw",
            config: LOCAL_CFG.to_string(),
            env: vec![],
            cli: cli_with(|c| c.password = Some("clipw".into())),
            mode: AuthMode::Password,
            accepted: ("password", "clipw"),
            refused: vec!["other"],
        },
    ];
    for r in rows {
        let res = ok(decide(Some(&r.config), &r.env, r.cli.clone()), r.row);
        assert_eq!(res.settings.auth.mode, r.mode, "{}: mode", r.row);
        assert!(!res.needs_kept_token, "{}: an explicit secret resolved", r.row);
        assert!(accepts(&res, r.accepted.0, r.accepted.1), "{}: {} must be accepted", r.row, r.accepted.1);
        // §4.1: token mode takes the secret in auth.token or auth.password; password mode too (checklist 24).
        let other_field = if r.accepted.0 == "token" { "password" } else { "token" };
        assert!(accepts(&res, other_field, r.accepted.1), "{}: {} in auth.{other_field} (§4.1, checklist 24)", r.row, r.accepted.1);
        for bad in &r.refused {
            assert!(!accepts(&res, "token", bad), "{}: {bad} must be refused", r.row);
            assert!(!accepts(&res, "password", bad), "{}: {bad} must be refused", r.row);
        }
    }
}

#[test]
fn table_d_value_and_mode_rules() {
    // Table D: blank strings are absent (§4.2) — a blank config token falls through to env.
    let r = ok(decide(Some(&gw_cfg(r#"auth: {token: "   "}"#)), &[("OPENCLAW_GATEWAY_TOKEN", "envtoken")], cli()), "D blank");
    assert_eq!(r.settings.auth.token.as_ref().map(Secret::expose), Some("envtoken"), "table D: blank config token is absent");
    // Password order: --password > config > env > remote.password.
    let text = gw_cfg(r#"auth: {password: "cfgpw"}, remote: {password: "rempw"}"#);
    let env = [("OPENCLAW_GATEWAY_PASSWORD", "envpw")];
    let pw = |r: &Resolved| r.settings.auth.password.as_ref().map(|s| s.expose().to_string());
    assert_eq!(pw(&ok(decide(Some(&text), &env, cli_with(|c| c.password = Some("clipw".into()))), "D pw")), Some("clipw".into()));
    assert_eq!(pw(&ok(decide(Some(&text), &env, cli()), "D pw")), Some("cfgpw".into()));
    let text = gw_cfg(r#"remote: {password: "rempw"}"#);
    assert_eq!(pw(&ok(decide(Some(&text), &env, cli()), "D pw")), Some("envpw".into()));
    let r = ok(decide(Some(&text), &[], cli()), "D remote password");
    assert_eq!((r.settings.auth.mode, pw(&r)), (AuthMode::Password, Some("rempw".into())), "table D: remote.password is the last fallback");
    // Mode: --auth > gateway.auth.mode > password-if-password > token.
    let text = gw_cfg(r#"auth: {mode: "token", token: "tok", password: "pw"}"#);
    assert_eq!(ok(decide(Some(&text), &[], cli()), "D mode").settings.auth.mode, AuthMode::Token, "config mode wins");
    let r = ok(decide(Some(&text), &[], cli_with(|c| c.auth = Some("password".into()))), "D --auth");
    assert_eq!(r.settings.auth.mode, AuthMode::Password, "--auth beats gateway.auth.mode");
    assert!(accepts(&r, "password", "pw") && !accepts(&r, "password", "tok"));
    // Nothing resolved ⇒ token mode, the kept token is needed (§4.3 step 7, documented variant).
    let r = ok(decide(Some(LOCAL_CFG), &[], cli()), "D nothing");
    assert_eq!((r.settings.auth.mode, r.needs_kept_token), (AuthMode::Token, true), "§4.3 step 7");
    let mut inputs = Inputs { kept_token: Some(Secret::new("kept-token-0123")), can_bind: Some(|_| true), ..Default::default() };
    let cfg = load_ok(LOCAL_CFG, &[]);
    inputs.config = Some(&cfg);
    let r = settings::resolve(&inputs).unwrap();
    assert!(!r.needs_kept_token);
    assert!(accepts(&r, "token", "kept-token-0123"), "§4.3 step 7: the kept token authenticates");
    // An invalid --auth flag (§8.2 bad flags row), exit 1.
    let e = err(decide(Some(LOCAL_CFG), &[], cli_with(|c| c.auth = Some("bogus".into()))), "D --auth bogus");
    assert_eq!((e.message.as_str(), e.exit_code), (INVALID_AUTH, EXIT_FAILURE));
    // Mode none accepts the connect without a secret (§4.4 step 5).
    let r = ok(decide(Some(&gw_cfg(r#"auth: {mode: "none"}"#)), &[], cli()), "D none");
    assert_eq!(r.settings.auth.mode, AuthMode::None);
}

// ---- E. startup gates (§4.3, table E) ------------------------------------------------------

#[test]
fn table_e_password_mode_without_password_exits_78() {
    // §4.3 step 3 / checklist 26.
    for (row, text, c) in [
        ("config mode password", gw_cfg(r#"auth: {mode: "password"}"#), cli()),
        ("--auth password", LOCAL_CFG.to_string(), cli_with(|c| c.auth = Some("password".into()))),
        // Table E row 2 comes before row 3: on lan the password message wins.
        (
            "--auth password --bind lan",
            LOCAL_CFG.to_string(),
            cli_with(|c| {
                c.auth = Some("password".into());
                c.bind = Some("lan".into());
            }),
        ),
    ] {
        let e = err(decide(Some(&text), &[], c), row);
        assert_eq!(e.exit_code, EXIT_CONFIG, "{row}");
        assert_eq!(first_line(&e.message), "Gateway auth is set to password, but no password is configured.", "{row}");
        assert!(
            e.message.contains("Set gateway.auth.password (or OPENCLAW_GATEWAY_PASSWORD), or pass --password."),
            "{row}: {}",
            e.message
        );
    }
}

#[test]
fn table_e_non_loopback_without_secret_exits_78() {
    // §4.3 step 4 / table E row 3: first line exactly `Refusing to bind gateway to <mode> without auth.`
    let cases: Vec<(&str, String, CliInputs, &str)> = vec![
        ("checklist 1: --bind lan, nothing configured", LOCAL_CFG.into(), cli_with(|c| c.bind = Some("lan".into())), "lan"),
        ("gateway.bind lan in config", gw_cfg(r#"bind: "lan""#), cli(), "lan"),
        (
            "checklist 3: --auth none --bind lan",
            LOCAL_CFG.into(),
            cli_with(|c| {
                c.auth = Some("none".into());
                c.bind = Some("lan".into());
            }),
            "lan",
        ),
        ("config auth none on lan", gw_cfg(r#"bind: "lan", auth: {mode: "none"}"#), cli(), "lan"),
        ("checklist 4: custom 192.0.2.2 without auth", gw_cfg(r#"bind: "custom", customBindHost: "192.0.2.2""#), cli(), "custom"),
        ("custom 0.0.0.0 without auth", gw_cfg(r#"bind: "custom", customBindHost: "0.0.0.0""#), cli(), "custom"),
        (
            "none mode with a token still has no shared secret",
            gw_cfg(r#"bind: "lan", auth: {mode: "none", token: "abcdef123456"}"#),
            cli(),
            "lan",
        ),
    ];
    for (row, text, c, mode) in cases {
        let e = err(decide(Some(&text), &[], c), row);
        assert_eq!(e.exit_code, EXIT_CONFIG, "{row}: exit 78");
        assert_eq!(first_line(&e.message), format!("Refusing to bind gateway to {mode} without auth."), "{row}");
    }
    // The guard passes with a shared secret for the mode (token, password, env token) and on loopback.
    for (row, text, env) in [
        ("lan + config token", gw_cfg(r#"bind: "lan", auth: {token: "abcdef123456"}"#), vec![]),
        ("lan + config password", gw_cfg(r#"bind: "lan", auth: {password: "pw-123456"}"#), vec![]),
        ("lan + OPENCLAW_GATEWAY_TOKEN", gw_cfg(r#"bind: "lan""#), vec![("OPENCLAW_GATEWAY_TOKEN", "envtok")]),
        ("custom 192.0.2.2 + token", gw_cfg(r#"bind: "custom", customBindHost: "192.0.2.2", auth: {token: "abcdef123456"}"#), vec![]),
        ("loopback + auth none", gw_cfg(r#"auth: {mode: "none"}"#), vec![]),
        ("custom 127.0.0.1 is loopback: no secret needed", gw_cfg(r#"bind: "custom", customBindHost: "127.0.0.1""#), vec![]),
    ] {
        ok(decide(Some(&text), &env, cli()), row);
    }
}

#[test]
fn table_e_token_and_password_without_mode_exit_1() {
    // §4.3 step 5 / checklist 25: config only (env does not count).
    let want = "Invalid config: gateway.auth.token and gateway.auth.password are both configured, but gateway.auth.mode is unset. Set gateway.auth.mode to token or password.";
    let e = err(decide(Some(&gw_cfg(r#"auth: {token: "t-123456", password: "p-123456"}"#)), &[], cli()), "both configured");
    assert_eq!((e.message.as_str(), e.exit_code), (want, EXIT_FAILURE), "§4.3 step 5");
    // With a mode set, or with one of them from the environment, it starts (§10.3).
    ok(decide(Some(&gw_cfg(r#"auth: {mode: "token", token: "t-123456", password: "p-123456"}"#)), &[], cli()), "mode set");
    let r = ok(decide(Some(&gw_cfg(r#"auth: {token: "t-123456"}"#)), &[("OPENCLAW_GATEWAY_PASSWORD", "p-123456")], cli()), "env pw");
    assert_eq!(r.settings.auth.mode, AuthMode::Password, "§10.3: env password silently wins");
}

#[test]
fn table_e_weak_placeholder_and_sentinel_secrets_are_refused() {
    // §4.3 step 8: literal undefined/null and the published placeholders (exit 1).
    let weak = "Invalid config: gateway auth token is blank, a published example placeholder, or the literal string undefined/null.";
    for (field, value) in [
        ("token", "undefined"),
        ("token", "null"),
        ("token", "change-me-to-a-long-random-token"),
        ("token", "change-me-now"),
        ("password", "change-me-to-a-strong-password"),
    ] {
        let mode = if field == "token" { "token" } else { "password" };
        let text = gw_cfg(&format!(r#"auth: {{mode: "{mode}", {field}: "{value}"}}"#));
        let e = err(decide(Some(&text), &[], cli()), &format!("§4.3 step 8 {field}={value}"));
        assert!(e.message.starts_with(weak), "{field}={value}: {}", e.message);
        assert_eq!(e.exit_code, EXIT_FAILURE, "{field}={value}: table E row 7, exit 1");
        // The same values from a flag.
        let c = if field == "token" { cli_with(|c| c.token = Some(value.into())) } else { cli_with(|c| c.password = Some(value.into())) };
        assert!(err(decide(Some(LOCAL_CFG), &[], c), "flag").message.starts_with(weak), "--{field} {value}");
    }
    // §4.3 step 8: redaction sentinels (trimmed, whole value).
    let sentinels = [
        "__OPENCLAW_REDACTED__",
        "REDACTED",
        "***",
        "[redacted]",
        "[REDACTED]",
        "<redacted>",
        "xoxb-REDACTED",
        "xapp-REDACTED",
        "[REDACTED_PRIVATE_KEY]",
        "[REDACTED CREDENTIAL]",
    ];
    for s in sentinels {
        for (field, mode) in [("token", "token"), ("password", "password")] {
            let text = gw_cfg(&format!(r#"auth: {{mode: "{mode}", {field}: "{s}"}}"#));
            let e = err(decide(Some(&text), &[], cli()), &format!("sentinel {field}={s}"));
            assert!(
                e.message.starts_with(&format!("Gateway auth {field} is a known redaction sentinel, not a credential.")),
                "§4.3 step 8: {field}={s:?}: {}",
                e.message
            );
            assert_eq!(e.exit_code, EXIT_FAILURE, "table E row 7: exit 1");
        }
        // Padded with spaces: still the sentinel (trimmed).
        let e = err(decide(Some(&gw_cfg(&format!(r#"auth: {{mode: "token", token: "  {s} "}}"#))), &[], cli()), "padded sentinel");
        assert!(e.message.starts_with("Gateway auth token is a known redaction sentinel"), "padded {s:?}: {}", e.message);
    }
    // A sentinel inside a longer value is a normal secret.
    ok(decide(Some(&gw_cfg(r#"auth: {mode: "token", token: "REDACTED-but-real-1234"}"#)), &[], cli()), "not a sentinel");
}

#[test]
fn table_e_mode_guard() {
    // §4.3 step 2 / checklist 29–30 (table E row 1, exit 78); `--allow-unconfigured` skips it.
    let remote = "Gateway start blocked: set gateway.mode=local (current: remote) or pass --allow-unconfigured.";
    let e = err(decide(Some(r#"{gateway: {mode: "remote"}}"#), &[], cli()), "mode remote");
    assert_eq!((e.message.as_str(), e.exit_code), (remote, EXIT_CONFIG), "checklist 29");
    for text in [r#"{gateway: {port: 28822}}"#, "{}", r#"{agents: {}}"#] {
        let e = err(decide(Some(text), &[], cli()), "mode missing");
        assert_eq!(e.exit_code, EXIT_CONFIG, "checklist 30: {text}");
        assert!(
            e.message.starts_with("Gateway start blocked: existing config is missing gateway.mode."),
            "checklist 30: {text}: {}",
            e.message
        );
        assert!(e.message.contains("--allow-unconfigured"), "{}", e.message);
    }
    let allow = cli_with(|c| c.allow_unconfigured = true);
    ok(decide(Some(r#"{gateway: {mode: "remote"}}"#), &[], allow.clone()), "§4.3 step 2: --allow-unconfigured skips mode remote");
    ok(decide(Some("{}"), &[], allow), "§4.3 step 2: --allow-unconfigured skips mode missing");
    ok(decide(Some(LOCAL_CFG), &[], cli()), "mode local passes");
    // Table E row 1 comes first: the mode guard beats the other gates (e.g. lan without auth).
    let e = err(decide(Some(r#"{gateway: {mode: "remote", bind: "lan"}}"#), &[], cli()), "mode guard first");
    assert_eq!(e.message, remote, "table E: mode guard is row 1");
    // Documented: no config file ⇒ no guard (clawgate starts with defaults).
    ok(decide(None, &[], cli()), "no config file");
}

#[test]
fn table_e_flag_value_checks_come_before_the_mode_guard() {
    // §4.3 step 1 precedes step 2: `--port abc` with a `mode: remote` config fails on the flag (exit 1).
    let e = err(decide(Some(r#"{gateway: {mode: "remote"}}"#), &[], cli_with(|c| c.port = Some("abc".into()))), "§4.3 order");
    assert_eq!((e.message.as_str(), e.exit_code), (INVALID_PORT, EXIT_FAILURE), "§4.3 step 1 (flag values) before step 2 (mode guard)");
}

// ---- F. security assertion (§4.3 step 9, table F) ------------------------------------------

#[test]
fn table_f_trusted_proxy_rows() {
    let tp_ok = r#"trustedProxy: {userHeader: "x-forwarded-user"}"#;
    let rows: Vec<(&str, String, Vec<(&str, &str)>, &str, i32)> = vec![
        (
            "F row 4 / checklist 51: no trustedProxy block",
            gw_cfg(r#"trustedProxies: ["127.0.0.1"], auth: {mode: "trusted-proxy"}"#),
            vec![],
            "gateway auth mode is trusted-proxy, but no trustedProxy config was provided (set gateway.auth.trustedProxy)",
            EXIT_FAILURE,
        ),
        (
            "F row 5: blank userHeader",
            gw_cfg(r#"trustedProxies: ["127.0.0.1"], auth: {mode: "trusted-proxy", trustedProxy: {userHeader: "  "}}"#),
            vec![],
            "gateway auth mode is trusted-proxy, but trustedProxy.userHeader is empty (set gateway.auth.trustedProxy.userHeader)",
            EXIT_FAILURE,
        ),
        (
            "F row 5: missing userHeader",
            gw_cfg(r#"trustedProxies: ["127.0.0.1"], auth: {mode: "trusted-proxy", trustedProxy: {}}"#),
            vec![],
            "gateway auth mode is trusted-proxy, but trustedProxy.userHeader is empty (set gateway.auth.trustedProxy.userHeader)",
            EXIT_FAILURE,
        ),
        (
            "F row 6 / checklist 52: a config token too",
            gw_cfg(&format!(r#"trustedProxies: ["127.0.0.1"], auth: {{mode: "trusted-proxy", token: "abcdef123456", {tp_ok}}}"#)),
            vec![],
            "gateway auth mode is trusted-proxy, but a shared token is also configured; remove gateway.auth.token / OPENCLAW_GATEWAY_TOKEN because trusted-proxy and token auth are mutually exclusive",
            EXIT_FAILURE,
        ),
        (
            "F row 6 / §4.7: OPENCLAW_GATEWAY_TOKEN counts as a token",
            gw_cfg(&format!(r#"trustedProxies: ["127.0.0.1"], auth: {{mode: "trusted-proxy", {tp_ok}}}"#)),
            vec![("OPENCLAW_GATEWAY_TOKEN", "envtoken")],
            "gateway auth mode is trusted-proxy, but a shared token is also configured; remove gateway.auth.token / OPENCLAW_GATEWAY_TOKEN because trusted-proxy and token auth are mutually exclusive",
            EXIT_FAILURE,
        ),
        (
            "F row 12 / checklist 50: no trustedProxies",
            gw_cfg(&format!(r#"auth: {{mode: "trusted-proxy", {tp_ok}}}"#)),
            vec![],
            "gateway auth mode=trusted-proxy requires gateway.trustedProxies to be configured with at least one proxy IP",
            EXIT_CONFIG,
        ),
        (
            "F row 12: an empty trustedProxies list",
            gw_cfg(&format!(r#"trustedProxies: [], auth: {{mode: "trusted-proxy", {tp_ok}}}"#)),
            vec![],
            "gateway auth mode=trusted-proxy requires gateway.trustedProxies to be configured with at least one proxy IP",
            EXIT_CONFIG,
        ),
        (
            "F rows are ordered: row 5 (blank userHeader) before row 12 (no proxies)",
            gw_cfg(r#"auth: {mode: "trusted-proxy", trustedProxy: {userHeader: ""}}"#),
            vec![],
            "gateway auth mode is trusted-proxy, but trustedProxy.userHeader is empty (set gateway.auth.trustedProxy.userHeader)",
            EXIT_FAILURE,
        ),
        (
            "F rows are ordered: row 6 (token) before row 12 (no proxies)",
            gw_cfg(&format!(r#"auth: {{mode: "trusted-proxy", token: "abcdef123456", {tp_ok}}}"#)),
            vec![],
            "gateway auth mode is trusted-proxy, but a shared token is also configured; remove gateway.auth.token / OPENCLAW_GATEWAY_TOKEN because trusted-proxy and token auth are mutually exclusive",
            EXIT_FAILURE,
        ),
    ];
    for (row, text, env, want, code) in rows {
        let e = err(decide(Some(&text), &env, cli()), row);
        assert_eq!(e.message, want, "{row}");
        assert_eq!(e.exit_code, code, "{row}: exit code (table M)");
    }
    // A complete trusted-proxy config starts, with no kept token, and on lan too (F row 10 exempts it).
    let text = gw_cfg(&format!(r#"trustedProxies: ["10.0.0.0/8"], auth: {{mode: "trusted-proxy", {tp_ok}}}"#));
    let r = ok(decide(Some(&text), &[], cli()), "trusted-proxy ok");
    assert_eq!((r.settings.auth.mode, r.needs_kept_token), (AuthMode::TrustedProxy, false));
    assert_eq!(r.settings.trusted_proxy.as_ref().map(|t| t.user_header.as_str()), Some("x-forwarded-user"));
    ok(decide(Some(&text), &[], cli_with(|c| c.bind = Some("lan".into()))), "F row 10: trusted-proxy may bind lan without a secret");
}

#[test]
fn table_f_row_11_fires_on_a_hot_reload_with_explicitly_empty_origins() {
    // §5.2 [L]: on a LAN gateway a hot edit to `allowedOrigins: []` is refused (the old list stays);
    // a reload whose config leaves the key out keeps the runtime seeding (otherwise every hot edit
    // to a seeded LAN gateway would fail).
    let reload = |text: &str| {
        let cfg = load_ok(text, &[]);
        let inputs = Inputs {
            cli: cli_with(|c| {
                c.bind = Some("lan".into());
                c.port = Some("28821".into());
                c.token = Some("abcdef123456".into());
            }),
            config: Some(&cfg),
            kept_token: Some(Secret::new("kept-token-0123")),
            can_bind: Some(|_| true),
            reload: true,
            ..Default::default()
        };
        settings::resolve(&inputs)
    };
    let e = reload(r#"{gateway: {mode: "local", auth: {token: "abcdef123456"}, controlUi: {allowedOrigins: []}}}"#)
        .expect_err("F row 11 on reload");
    assert!(e.message.starts_with("non-loopback Control UI requires gateway.controlUi.allowedOrigins"), "{}", e.message);
    let r =
        reload(r#"{gateway: {mode: "local", auth: {token: "abcdef123456", rateLimit: {maxAttempts: 3}}}}"#).expect("absent key: seeded");
    assert_eq!(r.settings.control_ui_allowed_origins, strings(&["http://localhost:28821", "http://127.0.0.1:28821"]));
    let r = reload(r#"{gateway: {mode: "local", auth: {token: "abcdef123456"}, controlUi: {allowedOrigins: ["https://ui.example"]}}}"#)
        .expect("explicit list");
    assert_eq!(r.settings.control_ui_allowed_origins, strings(&["https://ui.example"]));
}

#[test]
fn table_f_row_11_and_table_g_seeding_at_startup() {
    // F row 11 (non-loopback Control UI without origins) cannot fire at startup: table G seeds
    // the origins first (§5.1, §5.2 "At startup seeding prevents it").
    let secret = r#"auth: {token: "abcdef123456"}"#;
    for (row, keys, c, port, want) in [
        (
            "checklist 16: lan, no origins ⇒ localhost + 127.0.0.1",
            gw_cfg(&format!(r#"bind: "lan", port: 28821, {secret}"#)),
            cli(),
            28821,
            strings(&["http://localhost:28821", "http://127.0.0.1:28821"]),
        ),
        (
            "§5.1: blank origins do not count",
            gw_cfg(&format!(r#"bind: "lan", port: 28821, controlUi: {{allowedOrigins: ["  ", ""]}}, {secret}"#)),
            cli(),
            28821,
            strings(&["http://localhost:28821", "http://127.0.0.1:28821"]),
        ),
        (
            "§5.1: seeded even with controlUi.enabled=false",
            gw_cfg(&format!(r#"bind: "lan", port: 28821, controlUi: {{enabled: false}}, {secret}"#)),
            cli(),
            28821,
            strings(&["http://localhost:28821", "http://127.0.0.1:28821"]),
        ),
        (
            "§5.1: P is the runtime port (--port beats gateway.port)",
            gw_cfg(&format!(r#"bind: "lan", port: 28821, {secret}"#)),
            cli_with(|c| c.port = Some("28899".into())),
            28899,
            strings(&["http://localhost:28899", "http://127.0.0.1:28899"]),
        ),
        (
            "§5.1: P defaults to 18789",
            gw_cfg(&format!(r#"bind: "lan", {secret}"#)),
            cli(),
            18789,
            strings(&["http://localhost:18789", "http://127.0.0.1:18789"]),
        ),
        (
            "checklist 17: tailnet that fell back to loopback still seeds",
            gw_cfg(&format!(r#"bind: "tailnet", port: 28821, {secret}"#)),
            cli(),
            28821,
            strings(&["http://localhost:28821", "http://127.0.0.1:28821"]),
        ),
        (
            "§5.1: auto seeds",
            gw_cfg(&format!(r#"bind: "auto", port: 28821, {secret}"#)),
            cli(),
            28821,
            strings(&["http://localhost:28821", "http://127.0.0.1:28821"]),
        ),
        (
            "§5.1: custom 192.0.2.2 seeds 3 origins",
            gw_cfg(&format!(r#"bind: "custom", customBindHost: "192.0.2.2", port: 28821, {secret}"#)),
            cli(),
            28821,
            strings(&["http://localhost:28821", "http://127.0.0.1:28821", "http://192.0.2.2:28821"]),
        ),
        (
            "checklist 17: custom 0.0.0.0 includes http://0.0.0.0:P",
            gw_cfg(&format!(r#"bind: "custom", customBindHost: "0.0.0.0", port: 28821, {secret}"#)),
            cli(),
            28821,
            strings(&["http://localhost:28821", "http://127.0.0.1:28821", "http://0.0.0.0:28821"]),
        ),
        (
            "§5.1: custom 127.0.0.1 still seeds (mode test), deduplicated",
            gw_cfg(&format!(r#"bind: "custom", customBindHost: "127.0.0.1", port: 28821, {secret}"#)),
            cli(),
            28821,
            strings(&["http://localhost:28821", "http://127.0.0.1:28821"]),
        ),
        (
            "§5.1: custom host from the flag",
            gw_cfg(&format!(r#"bind: "custom", customBindHost: "192.0.2.2", port: 28821, {secret}"#)),
            cli_with(|c| c.custom_bind_host = Some("192.0.2.3".into())),
            28821,
            strings(&["http://localhost:28821", "http://127.0.0.1:28821", "http://192.0.2.3:28821"]),
        ),
    ] {
        let r = ok(decide(Some(&keys), &[], c), row);
        assert_eq!(r.port, port, "{row}");
        assert_eq!(r.seeded_origins.as_ref(), Some(&want), "{row}: seeded origins");
        assert_eq!(r.settings.control_ui_allowed_origins, want, "{row}: the runtime allowlist");
        assert!(r.warnings.iter().any(|w| w.contains("seeded gateway.controlUi.allowedOrigins")), "{row}: the seed log line (§5.1)");
    }
    // Not seeded: loopback, explicit origins, host-header fallback (table G rows 1–2).
    for (row, keys) in [
        ("G row 1: loopback is never seeded", gw_cfg("port: 28821")),
        (
            "G row 2: explicit origins are kept",
            gw_cfg(&format!(r#"bind: "lan", port: 28821, controlUi: {{allowedOrigins: ["https://ops.example"]}}, {secret}"#)),
        ),
        (
            "G row 2: host-header fallback disables seeding",
            gw_cfg(&format!(r#"bind: "lan", port: 28821, controlUi: {{dangerouslyAllowHostHeaderOriginFallback: true}}, {secret}"#)),
        ),
    ] {
        let r = ok(decide(Some(&keys), &[], cli()), row);
        assert_eq!(r.seeded_origins, None, "{row}");
        assert!(!r.warnings.iter().any(|w| w.contains("seeded")), "{row}");
    }
    let r = ok(
        decide(Some(&gw_cfg(&format!(r#"bind: "lan", controlUi: {{allowedOrigins: ["https://ops.example"]}}, {secret}"#))), &[], cli()),
        "G2",
    );
    assert_eq!(r.settings.control_ui_allowed_origins, strings(&["https://ops.example"]));
}

#[test]
fn table_g_seed_origins() {
    let none: Vec<String> = Vec::new();
    let base = strings(&["http://localhost:28821", "http://127.0.0.1:28821"]);
    let rows: Vec<(&str, BindMode, Option<&str>, Vec<String>, bool, Option<Vec<String>>)> = vec![
        ("G row 1: loopback ⇒ unchanged", BindMode::Loopback, None, none.clone(), false, None),
        ("G row 1: loopback with a custom host ⇒ unchanged", BindMode::Loopback, Some("192.0.2.2"), none.clone(), false, None),
        ("G row 2: lan with an origin ⇒ unchanged", BindMode::Lan, None, strings(&["https://a.example"]), false, None),
        ("G row 2: lan with host fallback ⇒ unchanged", BindMode::Lan, None, none.clone(), true, None),
        ("G row 2: one non-blank origin among blanks counts", BindMode::Lan, None, strings(&["", " https://a.example "]), false, None),
        ("G row 3: lan", BindMode::Lan, None, none.clone(), false, Some(base.clone())),
        ("G row 3: blank origins only", BindMode::Lan, None, strings(&[" ", ""]), false, Some(base.clone())),
        ("G row 3: tailnet", BindMode::Tailnet, None, none.clone(), false, Some(base.clone())),
        ("G row 3: auto", BindMode::Auto, None, none.clone(), false, Some(base.clone())),
        ("G row 3: lan ignores a custom host", BindMode::Lan, Some("192.0.2.2"), none.clone(), false, Some(base.clone())),
        (
            "G row 3: custom adds http://<custom>:P",
            BindMode::Custom,
            Some("192.0.2.2"),
            none.clone(),
            false,
            Some(strings(&["http://localhost:28821", "http://127.0.0.1:28821", "http://192.0.2.2:28821"])),
        ),
        (
            "G row 3: custom host is trimmed",
            BindMode::Custom,
            Some(" 192.0.2.2 "),
            none.clone(),
            false,
            Some(strings(&["http://localhost:28821", "http://127.0.0.1:28821", "http://192.0.2.2:28821"])),
        ),
        ("G row 3: custom with a blank host adds nothing", BindMode::Custom, Some("  "), none.clone(), false, Some(base.clone())),
        ("G row 3: custom without a host adds nothing", BindMode::Custom, None, none.clone(), false, Some(base.clone())),
        ("G row 3: custom 127.0.0.1 is deduplicated", BindMode::Custom, Some("127.0.0.1"), none.clone(), false, Some(base.clone())),
        (
            "G row 3: custom 0.0.0.0 (checklist 17)",
            BindMode::Custom,
            Some("0.0.0.0"),
            none.clone(),
            false,
            Some(strings(&["http://localhost:28821", "http://127.0.0.1:28821", "http://0.0.0.0:28821"])),
        ),
        ("G row 2: custom with host fallback ⇒ unchanged", BindMode::Custom, Some("192.0.2.2"), none.clone(), true, None),
    ];
    for (row, mode, custom, origins, fallback, want) in rows {
        assert_eq!(seed_origins(mode, 28821, custom, &origins, fallback), want, "{row}");
    }
}

// ---- H. origin check (§5.3, table H) -------------------------------------------------------

#[test]
fn table_h_origin_check() {
    use OriginAllow::*;
    use OriginDeny::*;
    let none: Vec<String> = Vec::new();
    let rows: Vec<(&str, &str, Option<&str>, Vec<String>, bool, bool, Result<OriginAllow, OriginDeny>)> = vec![
        // Step 1: parse.
        ("H1: \"null\" is invalid", "null", Some("127.0.0.1:18789"), strings(&["*"]), false, true, Err(MissingOrInvalid)),
        ("H1: empty is invalid", "", None, strings(&["*"]), false, true, Err(MissingOrInvalid)),
        ("H1: blank is invalid", "   ", None, strings(&["*"]), false, true, Err(MissingOrInvalid)),
        ("H1: no scheme is invalid", "a.example", None, strings(&["*"]), false, true, Err(MissingOrInvalid)),
        ("H1: a path is invalid", "https://a.example/x", None, strings(&["*"]), false, true, Err(MissingOrInvalid)),
        ("H1: userinfo is invalid", "https://u@a.example", None, strings(&["*"]), false, true, Err(MissingOrInvalid)),
        ("H1: a query is invalid", "https://a.example?x=1", None, strings(&["*"]), false, true, Err(MissingOrInvalid)),
        ("H1: one trailing / is allowed", "https://a.example/", None, strings(&["https://a.example"]), false, false, Ok(Allowlist)),
        // Step 2: allowlist (trimmed, lower-cased, `*`).
        ("H2: exact match", "https://a.example", None, strings(&["https://a.example"]), false, false, Ok(Allowlist)),
        (
            "H2: case-insensitive and trimmed",
            "HTTPS://A.Example:8443",
            None,
            strings(&["  https://a.example:8443 "]),
            false,
            false,
            Ok(Allowlist),
        ),
        ("H2: * allows any origin", "https://anything.example", None, strings(&["*"]), false, false, Ok(Allowlist)),
        (
            "H2: the port is part of the origin",
            "https://a.example:8443",
            None,
            strings(&["https://a.example"]),
            false,
            false,
            Err(NotAllowed),
        ),
        ("H2: the scheme is part of the origin", "http://a.example", None, strings(&["https://a.example"]), false, false, Err(NotAllowed)),
        // Step 3: host-header fallback.
        (
            "H3: fallback and origin host:port == Host",
            "https://gw.example:8443",
            Some("gw.example:8443"),
            none.clone(),
            true,
            false,
            Ok(HostHeaderFallback),
        ),
        (
            "H3: Host compared lower-cased",
            "https://gw.example:8443",
            Some("GW.Example:8443"),
            none.clone(),
            true,
            false,
            Ok(HostHeaderFallback),
        ),
        ("H3: fallback but another host", "https://evil.example", Some("gw.example:8443"), none.clone(), true, false, Err(NotAllowed)),
        (
            "H3: same host but no fallback (public name)",
            "https://gw.example:8443",
            Some("gw.example:8443"),
            none.clone(),
            false,
            false,
            Err(NotAllowed),
        ),
        // Step 4: trusted same-origin.
        (
            "H4: private IPv4 same-origin",
            "http://192.168.1.5:18789",
            Some("192.168.1.5:18789"),
            none.clone(),
            false,
            false,
            Ok(PrivateSameOrigin),
        ),
        ("H4: 10/8 same-origin", "http://10.1.2.3:18789", Some("10.1.2.3:18789"), none.clone(), false, false, Ok(PrivateSameOrigin)),
        ("H4: CGNAT same-origin", "http://100.64.1.2:18789", Some("100.64.1.2:18789"), none.clone(), false, false, Ok(PrivateSameOrigin)),
        (
            "H4: link-local same-origin",
            "http://169.254.1.2:18789",
            Some("169.254.1.2:18789"),
            none.clone(),
            false,
            false,
            Ok(PrivateSameOrigin),
        ),
        ("H4: ULA same-origin", "http://[fd00::1]:18789", Some("[fd00::1]:18789"), none.clone(), false, false, Ok(PrivateSameOrigin)),
        ("H4: .local same-origin", "http://gw.local:18789", Some("gw.local:18789"), none.clone(), false, false, Ok(PrivateSameOrigin)),
        (
            "H4: .ts.net same-origin",
            "https://gw.tail1234.ts.net",
            Some("gw.tail1234.ts.net"),
            none.clone(),
            false,
            false,
            Ok(PrivateSameOrigin),
        ),
        (
            "H4: private IP but another port",
            "http://192.168.1.5:9999",
            Some("192.168.1.5:18789"),
            none.clone(),
            false,
            false,
            Err(NotAllowed),
        ),
        (
            "H4: public IP same-origin is not trusted",
            "http://203.0.113.5:18789",
            Some("203.0.113.5:18789"),
            none.clone(),
            false,
            false,
            Err(NotAllowed),
        ),
        (
            "H4: localhost same-origin needs a local client",
            "http://localhost:18789",
            Some("localhost:18789"),
            none.clone(),
            false,
            false,
            Err(NotAllowed),
        ),
        (
            "H4: localhost same-origin, local client",
            "http://localhost:18789",
            Some("localhost:18789"),
            none.clone(),
            false,
            true,
            Ok(PrivateSameOrigin),
        ),
        // Step 5: local client, loopback origin (checklist 47).
        (
            "H5 / checklist 47: local client, http://localhost:5173",
            "http://localhost:5173",
            Some("127.0.0.1:18789"),
            none.clone(),
            false,
            true,
            Ok(LocalLoopback),
        ),
        (
            "H5: local client, 127.0.0.1 origin",
            "http://127.0.0.1:3000",
            Some("127.0.0.1:18789"),
            none.clone(),
            false,
            true,
            Ok(LocalLoopback),
        ),
        ("H5: local client, [::1] origin", "http://[::1]:3000", Some("127.0.0.1:18789"), none.clone(), false, true, Ok(LocalLoopback)),
        (
            "H5: local client, localhost. (trailing dot)",
            "http://localhost.:3000",
            Some("127.0.0.1:18789"),
            none.clone(),
            false,
            true,
            Ok(LocalLoopback),
        ),
        (
            "H5: remote client, loopback origin",
            "http://localhost:5173",
            Some("127.0.0.1:18789"),
            none.clone(),
            false,
            false,
            Err(NotAllowed),
        ),
        // Step 6.
        (
            "H6 / checklist 46: local client, foreign origin",
            "http://evil.example",
            Some("127.0.0.1:18789"),
            none.clone(),
            false,
            true,
            Err(NotAllowed),
        ),
        ("H6: nothing matches", "https://b.example", Some("gw.example"), strings(&["https://a.example"]), false, false, Err(NotAllowed)),
    ];
    for (row, origin, host, allow, fallback, local, want) in rows {
        assert_eq!(check_origin(origin, host, &allow, fallback, local), want, "{row}");
    }
    assert_eq!(OriginDeny::NotAllowed.as_str(), "origin not allowed", "§5.3 step 6 reason");
    assert_eq!(OriginDeny::MissingOrInvalid.as_str(), "origin missing or invalid", "§5.3 step 1 reason");
}

// ---- I. ingress attribution (§4.6, table I) ------------------------------------------------

fn facts(h: &[(&str, &str)]) -> RequestFacts {
    RequestFacts::from_headers(h.iter().map(|(k, v)| (*k, v.as_bytes())))
}

fn nets(v: &[&str]) -> Vec<IpNet> {
    v.iter().map(|s| IpNet::parse(s).unwrap_or_else(|| panic!("{s} parses"))).collect()
}

#[test]
fn table_i_ingress_attribution() {
    let lo = ip("127.0.0.1");
    let proxy = ip("10.0.0.5");
    let client = ip("203.0.113.7");
    let tp = nets(&["127.0.0.1", "10.0.0.0/8"]);
    let rows: Vec<(&str, IpAddr, Vec<(&str, &str)>, Vec<IpNet>, bool, Attribution)> = vec![
        ("I2: loopback, no forwarded headers ⇒ direct-local", lo, vec![], vec![], false, Attribution::DirectLocal { ip: lo }),
        ("I2: ::1 ⇒ direct-local", ip("::1"), vec![], vec![], false, Attribution::DirectLocal { ip: ip("::1") }),
        (
            "I2 / §4.6: IPv4-mapped loopback is collapsed",
            ip("::ffff:127.0.0.1"),
            vec![],
            vec![],
            false,
            Attribution::DirectLocal { ip: lo },
        ),
        (
            "I2: other headers do not matter",
            lo,
            vec![("User-Agent", "x"), ("Origin", "http://localhost")],
            vec![],
            false,
            Attribution::DirectLocal { ip: lo },
        ),
        (
            "I4: loopback + XFF, untrusted ⇒ unattributable",
            lo,
            vec![("X-Forwarded-For", "203.0.113.7")],
            vec![],
            false,
            Attribution::Unattributable,
        ),
        (
            "I4: loopback + X-Real-IP, untrusted ⇒ unattributable",
            lo,
            vec![("X-Real-IP", "203.0.113.7")],
            vec![],
            false,
            Attribution::Unattributable,
        ),
        (
            "I4: loopback + Forwarded, untrusted ⇒ unattributable",
            lo,
            vec![("Forwarded", "for=203.0.113.7")],
            vec![],
            false,
            Attribution::Unattributable,
        ),
        (
            "I4: loopback + X-Forwarded-Proto only ⇒ unattributable",
            lo,
            vec![("X-Forwarded-Proto", "https")],
            vec![],
            false,
            Attribution::Unattributable,
        ),
        (
            "I4: loopback + Tailscale header ⇒ unattributable",
            lo,
            vec![("Tailscale-User-Login", "a@b")],
            vec![],
            false,
            Attribution::Unattributable,
        ),
        (
            "I4 / §4.6 live: XFF from an untrusted 192.0.2.2 ⇒ unattributable",
            ip("192.0.2.2"),
            vec![("X-Forwarded-For", "203.0.113.7")],
            tp.clone(),
            false,
            Attribution::Unattributable,
        ),
        (
            "I5: non-loopback, no headers ⇒ direct-remote",
            ip("192.0.2.7"),
            vec![],
            vec![],
            false,
            Attribution::DirectRemote { ip: ip("192.0.2.7") },
        ),
        (
            "I5: IPv4-mapped remote is collapsed",
            ip("::ffff:192.0.2.7"),
            vec![],
            vec![],
            false,
            Attribution::DirectRemote { ip: ip("192.0.2.7") },
        ),
        (
            "I3: trusted proxy, XFF client",
            proxy,
            vec![("X-Forwarded-For", "203.0.113.7")],
            tp.clone(),
            false,
            Attribution::TrustedProxy { proxy, client },
        ),
        (
            "I3: XFF walked from the right, trusted hops skipped",
            proxy,
            vec![("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.2.3")],
            tp.clone(),
            false,
            Attribution::TrustedProxy { proxy, client },
        ),
        (
            "I3: XFF loopback hops skipped",
            proxy,
            vec![("X-Forwarded-For", "203.0.113.7, 127.0.0.1")],
            tp.clone(),
            false,
            Attribution::TrustedProxy { proxy, client },
        ),
        (
            "I3: XFF hop with a port",
            proxy,
            vec![("X-Forwarded-For", "203.0.113.7:5555")],
            tp.clone(),
            false,
            Attribution::TrustedProxy { proxy, client },
        ),
        (
            "I3: XFF [v6]:port hop",
            proxy,
            vec![("X-Forwarded-For", "[2001:db8::7]:443")],
            tp.clone(),
            false,
            Attribution::TrustedProxy { proxy, client: ip("2001:db8::7") },
        ),
        (
            "I3: XFF IPv4-mapped hop is collapsed",
            proxy,
            vec![("X-Forwarded-For", "::ffff:203.0.113.7")],
            tp.clone(),
            false,
            Attribution::TrustedProxy { proxy, client },
        ),
        (
            "I3: garbage hops are skipped",
            proxy,
            vec![("X-Forwarded-For", "203.0.113.7, not-an-ip")],
            tp.clone(),
            false,
            Attribution::TrustedProxy { proxy, client },
        ),
        (
            "I3 / §4.6 live: trusted 127.0.0.1, X-Forwarded-User without XFF ⇒ unattributable",
            lo,
            vec![("X-Forwarded-User", "alice")],
            tp.clone(),
            false,
            Attribution::Unattributable,
        ),
        (
            "I3 / §4.6 live: XFF=127.0.0.1 ⇒ unattributable",
            lo,
            vec![("X-Forwarded-For", "127.0.0.1")],
            tp.clone(),
            false,
            Attribution::Unattributable,
        ),
        (
            "I3: every hop trusted ⇒ unattributable",
            proxy,
            vec![("X-Forwarded-For", "10.9.9.9, 10.1.1.1")],
            tp.clone(),
            false,
            Attribution::Unattributable,
        ),
        (
            "I3: X-Real-IP without allowRealIpFallback ⇒ unattributable",
            proxy,
            vec![("X-Real-IP", "203.0.113.7")],
            tp.clone(),
            false,
            Attribution::Unattributable,
        ),
        (
            "I3: X-Real-IP with allowRealIpFallback",
            proxy,
            vec![("X-Real-IP", "203.0.113.7")],
            tp.clone(),
            true,
            Attribution::TrustedProxy { proxy, client },
        ),
        ("I3: X-Real-IP loopback ⇒ unattributable", proxy, vec![("X-Real-IP", "127.0.0.1")], tp.clone(), true, Attribution::Unattributable),
        (
            "I3: XFF wins over X-Real-IP",
            proxy,
            vec![("X-Forwarded-For", "203.0.113.7"), ("X-Real-IP", "198.51.100.1")],
            tp.clone(),
            true,
            Attribution::TrustedProxy { proxy, client },
        ),
        (
            "I3: CIDR-aware (10.0.0.0/8 contains 10.0.0.5)",
            proxy,
            vec![("X-Forwarded-For", "203.0.113.7")],
            nets(&["10.0.0.0/8"]),
            false,
            Attribution::TrustedProxy { proxy, client },
        ),
        (
            "I3: /32 outside ⇒ untrusted ⇒ unattributable",
            proxy,
            vec![("X-Forwarded-For", "203.0.113.7")],
            nets(&["10.0.0.6/32"]),
            false,
            Attribution::Unattributable,
        ),
        (
            "I3: IPv4-mapped trusted entry (§2) matches",
            proxy,
            vec![("X-Forwarded-For", "203.0.113.7")],
            nets(&["::ffff:10.0.0.5"]),
            false,
            Attribution::TrustedProxy { proxy, client },
        ),
        (
            "I3: IPv4-mapped remote matches a v4 entry",
            ip("::ffff:10.0.0.5"),
            vec![("X-Forwarded-For", "203.0.113.7")],
            tp.clone(),
            false,
            Attribution::TrustedProxy { proxy, client },
        ),
        ("I3: trusted proxy without any forwarded header ⇒ unattributable", proxy, vec![], tp.clone(), false, Attribution::Unattributable),
    ];
    for (row, remote, headers, tp, real_ip, want) in rows {
        assert_eq!(attribute(remote, &facts(&headers), &tp, real_ip), want, "{row}");
    }
    // §2: trustedProxies entries are IPs or CIDRs; junk does not parse.
    for bad in ["", "nope", "10.0.0.0/33", "::1/129", "10.0.0.1/x"] {
        assert!(IpNet::parse(bad).is_none(), "§2 trustedProxies entry {bad:?}");
    }
}

// ---- §4.7 trusted-proxy check --------------------------------------------------------------

#[test]
fn trusted_proxy_check_steps_1_to_6() {
    let tp = nets(&["127.0.0.1", "10.0.0.0/8"]);
    let cfg = |allow_loopback: bool| TrustedProxyConfig {
        user_header: "X-Forwarded-User".into(),
        required_headers: strings(&["X-Forwarded-Proto"]),
        allow_users: strings(&[" alice ", "bob"]),
        allow_loopback,
    };
    let check = |remote: &str, headers: &[(&str, &str)], c: &TrustedProxyConfig| {
        let f = facts(headers);
        let remote = ip(remote);
        let a = attribute(remote, &f, &tp, false);
        trusted_proxy_check(remote, &a, &f, c, &tp, Some(&[ip("10.9.9.9")]))
    };
    let good = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-User", " alice ")];
    // Step 7 / checklist 53: ok, user = trimmed header value.
    assert_eq!(check("10.0.0.5", &good, &cfg(false)), Ok("alice".into()), "§4.7 step 7");
    assert_eq!(check("127.0.0.1", &good, &cfg(true)), Ok("alice".into()), "checklist 53: 127.0.0.1 with allowLoopback");
    {
        let (f, r) = (facts(&good), ip("10.0.0.5"));
        let a = attribute(r, &f, &tp, false);
        assert_eq!(
            trusted_proxy_check(r, &a, &f, &cfg(false), &tp, None),
            Err("trusted_proxy_local_interface_check_failed".into()),
            "§4.7 step 3: interface enumeration failed"
        );
        let lo = ip("127.0.0.1");
        let a = attribute(lo, &f, &tp, false);
        assert_eq!(trusted_proxy_check(lo, &a, &f, &cfg(true), &tp, None), Ok("alice".into()), "step 3 is for non-loopback sources only");
    }
    let rows: Vec<(&str, &str, Vec<(&str, &str)>, bool, &str)> = vec![
        ("§4.7 step 1: source not in trustedProxies", "192.0.2.2", good.to_vec(), true, "trusted_proxy_untrusted_source"),
        ("§4.7 step 1 before step 2: untrusted loopback (::1 not listed)", "::1", good.to_vec(), false, "trusted_proxy_untrusted_source"),
        ("§4.7 step 2: loopback source without allowLoopback", "127.0.0.1", good.to_vec(), false, "trusted_proxy_loopback_source"),
        (
            "§4.7 step 3: the proxy is one of the host's own addresses",
            "10.9.9.9",
            good.to_vec(),
            false,
            "trusted_proxy_local_interface_source",
        ),
        (
            "§4.7 step 4: required header missing (name as configured)",
            "10.0.0.5",
            vec![("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-User", "alice")],
            false,
            "trusted_proxy_missing_header_X-Forwarded-Proto",
        ),
        (
            "§4.7 step 4: required header blank",
            "10.0.0.5",
            vec![("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "  "), ("X-Forwarded-User", "alice")],
            false,
            "trusted_proxy_missing_header_X-Forwarded-Proto",
        ),
        (
            "§4.7 step 4 before step 5",
            "10.0.0.5",
            vec![("X-Forwarded-For", "203.0.113.7")],
            false,
            "trusted_proxy_missing_header_X-Forwarded-Proto",
        ),
        (
            "§4.7 step 5: user header missing",
            "10.0.0.5",
            vec![("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")],
            false,
            "trusted_proxy_user_missing",
        ),
        (
            "§4.7 step 5: user header blank",
            "10.0.0.5",
            vec![("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-User", "   ")],
            false,
            "trusted_proxy_user_missing",
        ),
        (
            "§4.7 step 6: user not in allowUsers",
            "10.0.0.5",
            vec![("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-User", "mallory")],
            false,
            "trusted_proxy_user_not_allowed",
        ),
        (
            "§4.7 step 6: exact match (case-sensitive)",
            "10.0.0.5",
            vec![("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-User", "Alice")],
            false,
            "trusted_proxy_user_not_allowed",
        ),
    ];
    for (row, remote, headers, allow_loopback, want) in rows {
        assert_eq!(check(remote, &headers, &cfg(allow_loopback)), Err(want.to_string()), "{row}");
    }
    // Header names match case-insensitively; an empty allowUsers allows everyone (§4.7 step 6).
    let open = TrustedProxyConfig { allow_users: vec![], required_headers: vec![], ..cfg(false) };
    assert_eq!(
        check("10.0.0.5", &[("x-forwarded-for", "203.0.113.7"), ("x-forwarded-user", "zed")], &open),
        Ok("zed".into()),
        "§4.7 step 6: empty allowUsers"
    );
    // A trusted proxy whose request is not attributable (no XFF) fails (§4.4 step 4 needs kind trusted-proxy).
    assert!(check("10.0.0.5", &[("X-Forwarded-Proto", "https"), ("X-Forwarded-User", "alice")], &cfg(false)).is_err());
}

// ---- config file loading (§1.3) ------------------------------------------------------------

#[test]
fn json5_comments_trailing_commas_and_friends_load() {
    // §1.3 step 1: JSON5.
    let c = load_ok(
        r#"// leading comment
{
  /* block
     comment */
  gateway: {
    mode: 'local',          // single quotes, unquoted keys
    port: 28822,            // trailing comma next
    controlUi: {allowedOrigins: ["https://a.example",],},
  },
  env: {vars: {"quoted-key": +1, hex: 0x10}},
}
"#,
        &[],
    );
    assert_eq!(c.gateway.port, Some(28822));
    assert_eq!(c.gateway.mode.as_deref(), Some("local"));
    assert_eq!(c.gateway.allowed_origins, strings(&["https://a.example"]));
    assert_eq!(c.source["env"]["vars"]["hex"], 16);
    assert_eq!(c.source["env"]["vars"]["quoted-key"], 1);
}

#[test]
fn json5_syntax_errors_carry_line_and_column() {
    // §1.3 step 1 (the reference reports `… at 2:1`); ours: `at line N column M`.
    let rows: &[(&str, &str, usize, usize)] = &[
        ("missing comma before the next key", "{\n  gateway: {\n    port: 1\n    bind: 'lan'\n  }\n}\n", 4, 5),
        ("a bare word", "{\n  gateway: {port: 1,}\n  bad\n}", 3, 3),
        ("end of input inside an object", "{\n  gateway: {", 2, 13),
        ("end of input after a newline", "{\n  gateway: {\n", 3, 1),
        ("an unterminated string (at the line break)", "{\n  a: \"x\n}", 2, 8),
        ("garbage on line 1", "}", 1, 1),
    ];
    for (row, text, line, column) in rows {
        match load_with(text, &[], &mut Files::default()) {
            Err(ConfigError::Syntax { file, line: l, column: c, message }) => {
                assert_eq!(file, CFG, "{row}");
                assert_eq!((l, c), (*line, *column), "{row}: position ({message}) of {text:?}");
                let shown = ConfigError::Syntax { file: file.clone(), line: l, column: c, message: message.clone() }.to_string();
                assert!(shown.contains(&format!("line {l} column {c}")), "{row}: {shown}");
                assert!(shown.contains(CFG), "{row}: the file is named: {shown}");
            }
            other => panic!("{row}: expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn env_substitution() {
    // §1.3 step 3 rules.
    let env = [("BASE", "http://x"), ("TOK", "from-env"), ("EMPTY", ""), ("A_1", "one")];
    let c = load_ok(
        r#"{
          gateway: {mode: "local", remote: {url: "${BASE}/v1"}},
          env: {vars: {                     // an open map in the reference's schema
            mid: "pre-${A_1}-post",
            escaped: "$${TOK}",
            escapedMid: "a $${BASE} b",
            missing: "x-${MISSING_VAR_X}-y",
            empty: "${EMPTY}",
            lower: "${lower}",
            notVar: "$TOK stays, ${1BAD} too",
            arr: ["${TOK}", {deep: "${A_1}"}],
            num: 5,
          }},
        }"#,
        &env,
    );
    let (r, vars) = (&c.resolved, &c.resolved["env"]["vars"]);
    assert_eq!(r["gateway"]["remote"]["url"], "http://x/v1", "§1.3: substitution mid-string");
    assert_eq!(vars["mid"], "pre-one-post");
    assert_eq!(vars["escaped"], "${TOK}", "§1.3: $${{VAR}} is the literal ${{VAR}}");
    assert_eq!(vars["escapedMid"], "a ${BASE} b");
    assert_eq!(vars["missing"], "x-${MISSING_VAR_X}-y", "§1.3: a missing variable stays visibly unresolved");
    assert_eq!(vars["empty"], "${EMPTY}", "§1.3: an empty variable counts as missing");
    assert_eq!(vars["lower"], "${lower}", "§1.3: names are uppercase only");
    assert_eq!(vars["notVar"], "$TOK stays, ${1BAD} too", "outside SecretInput fields `$NAME` is not substituted");
    assert_eq!(vars["arr"], json!(["from-env", {"deep": "one"}]), "substitution reaches arrays and nested objects");
    assert_eq!(vars["num"], 5);
    // The source keeps what the operator wrote (diffed for reloads, patched by config.patch).
    assert_eq!(c.source["gateway"]["remote"]["url"], "${BASE}/v1");
    // Missing names are warned about, one warning per name.
    assert!(c.warnings.iter().any(|w| w.contains("MISSING_VAR_X")), "§1.3: missing var warning: {:?}", c.warnings);
    assert!(c.warnings.iter().any(|w| w.contains("EMPTY")), "{:?}", c.warnings);
    assert_eq!(c.warnings.len(), 2, "one warning per missing name, nothing for lower-case: {:?}", c.warnings);
    // Substitution before validation: a substituted value is validated.
    let c = load_ok(r#"{gateway: {mode: "${MODE}", bind: "${BIND}"}}"#, &[("MODE", "local"), ("BIND", "lan")]);
    assert_eq!(c.gateway.bind, Some(BindMode::Lan));
    let e = load_with(r#"{gateway: {bind: "${BIND}"}}"#, &[], &mut Files::default()).unwrap_err();
    assert!(e.to_string().contains("gateway.bind"), "an unresolved value is still validated: {e}");
}

#[test]
fn secret_input_shorthand_is_an_env_secret_ref() {
    // §1.3 "SecretInput fields": exactly "${NAME}" or "$NAME" ⇒ {source: env, provider: default, id: NAME}.
    let c = load_ok(
        r#"{gateway: {mode: "local",
            auth: {token: "${MY_TOKEN}", password: "$MY_PW"},
            remote: {token: "${REMOTE_T}", password: "pre-${MY_PW}"}},
           models: {providers: {openai: {apiKey: "${OPENAI_KEY}"}}}}"#,
        &[("MY_TOKEN", "t"), ("MY_PW", "p"), ("OPENAI_KEY", "k")],
    );
    let env_ref = |n: &str| Some(SecretInput::Ref(SecretRef::env(n)));
    assert_eq!(c.gateway.auth_token, env_ref("MY_TOKEN"), "§1.3: \"${{NAME}}\" on gateway.auth.token");
    assert_eq!(c.gateway.auth_password, env_ref("MY_PW"), "§1.3: \"$NAME\" on gateway.auth.password");
    assert_eq!(c.gateway.remote_token, env_ref("REMOTE_T"), "gateway.remote.token is a SecretInput too");
    assert_eq!(c.gateway.remote_password, Some(SecretInput::Plain("pre-p".into())), "not a whole-value shorthand: substituted text");
    assert_eq!(c.resolved["gateway"]["auth"]["token"], "${MY_TOKEN}", "the reference is kept, resolved strictly later");
    assert_eq!(c.resolved["models"]["providers"]["openai"]["apiKey"], "${OPENAI_KEY}", "models.providers.*.apiKey is a SecretInput");
    let SecretInput::Ref(r) = c.gateway.auth_token.clone().unwrap() else { unreachable!() };
    assert_eq!((r.source, r.provider.as_str(), r.id.as_str()), (SecretSource::Env, "default", "MY_TOKEN"));
    // A missing variable does not fail the load; it fails resolution strictly (§1.3, checklist 73).
    let c = load_ok(r#"{gateway: {mode: "local", auth: {token: "${MISSING_VAR_X}"}}}"#, &[]);
    let e = secrets::resolve(c.gateway.auth_token.as_ref().unwrap(), &HashMap::new(), &mut FakeIo::default()).unwrap_err();
    assert_eq!(e.to_string(), "SecretRefResolutionError: Environment variable \"MISSING_VAR_X\" is missing or empty.", "§1.3 live text");
    // Through the startup decision: the shell's failure (E row 5).
    let e = err(decide(Some(r#"{gateway: {mode: "local", auth: {token: "${MISSING_VAR_X}"}}}"#), &[], cli()), "E row 5");
    assert!(e.message.starts_with("Startup failed: required secrets are unavailable."), "{}", e.message);
    // Lower-case or invalid names are not shorthands: plain text (not substituted either).
    let c = load_ok(r#"{gateway: {mode: "local", auth: {token: "${lower_case}"}}}"#, &[]);
    assert_eq!(c.gateway.auth_token, Some(SecretInput::Plain("${lower_case}".into())));
}

fn chain(n: usize) -> Files {
    let mut f = Files::default();
    for i in 0..n {
        let next = if i + 1 < n {
            format!(r#"{{"$include": "./f{}.json5", env: {{vars: {{level{i}: true}}}}}}"#, i + 1)
        } else {
            format!("{{env: {{vars: {{level{i}: true}}}}}}")
        };
        f = f.with(&format!("/cfg/f{i}.json5"), &next);
    }
    f
}

#[test]
fn includes() {
    // §1.3 `$include` rules.
    let files = Files::default()
        .with("/cfg/base.json5", "{gateway: {port: 1000, bind: 'loopback', auth: {mode: 'token'}}, env: {vars: {fromBase: 1}}}")
        .with("/cfg/over.json5", "{gateway: {port: 2000, customBindHost: '192.0.2.2'}, env: {vars: {fromOver: '${X_VAR}'}}}")
        .with("/cfg/sub/gw.json5", r#"{port: 3000, "$include": "./nested.json5"}"#)
        .with("/cfg/sub/nested.json5", "{bind: 'lan', controlUi: {allowedOrigins: ['https://n.example']}}")
        .with("/cfg/scalar.json5", "\"just a string\"")
        .with("/cfg/bad.json5", "{\n  oops\n}");
    let env = [("X_VAR", "xv")];

    // Array: deep-merged in order, later wins; siblings override the include.
    let mut f = files.clone();
    let c = load_with(r#"{"$include": ["./base.json5", "over.json5"], gateway: {mode: "local", port: 2500}}"#, &env, &mut f).unwrap();
    assert_eq!(c.gateway.port, Some(2500), "§1.3: sibling keys override the include");
    assert_eq!(c.gateway.custom_bind_host.as_deref(), Some("192.0.2.2"), "§1.3: later file wins / merges");
    assert_eq!(c.gateway.bind, Some(BindMode::Loopback), "§1.3: deep merge keeps earlier keys");
    assert_eq!(c.gateway.auth_mode, Some(AuthMode::Token));
    let vars = &c.source["env"]["vars"];
    assert_eq!((vars["fromBase"].clone(), vars["fromOver"].clone()), (json!(1), json!("${X_VAR}")));
    assert_eq!(c.resolved["env"]["vars"]["fromOver"], "xv", "§1.3 step 3 / checklist 72: ${{VAR}} inside included files is substituted");
    assert_eq!(c.included, strings(&["/cfg/base.json5", "/cfg/over.json5"]), "§1.3: included files are reported (watched)");
    // Array order matters: reversed, base's port wins.
    let c = load_with(r#"{"$include": ["over.json5", "base.json5"], gateway: {mode: "local"}}"#, &env, &mut files.clone()).unwrap();
    assert_eq!(c.gateway.port, Some(1000), "§1.3: later wins");

    // Single file replaces the containing object; nested includes are relative to the including file.
    let c = load_with(r#"{gateway: {mode: "local", "$include": "sub/gw.json5"}}"#, &[], &mut files.clone()).unwrap();
    assert_eq!(c.gateway.port, Some(3000), "§1.3: single include");
    assert_eq!(c.gateway.bind, Some(BindMode::Lan), "§1.3: relative to the including file (sub/nested.json5)");
    assert_eq!(c.gateway.allowed_origins, strings(&["https://n.example"]));
    assert_eq!(c.included, strings(&["/cfg/sub/gw.json5", "/cfg/sub/nested.json5"]));

    // A non-object include alone replaces the value; with siblings it is an error.
    let c = load_with(r#"{gateway: {mode: "local"}, env: {vars: {note: {"$include": "scalar.json5"}}}}"#, &[], &mut files.clone()).unwrap();
    assert_eq!(c.source["env"]["vars"]["note"], "just a string");
    let e = load_with(r#"{gateway: {mode: "local"}, env: {vars: {note: {"$include": "scalar.json5", x: 1}}}}"#, &[], &mut files.clone())
        .unwrap_err();
    assert!(matches!(e, ConfigError::Include { .. }), "§1.3: siblings require the included value to be an object: {e}");

    // Invalid $include values.
    for (v, ty) in [("5", "number"), ("true", "boolean"), ("{a: 1}", "object"), ("[1, 'x']", "array"), ("null", "null")] {
        let e = load_with(&format!(r#"{{"$include": {v}}}"#), &[], &mut files.clone()).unwrap_err();
        assert!(
            e.to_string().contains(&format!("Invalid $include value: expected string or array of strings, got {ty}")),
            "§1.3 $include {v}: {e}"
        );
    }

    // A syntax error inside an include names that file and its position.
    match load_with(r#"{"$include": "bad.json5"}"#, &[], &mut files.clone()) {
        Err(ConfigError::Syntax { file, line, .. }) => {
            assert_eq!((file.as_str(), line), ("/cfg/bad.json5", 3), "the `}}` after the bare key `oops`")
        }
        other => panic!("syntax error in an include: {other:?}"),
    }
    // A missing include is an error naming it.
    let e = load_with(r#"{"$include": "nope.json5"}"#, &[], &mut files.clone()).unwrap_err();
    assert!(e.to_string().contains("/cfg/nope.json5"), "{e}");
}

#[test]
fn include_confinement_depth_and_cycles() {
    let files = Files::default()
        .with("/cfg/ok.json5", "{env: {vars: {a: 1}}}")
        .with("/etc/outside.json5", "{env: {vars: {b: 2}}}")
        .with("/cfg/link.json5", "{env: {vars: {c: 3}}}")
        .link("/cfg/link.json5", "/etc/real.json5")
        .with("/cfg/a.json5", r#"{"$include": "b.json5"}"#)
        .with("/cfg/b.json5", r#"{"$include": "a.json5"}"#)
        .with("/cfg/self.json5", r#"{"$include": "./self.json5"}"#);
    // Confinement (§1.3): lexically and after realpath, inside the config's dir.
    for (inc, want) in [
        ("../etc/outside.json5", "Include path escapes config directory: /etc/outside.json5"),
        ("/etc/outside.json5", "Include path escapes config directory: /etc/outside.json5"),
        ("sub/../../etc/outside.json5", "Include path escapes config directory: /etc/outside.json5"),
        ("link.json5", "Include path resolves outside config directory (symlink): /cfg/link.json5"),
    ] {
        let mut f = files.clone();
        let e = load_with(&format!(r#"{{"$include": "{inc}"}}"#), &[], &mut f).unwrap_err();
        assert!(e.to_string().contains(want), "§1.3 confinement {inc}: {e}");
        assert!(!f.reads.iter().any(|p| p.starts_with("/etc")), "§1.3: an escaping include is never read ({inc})");
    }
    // `..` that stays inside is fine.
    load_with(r#"{"$include": "sub/../ok.json5"}"#, &[], &mut files.clone()).unwrap();
    // OPENCLAW_INCLUDE_ROOTS widens confinement (§1.3).
    let env = HashMap::<String, String>::new();
    let lookup = move |n: &str| env.get(n).cloned();
    let c = load(CFG, r#"{"$include": "/etc/outside.json5"}"#, &lookup, &mut files.clone(), &[PathBuf::from("/etc")]).unwrap();
    assert_eq!(c.source["env"]["vars"]["b"], 2, "§1.3: OPENCLAW_INCLUDE_ROOTS");
    // Cycles are rejected.
    for text in [r#"{"$include": "a.json5"}"#, r#"{"$include": "self.json5"}"#] {
        let e = load_with(text, &[], &mut files.clone()).unwrap_err();
        assert!(e.to_string().to_lowercase().contains("cycle"), "§1.3: cycles rejected: {e}");
    }
    // Depth (§1.3 `Maximum include depth (10) exceeded at: …`): a chain of 3 loads, 12 does not.
    let c = load_with(r#"{"$include": "f0.json5"}"#, &[], &mut chain(3)).unwrap();
    let vars = &c.source["env"]["vars"];
    assert_eq!((vars["level0"].clone(), vars["level2"].clone()), (json!(true), json!(true)));
    let e = load_with(r#"{"$include": "f0.json5"}"#, &[], &mut chain(12)).unwrap_err();
    assert!(e.to_string().contains("Maximum include depth (10) exceeded at: "), "§1.3 depth: {e}");
    // Size (2 MiB) and NUL bytes.
    let big = format!("{{x: \"{}\"}}", "a".repeat(config_file::MAX_INCLUDE_BYTES));
    let e = load_with(r#"{"$include": "big.json5"}"#, &[], &mut Files::default().with("/cfg/big.json5", &big)).unwrap_err();
    assert!(matches!(e, ConfigError::Include { .. }), "§1.3: file ≤ 2 MiB: {e}");
    let e = load_with("{\"$include\": \"a\\u0000b.json5\"}", &[], &mut files.clone()).unwrap_err();
    assert!(matches!(e, ConfigError::Include { .. }), "§1.3: no NUL bytes: {e}");
}

#[test]
fn reference_keys_are_kept_untouched_and_unknown_keys_refused() {
    // §1.3 step 5: a key the reference's schema rejects is an error (with a "did you mean");
    // a key it knows and clawgate does not read survives as written and is reported as unused.
    let text = r#"{
      gateway: {mode: "local", tailscale: {mode: "off", preserveFunnel: false}, tls: {enabled: false}, portals: {}},
      channels: {telegram: {enabled: false}},
      agents: {entries: {main: {name: "Main"}}},
      plugins: {entries: {"admin-http-rpc": {enabled: true}}},
      meta: {lastTouchedVersion: "2026.9.6"},
    }"#;
    let c = load_ok(text, &[]);
    let want = json!({
        "gateway": {"mode": "local", "tailscale": {"mode": "off", "preserveFunnel": false}, "tls": {"enabled": false}, "portals": {}},
        "channels": {"telegram": {"enabled": false}},
        "agents": {"entries": {"main": {"name": "Main"}}},
        "plugins": {"entries": {"admin-http-rpc": {"enabled": true}}},
        "meta": {"lastTouchedVersion": "2026.9.6"},
    });
    assert_eq!(c.source, want, "every key survives in the source");
    assert_eq!(c.resolved, want, "and in the resolved view");
    assert_eq!(c.unused, strings(&["gateway.tailscale", "gateway.tls", "gateway.portals", "channels", "meta"]));
    let e = load_err(r#"{gateway: {mode: "local", prot: 1, auth: {tokn: "x"}}, agent: {}, bogusKey: "x"}"#).to_string();
    assert_eq!(
        e,
        "Invalid config at /cfg/openclaw.json:\n  gateway: Unrecognized key: \"prot\" (did you mean \"port\"?)\n  gateway.auth: Unrecognized key: \"tokn\" (did you mean \"token\"?)\n  <root>: Unrecognized key: \"agent\" (did you mean \"agents\"?)\n  <root>: Unrecognized key: \"bogusKey\"",
        "§1.3 step 5"
    );
    // The reference's own rewritten config loads (with gateway.mode added).
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors/http/config-A-as-rewritten-by-gateway.json");
    if let Ok(text) = std::fs::read_to_string(path) {
        let c = load_ok(&text, &[]);
        assert!(c.gateway.chat_completions_enabled && c.gateway.responses_enabled);
        assert_eq!(c.source, serde_json::from_str::<Value>(&text).unwrap(), "the reference's config round-trips through the loader");
    }
}

#[test]
fn type_errors_name_the_key_path() {
    // §1.3 step 5 / §2 / checklist 62: wrong types are errors naming the key path.
    let rows: &[(&str, &str)] = &[
        (r#"{gateway: {port: "abc"}}"#, "gateway.port: expected an integer from 1 to 65535, got \"abc\""),
        (r#"{gateway: {port: 70000}}"#, "gateway.port: expected an integer from 1 to 65535, got 70000"),
        (r#"{gateway: {port: 1.5}}"#, "gateway.port"),
        (r#"{gateway: {bind: "bogus"}}"#, "gateway.bind"),
        (r#"{gateway: {mode: "cloud"}}"#, "gateway.mode"),
        (r#"{gateway: {auth: {mode: "magic"}}}"#, "gateway.auth.mode"),
        (r#"{gateway: {auth: {token: 42}}}"#, "gateway.auth.token"),
        (r#"{gateway: {auth: {token: {source: "env", provider: "default", id: "X", extra: 1}}}}"#, "gateway.auth.token"),
        (r#"{gateway: {auth: {password: true}}}"#, "gateway.auth.password"),
        (r#"{gateway: {auth: {rateLimit: {maxAttempts: "ten"}}}}"#, "gateway.auth.rateLimit.maxAttempts"),
        (r#"{gateway: {auth: {rateLimit: {exemptLoopback: "yes"}}}}"#, "gateway.auth.rateLimit.exemptLoopback"),
        (r#"{gateway: {auth: {rateLimit: 5}}}"#, "gateway.auth.rateLimit"),
        (r#"{gateway: {auth: {trustedProxy: {allowUsers: "alice"}}}}"#, "gateway.auth.trustedProxy.allowUsers"),
        (r#"{gateway: {trustedProxies: ["10.0.0.1", "nope"]}}"#, "gateway.trustedProxies.1"),
        (r#"{gateway: {trustedProxies: "10.0.0.1"}}"#, "gateway.trustedProxies"),
        (r#"{gateway: {controlUi: {allowedOrigins: "https://a"}}}"#, "gateway.controlUi.allowedOrigins"),
        (r#"{gateway: {controlUi: {enabled: "no"}}}"#, "gateway.controlUi.enabled"),
        (r#"{gateway: {reload: {mode: "sometimes"}}}"#, "gateway.reload.mode"),
        (r#"{gateway: {customBindHost: 1}}"#, "gateway.customBindHost"),
        (r#"{gateway: {allowRealIpFallback: 1}}"#, "gateway.allowRealIpFallback"),
        (r#"{gateway: "local"}"#, "gateway: expected an object"),
        (r#"{gateway: {auth: []}}"#, "gateway.auth: expected an object"),
    ];
    for (text, want) in rows {
        let e = load_err(text);
        let ConfigError::Invalid { file, issues } = &e else { panic!("{text}: expected Invalid, got {e:?}") };
        assert_eq!(file, CFG);
        let shown = e.to_string();
        assert!(shown.starts_with(&format!("Invalid config at {CFG}:")), "{text}: {shown}");
        assert!(shown.contains(want), "{text}: {shown} should contain {want:?}");
        assert!(!issues.is_empty());
        assert!(!e.one_line().contains('\n'), "one_line is one line: {}", e.one_line());
    }
    // Several problems are all reported.
    let e = load_err(r#"{gateway: {port: "abc", bind: "bogus"}}"#);
    let ConfigError::Invalid { issues, .. } = e else { unreachable!() };
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["gateway.port", "gateway.bind"]);
    // The top level must be an object.
    for text in ["[]", "5", "\"x\""] {
        assert!(load_err(text).to_string().contains("expected an object at the top level"), "{text}");
    }
}

// ---- config_file::plan_write (config.patch / config.apply) ---------------------------------

fn patch(raw: &str, base: Option<&str>) -> ConfigWrite {
    ConfigWrite { kind: WriteKind::Patch, raw: raw.into(), base_hash: base.map(str::to_string) }
}

#[test]
fn plan_write_merge_patch_and_base_hash() {
    let current = br#"{
  // operator's file, JSON5
  gateway: {mode: "local", port: 28822, auth: {mode: "token", token: "a"}, trustedProxies: ["10.0.0.1", "10.0.0.2"]},
  agents: {entries: {main: {name: "Main"}, old: {name: "Old"}}},
  meta: {lastTouchedVersion: "keep"},
}
"#;
    let hash = file_hash(current);
    // Merge patch (RFC 7396): objects merge, null deletes, arrays and scalars replace.
    let text = plan_write(
        CFG,
        Some(current),
        &patch(
            r#"{gateway: {port: 28823, trustedProxies: ["10.0.0.3"]}, agents: {entries: {old: null}}, logging: {level: "info"}}"#,
            Some(&hash),
        ),
    )
    .unwrap();
    let v: Value = serde_json::from_str(&text).expect("the written text is plain JSON");
    assert_eq!(
        v,
        json!({
            "gateway": {"mode": "local", "port": 28823, "auth": {"mode": "token", "token": "a"}, "trustedProxies": ["10.0.0.3"]},
            "agents": {"entries": {"main": {"name": "Main"}}},
            "meta": {"lastTouchedVersion": "keep"},
            "logging": {"level": "info"},
        }),
        "merge patch with null deletion"
    );
    assert!(text.ends_with('\n'));
    assert_ne!(file_hash(text.as_bytes()), hash);
    load_ok(&text, &[]);
    // Deleting a whole root, and a nested key.
    let text = plan_write(CFG, Some(current), &patch(r#"{meta: null, gateway: {auth: {token: null}}}"#, Some(&hash))).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("meta").is_none() && v["gateway"]["auth"].get("token").is_none(), "{v}");
    assert_eq!(v["gateway"]["auth"]["mode"], "token");
    // baseHash: required when the file exists, must match, else refused (nothing to write).
    assert_eq!(plan_write(CFG, Some(current), &patch("{a: 1}", None)), Err(WriteRefused::MissingHash { current: hash.clone() }));
    let stale = file_hash(b"{}");
    assert_eq!(plan_write(CFG, Some(current), &patch("{a: 1}", Some(&stale))), Err(WriteRefused::StaleHash { current: hash.clone() }));
    // No file yet: no hash needed; the patch is the new file.
    let text = plan_write(CFG, None, &patch(r#"{gateway: {mode: "local"}}"#, None)).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({"gateway": {"mode": "local"}}));
    // config.apply replaces the whole file.
    let w = ConfigWrite { kind: WriteKind::Apply, raw: r#"{gateway: {mode: "local", port: 1234}}"#.into(), base_hash: Some(hash.clone()) };
    assert_eq!(
        serde_json::from_str::<Value>(&plan_write(CFG, Some(current), &w).unwrap()).unwrap(),
        json!({"gateway": {"mode": "local", "port": 1234}})
    );
}

#[test]
fn plan_write_refuses_invalid_results() {
    let current = br#"{gateway: {mode: "local", port: 28822}}"#;
    let hash = file_hash(current);
    let invalid = |r: Result<String, WriteRefused>, row: &str, needle: &str| match r {
        Err(WriteRefused::Invalid(issues)) => {
            let m = issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            assert!(m.contains(needle), "{row}: {m} should contain {needle:?}")
        }
        Err(WriteRefused::Syntax { line, column, message }) => {
            let m = format!("line {line} column {column}: {message}");
            assert!(m.contains(needle), "{row}: {m} should contain {needle:?}")
        }
        other => panic!("{row}: expected Invalid, got {other:?}"),
    };
    invalid(plan_write(CFG, Some(current), &patch(r#"{gateway: {port: "abc"}}"#, Some(&hash))), "wrong type", "gateway.port");
    invalid(plan_write(CFG, Some(current), &patch(r#"{gateway: {bind: "bogus"}}"#, Some(&hash))), "bad enum", "gateway.bind");
    invalid(plan_write(CFG, Some(current), &patch("{gateway: ", Some(&hash))), "raw not JSON5", "line");
    let apply = |raw: &str| ConfigWrite { kind: WriteKind::Apply, raw: raw.into(), base_hash: Some(hash.clone()) };
    invalid(plan_write(CFG, Some(current), &apply("[1, 2]")), "apply an array", "object");
    invalid(plan_write(CFG, Some(current), &apply("5")), "apply a number", "object");
    // A patch onto an unparsable current file is refused, not merged into garbage.
    let broken = b"{gateway: ";
    invalid(plan_write(CFG, Some(broken), &patch("{a: 1}", Some(&file_hash(broken)))), "broken current file", "current file");
    // The hash check comes first: a stale hash with an invalid patch is StaleHash.
    assert!(matches!(
        plan_write(CFG, Some(current), &patch(r#"{gateway: {port: "abc"}}"#, Some("sha256:v1:x"))),
        Err(WriteRefused::StaleHash { .. })
    ));
}

// ---- SecretRefs (§7.1) and secrets::resolve ------------------------------------------------

#[test]
fn secret_ref_grammar() {
    let obj = |source: &str, provider: Option<&str>, id: &str| {
        let mut v = json!({"source": source, "id": id});
        if let Some(p) = provider {
            v["provider"] = json!(p);
        }
        SecretRef::from_object(&v)
    };
    // Provider: ^[a-z][a-z0-9_-]{0,63}$.
    for (p, good) in [
        ("a", true),
        ("gw-file_2", true),
        (&*"a".repeat(64), true),
        (&*"a".repeat(65), false),
        ("A", false),
        ("1a", false),
        ("", false),
        ("a.b", false),
        ("-a", false),
    ] {
        assert_eq!(obj("env", Some(p), "X").is_ok(), good, "§7.1 provider {p:?}");
    }
    // env id: ^[A-Z][A-Z0-9_]{0,127}$.
    for (id, good) in [
        ("A", true),
        ("MY_TOKEN_2", true),
        (&*format!("A{}", "B".repeat(127)), true),
        (&*format!("A{}", "B".repeat(128)), false),
        ("a", false),
        ("_A", false),
        ("1A", false),
        ("A-B", false),
        ("", false),
    ] {
        assert_eq!(obj("env", Some("default"), id).is_ok(), good, "§7.1 env id {id:?}");
    }
    // file id: absolute JSON pointer or `value`.
    for (id, good) in [("/a/b", true), ("/", true), ("/a~1b/c~0d", true), ("value", true), ("a/b", false), ("", false), ("values", false)] {
        assert_eq!(obj("file", Some("gwfile"), id).is_ok(), good, "§7.1 file id {id:?}");
    }
    // exec id: ^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,255}$, no `.`/`..` segments.
    for (id, good) in [
        ("a", true),
        ("Vault/kv#token:v1.2-x", true),
        (&*"a".repeat(256), true),
        (&*"a".repeat(257), false),
        ("-a", false),
        ("a b", false),
        ("a/../b", false),
        ("a/./b", false),
        ("a/..", false),
        ("a/..b", true),
    ] {
        assert_eq!(obj("exec", Some("vault"), id).is_ok(), good, "§7.1 exec id {id:?}");
    }
    // Exactly three keys; a missing provider is the default alias; unknown sources refused.
    assert!(SecretRef::from_object(&json!({"source": "env", "provider": "default", "id": "X", "extra": 1})).is_err(), "§7.1: a 4th key");
    assert_eq!(obj("env", None, "X").unwrap(), SecretRef::env("X"), "§7.1: legacy ref without provider ⇒ default alias");
    assert!(obj("vault", Some("p"), "X").is_err(), "unknown source");
    assert!(SecretRef::from_object(&json!({"source": "env", "provider": "default", "id": 5})).is_err());
    assert!(SecretRef::from_object(&json!("env:X")).is_err());
    // Shorthand.
    assert_eq!(SecretRef::from_shorthand("${MY_TOKEN}"), Some(SecretRef::env("MY_TOKEN")));
    assert_eq!(SecretRef::from_shorthand("$MY_TOKEN"), Some(SecretRef::env("MY_TOKEN")));
    for s in ["${lower}", "a${B}", "${B}c", "$", "${}", "${A B}", "$1A", "plain"] {
        assert_eq!(SecretRef::from_shorthand(s), None, "§7.1 shorthand {s:?}");
    }
    // SecretInput: strings are plain unless a whole-value shorthand; objects are refs.
    assert_eq!(SecretInput::from_value(&json!("abc")), Ok(SecretInput::Plain("abc".into())));
    assert!(SecretInput::from_value(&json!(5)).is_err());
}

fn providers_of(v: Value) -> HashMap<String, (SecretSource, secrets::Provider)> {
    secrets::providers(&json!({"secrets": {"providers": v}})).expect("providers parse")
}

#[test]
fn secrets_resolve_env_and_file() {
    let mut io = FakeIo {
        env: env_of(&[("MYTOK", "reftoken"), ("EMPTY", "")]),
        files: [
            ("/s/secrets.json".to_string(), (0o600, r#"{"gateway": {"token": "t1", "n": 5}, "a/b": {"c~d": "escaped"}}"#.to_string())),
            ("/s/single".to_string(), (0o600, "t2\n".to_string())),
            ("/s/empty".to_string(), (0o600, "\n".to_string())),
            ("/s/open".to_string(), (0o644, "t3".to_string())),
            ("/s/group".to_string(), (0o640, "t4".to_string())),
            ("/s/notjson".to_string(), (0o400, "not json".to_string())),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let providers = providers_of(json!({
        "gwjson": {"source": "file", "path": "/s/secrets.json"},
        "gwfile": {"source": "file", "path": "/s/single", "mode": "singleValue"},
        "empty": {"source": "file", "path": "/s/empty", "mode": "singleValue"},
        "open": {"source": "file", "path": "/s/open", "mode": "singleValue"},
        "group": {"source": "file", "path": "/s/group", "mode": "singleValue"},
        "notjson": {"source": "file", "path": "/s/notjson"},
        "gone": {"source": "file", "path": "/s/gone", "mode": "singleValue"},
        "envalias": {"source": "env"},
    }));
    let r = |v: Value| SecretInput::from_value(&v).unwrap();
    let mut resolve = |v: Value| secrets::resolve(&r(v), &providers, &mut io).map(|s| s.expose().to_string());
    // Plain text is its own value.
    assert_eq!(resolve(json!("plain")), Ok("plain".into()));
    // env (§7.1): the process environment; missing/empty ⇒ error.
    assert_eq!(resolve(json!({"source": "env", "provider": "default", "id": "MYTOK"})), Ok("reftoken".into()));
    assert_eq!(resolve(json!("${MYTOK}")), Ok("reftoken".into()), "§7.1 shorthand resolves through env");
    for id in ["NOPE", "EMPTY"] {
        let e = resolve(json!({"source": "env", "provider": "default", "id": id})).unwrap_err();
        assert_eq!(e, SecretError(format!("Environment variable \"{id}\" is missing or empty.")), "§1.3 live text for {id}");
    }
    // file, JSON pointer (RFC 6901 escapes).
    assert_eq!(resolve(json!({"source": "file", "provider": "gwjson", "id": "/gateway/token"})), Ok("t1".into()));
    assert_eq!(resolve(json!({"source": "file", "provider": "gwjson", "id": "/a~1b/c~0d"})), Ok("escaped".into()));
    for id in ["/gateway/missing", "/gateway/n", "/gateway"] {
        let e = resolve(json!({"source": "file", "provider": "gwjson", "id": id})).unwrap_err();
        assert!(e.0.contains(id), "pointer {id}: {e}");
        assert!(!e.0.contains("t1"), "an error never shows a secret: {e}");
    }
    assert!(resolve(json!({"source": "file", "provider": "notjson", "id": "/a"})).unwrap_err().0.contains("not JSON"));
    // file, singleValue: the whole file minus the trailing newline; empty ⇒ error.
    assert_eq!(resolve(json!({"source": "file", "provider": "gwfile", "id": "value"})), Ok("t2".into()));
    assert!(resolve(json!({"source": "file", "provider": "empty", "id": "value"})).is_err());
    // Permissions (§7.1 live, checklist 80): group/world bits ⇒ insecure-permissions.
    for p in ["open", "group"] {
        let e = resolve(json!({"source": "file", "provider": p, "id": "value"})).unwrap_err();
        assert!(e.0.starts_with(&format!("secrets.providers.{p}.path")), "§7.1: names the provider path: {e}");
        assert!(e.0.contains("permissions are too open") && e.0.contains("insecure-permissions"), "§7.1: {e}");
        assert!(!e.0.contains("t3") && !e.0.contains("t4"), "no secret in the error: {e}");
        assert!(e.to_string().starts_with("SecretRefResolutionError: "), "{e}");
    }
    // A missing file.
    let e = resolve(json!({"source": "file", "provider": "gone", "id": "value"})).unwrap_err();
    assert!(e.0.contains("/s/gone"), "{e}");
    // Provider lookup: unknown alias, source mismatch.
    let e = resolve(json!({"source": "file", "provider": "nope", "id": "value"})).unwrap_err();
    assert!(e.0.contains("\"nope\" is not configured"), "§7.1: file refs need a matching provider: {e}");
    let e = resolve(json!({"source": "exec", "provider": "gwfile", "id": "k"})).unwrap_err();
    assert!(e.0.contains("is a file provider, not exec"), "§7.1: same source: {e}");
    // check_file_mode on its own.
    assert!(secrets::check_file_mode("/x", 0o100600).is_ok());
    assert!(secrets::check_file_mode("/x", 0o400).is_ok());
    for m in [0o644, 0o604, 0o620, 0o666, 0o700 | 0o001] {
        assert!(secrets::check_file_mode("/x", m).unwrap_err().contains("insecure-permissions"), "mode {m:o}");
    }
    // Provider parsing errors.
    assert!(
        secrets::providers(&json!({"secrets": {"providers": {"x": {"source": "file"}}}})).unwrap_err().contains("secrets.providers.x.path")
    );
    assert!(
        secrets::providers(&json!({"secrets": {"providers": {"x": {"source": "exec"}}}}))
            .unwrap_err()
            .contains("secrets.providers.x.command")
    );
    assert!(secrets::providers(&json!({"secrets": {"providers": {"x": {"source": "vault"}}}})).is_err());
    assert!(secrets::providers(&json!({})).unwrap().is_empty());
}

#[test]
fn secrets_resolve_exec_protocol() {
    let providers = providers_of(json!({
        "vault": {"source": "exec", "command": "/usr/local/bin/vault-get", "args": ["--json", "x"], "timeoutMs": 1500, "maxOutputBytes": 4096},
        "plain": {"source": "exec", "command": "/bin/secret"},
    }));
    let run = |answer: Result<String, String>, id: &str, provider: &str| {
        let command = if provider == "vault" { "/usr/local/bin/vault-get" } else { "/bin/secret" };
        let mut io = FakeIo { exec: [(command.to_string(), answer)].into_iter().collect(), ..Default::default() };
        let input = SecretInput::Ref(SecretRef::from_object(&json!({"source": "exec", "provider": provider, "id": id})).unwrap());
        let out = secrets::resolve(&input, &providers, &mut io).map(|s| s.expose().to_string());
        (out, io.runs)
    };
    // §7.1: stdin {protocolVersion:1, provider, ids}; stdout {protocolVersion:1, values, errors?}.
    let (out, runs) = run(Ok(r#"{"protocolVersion":1,"values":{"db/pass":"s3cr3t"}}"#.into()), "db/pass", "vault");
    assert_eq!(out, Ok("s3cr3t".into()));
    assert_eq!(runs.len(), 1);
    let (command, args, stdin, timeout, max) = &runs[0];
    assert_eq!(command, "/usr/local/bin/vault-get");
    assert_eq!(args, &strings(&["--json", "x"]));
    assert_eq!(serde_json::from_str::<Value>(stdin).unwrap(), json!({"protocolVersion": 1, "provider": "vault", "ids": ["db/pass"]}));
    assert_eq!((*timeout, *max), (Duration::from_millis(1500), 4096), "timeoutMs / maxOutputBytes from the provider");
    // Defaults: 5000 ms, 1 MiB (§7.1).
    let (_, runs) = run(Ok(r#"{"protocolVersion":1,"values":{"k":"v"}}"#.into()), "k", "plain");
    assert_eq!((runs[0].3, runs[0].4), (Duration::from_millis(5000), 1024 * 1024), "§7.1 exec defaults");
    // Errors.
    let rows: Vec<(&str, Result<String, String>, &str)> = vec![
        ("errors map names the id", Ok(r#"{"protocolVersion":1,"values":{},"errors":{"k":"access denied"}}"#.into()), "access denied"),
        ("errors as an object", Ok(r#"{"protocolVersion":1,"values":{},"errors":{"k":{"message":"nope"}}}"#.into()), "nope"),
        ("errors win over values", Ok(r#"{"protocolVersion":1,"values":{"k":"v"},"errors":{"k":"revoked"}}"#.into()), "revoked"),
        ("no value", Ok(r#"{"protocolVersion":1,"values":{}}"#.into()), "no value for k"),
        ("empty value", Ok(r#"{"protocolVersion":1,"values":{"k":""}}"#.into()), "no value for k"),
        ("non-string value", Ok(r#"{"protocolVersion":1,"values":{"k":5}}"#.into()), "no value for k"),
        ("wrong protocolVersion", Ok(r#"{"protocolVersion":2,"values":{"k":"v"}}"#.into()), "protocolVersion 1"),
        ("missing protocolVersion", Ok(r#"{"values":{"k":"v"}}"#.into()), "protocolVersion 1"),
        ("not JSON", Ok("v\n".into()), "not JSON"),
        ("command failure (timeout)", Err("/bin/secret timed out after 5000 ms".into()), "timed out"),
    ];
    for (row, answer, needle) in rows {
        let (out, _) = run(answer, "k", "plain");
        let e = out.expect_err(row);
        assert!(e.0.contains(needle), "§7.1 exec {row}: {e}");
    }
    // The request builder and response parser on their own.
    assert_eq!(
        serde_json::from_str::<Value>(&secrets::exec_request("p", &["a", "b"])).unwrap(),
        json!({"protocolVersion": 1, "provider": "p", "ids": ["a", "b"]})
    );
    assert_eq!(secrets::parse_exec_response(" {\"protocolVersion\":1,\"values\":{\"a/b\":\"v\"}}\n", "a/b"), Ok("v".into()));
}

// ---- L. reload planner (§6, table L) -------------------------------------------------------

const RELOAD_BASE: &str = r#"{gateway: {mode: "local", port: 18789, reload: {mode: "MODE"}, auth: {mode: "token", token: "a", rateLimit: {maxAttempts: 10}}, controlUi: {allowedOrigins: ["http://a"]}, remote: {url: "ws://x"}}, logging: {level: "info"}}"#;

#[test]
fn table_l_every_mode_by_change_kind() {
    // (kind, from, to): hot = gateway.controlUi.allowedOrigins / gateway.auth.rateLimit (§6.4 hot),
    // restart = gateway.port (§6.4 catch-all `gateway`), none = gateway.remote / logging (§6.4 none),
    // invalid = the edit does not load (§6.2: skipped before any plan).
    let edits: &[(&str, &str, &str)] = &[
        ("none", "ws://x", "ws://y"),
        ("none", "level: \"info\"", "level: \"debug\""),
        ("hot", "http://a", "http://b"),
        ("hot", "maxAttempts: 10", "maxAttempts: 3"),
        ("restart", "port: 18789", "port: 18790"),
        ("restart+hot", "port: 18789, ", "port: 18790, trustedProxies: [\"10.0.0.1\"], "),
        ("invalid", "port: 18789", "port: \"abc\""),
        ("invalid", "{gateway", "{gateway,"),
        ("invalid", "ws://x\"}", "ws://x\""),
    ];
    for mode in ["hybrid", "hot", "restart", "off"] {
        let base = RELOAD_BASE.replace("MODE", mode);
        let old = load_ok(&base, &[]);
        for (kind, from, to) in edits {
            let text = base.replacen(from, to, 1);
            assert_ne!(text, base, "edit {from} → {to} applies");
            let row = format!("table L: mode {mode}, {kind} edit {from} → {to}");
            if *kind == "invalid" {
                // Row 1: the candidate never reaches the planner.
                assert!(load_with(&text, &[], &mut Files::default()).is_err(), "{row}: must be a load error");
                continue;
            }
            let new = load_ok(&text, &[]);
            let got = reload::plan(&old, &new);
            let ok = match (mode, *kind) {
                ("off", _) => matches!(got, Plan::Disabled { .. }),
                (_, "none") => matches!(&got, Plan::SwapOnly { paths } if !paths.is_empty()),
                ("hybrid" | "hot", "hot") => matches!(&got, Plan::Hot { hot, deferred } if !hot.is_empty() && deferred.is_empty()),
                ("restart", "hot") => matches!(got, Plan::Restart { .. }),
                ("hybrid" | "restart", "restart" | "restart+hot") => matches!(got, Plan::Restart { .. }),
                ("hot", "restart") => {
                    matches!(&got, Plan::Hot { hot, deferred } if hot.is_empty() && deferred == &strings(&["gateway.port"]))
                }
                ("hot", "restart+hot") => {
                    matches!(&got, Plan::Hot { hot, deferred } if hot == &strings(&["gateway.trustedProxies"]) && deferred == &strings(&["gateway.port"]))
                }
                _ => unreachable!(),
            };
            assert!(ok, "{row}: got {got:?}");
        }
        // Unchanged ⇒ commit silently (table L row 2).
        assert_eq!(reload::plan(&old, &load_ok(&base, &[])), Plan::Unchanged, "table L row 2, mode {mode}");
    }
    // Hybrid restart reasons list only the restart paths (table L row 4).
    let old = load_ok(&RELOAD_BASE.replace("MODE", "hybrid"), &[]);
    let new = load_ok(&RELOAD_BASE.replace("MODE", "hybrid").replace("port: 18789", "port: 18790").replace("http://a", "http://b"), &[]);
    assert_eq!(reload::plan(&old, &new), Plan::Restart { reasons: strings(&["gateway.port"]) });
    // §6.1: the new mode takes effect from the candidate itself ("off" written ⇒ disabled).
    let new = load_ok(&RELOAD_BASE.replace("MODE", "off").replace("http://a", "http://b"), &[]);
    assert!(matches!(reload::plan(&old, &new), Plan::Disabled { .. }), "§6.1: writing reload.mode off is itself disabled");
}

#[test]
fn table_l_classify_and_diff() {
    // §6.3 diff: recurse into objects, arrays compare whole, `<root>` for the root.
    let a = json!({"gateway": {"port": 1, "auth": {"token": {"source": "env", "provider": "default", "id": "A"}}}, "arr": [1, 2]});
    let b = json!({"gateway": {"port": 1, "auth": {"token": {"source": "env", "provider": "default", "id": "B"}}, "remote": {"url": "x"}}, "arr": [1, 3]});
    assert_eq!(diff_paths(&a, &b), strings(&["gateway.auth.token.id", "gateway.remote", "arr"]), "§6.3 examples");
    assert_eq!(diff_paths(&json!(1), &json!(2)), strings(&["<root>"]));
    assert!(diff_paths(&a, &a).is_empty());
    // §6.4 rule table rows (built-in, no plugins), longest prefix wins, unmatched ⇒ restart.
    let rows: &[(&str, Kind)] = &[
        ("gateway.remote", Kind::None),
        ("gateway.remote.url", Kind::None),
        ("gateway.reload.mode", Kind::None),
        ("meta.lastTouchedVersion", Kind::None),
        ("logging.level", Kind::None),
        ("identity", Kind::None),
        ("wizard.x", Kind::None),
        ("secrets.providers.gwfile", Kind::None),
        ("ui.assistant", Kind::None),
        ("commands.native", Kind::None),
        ("gateway.port", Kind::Restart),
        ("gateway.bind", Kind::Restart),
        ("gateway.customBindHost", Kind::Restart),
        ("gateway.auth.mode", Kind::Restart),
        ("gateway.auth.token", Kind::Restart),
        ("gateway.auth.password", Kind::Restart),
        ("gateway.controlUi.basePath", Kind::Restart),
        ("gateway.tls.enabled", Kind::Restart),
        ("gateway.tailscale.mode", Kind::Restart),
        ("env.vars.X", Kind::Restart),
        ("discovery.wideArea", Kind::Restart),
        ("browser.enabled", Kind::Restart),
        ("totallyUnknownRoot", Kind::Restart),
        ("gatewayx", Kind::Restart),
        ("gateway.auth.rateLimit", Kind::Hot),
        ("gateway.auth.rateLimit.maxAttempts", Kind::Hot),
        ("gateway.auth.trustedProxy.allowUsers", Kind::Hot),
        ("gateway.auth.allowTailscale", Kind::Hot),
        ("gateway.auth.identityScopes", Kind::Hot),
        ("gateway.trustedProxies", Kind::Hot),
        ("gateway.allowRealIpFallback", Kind::Hot),
        ("gateway.roles", Kind::Hot),
        ("gateway.controlUi.enabled", Kind::Hot),
        ("gateway.controlUi.allowedOrigins", Kind::Hot),
        ("gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback", Kind::Hot),
        ("gateway.http.endpoints.chatCompletions.enabled", Kind::Hot),
        ("gateway.http.securityHeaders.strictTransportSecurity", Kind::Hot),
        ("gateway.tools", Kind::Hot),
        ("hooks.token", Kind::Hot),
        ("models.providers.fake", Kind::Hot),
        ("plugins.entries.x.enabled", Kind::Hot),
        ("tools.exec", Kind::Hot),
    ];
    for (path, want) in rows {
        assert_eq!(classify(path).0, *want, "§6.4: {path}");
    }
}

#[test]
fn table_l_credential_rotation_exception() {
    // §6.3 table, every row.
    let env = [("A_TOK", "a-value"), ("B_TOK", "b-value")];
    let p = |a: &str, b: &str| reload::plan(&load_ok(a, &env), &load_ok(b, &env));
    let hot = |x: &Plan| matches!(x, Plan::Hot { hot, deferred } if !hot.is_empty() && deferred.is_empty());
    let restart = |x: &Plan| matches!(x, Plan::Restart { .. });
    let rows: &[(&str, &str, &str, bool)] = &[
        ("§6.3: mode:token token a→b ⇒ hot", r#"{auth: {mode: "token", token: "a"}}"#, r#"{auth: {mode: "token", token: "b"}}"#, true),
        ("§6.3: no mode, plaintext token a→b ⇒ hot", r#"{auth: {token: "a"}}"#, r#"{auth: {token: "b"}}"#, true),
        (
            "§6.3: no mode, plaintext → SecretRef ⇒ restart",
            r#"{auth: {token: "a"}}"#,
            r#"{auth: {token: {source: "env", provider: "default", id: "B_TOK"}}}"#,
            false,
        ),
        ("§6.3: no mode, plaintext → ${VAR} shorthand ⇒ restart", r#"{auth: {token: "a"}}"#, r#"{auth: {token: "${B_TOK}"}}"#, false),
        (
            "§6.3: no mode, SecretRef id A→B ⇒ restart",
            r#"{auth: {token: {source: "env", provider: "default", id: "A_TOK"}}}"#,
            r#"{auth: {token: {source: "env", provider: "default", id: "B_TOK"}}}"#,
            false,
        ),
        (
            "§6.3: mode:token, SecretRef id A→B ⇒ hot",
            r#"{auth: {mode: "token", token: {source: "env", provider: "default", id: "A_TOK"}}}"#,
            r#"{auth: {mode: "token", token: {source: "env", provider: "default", id: "B_TOK"}}}"#,
            true,
        ),
        (
            "§6.3: mode:password, password a→b ⇒ hot",
            r#"{auth: {mode: "password", password: "a"}}"#,
            r#"{auth: {mode: "password", password: "b"}}"#,
            true,
        ),
        (
            "§6.3: mode:password, token added ⇒ hot",
            r#"{auth: {mode: "password", password: "a"}}"#,
            r#"{auth: {mode: "password", password: "a", token: "t"}}"#,
            true,
        ),
        (
            "§6.3: trusted-proxy password change ⇒ restart",
            r#"{auth: {mode: "trusted-proxy", password: "a"}}"#,
            r#"{auth: {mode: "trusted-proxy", password: "b"}}"#,
            false,
        ),
        ("§6.3: mode:none, token added ⇒ restart", r#"{auth: {mode: "none"}}"#, r#"{auth: {mode: "none", token: "t"}}"#, false),
        ("§6.3: implicit token → implicit password ⇒ restart", r#"{auth: {token: "a"}}"#, r#"{auth: {password: "b"}}"#, false),
    ];
    for (row, a, b, want_hot) in rows {
        let wrap = |s: &str| format!("{{gateway: {{mode: \"local\", {}}}}}", &s[1..s.len() - 1]);
        let got = p(&wrap(a), &wrap(b));
        assert!(if *want_hot { hot(&got) } else { restart(&got) }, "{row}: got {got:?}");
    }
}

#[test]
fn table_l_adding_or_removing_a_whole_object_with_hot_rules_below_is_hot() {
    // §6.3 diff: recurse while both sides are objects "or when a rule prefix lies below the current
    // path". Adding a whole `gateway.controlUi` object (rules `gateway.controlUi.allowedOrigins` …
    // lie below it) is therefore the hot path `gateway.controlUi.allowedOrigins`, not the
    // catch-all `gateway` (restart). Same for `gateway.http` (rule `gateway.http.endpoints`).
    let base = r#"{gateway: {mode: "local", auth: {mode: "token", token: "a"}}}"#;
    let with_origins =
        r#"{gateway: {mode: "local", auth: {mode: "token", token: "a"}, controlUi: {allowedOrigins: ["https://a.example"]}}}"#;
    let with_http =
        r#"{gateway: {mode: "local", auth: {mode: "token", token: "a"}, http: {endpoints: {chatCompletions: {enabled: true}}}}}"#;
    let hot_only = |p: &Plan| matches!(p, Plan::Hot { hot, deferred } if !hot.is_empty() && deferred.is_empty());
    let added = reload::plan(&load_ok(base, &[]), &load_ok(with_origins, &[]));
    assert!(hot_only(&added), "§6.3: adding gateway.controlUi.allowedOrigins (whole object) is hot, got {added:?}");
    assert_eq!(added, Plan::Hot { hot: strings(&["gateway.controlUi.allowedOrigins"]), deferred: vec![] }, "§6.3 reported path");
    let removed = reload::plan(&load_ok(with_origins, &[]), &load_ok(base, &[]));
    assert!(hot_only(&removed), "§6.3: removing the whole gateway.controlUi object is hot, got {removed:?}");
    let http = reload::plan(&load_ok(base, &[]), &load_ok(with_http, &[]));
    assert!(hot_only(&http), "§6.3: adding gateway.http.endpoints (whole gateway.http object) is hot, got {http:?}");
}

#[test]
fn limit_overrides_are_applied_and_bad_ones_refused() {
    // Issue 11: the stream limits an operator may change, by environment variable.
    let r =
        ok(decide(Some(LOCAL_CFG), &[("CLAWGATE_MAX_REPLY_BYTES", "1000"), ("CLAWGATE_SLOW_CLIENT_TIMEOUT_MS", "2500")], cli()), "limits");
    assert_eq!(r.settings.limits.max_reply_bytes, 1000);
    assert_eq!(r.settings.limits.slow_client_timeout, std::time::Duration::from_millis(2500));
    assert_eq!(r.settings.limits.stream_buffer_bytes, 256 * 1024, "untouched: the default");
    for bad in ["0", "-5", "lots", ""] {
        let e = err(decide(Some(LOCAL_CFG), &[("CLAWGATE_STREAM_BUFFER_BYTES", bad)], cli()), "bad limit");
        assert_eq!(e.exit_code, 78, "{bad:?}");
        assert!(e.message.starts_with("Invalid CLAWGATE_STREAM_BUFFER_BYTES"), "{}", e.message);
    }
}
