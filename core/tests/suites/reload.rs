//! Hot-reload planning (config-auth-reload §6, decision table L): the debouncer on virtual time
//! and the plan for every mode × kind of change. Each row cites the spec.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clawgate_core::config::file::{IncludeReader, LoadedConfig, load};
use clawgate_core::config::reload::{Debouncer, Due, MISSING_RETRY_DELAY, Plan, plan};
use common::t0;

struct NoIncludes;
impl IncludeReader for NoIncludes {
    fn read(&mut self, _: &Path) -> Result<String, String> {
        Err("no includes here".into())
    }
}

fn cfg(text: &str) -> LoadedConfig {
    let env = |n: &str| (n == "MYTOK").then(|| "reftoken".to_string());
    load("/c/openclaw.json", text, &env, &mut NoIncludes, &Vec::<PathBuf>::new()).unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn debounce_settles_then_coalesces_writes() {
    // §6.2: 200 ms stability + 300 ms debounce; writes 100 ms apart coalesce into one evaluation.
    let t0 = t0();
    let mut d = Debouncer::new(Some(vec![1]));
    d.observe(t0, Some(vec![2]));
    d.observe(t0 + ms(100), Some(vec![3]));
    assert_eq!(d.poll_timeout(), Some(t0 + ms(600)));
    assert_eq!(d.handle_timeout(t0 + ms(599)), Due::Nothing);
    assert_eq!(d.handle_timeout(t0 + ms(600)), Due::Evaluate);
    assert_eq!(d.poll_timeout(), None);
    // The same fingerprint again is not a change.
    d.observe(t0 + ms(700), Some(vec![3]));
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn a_deleted_file_is_retried_twice_then_skipped() {
    // §6.2 / checklist 63: two retries at 150 ms, then `config reload skipped (config file not found)`.
    let t0 = t0();
    let mut d = Debouncer::new(Some(vec![1]));
    d.observe(t0, None);
    let first = t0 + ms(500);
    assert_eq!(d.handle_timeout(first), Due::Nothing);
    assert_eq!(d.missing_retries(), 1);
    assert_eq!(d.handle_timeout(first + MISSING_RETRY_DELAY), Due::Nothing);
    assert_eq!(d.missing_retries(), 2);
    assert_eq!(d.handle_timeout(first + MISSING_RETRY_DELAY * 2), Due::SkipMissing);
    // A file that comes back in the meantime is evaluated normally.
    let mut d = Debouncer::new(Some(vec![1]));
    d.observe(t0, None);
    assert_eq!(d.handle_timeout(t0 + ms(500)), Due::Nothing);
    d.observe(t0 + ms(550), Some(vec![9]));
    assert_eq!(d.handle_timeout(t0 + ms(1050)), Due::Evaluate);
}

const BASE: &str = r#"{gateway: {mode: "local", port: 18789, auth: {mode: "token", token: "a"}, controlUi: {allowedOrigins: ["http://a"]}, remote: {url: "ws://x"}}, logging: {level: "info"}}"#;

fn with(mode: &str, edit: &str) -> (LoadedConfig, LoadedConfig) {
    let old = cfg(&BASE.replace("mode: \"local\"", &format!("mode: \"local\", reload: {{mode: \"{mode}\"}}")));
    let new = cfg(&BASE
        .replace("mode: \"local\"", &format!("mode: \"local\", reload: {{mode: \"{mode}\"}}"))
        .replace(edit.split('|').next().unwrap(), edit.split('|').nth(1).unwrap()));
    (old, new)
}

#[test]
fn plan_table_every_mode_by_kind() {
    let hot = "http://a|http://b"; // gateway.controlUi.allowedOrigins: hot (§6.4)
    let restart = "port: 18789|port: 18790"; // gateway.port: restart (§6.4 catch-all `gateway`)
    let none = "ws://x|ws://y"; // gateway.remote: none (§6.4)
    let rows: &[(&str, &str, &str)] = &[
        ("hybrid", hot, "hot"),
        ("hybrid", restart, "restart"),
        ("hybrid", none, "swap"),
        ("hot", hot, "hot"),
        ("hot", restart, "hot-deferred"),
        ("hot", none, "swap"),
        ("restart", hot, "restart"),
        ("restart", restart, "restart"),
        ("restart", none, "swap"),
        ("off", hot, "disabled"),
        ("off", restart, "disabled"),
        ("off", none, "disabled"),
    ];
    for (mode, edit, want) in rows {
        let (old, new) = with(mode, edit);
        let got = match plan(&old, &new) {
            Plan::Hot { deferred, .. } if !deferred.is_empty() => "hot-deferred",
            Plan::Hot { .. } => "hot",
            Plan::Restart { .. } => "restart",
            Plan::SwapOnly { .. } => "swap",
            Plan::Disabled { .. } => "disabled",
            Plan::Unchanged => "unchanged",
        };
        assert_eq!(got, *want, "mode {mode}, edit {edit}");
    }
    let (old, new) = with("hybrid", "level: \"info\"|level: \"info\"");
    assert_eq!(plan(&old, &new), Plan::Unchanged);
}

#[test]
fn credential_rotation_exception() {
    // §6.3 table.
    let p = |a: &str, b: &str| plan(&cfg(a), &cfg(b));
    let hot = |x: Plan| matches!(x, Plan::Hot { .. });
    let restart = |x: Plan| matches!(x, Plan::Restart { .. });
    assert!(
        hot(p(r#"{gateway: {auth: {mode: "token", token: "a"}}}"#, r#"{gateway: {auth: {mode: "token", token: "b"}}}"#)),
        "mode:token a→b is hot"
    );
    assert!(hot(p(r#"{gateway: {auth: {token: "a"}}}"#, r#"{gateway: {auth: {token: "b"}}}"#)), "no mode, plaintext a→b is hot");
    assert!(
        restart(p(r#"{gateway: {auth: {token: "a"}}}"#, r#"{gateway: {auth: {token: "${MYTOK}"}}}"#)),
        "no mode, plaintext → ref restarts"
    );
    assert!(hot(p(r#"{gateway: {auth: {mode: "password", password: "a"}}}"#, r#"{gateway: {auth: {mode: "password", password: "b"}}}"#)));
    assert!(
        restart(p(r#"{gateway: {auth: {mode: "none"}}}"#, r#"{gateway: {auth: {mode: "none", token: "t"}}}"#)),
        "mode:none, token added restarts"
    );
    assert!(
        restart(p(r#"{gateway: {auth: {token: "a"}}}"#, r#"{gateway: {auth: {password: "b"}}}"#)),
        "implicit token → implicit password restarts"
    );
}
