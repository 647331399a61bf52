//! Smoke test: the harness, in a tiny configuration, against `bench-echo` and a spawned
//! `clawgate`, produces complete, well-formed results. No timing assertions — this keeps the
//! benchmark compiling and working in CI, it does not benchmark anything.
//!
//! The gateway binary: `$CLAWGATE_BIN` if set, else `target/<profile>/clawgate`, built with
//! `cargo build -p clawgate-tokio --bin clawgate` (a no-op when it is up to date).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `target/<profile>` of this test executable (`target/debug/deps/smoke-HASH`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("exe dir");
    if dir.file_name().is_some_and(|n| n == "deps") { dir.parent().expect("profile dir").to_path_buf() } else { dir.to_path_buf() }
}

fn clawgate_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CLAWGATE_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CLAWGATE_BIN={} does not exist", p.display());
        return p;
    }
    let dir = profile_dir();
    // CI builds the workspace first and sets CLAWGATE_NO_BUILD: use that binary as it is (as the
    // e2e harness does) instead of a one-package build that resolves features differently.
    let built = dir.join("clawgate");
    if built.is_file() && std::env::var_os("CLAWGATE_NO_BUILD").is_some_and(|v| !v.is_empty() && v != "0") {
        return built;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).args(["build", "-q", "-p", "clawgate-tokio", "--bin", "clawgate"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let st = cmd.status().expect("run cargo build");
    assert!(st.success(), "cargo build -p clawgate-tokio --bin clawgate failed: {st}");
    let bin = dir.join("clawgate");
    assert!(bin.is_file(), "{} missing after build", bin.display());
    bin
}

fn temp_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("clawgate-bench-smoke-{}-{name}", std::process::id()))
}

#[test]
fn tiny_run_produces_complete_results() {
    let echo = env!("CARGO_BIN_EXE_bench-echo");
    let harness = env!("CARGO_BIN_EXE_clawgate-bench");
    let gateway = clawgate_bin();
    let json_path = temp_file("out.json");
    let md_path = temp_file("out.md");
    let mut child = Command::new(harness)
        .args(["--spawn", &format!("echo={echo}")])
        .args(["--spawn", &format!("clawgate={}", gateway.display())])
        .args(["--handshakes", "20", "--handshake-warmup", "2"])
        .args(["--rtt", "200", "--rtt-warmup", "10"])
        .args(["--conns", "4", "--window", "8", "--duration", "0.3", "--warmup", "0.1"])
        .args(["--idle", "20", "--starts", "2", "--settle", "0.2", "--op-timeout", "5", "--phase-timeout", "30"])
        .arg("--json")
        .arg(&json_path)
        .arg("--markdown")
        .arg(&md_path)
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start clawgate-bench");
    // Bounded: the harness stops its gateways itself; we only guard against a hang.
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("clawgate-bench did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut stdout);
    }
    assert!(status.success(), "clawgate-bench failed: {status}\n{stdout}");

    let json = std::fs::read_to_string(&json_path).expect("JSON output");
    let md = std::fs::read_to_string(&md_path).expect("Markdown output");
    let _ = std::fs::remove_file(&json_path);
    let _ = std::fs::remove_file(&md_path);
    let v: Value = serde_json::from_str(&json).expect("well-formed JSON");

    assert_eq!(v["baseline"], "echo");
    let targets = v["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2, "{json}");
    assert_eq!(targets[0]["name"], "echo");
    assert_eq!(targets[1]["name"], "clawgate");
    assert_eq!(targets[1]["role"], "ours");
    for t in targets {
        let name = t["name"].as_str().unwrap_or("?");
        let starts = t["startup_ms"].as_array().expect("startup_ms");
        assert_eq!(starts.len(), 2, "{name}: two timed starts");
        assert!(starts.iter().all(|s| s.as_f64().is_some_and(|x| x > 0.0)), "{name}: start times");
        assert!(t["startup_error"].is_null(), "{name}: {}", t["startup_error"]);
        let runs = t["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert!(r["rss_idle_start_kb"].as_u64().is_some_and(|k| k > 0), "{name}: idle RSS");
        assert!(r["rss_idle_end_kb"].as_u64().is_some_and(|k| k > 0), "{name}: idle RSS at the end");

        let hs = &r["handshake"];
        assert_eq!(hs["errors"], 0, "{name}: handshake errors: {}", hs["first_error"]);
        assert_eq!(hs["to_hello"]["count"], 20, "{name}");
        assert_eq!(hs["to_challenge"]["count"], 20, "{name}");
        assert!(hs["to_hello"]["p50_us"].as_f64().is_some_and(|x| x > 0.0), "{name}");
        assert!(hs["to_hello"]["p99_us"].as_f64() >= hs["to_hello"]["p50_us"].as_f64(), "{name}");

        let rtt = &r["rtt"];
        assert_eq!(rtt["errors"], 0, "{name}: rtt errors: {}", rtt["first_error"]);
        assert_eq!(rtt["latency"]["count"], 200, "{name}");
        assert!(rtt["response_bytes"].as_f64().is_some_and(|b| b > 20.0), "{name}");

        for (key, conns) in [("tput_1", 1), ("tput_n", 4)] {
            let tp = &r[key];
            assert_eq!(tp["conns"], conns, "{name} {key}");
            assert_eq!(tp["conn_failures"], 0, "{name} {key}: {}", tp["first_error"]);
            assert_eq!(tp["errors"], 0, "{name} {key}: {}", tp["first_error"]);
            assert!(tp["ok"].as_u64().is_some_and(|n| n > 0), "{name} {key}: no successful requests");
            assert!(tp["ok_per_s"].as_f64().is_some_and(|x| x > 0.0), "{name} {key}");
            assert!(tp["server_cpu_s"].as_f64().is_some(), "{name} {key}: server CPU read from /proc");
        }

        let idle = &r["idle"];
        assert_eq!(idle["wanted"], 20, "{name}");
        assert_eq!(idle["established"], 20, "{name}: {}", idle["first_error"]);
        assert_eq!(idle["dropped_while_idle"], 0, "{name}");
        assert!(idle["rss_with_kb"].as_u64().is_some(), "{name}");
        assert!(idle["kb_per_conn"].as_f64().is_some(), "{name}");
    }

    // The report has the absolute table, the ratios and the targets.
    for needle in ["| metric | unit | echo | clawgate |", "handshake p50", "clawgate ÷ echo", "Targets:", "≤ 200 µs"] {
        assert!(md.contains(needle), "Markdown lacks {needle:?}:\n{md}");
    }
    assert!(stdout.contains("| metric |"), "Markdown on stdout");
}

/// The relay benchmark (issue 17) end to end with tiny counts: the mock directly and clawgate in
/// front of it, every endpoint answered, CPU and RSS read; one open-loop rate; a few slow
/// streams held open at once. No peers (they would be installed from the registries).
#[test]
fn tiny_relay_run_produces_complete_results() {
    let relay = env!("CARGO_BIN_EXE_bench-relay");
    let gateway = clawgate_bin();
    let json_path = temp_file("relay.json");
    let out = Command::new(relay)
        .args(["--clawgate", gateway.to_str().expect("path")])
        .args(["--conns", "4", "--seconds", "0.3", "--warmup", "0.1"])
        .args(["--rates", "50", "--open-seconds", "1"])
        .args(["--streams", "20", "--stream-every", "0.2"])
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("run bench-relay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench-relay failed: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).expect("JSON output")).expect("JSON");
    let _ = std::fs::remove_file(&json_path);
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 6, "three endpoints, direct and through clawgate: {v:#}");
    for r in rows {
        assert!(r["load"]["ok"].as_u64().is_some_and(|n| n > 0), "{r}");
        assert_eq!(r["load"]["errors"], 0, "{r}");
        if r["target"] == "clawgate" {
            assert!(r["cpuUsPerRequest"].as_f64().is_some_and(|c| c > 0.0), "{r}");
            assert!(r["rssAfterKb"].as_u64().is_some_and(|k| k > 0), "{r}");
        }
    }
    assert!(stdout.contains("| clawgate | chat |"), "{stdout}");

    // Open loop: 50 req/s for 1 s, every request due in the window answered.
    let open = v["openLoop"].as_array().expect("openLoop");
    assert_eq!(open.len(), 2, "direct and clawgate at one rate: {v:#}");
    for r in open {
        let x = &r["result"];
        assert_eq!(x["rate"], 50.0, "{r}");
        assert_eq!(x["scheduled"], 50, "{r}");
        assert_eq!(x["ok"], 50, "{r}");
        assert_eq!(x["errors"], 0, "{r}");
        assert_eq!(x["not_sent"], 0, "{r}");
        let l = &x["latency"];
        assert!(l["p50_us"].as_f64().is_some_and(|p| p > 0.0), "{r}");
        assert!(l["p999_us"].as_f64() >= l["p99_us"].as_f64() && l["p99_us"].as_f64() >= l["p50_us"].as_f64(), "{r}");
        assert!(x["conns_opened"].as_u64().is_some_and(|c| (1..=256).contains(&c)), "{r}");
        if r["target"] == "clawgate" {
            assert!(r["cpuUsPerRequest"].as_f64().is_some_and(|c| c > 0.0), "{r}");
        }
    }
    assert!(stdout.contains("| clawgate | 50 |"), "{stdout}");

    // Slow streams: all 20 open at once, through clawgate too, then answered in full.
    let streams = v["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2, "direct and clawgate: {v:#}");
    for r in streams {
        let x = &r["result"];
        assert_eq!(x["wanted"], 20, "{r}");
        assert_eq!(x["open"], 20, "{r}");
        assert_eq!(x["upstream_open"], 20, "{r}");
        assert_eq!(x["answered"], 20, "{r}");
        assert_eq!(x["errors"], 0, "{r}");
        if r["target"] == "clawgate" {
            assert!(x["rss_with_kb"].as_u64().is_some_and(|k| k > 0), "{r}");
            assert!(x["kib_per_stream"].as_f64().is_some(), "{r}");
            // A socket per stream towards the client at least (the upstream side may reuse
            // connections its pool already held).
            assert!(x["fds_with"].as_u64() >= x["fds_before"].as_u64().map(|b| b + 20), "{r}");
            assert!(x["nofile"].as_u64().is_some_and(|n| n >= 64), "{r}");
        }
    }
    assert!(stdout.contains("20 concurrent slow streams"), "{stdout}");
    let targets = v["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 1, "{v:#}");
    assert_eq!(targets[0]["name"], "clawgate");
    assert_eq!(targets[0]["problems"].as_array().map(Vec::len), Some(0), "{v:#}");
}
