//! The gateway's log (spec operator §1): clawgate writes its own log as JSON lines in the
//! reference's shape where the reference keeps it (`$TMPDIR/openclaw/openclaw-<port>-<date>.log`
//! for a non-default port), `logs.tail` reads it back by cursor, and the real `openclaw logs`
//! (plain, `--json`, `--follow`) and clawgate's own `clawgate logs` show its lines live.
//! (`lite_e2e`: the same against `clawgate-lite`.)

use std::path::PathBuf;
use std::time::Duration;

use clawgate_tests::openclaw::openclaw;
use clawgate_tests::process::run_clawgate;
use clawgate_tests::ws::connect_cli;
use clawgate_tests::{CmdOutput, Gateway, GatewayBuilder};
use serde_json::{Value, json};

const CLI_TIMEOUT: Duration = Duration::from_secs(90);

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(f)
}

/// The log files the gateway wrote (its test's `$TMPDIR/openclaw/`).
fn log_files(gw: &Gateway) -> Vec<PathBuf> {
    let dir = gw.home_path().join("tmp").join("openclaw");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files
}

/// One `logs.tail` call over a fresh operator.read connection.
fn tail(gw: &Gateway, params: Value) -> Result<Value, String> {
    let (url, token) = (gw.url(), gw.token());
    block_on(async move {
        let mut c = connect_cli(&url, &token, &["operator.read"]).await.map_err(|e| e.to_string())?;
        let res = c.request("logs.tail", Some(params), false, Duration::from_secs(10)).await.map_err(|e| e.to_string());
        c.close().await;
        let frame = res?;
        if frame.ok { Ok(frame.payload.unwrap_or(Value::Null)) } else { Err(frame.error.map(|e| e.message).unwrap_or_default()) }
    })
}

/// Open and close one authenticated connection (the gateway logs both).
fn touch(gw: &Gateway) {
    let (url, token) = (gw.url(), gw.token());
    block_on(async move {
        let c = connect_cli(&url, &token, &["operator.read"]).await.expect("connect");
        c.close().await;
    });
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn cli(gw: &Gateway, args: &[&str], timeout: Duration) -> CmdOutput {
    let (url, token) = (gw.url(), gw.token());
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--url", &url, "--token", &token]);
    openclaw(&full, timeout)
}

#[test]
fn the_log_file_has_the_reference_shape_and_logs_tail_follows_it_by_cursor() {
    let gw = GatewayBuilder::new().start();
    wait_for("the log file", || !log_files(&gw).is_empty());
    let files = log_files(&gw);
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    let port = gw.addr().port();
    assert!(name.starts_with(&format!("openclaw-{port}-")) && name.ends_with(".log"), "per-gateway daily name: {name}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["0"], r#"{"subsystem":"gateway"}"#, "{first}");
    assert_eq!(first["_meta"]["logLevelName"], "INFO");
    assert!(first["time"].as_str().is_some_and(|t| t.len() == 29), "ISO with offset: {first}");
    assert!(!text.contains(&gw.token()), "the token never reaches the log");

    // First read: the whole (small) file, the path of the file read, cursor = size.
    let page = tail(&gw, json!({"limit": 50})).unwrap();
    assert_eq!(page["file"], files[0].display().to_string());
    assert_eq!(page["cursor"], page["size"]);
    assert_eq!((page["reset"].as_bool(), page["truncated"].as_bool()), (Some(false), Some(false)), "{page}");
    let lines = page["lines"].as_array().unwrap();
    assert!(lines.iter().any(|l| l.as_str().unwrap().contains("listening on ws://")), "{page}");
    // The tail's own connection is already in the file by the next read: only new lines come.
    let cursor = page["cursor"].as_u64().unwrap();
    touch(&gw);
    let next = tail(&gw, json!({"cursor": cursor})).unwrap();
    let new: Vec<&str> = next["lines"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(new.iter().any(|l| l.contains("⇄ connected role=operator")), "new lines after the cursor: {next}");
    assert!(next["cursor"].as_u64().unwrap() > cursor);
    assert!(new.iter().all(|l| serde_json::from_str::<Value>(l).is_ok()), "complete lines only");
    // A cursor past the end (the file was replaced): reset, read from the window.
    let reset = tail(&gw, json!({"cursor": 999_999_999_999u64, "limit": 1})).unwrap();
    assert_eq!((reset["reset"].as_bool(), reset["lines"].as_array().unwrap().len()), (Some(true), 1), "{reset}");
    // Far behind with a small window: skip ahead and say how far.
    let skip = tail(&gw, json!({"cursor": 0, "maxBytes": 200})).unwrap();
    assert_eq!((skip["reset"].as_bool(), skip["truncated"].as_bool()), (Some(true), Some(true)), "{skip}");
    assert_eq!(skip["skippedBytes"].as_u64(), Some(skip["size"].as_u64().unwrap() - 200));
    // The reference's validation messages.
    assert_eq!(tail(&gw, json!({"limit": 0})).unwrap_err(), "invalid logs.tail params: at /limit: must be >= 1");
    assert_eq!(tail(&gw, json!({"follow": true})).unwrap_err(), "invalid logs.tail params: at root: unexpected property 'follow'");
}

#[test]
fn openclaw_logs_plain_json_and_follow_show_the_gateways_lines() {
    let gw = GatewayBuilder::new().start();
    wait_for("the log file", || !log_files(&gw).is_empty());
    let out = cli(&gw, &["logs", "--limit", "20"], CLI_TIMEOUT);
    assert!(out.success(), "openclaw logs: {out:?}");
    let file = log_files(&gw)[0].display().to_string();
    assert!(out.stdout.contains(&format!("Log file: {file}")), "{}", out.stdout);
    assert!(
        out.stdout.lines().any(|l| l.contains(" info gateway listening on ws://")),
        "plain `time level subsystem message`:\n{}",
        out.stdout
    );

    let out = cli(&gw, &["logs", "--json", "--limit", "20"], CLI_TIMEOUT);
    assert!(out.success(), "openclaw logs --json: {out:?}");
    let records: Vec<Value> = out.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(records[0]["type"], "meta", "{}", out.stdout);
    assert_eq!(records[0]["file"], file);
    let logs: Vec<&Value> = records.iter().filter(|r| r["type"] == "log").collect();
    assert!(logs.iter().any(|r| r["subsystem"] == "gateway" && r["level"] == "info"), "{}", out.stdout);

    // --follow: lines written while it runs appear (one connection per poll, cursor carried).
    let follower = {
        let (url, token) = (gw.url(), gw.token());
        std::thread::spawn(move || {
            openclaw(&["logs", "--follow", "--json", "--interval", "300", "--url", &url, "--token", &token], Duration::from_secs(12))
        })
    };
    std::thread::sleep(Duration::from_secs(6));
    let marker = block_on({
        let (url, token) = (gw.url(), gw.token());
        async move {
            let c = connect_cli(&url, &token, &["operator.read"]).await.expect("connect");
            let id = c.hello["server"]["connId"].as_str().unwrap_or_default().to_string();
            c.close().await;
            id
        }
    });
    assert!(!marker.is_empty());
    let out = follower.join().unwrap();
    assert!(out.timed_out, "--follow keeps running until stopped: {out:?}");
    assert!(
        out.stdout.lines().any(|l| l.contains("\"type\":\"log\"") && l.contains(&format!("disconnected conn={marker}"))),
        "the follower printed the line of a connection made while it ran ({marker}):\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn clawgate_logs_and_json_console_output() {
    let gw = GatewayBuilder::new().arg("--log-format").arg("json").start();
    wait_for("the log file", || !log_files(&gw).is_empty());
    // The console speaks JSON lines too (journald, log shippers).
    let console: Vec<Value> = gw.stderr().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        console.iter().any(|v| v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("listening on ws://"))),
        "{}",
        gw.stderr()
    );

    let url = gw.url();
    let token = gw.token();
    let out = run_clawgate(gw.home_path(), &["logs", "--json", "--limit", "5", "--url", &url, "--token", &token], &[]);
    assert!(out.success(), "{out:?}");
    let records: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(records[0]["type"], "meta");
    assert!(records[1..].iter().all(|r| r["type"] == "log" && r["raw"].is_string()), "{}", out.stdout);
    let out = run_clawgate(gw.home_path(), &["logs", "--limit", "0", "--url", &url, "--token", &token], &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
}

#[test]
fn a_full_file_rotates_and_logs_tail_keeps_reading_the_current_one() {
    let gw = GatewayBuilder::new().config(r#"{"gateway": {"mode": "local"}, "logging": {"maxFileBytes": 3000}}"#).start();
    wait_for("the log file", || !log_files(&gw).is_empty());
    for _ in 0..12 {
        touch(&gw);
    }
    wait_for("a rotated file", || log_files(&gw).iter().any(|p| p.to_string_lossy().ends_with(".1.log")));
    for f in log_files(&gw) {
        let size = std::fs::metadata(&f).unwrap().len();
        assert!(size <= 3000, "{} is {size} bytes", f.display());
    }
    let page = tail(&gw, json!({})).unwrap();
    assert!(!page["file"].as_str().unwrap().ends_with(".1.log"), "the current file is read: {page}");
    assert!(!page["lines"].as_array().unwrap().is_empty());
}

/// `clawgate logs` without `--url` when the local gateway does not answer: the same page, read
/// from the gateway's own file (as `openclaw logs` does); `--follow` does not fall back.
#[test]
fn clawgate_logs_reads_the_file_when_the_gateway_is_down() {
    let mut gw = GatewayBuilder::new()
        .config(r#"{"gateway": {"mode": "local", "port": {{PORT}}, "auth": {"token": "tok-logs-fallback"}}}"#)
        .no_token()
        .port_from_config()
        .start();
    wait_for("the log file", || !log_files(&gw).is_empty());
    gw.stop();
    let out = run_clawgate(gw.home_path(), &["logs", "--limit", "50"], &[]);
    assert!(out.success(), "{out:?}");
    assert!(out.stderr.contains("Gateway not reachable; showing the local log file."), "{}", out.stderr);
    assert!(out.stdout.contains(&format!("Log file: {}", log_files(&gw)[0].display())), "{}", out.stdout);
    assert!(out.stdout.contains("info gateway shutdown complete"), "the gateway's last line, read from its file:\n{}", out.stdout);
    let out = run_clawgate(gw.home_path(), &["logs", "--follow", "--timeout", "1000"], &[]);
    assert_eq!(out.code, Some(1), "no fallback while following: {out:?}");
}
