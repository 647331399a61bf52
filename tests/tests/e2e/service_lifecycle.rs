//! Service lifecycle and several gateways on one host (issue 15), with the real binary:
//! `status` (golden text and JSON, running and not, `--deep`), one gateway per state dir (the
//! second refused naming the owner; `kill -9` then a takeover), `doctor` finding and fixing
//! unit drift and a readable token file, `install`/`start`/`stop`/`restart`/`uninstall`
//! through systemd, and two profiles side by side.
//!
//! No systemd runs as PID 1 on the test machines, so the service-manager calls go to a
//! recording `systemctl` (`CLAWGATE_SYSTEMCTL`) that answers `show` from the unit file's
//! presence; the unit files themselves are checked by the real `systemd-analyze verify`.
//! (`lite_e2e`: the same against `clawgate-lite`.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clawgate_tests::process::{base_env, free_port, http_get, run_clawgate};
use clawgate_tests::{CmdOutput, GatewayBuilder, TempDir, clawgate_bin, run_command};
use serde_json::Value;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/status");

/// A `systemctl` that records its arguments and answers `show` like systemd would for a unit
/// that is loaded (file present), disabled and inactive — or not found.
struct FakeSystemctl {
    dir: TempDir,
}

impl FakeSystemctl {
    fn new(unit: &Path) -> FakeSystemctl {
        let dir = TempDir::new("systemctl");
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{log}'\ncase \"$*\" in\n  *show*)\n    if [ -f '{unit}' ]; then printf 'LoadState=loaded\\nActiveState=inactive\\nSubState=dead\\nUnitFileState=disabled\\nMainPID=0\\n'\n    else printf 'LoadState=not-found\\nActiveState=inactive\\nSubState=dead\\nUnitFileState=\\nMainPID=0\\n'; fi ;;\nesac\nexit 0\n",
            log = dir.path().join("calls.log").display(),
            unit = unit.display()
        );
        let path = dir.path().join("systemctl");
        std::fs::write(&path, script).unwrap();
        set_mode(&path, 0o755);
        FakeSystemctl { dir }
    }
    fn program(&self) -> String {
        self.dir.path().join("systemctl").display().to_string()
    }
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn user_unit(home: &Path, name: &str) -> PathBuf {
    home.join(".config/systemd/user").join(name)
}

/// `clawgate <args>` with the recording systemctl.
fn cg(home: &Path, fake: &FakeSystemctl, args: &[&str], env: &[(&str, &str)]) -> CmdOutput {
    let program = fake.program();
    let mut all: Vec<(&str, &str)> = vec![("CLAWGATE_SYSTEMCTL", program.as_str())];
    all.extend_from_slice(env);
    run_clawgate(home, args, &all)
}

fn json(out: &CmdOutput) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// Replace what differs between runs (paths, ports, pids, ids, uptime) with names.
fn normalize(text: &str, home: &Path, subs: &[(&str, String)]) -> String {
    let mut t = text.replace(&home.display().to_string(), "$HOME");
    t = t.replace(&clawgate_bin().canonicalize().unwrap().display().to_string(), "$BIN");
    for (name, value) in subs {
        if !value.is_empty() {
            t = t.replace(value.as_str(), name);
        }
    }
    // The runtime's name (`clawgate-lite` runs the same goldens).
    t = t.replace("$PID clawgate-lite)", "$PID clawgate)").replace("-smol\"", "-$RUNTIME\"").replace("-tokio\"", "-$RUNTIME\"");
    let mut out = Vec::new();
    for line in t.lines() {
        // Listeners on the machine's default/dev ports are the machine's, not this test's; the
        // IPv6 loopback one exists only where `::1` does.
        if line.starts_with("  - ") && (line.contains(":18789 ") || line.contains(":19001 ") || line.contains("[::1]:")) {
            continue;
        }
        let mut l = line.to_string();
        if let Some(i) = l.find(", up ") {
            let end = l[i + 5..].find(',').map_or(l.len(), |e| i + 5 + e);
            l.replace_range(i + 5..end, "$UPTIME");
        }
        for key in ["\"uptimeMs\": ", "\"connId\": ", "\"bootId\": ", "\"startedAtMs\": "] {
            if let Some(i) = l.find(key).filter(|i| !l[i + key.len()..].starts_with("null")) {
                let end = l.len() - usize::from(l.ends_with(','));
                l.replace_range(i + key.len()..end, "\"$VALUE\"");
            }
        }
        out.push(l);
    }
    out.join("\n") + "\n"
}

/// Compare with `tests/golden/status/<name>`; `CLAWGATE_REGENERATE=1` rewrites it.
fn golden(name: &str, actual: &str) {
    let path = Path::new(GOLDEN).join(name);
    if std::env::var_os("CLAWGATE_REGENERATE").is_some() {
        std::fs::create_dir_all(GOLDEN).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, want, "{name} differs from the golden file (CLAWGATE_REGENERATE=1 rewrites it)");
}

#[test]
fn status_golden_with_nothing_running() {
    let home = TempDir::new("status-stopped");
    let fake = FakeSystemctl::new(&user_unit(home.path(), "clawgate.service"));
    let port = free_port().to_string();
    let env = [("OPENCLAW_GATEWAY_PORT", port.as_str())];
    let subs = [("$PORT", port.clone())];
    let out = cg(home.path(), &fake, &["status"], &env);
    assert_eq!(out.code, Some(1), "nothing answers: {out:?}");
    golden("stopped.txt", &normalize(&out.stdout, home.path(), &subs));
    let out = cg(home.path(), &fake, &["status", "--json"], &env);
    golden("stopped.json", &normalize(&out.stdout, home.path(), &subs));
    let v = json(&out);
    assert_eq!(v["runtime"]["status"], "stopped");
    assert_eq!(v["service"]["installed"], false);
    let out = cg(home.path(), &fake, &["status", "--deep"], &env);
    golden("stopped-deep.txt", &normalize(&out.stdout, home.path(), &subs));
}

#[test]
fn status_golden_with_a_gateway_running_and_a_unit_installed() {
    let home = std::sync::Arc::new(TempDir::new("status-running"));
    let gw = GatewayBuilder::new().home(home.clone()).start();
    let fake = FakeSystemctl::new(&user_unit(home.path(), "clawgate.service"));
    let port = gw.port.to_string();
    let env = [("OPENCLAW_GATEWAY_PORT", port.as_str()), ("OPENCLAW_GATEWAY_TOKEN", &gw.token())];
    let out = cg(home.path(), &fake, &["install"], &env);
    assert!(out.success(), "{out:?}");
    let subs = [("$PID", gw.pid().to_string()), ("$PORT", port.clone()), ("$VERSION", clawgate_tests::clawgate_version())];
    let out = cg(home.path(), &fake, &["status"], &env);
    assert!(out.success(), "{out:?}");
    let text = normalize(&out.stdout, home.path(), &subs);
    golden("running.txt", &text);
    assert!(text.contains("Runtime: running (pid $PID, up $UPTIME, listening ws://127.0.0.1:$PORT)"), "{text}");
    let out = cg(home.path(), &fake, &["status", "--json"], &env);
    let v = json(&out);
    assert_eq!((v["runtime"]["pid"].as_u64(), v["runtime"]["port"].as_u64()), (Some(u64::from(gw.pid())), Some(u64::from(gw.port))), "{v}");
    assert_eq!(v["rpc"]["ok"], true);
    assert_eq!(v["service"]["installed"], true);
    golden("running.json", &normalize(&out.stdout, home.path(), &subs));
    let out = cg(home.path(), &fake, &["status", "--deep"], &env);
    golden("running-deep.txt", &normalize(&out.stdout, home.path(), &subs));
}

/// The second gateway on a state dir is refused with the owner's pid and port (78 under a
/// supervisor), never binds its port; after `kill -9` of the owner the next start takes over.
#[test]
fn one_gateway_per_state_dir_and_a_takeover_after_kill_9() {
    let home = std::sync::Arc::new(TempDir::new("lock"));
    let mut first = GatewayBuilder::new().home(home.clone()).start();
    let other_port = free_port();
    let out = run_clawgate(home.path(), &["run", "--port", &other_port.to_string(), "--token", "abcdefabcdef"], &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let owner = format!("gateway already running (pid {}); lock timeout after 5000ms", first.pid());
    assert!(out.stderr.contains(&owner), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("port {}", first.port)), "{}", out.stderr);
    assert!(
        http_get(([127, 0, 0, 1], other_port).into(), "/healthz", Duration::from_millis(300)).is_none(),
        "the refused gateway bound its port"
    );
    let out = run_clawgate(home.path(), &["run", "--supervised", "--port", &other_port.to_string(), "--token", "abcdefabcdef"], &[]);
    assert_eq!(out.code, Some(78), "{out:?}");
    assert!(out.stderr.contains(&owner) && out.stderr.contains("code 78"), "{}", out.stderr);
    // The owner keeps serving.
    assert!(http_get(first.addr(), "/healthz", Duration::from_secs(2)).is_some_and(|(s, _)| s == 200));

    let dead = first.pid();
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    let lock = home.path().join("state/clawgate/gateway.lock");
    assert!(lock.exists(), "kill -9 leaves the file (the kernel released the lock)");
    let st = run_clawgate(home.path(), &["status", "--json"], &[]);
    assert_eq!(json(&st)["runtime"]["status"], "stopped", "{st:?}");
    let second = GatewayBuilder::new().home(home.clone()).start();
    assert!(second.stderr().contains(&format!("did not exit cleanly (pid {dead}")), "{}", second.stderr());
    let st = run_clawgate(home.path(), &["status", "--json", "--port", &second.port.to_string(), "--token", &second.token()], &[]);
    let v = json(&st);
    assert_eq!((v["runtime"]["status"].as_str(), v["runtime"]["pid"].as_u64()), (Some("running"), Some(u64::from(second.pid()))), "{v}");
    drop(second);
    assert!(!lock.exists(), "a clean exit removes the lock file");
}

/// `doctor` finds a unit whose port drifted from the config and a token file others can read;
/// `--fix` rewrites the unit and chmods the token, and says so.
#[test]
fn doctor_finds_and_fixes_unit_drift_and_a_readable_token() {
    let home = TempDir::new("doctor");
    let unit = user_unit(home.path(), "clawgate.service");
    let fake = FakeSystemctl::new(&unit);
    let (a, b) = (free_port(), free_port());
    let config = home.path().join("state/openclaw.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    set_mode(config.parent().unwrap(), 0o700);
    std::fs::write(&config, format!("{{gateway: {{mode: \"local\", port: {a}}}}}")).unwrap();
    set_mode(&config, 0o600);
    let out = cg(home.path(), &fake, &["install"], &[]);
    assert!(out.success(), "{out:?}");
    assert!(std::fs::read_to_string(&unit).unwrap().contains(&format!(" --port {a}\n")));
    assert!(cg(home.path(), &fake, &["auth-token"], &[]).success());
    let out = cg(home.path(), &fake, &["doctor"], &[]);
    assert_eq!(out.code, Some(0), "a fresh install is clean: {}", out.stdout);
    assert!(out.stdout.contains("No problems found."), "{}", out.stdout);

    std::fs::write(&config, format!("{{gateway: {{mode: \"local\", port: {b}}}}}")).unwrap();
    let token = home.path().join("state/clawgate/gateway.token");
    set_mode(&token, 0o644);
    let out = cg(home.path(), &fake, &["doctor"], &[]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("port: the unit has {a}, the config says {b}")), "{}", out.stdout);
    assert!(out.stdout.contains("gateway.token is mode 0644: others can read it"), "{}", out.stdout);
    assert_eq!(mode(&token), 0o644, "doctor without --fix changes nothing");

    let calls_before = fake.calls().len();
    let out = cg(home.path(), &fake, &["doctor", "--fix"], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.contains("mode set to 0600") && out.stdout.contains(&format!("with port {b}")), "{}", out.stdout);
    assert!(out.stdout.ends_with("2 problem(s), all fixed.\n"), "{}", out.stdout);
    assert_eq!(mode(&token), 0o600);
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains(&format!(" --port {b}\n")), "{text}");
    let calls = fake.calls()[calls_before..].to_vec();
    assert!(calls.contains(&"--user daemon-reload".to_string()), "{calls:?}");
    assert!(calls.contains(&"--user try-restart clawgate.service".to_string()), "{calls:?}");
    let out = cg(home.path(), &fake, &["doctor", "--json"], &[]);
    assert_eq!(json(&out)["ok"], true, "{}", out.stdout);
}

/// The unit systemd would load: `systemd-analyze verify` finds nothing to complain about.
fn verify_unit(text: &str, name: &str, user: bool) {
    let dir = TempDir::new("verify");
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let runtime_dir = dir.path().join("xdg-runtime");
    std::fs::create_dir_all(&runtime_dir).unwrap();
    let mut cmd = Command::new("systemd-analyze");
    if user {
        cmd.arg("--user");
    }
    cmd.arg("verify").arg(&path).env("XDG_RUNTIME_DIR", &runtime_dir);
    let v = run_command(&mut cmd, Duration::from_secs(60));
    // "Special user nobody configured" is systemd's advice about the account, not the unit.
    let complaints: Vec<&str> = v.stderr.lines().filter(|l| !l.contains("Special user nobody")).collect();
    assert!(v.success() && complaints.is_empty(), "systemd-analyze verify {name}: {v:?}\n{text}");
}

#[test]
fn install_start_stop_restart_uninstall_through_systemd() {
    let home = TempDir::new("lifecycle");
    let unit = user_unit(home.path(), "clawgate.service");
    let fake = FakeSystemctl::new(&unit);
    let out = cg(home.path(), &fake, &["start"], &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("clawgate.service is not installed") && out.stderr.contains("clawgate install"), "{}", out.stderr);
    let out = cg(home.path(), &fake, &["restart"], &[]);
    assert!(out.code == Some(1) && out.stderr.contains("clawgate run"), "{out:?}");

    let port = free_port().to_string();
    let out = cg(home.path(), &fake, &["install", "--port", &port], &[]);
    assert!(out.success(), "{out:?}");
    let text = std::fs::read_to_string(&unit).unwrap();
    let exe = clawgate_bin().canonicalize().unwrap().display().to_string();
    assert!(text.lines().any(|l| l == format!("ExecStart={exe} run --supervised --port {port}")), "{text}");
    let state = home.path().join("state").display().to_string();
    assert!(text.lines().any(|l| l == format!("Environment=OPENCLAW_CONFIG_PATH={state}/openclaw.json")), "{text}");
    verify_unit(&text, "clawgate.service", true);
    assert_eq!(fake.calls(), vec!["--user daemon-reload", "--user enable --now clawgate.service"]);

    let out = cg(home.path(), &fake, &["install", "--port", &port], &[]);
    assert!(out.success() && out.stdout.contains("up to date"), "{out:?}");
    let other = free_port().to_string();
    let out = cg(home.path(), &fake, &["install", "--port", &other], &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!("port: the unit has {port}, the config says {other}")) && out.stderr.contains("--force"),
        "{}",
        out.stderr
    );
    let out = cg(home.path(), &fake, &["install", "--force", "--port", &other], &[]);
    assert!(out.success(), "{out:?}");
    assert!(std::fs::read_to_string(&unit).unwrap().contains(&format!("--port {other}\n")));

    for (args, want) in [
        (&["start"][..], "--user start clawgate.service"),
        (&["stop"][..], "--user stop clawgate.service"),
        (&["stop", "--disable"][..], "--user disable --now clawgate.service"),
        (&["restart"][..], "--user restart clawgate.service"),
    ] {
        let out = cg(home.path(), &fake, args, &[]);
        assert!(out.success(), "{args:?}: {out:?}");
        assert_eq!(fake.calls().last().map(String::as_str), Some(want), "{args:?}");
    }
    let st = cg(home.path(), &fake, &["status"], &[]);
    assert!(st.stdout.contains("Service: systemd (user) clawgate.service: installed, loaded, disabled, inactive (dead)"), "{}", st.stdout);
    let out = cg(home.path(), &fake, &["uninstall"], &[]);
    assert!(out.success(), "{out:?}");
    assert!(!unit.exists());
    assert!(fake.calls().contains(&"--user disable --now clawgate.service".to_string()));

    // A system unit (printed: the test does not write /etc) runs as its user after the network.
    let out = cg(home.path(), &fake, &["install", "--system", "--user", "nobody", "--print"], &[]);
    assert!(out.stdout.contains("User=nobody\n") && out.stdout.contains("WantedBy=multi-user.target\n"), "{}", out.stdout);
    verify_unit(&out.stdout, "clawgate.service", false);
    // A profile's unit has its own name, state dir and port.
    let out = cg(home.path(), &fake, &["--profile", "work", "install"], &[("OPENCLAW_STATE_DIR", "")]);
    assert!(out.success(), "{out:?}");
    let text = std::fs::read_to_string(user_unit(home.path(), "clawgate-work.service")).unwrap();
    let work_port = clawgate_core::config::resolve_port(None, None, None, Some("work")).unwrap();
    assert!(text.contains(&format!("--port {work_port}\n")) && text.contains("Environment=OPENCLAW_PROFILE=work\n"), "{text}");
    assert!(text.contains(&format!("Environment=OPENCLAW_STATE_DIR={}/.openclaw-work\n", home.path().display())), "{text}");
    verify_unit(&text, "clawgate-work.service", true);
    // launchd and Windows definitions are written for the operator to load.
    let plist = home.path().join("gw.plist");
    let out = cg(home.path(), &fake, &["install", "--platform", "launchd", "--unit-path", plist.to_str().unwrap()], &[]);
    assert!(out.success() && out.stdout.contains("launchctl bootstrap"), "{out:?}");
    let text = std::fs::read_to_string(&plist).unwrap();
    assert!(text.contains("<string>ai.clawgate.gateway</string>") && text.contains("<string>--supervised</string>"), "{text}");
    let xml = home.path().join("gw.xml");
    let out = cg(home.path(), &fake, &["install", "--platform", "windows", "--unit-path", xml.to_str().unwrap()], &[]);
    assert!(out.success() && out.stdout.contains("schtasks /Create /XML"), "{out:?}");
    assert!(std::fs::read_to_string(&xml).unwrap().contains("<RestartOnFailure>"));
}

/// With the host's own systemctl and no systemd to talk to (these machines), the lifecycle
/// verbs say so instead of pretending.
#[test]
fn without_a_reachable_systemd_the_verbs_say_so() {
    let home = TempDir::new("no-systemd");
    let probe = Command::new("systemctl").args(["--user", "show", "-p", "LoadState", "clawgate-probe.service"]).output();
    let reachable = probe.is_ok_and(|o| o.status.success());
    let out = run_clawgate(home.path(), &["install"], &[]);
    assert!(out.success(), "{out:?}");
    let out = run_clawgate(home.path(), &["start"], &[]);
    if reachable {
        assert!(out.stderr.contains("clawgate.service") || out.stdout.contains("clawgate.service"), "{out:?}");
    } else {
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains("systemd is not reachable here"), "{}", out.stderr);
        let st = run_clawgate(home.path(), &["status"], &[]);
        assert!(st.stdout.contains("Service manager: unavailable ("), "{}", st.stdout);
    }
    assert!(run_clawgate(home.path(), &["uninstall"], &[]).success());
}

/// A gateway started with `--profile`/`--dev` flags and no state dir from the environment.
struct ProfileGateway {
    child: Child,
    port: u16,
}

impl Drop for ProfileGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_profile(home: &Path, name: &str) -> ProfileGateway {
    let port = clawgate_core::config::resolve_port(None, None, None, Some(name)).unwrap();
    let mut cmd = Command::new(clawgate_bin());
    base_env(&mut cmd, home);
    cmd.args(["--profile", name, "run"]).stdin(Stdio::null()).stdout(Stdio::null());
    cmd.stderr(std::fs::File::create(home.join(format!("{name}.stderr.log"))).unwrap());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(([127, 0, 0, 1], port).into(), "/healthz", Duration::from_millis(500)).is_none_or(|(s, _)| s != 200) {
        assert!(Instant::now() < deadline, "profile {name} did not come up on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    ProfileGateway { child, port }
}

/// Two named profiles side by side: each its own state dir, config, token and port, both
/// healthy; a probe sees two identities. `--dev` resolves to `~/.openclaw-dev` and 19001.
#[test]
fn two_profiles_side_by_side() {
    let home = TempDir::new("profiles");
    // Names whose derived ports are free on this machine right now.
    let free = |n: &str| {
        let p = clawgate_core::config::resolve_port(None, None, None, Some(n)).unwrap();
        std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
    };
    let names: Vec<String> = (0..200).map(|_| format!("p{}", clawgate_tests::random_hex(6))).filter(|n| free(n)).take(2).collect();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(clawgate_bin());
        base_env(&mut cmd, home.path());
        cmd.args(args);
        run_command(&mut cmd, Duration::from_secs(60))
    };
    let a = start_profile(home.path(), &names[0]);
    let b = start_profile(home.path(), &names[1]);
    assert_ne!(a.port, b.port);
    let mut tokens = Vec::new();
    for (name, gw) in [(&names[0], &a), (&names[1], &b)] {
        let out = run(&["--profile", name, "status", "--json", "--require-rpc"]);
        assert!(out.success(), "{out:?}");
        let v = json(&out);
        let sd = home.path().join(format!(".openclaw-{name}")).display().to_string();
        assert_eq!(v["stateDir"], sd.as_str(), "{v}");
        assert_eq!(v["config"]["path"], format!("{sd}/openclaw.json").as_str(), "{v}");
        assert_eq!(v["gateway"]["probeUrl"], format!("ws://127.0.0.1:{}", gw.port).as_str(), "{v}");
        assert_eq!(v["runtime"]["port"].as_u64(), Some(u64::from(gw.port)), "{v}");
        assert!(run(&["--profile", name, "health"]).success());
        tokens.push(std::fs::read_to_string(format!("{sd}/clawgate/gateway.token")).unwrap());
    }
    assert_ne!(tokens[0], tokens[1], "each profile keeps its own token");
    assert!(!home.path().join(".openclaw").exists(), "the default state dir stays untouched");
    let out = run(&["--profile", &names[0], "probe", "--json"]);
    let v = json(&out);
    assert_eq!(v["warning"], "multiple reachable gateway identities", "{v}");
    assert_eq!(v["identities"].as_array().map(Vec::len), Some(2), "{v}");
    let out = run(&["--dev", "status", "--json"]);
    let v = json(&out);
    assert_eq!(v["gateway"]["probeUrl"], "ws://127.0.0.1:19001", "{v}");
    assert_eq!(v["stateDir"], home.path().join(".openclaw-dev").display().to_string().as_str());
    let out = run(&["--dev", "--profile", "x", "status"]);
    assert!(out.code == Some(1) && out.stderr.contains("Cannot combine --dev with --profile"), "{out:?}");
    let out = run(&["--profile", "bad/name", "status"]);
    assert!(out.code == Some(1) && out.stderr.contains("Invalid --profile (use letters, numbers, \"_\", \"-\" only)"), "{out:?}");
}
