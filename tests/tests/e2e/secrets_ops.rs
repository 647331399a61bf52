//! Secrets operations (issue 16) against the reference CLI as the oracle: the same state dir
//! copied twice, `openclaw-ref secrets audit` on one copy and `clawgate secrets audit` on the
//! other, the reports compared (status, counts, and each finding's code, severity, file, path,
//! provider); the team store's commands compared output for output; and a running gateway
//! resolving a `{source: "store"}` ref and an env ref that only `<stateDir>/.env` holds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use clawgate_tests::openclaw::{ensure_installed, openclaw_ref_dir, openclaw_ref_script};
use clawgate_tests::process::{base_env, run_command_with_stdin};
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::{CmdOutput, GatewayBuilder, TempDir, clawgate_bin};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cli {
    Reference,
    Clawgate,
}

/// Run a CLI with HOME `home`, state dir `<home>/.openclaw`, optional stdin.
fn cli(which: Cli, home: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> CmdOutput {
    let mut cmd = match which {
        Cli::Reference => {
            ensure_installed();
            let mut c = Command::new(openclaw_ref_script());
            base_env(&mut c, home);
            c.env("OPENCLAW_REF_DIR", openclaw_ref_dir());
            c
        }
        Cli::Clawgate => {
            let mut c = Command::new(clawgate_bin());
            base_env(&mut c, home);
            c
        }
    };
    cmd.env("OPENCLAW_STATE_DIR", home.join(".openclaw")).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let input = match stdin {
        Some(bytes) => {
            let input = home.join(format!("stdin-{}", clawgate_tests::random_hex(4)));
            std::fs::write(&input, bytes).unwrap();
            Stdio::from(std::fs::File::open(&input).unwrap())
        }
        None => Stdio::null(),
    };
    run_command_with_stdin(&mut cmd, input, Duration::from_secs(120))
}

/// A state dir: `openclaw.json` (with `{{HOME}}` replaced), extra files, modes.
struct Case {
    config: &'static str,
    files: Vec<(&'static str, String, u32)>,
}

fn build(case: &Case, label: &str) -> TempDir {
    let home = TempDir::new(label);
    let sd = home.path().join(".openclaw");
    std::fs::create_dir_all(&sd).unwrap();
    let h = home.path().display().to_string();
    std::fs::write(sd.join("openclaw.json"), case.config.replace("{{HOME}}", &h)).unwrap();
    for (rel, text, mode) in &case.files {
        let p = home.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text.replace("{{HOME}}", &h)).unwrap();
        set_mode(&p, *mode);
    }
    home
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What must match between the two reports: everything but file-provider and exec error
/// wording (each gateway words its own IO errors) and the reference-only auth-profile store.
fn comparable(report: &Value, home: &Path) -> Value {
    let h = home.display().to_string();
    let strip = |s: &str| s.replace(&h, "$HOME");
    let findings: Vec<Value> = report["findings"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|f| {
            let msg = f["message"].as_str().unwrap_or_default();
            // Plaintext, residue and env wording is the reference's; file/exec errors are ours.
            let keep_message = matches!(f["code"].as_str(), Some("PLAINTEXT_FOUND" | "STORE_PLAINTEXT_RESIDUE"))
                || msg.contains("Environment variable")
                || msg.contains("Config is invalid");
            json!({
                "code": f["code"], "severity": f["severity"], "file": strip(f["file"].as_str().unwrap_or_default()),
                "jsonPath": f["jsonPath"], "provider": f.get("provider"),
                "message": if keep_message { json!(strip(msg)) } else { Value::Null },
            })
        })
        .collect();
    let files: Vec<String> = report["filesScanned"].as_array().unwrap_or(&Vec::new()).iter().filter_map(Value::as_str).map(strip).collect();
    json!({"version": report["version"], "status": report["status"], "resolution": report["resolution"], "summary": report["summary"], "findings": findings, "filesScanned": files})
}

fn parse(out: &CmdOutput) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// Audit one case with both CLIs, each on its own copy: `--json --check` (the report and the
/// gate's exit code in one run: the reference CLI takes seconds to start), and with `human`
/// the plain text too (paths normalised).
fn differential_with(label: &str, case: &Case, extra: &[&str], env: &[(&str, &str)], prepare: &dyn Fn(Cli, &Path), human: bool) -> Value {
    let mut reports = Vec::new();
    for which in [Cli::Reference, Cli::Clawgate] {
        let home = build(case, &format!("{label}-{which:?}"));
        prepare(which, home.path());
        let mut args = vec!["secrets", "audit", "--json", "--check"];
        args.extend_from_slice(extra);
        let out = cli(which, home.path(), &args, env, None);
        let report = comparable(&parse(&out), home.path());
        let text = human.then(|| {
            let mut plain = vec!["secrets", "audit"];
            plain.extend_from_slice(extra);
            let o = cli(which, home.path(), &plain, env, None);
            (o.code, o.stdout.replace(&home.path().display().to_string(), "$HOME").replace("openclaw doctor", "clawgate doctor"))
        });
        reports.push((which, report, out.code, text));
    }
    let (r, c) = (&reports[0], &reports[1]);
    assert_eq!(c.1, r.1, "{label}: clawgate's report (left) differs from the reference's (right)");
    assert_eq!(c.2, r.2, "{label}: exit code of --check");
    assert_eq!(c.3, r.3, "{label}: the human report and its exit code");
    r.1.clone()
}

fn differential(label: &str, case: &Case, extra: &[&str], env: &[(&str, &str)], prepare: &dyn Fn(Cli, &Path)) -> Value {
    differential_with(label, case, extra, env, prepare, false)
}

/// An exec provider's command: answers the protocol with one value.
const RESOLVER_SH: &str = "#!/bin/sh\ncat >/dev/null\nprintf '{\"protocolVersion\":1,\"values\":{\"openai/apiKey\":\"sk-exec-123\"}}\\n'\n";

fn no_prep(_: Cli, _: &Path) {}

#[test]
fn audit_plaintext_unresolved_and_resolved_env_refs_match_the_reference() {
    let plain = Case {
        config: r#"{gateway: {mode: "local", auth: {mode: "token", token: "plain-token-1234"}},
            models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", apiKey: "sk-plain-123", models: []}}}}"#,
        files: vec![],
    };
    let r = differential_with("plain", &plain, &[], &[], &no_prep, true);
    assert_eq!(r["status"], "findings");
    assert_eq!(r["summary"]["plaintextCount"], 2);

    let missing = Case {
        config: r#"{gateway: {mode: "local"}, models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", models: [],
            apiKey: {source: "env", provider: "default", id: "MISSING_KEY_X"}}}}}"#,
        files: vec![],
    };
    let r = differential_with("missing", &missing, &[], &[], &no_prep, true);
    assert_eq!(r["findings"][0]["code"], "REF_UNRESOLVED");

    let set = Case { config: missing.config, files: vec![] };
    let r = differential("set", &set, &[], &[("MISSING_KEY_X", "sk-from-env")], &no_prep);
    assert_eq!((r["status"].as_str(), r["resolution"]["refsChecked"].as_u64()), (Some("clean"), Some(1)));

    let invalid = Case { config: r#"{gateway: {mode: "local"}, bogusKey: 1}"#, files: vec![] };
    let r = differential("invalid", &invalid, &[], &[], &no_prep);
    assert_eq!(r["findings"][0]["jsonPath"], "<root>");
}

#[test]
fn audit_env_files_file_refs_and_exec_consent_match_the_reference() {
    let dotenv = Case {
        config: r#"{gateway: {mode: "local"}, models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", apiKey: "sk-plain-123", models: []}}}}"#,
        files: vec![(
            ".openclaw/.env",
            "# comment\nOPENAI_API_KEY=sk-env-123\nLOG_LEVEL=debug\nANTHROPIC_API_KEY=\"sk-ant-xyz\"\nexport GITHUB_TOKEN=ghp_abc\nFOO_PASSWORD=\nMY_SECRET=s1\n".into(),
            0o600,
        )],
    };
    let r = differential_with("dotenv", &dotenv, &[], &[], &no_prep, true);
    assert_eq!(r["summary"]["plaintextCount"], 4, "{r:#}");

    // An env ref whose only source is the state dir's .env resolves (and the line is residue).
    let envref = Case {
        config: r#"{gateway: {mode: "local"}, models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", models: [],
            apiKey: {source: "env", provider: "default", id: "OPENAI_API_KEY"}}}}}"#,
        files: vec![(".openclaw/.env", "OPENAI_API_KEY=sk-env-123\n".into(), 0o600)],
    };
    let r = differential("envref", &envref, &[], &[], &no_prep);
    assert_eq!((r["resolution"]["refsChecked"].as_u64(), r["summary"]["unresolvedRefCount"].as_u64()), (Some(1), Some(0)));

    let file_ok = Case {
        config: r#"{gateway: {mode: "local"}, secrets: {providers: {filemain: {source: "file", path: "{{HOME}}/secrets.json", mode: "json"}}},
            models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", models: [],
            apiKey: {source: "file", provider: "filemain", id: "/providers/openai/apiKey"}}}}}"#,
        files: vec![("secrets.json", r#"{"providers": {"openai": {"apiKey": "sk-file-1"}}}"#.into(), 0o600)],
    };
    let r = differential("file-ok", &file_ok, &[], &[], &no_prep);
    assert_eq!(r["status"], "clean");
    let file_missing = Case { config: file_ok.config, files: vec![] };
    let r = differential("file-missing", &file_missing, &[], &[], &no_prep);
    assert_eq!(r["findings"][0]["code"], "REF_UNRESOLVED");

    let exec = Case {
        config: r#"{gateway: {mode: "local"}, secrets: {providers: {vault: {source: "exec", command: "{{HOME}}/resolver.sh", jsonOnly: true}}},
            models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", models: [],
            apiKey: {source: "exec", provider: "vault", id: "openai/apiKey"}}}}}"#,
        files: vec![("resolver.sh", RESOLVER_SH.into(), 0o700)],
    };
    let r = differential_with("exec-skipped", &exec, &[], &[], &no_prep, true);
    assert_eq!((r["resolution"]["skippedExecRefs"].as_u64(), r["resolution"]["resolvabilityComplete"].as_bool()), (Some(1), Some(false)));
    let r = differential("exec-allowed", &exec, &["--allow-exec"], &[], &no_prep);
    assert_eq!((r["resolution"]["refsChecked"].as_u64(), r["status"].as_str()), (Some(1), Some("clean")));
}

#[test]
fn audit_store_residue_matches_the_reference() {
    let residue = Case {
        config: r#"{gateway: {mode: "local"}, models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", apiKey: "sk-store-1", models: []}}}}"#,
        files: vec![],
    };
    let prep = |which: Cli, home: &Path| {
        let out = cli(which, home, &["secrets", "store", "set", "OPENAI_API_KEY"], &[], Some(b"sk-store-1\n"));
        assert!(out.success(), "{which:?}: {out:?}");
    };
    let r = differential("residue", &residue, &[], &[], &prep);
    assert_eq!(r["summary"]["storeResidueCount"], 1, "{r:#}");
    // A store ref to a missing entry is unresolved; to a present one, resolved.
    let storeref = Case {
        config: r#"{gateway: {mode: "local"}, models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", models: [],
            apiKey: {source: "store", provider: "default", id: "OPENAI_API_KEY"}}}}}"#,
        files: vec![],
    };
    let r = differential("storeref-missing", &storeref, &[], &[], &no_prep);
    assert_eq!(r["summary"]["unresolvedRefCount"], 1);
    let r = differential("storeref", &storeref, &[], &[], &prep);
    assert_eq!(r["status"], "clean", "{r:#}");
}

/// The store commands, side by side: same stdout, stderr and exit code (timestamps aside).
#[test]
fn store_commands_match_the_reference() {
    let homes: Vec<(Cli, TempDir)> =
        [Cli::Reference, Cli::Clawgate].into_iter().map(|w| (w, TempDir::new(&format!("store-{w:?}")))).collect();
    for (_, h) in &homes {
        let sd = h.path().join(".openclaw");
        std::fs::create_dir_all(&sd).unwrap();
        std::fs::write(sd.join("openclaw.json"), r#"{gateway: {mode: "local"}}"#).unwrap();
        std::fs::write(h.path().join("import.env"), "DB_HOST=db.local\nexport PLAIN_VAR=p # note\nSINGLE='a $b'\nDOUBLE=\"x\\ny\"\nSERVICE_TOKEN=tok-1\nPEM_PRIVATE_KEY=\"-----BEGIN-----\nabc\n-----END-----\"\n").unwrap();
    }
    let big = vec![b'a'; 65_537];
    let steps: Vec<(Vec<&str>, Option<&[u8]>)> = vec![
        (vec!["list"], None),
        (vec!["list", "--json"], None),
        (vec!["set", "lower", "--kind", "env", "--value", "x"], None),
        (vec!["set", "OPENAI_API_KEY", "--value", "x"], None),
        (vec!["set", "LOG_LEVEL", "--kind", "env", "--value", "debug"], None),
        (vec!["set", "OPENAI_API_KEY"], Some(b"sk-store-1\n")),
        (vec!["set", "EMPTY_TOKEN"], Some(b"")),
        (vec!["set", "NEW_TOKEN"], Some(b"__OPENCLAW_REDACTED__")),
        (vec!["set", "BIG_VAR", "--kind", "env"], Some(&big)),
        (vec!["set", "NEW_VAR", "--value", "abc", "--dry-run"], None),
        (vec!["set", "X", "--kind", "foo", "--value", "v"], None),
        (vec!["set", "X", "--scope", "me", "--value", "v"], None),
        (vec!["get", "LOG_LEVEL"], None),
        (vec!["get", "LOG_LEVEL", "--plain"], None),
        (vec!["get", "LOG_LEVEL", "--json"], None),
        (vec!["get", "OPENAI_API_KEY"], None),
        (vec!["get", "MISSING"], None),
        (vec!["get", "MISSING", "--json"], None),
        (vec!["list"], None),
        (vec!["list", "--plain"], None),
        (vec!["set", "OPENAI_API_KEY", "--allow-host", "API.OpenAI.com", "--allow-host", "uploads.example.com"], None),
        (vec!["set", "OPENAI_API_KEY", "--allow-host", "https://x.com"], None),
        (vec!["list"], None),
        (vec!["rm", "LOG_LEVEL"], None),
        (vec!["rm", "LOG_LEVEL", "NOPE_X", "--dry-run"], None),
        (vec!["rm", "LOG_LEVEL", "NOPE_X", "--yes"], None),
        (vec!["get", "LOG_LEVEL"], None),
        (vec!["import", "--from", "IMPORT", "--dry-run"], None),
        (vec!["import", "--from", "IMPORT"], None),
        (vec!["import", "--from", "IMPORT", "--yes"], None),
        (vec!["import", "--yes"], Some(b"")),
        (vec!["get", "DOUBLE", "--json"], None),
        (vec!["get", "SINGLE", "--plain"], None),
        (vec!["list", "--plain"], None),
    ];
    for (args, stdin) in steps {
        let mut outs = Vec::new();
        for (which, home) in &homes {
            let import = home.path().join("import.env").display().to_string();
            let mut full = vec!["secrets", "store"];
            full.extend(args.iter().map(|a| if *a == "IMPORT" { import.as_str() } else { a }));
            let out = cli(*which, home.path(), &full, &[], stdin);
            let norm = |s: &str| {
                let s = s.replace(&home.path().display().to_string(), "$HOME");
                // Timestamps differ run to run.
                s.lines().filter(|l| !l.contains("AtMs\"")).collect::<Vec<_>>().join("\n").replace("openclaw doctor", "clawgate doctor")
            };
            outs.push((out.code, norm(&out.stdout), norm(&out.stderr)));
        }
        assert_eq!(outs[1], outs[0], "`secrets store {}`: clawgate (left) vs the reference (right)", args.join(" "));
    }
    // The store file is private.
    let store = homes[1].1.path().join(".openclaw/clawgate/secrets.sqlite");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&store).unwrap().permissions().mode() & 0o777, 0o600);
    // A secret's value never reaches any output: the whole session's stdout/stderr were compared
    // above and a listing never shows it.
    let out = cli(Cli::Clawgate, homes[1].1.path(), &["secrets", "store", "list", "--json"], &[], None);
    assert!(!out.stdout.contains("sk-store-1") && !out.stdout.contains("tok-1"), "{}", out.stdout);
}

/// A running gateway resolves a store ref and an env ref that only `<stateDir>/.env` holds:
/// the model provider receives those keys.
#[test]
fn a_gateway_serves_with_store_and_dotenv_refs() {
    let up = FakeUpstream::start();
    let home = std::sync::Arc::new(TempDir::new("store-ref-gw"));
    let sd = home.path().join("state");
    std::fs::create_dir_all(&sd).unwrap();
    let out = cli(
        Cli::Clawgate,
        home.path(),
        &["secrets", "store", "set", "FAKE_STORE_KEY"],
        &[("OPENCLAW_STATE_DIR", sd.to_str().unwrap())],
        Some(b"key-from-store\n"),
    );
    assert!(out.success(), "{out:?}");
    std::fs::write(sd.join(".env"), "FAKE_DOTENV_KEY=key-from-dotenv\n").unwrap();
    let mut store_provider = up.provider_config("unused");
    store_provider["apiKey"] = json!({"source": "store", "provider": "default", "id": "FAKE_STORE_KEY"});
    let mut env_provider = up.provider_config("unused");
    env_provider["apiKey"] = json!({"source": "env", "provider": "default", "id": "FAKE_DOTENV_KEY"});
    let config = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}}}},
        "models": {"providers": {"fake": store_provider, "fake2": env_provider}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}},
    });
    let gw = GatewayBuilder::new().home(home.clone()).config(config.to_string()).start();
    for model in ["fake/fake-echo", "fake2/fake-echo"] {
        let body = json!({"model": "openclaw", "messages": [{"role": "user", "content": "hi"}]}).to_string();
        let auth = format!("Bearer {}", gw.token());
        let h = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("x-openclaw-model", model)];
        let r = clawgate_tests::httpc::request(gw.addr(), "POST", "/v1/chat/completions", &h, body.as_bytes(), Duration::from_secs(30))
            .expect("request");
        assert_eq!(r.status, 200, "{model}: {:?}", r.json());
    }
    let keys: Vec<String> = up.chat_requests().iter().filter_map(|r| r.header("authorization").map(str::to_string)).collect();
    assert!(keys.contains(&"Bearer key-from-store".to_string()), "{keys:?}");
    assert!(keys.contains(&"Bearer key-from-dotenv".to_string()), "{keys:?}");
    assert!(!gw.stderr().contains("key-from-store"), "a secret reached the log");
}

/// A plan file in `home`: `version`/`protocolVersion` 1, these targets and extra top-level keys.
fn write_plan(home: &Path, name: &str, targets: Value, extra: Value) -> String {
    let mut plan = json!({"version": 1, "protocolVersion": 1, "targets": targets});
    if let (Some(p), Some(e)) = (plan.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    let path = home.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap().replace("{{HOME}}", &home.display().to_string())).unwrap();
    path.display().to_string()
}

fn api_key_target(provider: &str, r: Value) -> Value {
    json!({"type": "models.providers.apiKey", "path": format!("models.providers.{provider}.apiKey"),
        "pathSegments": ["models", "providers", provider, "apiKey"], "providerId": provider, "ref": r})
}

/// Parse a config file, without the `meta` block the reference stamps on its writes.
fn config_of(home: &Path) -> Value {
    let text = std::fs::read_to_string(home.join(".openclaw/openclaw.json")).unwrap();
    let mut v: Value = json5_value(&text);
    if let Some(o) = v.as_object_mut() {
        o.remove("meta");
    }
    v
}

fn json5_value(text: &str) -> Value {
    clawgate_core::config::file::parse_json5("openclaw.json", text).expect("config parses")
}

/// Run `secrets apply` (args after `--from <plan>`) on both CLIs, each on its own copy of
/// `case` with the plan `make_plan` writes there; the outputs, exit codes and resulting files
/// must match.
fn apply_differential(
    label: &str,
    case: &Case,
    make_plan: &dyn Fn(&Path) -> String,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Value, CmdOutput) {
    let mut results = Vec::new();
    for which in [Cli::Reference, Cli::Clawgate] {
        let home = build(case, &format!("{label}-{which:?}"));
        let plan = make_plan(home.path());
        let mut full = vec!["secrets", "apply", "--from", plan.as_str()];
        full.extend_from_slice(args);
        let out = cli(which, home.path(), &full, env, None);
        let h = home.path().display().to_string();
        let norm = |s: &str| {
            let s = s.replace(&h, "$HOME").replace("openclaw secrets apply --from", "clawgate secrets apply --from");
            // The JSON parser's own words after ` | ` are each runtime's.
            s.lines().map(|l| l.split(" | ").next().unwrap_or(l).to_string()).collect::<Vec<_>>().join("\n")
        };
        let env_file = std::fs::read_to_string(home.path().join(".openclaw/.env")).ok();
        let config: Value = serde_json::from_str(&config_of(home.path()).to_string().replace(&h, "$HOME")).unwrap();
        results.push((out.code, norm(&out.stdout), norm(&out.stderr), config, env_file, out));
    }
    let (r, c) = (&results[0], &results[1]);
    assert_eq!((c.0, &c.1, &c.2), (r.0, &r.1, &r.2), "{label}: clawgate (left) vs the reference (right): exit, stdout, stderr");
    assert_eq!(c.3, r.3, "{label}: the resulting config");
    assert_eq!(c.4, r.4, "{label}: the resulting .env");
    (c.3.clone(), results.pop().map(|r| r.5).unwrap())
}

const PLAIN_OPENAI: &str = r#"{gateway: {mode: "local"}, models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", apiKey: "sk-plain-123", models: []}}}}"#;

#[test]
fn apply_valid_plans_match_the_reference() {
    let env_ref = json!({"source": "env", "provider": "default", "id": "OPENAI_API_KEY"});
    let case = Case {
        config: PLAIN_OPENAI,
        files: vec![(".openclaw/.env", "# keep me\nOPENAI_API_KEY=sk-plain-123\nANTHROPIC_API_KEY=sk-ant-9\n".into(), 0o600)],
    };
    let plan = |h: &Path| write_plan(h, "plan.json", json!([api_key_target("openai", env_ref.clone())]), json!({}));
    let (cfg, out) = apply_differential("apply-dry", &case, &plan, &["--dry-run"], &[]);
    assert!(out.stdout.contains("2 file(s) would change"), "{out:?}");
    assert_eq!(cfg["models"]["providers"]["openai"]["apiKey"], "sk-plain-123", "a dry run writes nothing");
    apply_differential("apply-dry-json", &case, &plan, &["--dry-run", "--json"], &[]);
    let (cfg, _) = apply_differential("apply-write", &case, &plan, &[], &[]);
    assert_eq!(cfg["models"]["providers"]["openai"]["apiKey"], env_ref);
    // Already applied: nothing to change.
    let applied = Case {
        config: r#"{gateway: {mode: "local"}, models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", models: [], apiKey: {source: "env", provider: "default", id: "OPENAI_API_KEY"}}}}}"#,
        files: vec![],
    };
    apply_differential("apply-again", &applied, &plan, &["--json"], &[("OPENAI_API_KEY", "sk-x")]);

    // A provider the plan upserts serves its target's ref.
    let upsert_case =
        Case { config: PLAIN_OPENAI, files: vec![("secrets.json", r#"{"providers": {"openai": {"apiKey": "sk-file-1"}}}"#.into(), 0o600)] };
    let upsert = |h: &Path| {
        write_plan(
            h,
            "plan.json",
            json!([api_key_target("openai", json!({"source": "file", "provider": "filemain", "id": "/providers/openai/apiKey"}))]),
            json!({"providerUpserts": {"filemain": {"source": "file", "path": "{{HOME}}/secrets.json", "mode": "json"}}}),
        )
    };
    let (cfg, _) = apply_differential("apply-upsert", &upsert_case, &upsert, &[], &[]);
    assert_eq!(cfg["secrets"]["providers"]["filemain"]["source"], "file");
    let no_upsert = |h: &Path| {
        write_plan(
            h,
            "plan.json",
            json!([api_key_target("openai", json!({"source": "file", "provider": "filemain", "id": "/providers/openai/apiKey"}))]),
            json!({}),
        )
    };
    apply_differential("apply-no-provider", &upsert_case, &no_upsert, &[], &[]);
    // Unresolvable ref: refused before writing.
    let missing = |h: &Path| write_plan(h, "plan.json", json!([api_key_target("openai", env_ref.clone())]), json!({}));
    apply_differential("apply-unresolvable", &Case { config: PLAIN_OPENAI, files: vec![] }, &missing, &[], &[]);
}

#[test]
fn apply_refusals_match_the_reference() {
    let r = json!({"source": "env", "provider": "default", "id": "OPENAI_API_KEY"});
    let env = [("OPENAI_API_KEY", "sk-x")];
    let case = Case { config: PLAIN_OPENAI, files: vec![] };
    let bad_targets = [
        ("bad-path", json!({"type": "models.providers.apiKey", "path": "models.providers.openai.baseUrl", "ref": r})),
        ("bad-type", json!({"type": "models.nope", "path": "models.providers.openai.apiKey", "ref": r})),
        (
            "bad-segments",
            json!({"type": "models.providers.apiKey", "path": "models.providers.openai.apiKey", "pathSegments": ["models", "providers", "x", "apiKey"], "ref": r}),
        ),
        ("proto", json!({"type": "models.providers.apiKey", "path": "models.providers.__proto__.apiKey", "ref": r})),
        (
            "provider-id",
            json!({"type": "models.providers.apiKey", "path": "models.providers.openai.apiKey", "providerId": "anthropic", "ref": r}),
        ),
    ];
    for (label, t) in bad_targets {
        let (cfg, out) = apply_differential(label, &case, &|h: &Path| write_plan(h, "plan.json", json!([t.clone()]), json!({})), &[], &env);
        assert_eq!(out.code, Some(1));
        assert!(out.stderr.contains("Invalid secrets plan file"), "{label}: {}", out.stderr);
        assert_eq!(cfg["models"]["providers"]["openai"]["apiKey"], "sk-plain-123", "{label}: nothing written");
    }
    let exec_case = Case {
        config: r#"{gateway: {mode: "local"}, secrets: {providers: {vault: {source: "exec", command: "{{HOME}}/resolver.sh", jsonOnly: true}}},
            models: {providers: {openai: {baseUrl: "https://api.openai.com/v1", apiKey: "sk-plain-123", models: []}}}}"#,
        files: vec![("resolver.sh", RESOLVER_SH.into(), 0o700)],
    };
    let exec_plan = |h: &Path| {
        write_plan(
            h,
            "plan.json",
            json!([api_key_target("openai", json!({"source": "exec", "provider": "vault", "id": "openai/apiKey"}))]),
            json!({}),
        )
    };
    apply_differential("exec-write", &exec_case, &exec_plan, &[], &[]);
    apply_differential("exec-dry", &exec_case, &exec_plan, &["--dry-run"], &[]);
    apply_differential("exec-allowed", &exec_case, &exec_plan, &["--allow-exec"], &[]);
    // Plan files that are not plans.
    apply_differential(
        "plan-dir",
        &case,
        &|h: &Path| {
            std::fs::create_dir_all(h.join("plan.d")).unwrap();
            h.join("plan.d").display().to_string()
        },
        &[],
        &[],
    );
    apply_differential("plan-missing", &case, &|h: &Path| h.join("nope.json").display().to_string(), &[], &[]);
    apply_differential(
        "plan-json",
        &case,
        &|h: &Path| {
            std::fs::write(h.join("plan.json"), "{ not: json }").unwrap();
            h.join("plan.json").display().to_string()
        },
        &[],
        &[],
    );
    apply_differential(
        "plan-json-json",
        &case,
        &|h: &Path| {
            std::fs::write(h.join("plan.json"), "{ not: json }").unwrap();
            h.join("plan.json").display().to_string()
        },
        &["--json"],
        &[],
    );
    apply_differential(
        "plan-big",
        &case,
        &|h: &Path| {
            let mut big = vec![b' '; 16 * 1024 * 1024 + 1];
            big[0] = b'{';
            big[16 * 1024 * 1024] = b'}';
            std::fs::write(h.join("plan.json"), big).unwrap();
            h.join("plan.json").display().to_string()
        },
        &[],
        &[],
    );
}

/// Where clawgate differs on purpose: auth-profile targets (no such store here) are refused by
/// name; a config built from `$include`s is not flattened; no backup with the old plaintext.
#[test]
fn apply_refuses_what_clawgate_does_not_keep() {
    let home = build(&Case { config: PLAIN_OPENAI, files: vec![] }, "apply-own");
    let t = json!({"type": "auth-profiles.api_key.key", "path": "profiles.openai:default.key", "agentId": "main",
        "ref": {"source": "env", "provider": "default", "id": "OPENAI_API_KEY"}});
    let plan = write_plan(home.path(), "plan.json", json!([t]), json!({}));
    let out = cli(Cli::Clawgate, home.path(), &["secrets", "apply", "--from", &plan], &[], None);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("auth-profiles.api_key.key writes a per-agent auth-profile store, which clawgate does not keep"),
        "{}",
        out.stderr
    );
    let sd = home.path().join(".openclaw");
    std::fs::write(
        sd.join("models.json5"),
        r#"{providers: {openai: {baseUrl: "https://api.openai.com/v1", apiKey: "sk-inc", models: []}}}"#,
    )
    .unwrap();
    std::fs::write(sd.join("openclaw.json"), r#"{gateway: {mode: "local"}, models: {"$include": "./models.json5"}}"#).unwrap();
    let plan = write_plan(
        home.path(),
        "plan2.json",
        json!([api_key_target("openai", json!({"source": "env", "provider": "default", "id": "OPENAI_API_KEY"}))]),
        json!({}),
    );
    let out = cli(Cli::Clawgate, home.path(), &["secrets", "apply", "--from", &plan], &[("OPENAI_API_KEY", "x")], None);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("uses $include"), "{}", out.stderr);
    assert!(std::fs::read_to_string(sd.join("models.json5")).unwrap().contains("sk-inc"), "nothing written");
    let names: Vec<String> = std::fs::read_dir(&sd).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.ends_with(".bak")), "{names:?}");
}

/// `kill -9` at any moment of an apply leaves the old config or the new one, never a torn file.
#[test]
fn kill_9_during_apply_leaves_the_old_or_the_new_config() {
    let env_ref = json!({"source": "env", "provider": "default", "id": "OPENAI_API_KEY"});
    let mut outcomes = std::collections::BTreeSet::new();
    for attempt in 0..24u64 {
        let home = build(
            &Case { config: PLAIN_OPENAI, files: vec![(".openclaw/.env", "OPENAI_API_KEY=sk-plain-123\n".into(), 0o600)] },
            "apply-kill",
        );
        let plan = write_plan(home.path(), "plan.json", json!([api_key_target("openai", env_ref.clone())]), json!({}));
        let mut cmd = Command::new(clawgate_bin());
        base_env(&mut cmd, home.path());
        cmd.env("OPENCLAW_STATE_DIR", home.path().join(".openclaw")).args(["secrets", "apply", "--from", &plan]);
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(attempt * 700));
        let _ = child.kill();
        let _ = child.wait();
        let cfg = config_of(home.path());
        let key = &cfg["models"]["providers"]["openai"]["apiKey"];
        assert!(*key == json!("sk-plain-123") || *key == env_ref, "attempt {attempt}: {cfg}");
        outcomes.insert(if *key == env_ref { "new" } else { "old" });
        let env = std::fs::read_to_string(home.path().join(".openclaw/.env")).unwrap();
        assert!(env.is_empty() || env == "OPENAI_API_KEY=sk-plain-123\n", "attempt {attempt}: torn .env {env:?}");
    }
    assert!(outcomes.contains("old"), "{outcomes:?}");
}

/// A running gateway serves with the new ref once the plan is applied (the file watcher).
#[test]
fn a_running_gateway_picks_up_an_applied_plan() {
    let up = FakeUpstream::start();
    let home = std::sync::Arc::new(TempDir::new("apply-gw"));
    let sd = home.path().join("state");
    std::fs::create_dir_all(&sd).unwrap();
    let env = [("OPENCLAW_STATE_DIR", sd.to_str().unwrap())];
    assert!(cli(Cli::Clawgate, home.path(), &["secrets", "store", "set", "FAKE_STORE_KEY"], &env, Some(b"key-after-apply\n")).success());
    let config = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}}}},
        "models": {"providers": {"fake": up.provider_config("key-before")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}},
    });
    let gw = GatewayBuilder::new().home(home.clone()).config(config.to_string()).start();
    let chat = |gw: &clawgate_tests::Gateway| {
        let auth = format!("Bearer {}", gw.token());
        let h = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let body = json!({"model": "openclaw", "messages": [{"role": "user", "content": "hi"}]}).to_string();
        let r = clawgate_tests::httpc::request(gw.addr(), "POST", "/v1/chat/completions", &h, body.as_bytes(), Duration::from_secs(30))
            .unwrap();
        assert_eq!(r.status, 200, "{:?}", r.json());
    };
    chat(&gw);
    let plan = write_plan(
        home.path(),
        "plan.json",
        json!([api_key_target("fake", json!({"source": "store", "provider": "default", "id": "FAKE_STORE_KEY"}))]),
        json!({}),
    );
    let out = cli(Cli::Clawgate, home.path(), &["secrets", "apply", "--from", &plan], &env, None);
    assert!(out.success(), "{out:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        chat(&gw);
        let last = up.chat_requests().last().and_then(|r| r.header("authorization").map(str::to_string));
        if last.as_deref() == Some("Bearer key-after-apply") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the gateway still sends {last:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!gw.stderr().contains("key-after-apply"));
}

/// The store over the gateway (`secrets.store.list|set|delete`, what the Control UI's Settings ›
/// Secrets calls; shapes and refusals as captured from the reference): a write to a name the
/// config's store ref uses refreshes the running provider key (`reloaded: true`), others do not;
/// a listing never carries a secret's value; admin scope only; the CLI sees the same store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_methods_edit_the_store_and_refresh_the_running_gateway() {
    use clawgate_tests::ws::{IO_TIMEOUT, connect_cli};
    let up = FakeUpstream::start();
    let mut provider = up.provider_config("unused");
    provider["apiKey"] = json!({"source": "store", "provider": "default", "id": "FAKE_STORE_KEY"});
    let config = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}}}},
        "models": {"providers": {"fake": provider}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}},
    });
    let gw = tokio::task::block_in_place(|| GatewayBuilder::new().config(config.to_string()).start());
    let mut admin = connect_cli(&gw.url(), &gw.token(), &["operator.admin"]).await.expect("connect");
    let call = async |c: &mut clawgate_driver::client::Client<clawgate_tokio::Tokio>, method: &str, p: Value| {
        let r = c.request(method, Some(p), false, IO_TIMEOUT).await.expect(method);
        if r.ok { Ok(r.payload.unwrap_or_default()) } else { Err(r.error.expect("error")) }
    };
    let chat = |gw: &clawgate_tests::Gateway| {
        let body = json!({"model": "openclaw", "messages": [{"role": "user", "content": "hi"}]}).to_string();
        let auth = format!("Bearer {}", gw.token());
        let h = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("x-openclaw-model", "fake/fake-echo")];
        tokio::task::block_in_place(|| {
            clawgate_tests::httpc::request(gw.addr(), "POST", "/v1/chat/completions", &h, body.as_bytes(), Duration::from_secs(30))
                .expect("request")
                .status
        })
    };

    assert_eq!(call(&mut admin, "secrets.store.list", json!({})).await.unwrap(), json!({"entries": []}));
    assert_ne!(chat(&gw), 200, "no key yet: the provider is degraded");

    let set = json!({"name": "FAKE_STORE_KEY", "value": "key-set-over-rpc", "kind": "secret", "allowedHosts": ["API.Example.com"]});
    assert_eq!(call(&mut admin, "secrets.store.set", set).await.unwrap(), json!({"ok": true, "reloaded": true, "warningCount": 0}));
    assert_eq!(chat(&gw), 200, "the referenced name refreshed the running provider");
    assert_eq!(
        up.chat_requests().last().and_then(|r| r.header("authorization").map(str::to_string)).as_deref(),
        Some("Bearer key-set-over-rpc")
    );
    let env = json!({"name": "SOME_URL", "value": "https://example.com/x\nline2", "kind": "env"});
    assert_eq!(call(&mut admin, "secrets.store.set", env).await.unwrap(), json!({"ok": true, "reloaded": false}));

    let list = call(&mut admin, "secrets.store.list", json!({})).await.unwrap();
    let entries = list["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{list}");
    assert_eq!((entries[0]["name"].as_str(), entries[0]["kind"].as_str()), (Some("FAKE_STORE_KEY"), Some("secret")));
    assert_eq!(entries[0]["allowedHosts"], json!(["api.example.com"]));
    assert!(entries[0].get("value").is_none() && !list.to_string().contains("key-set-over-rpc"), "a secret's value never leaves: {list}");
    assert_eq!(entries[1]["value"], "https://example.com/x\nline2");
    assert_eq!(entries[1]["updatedBy"], "cli", "signed by the client");

    // Refusals: the store's rules, and admin only.
    let e = call(&mut admin, "secrets.store.set", json!({"name": "FAKE_STORE_KEY", "value": "__OPENCLAW_REDACTED__", "kind": "secret"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "INVALID_REQUEST");
    assert!(e.message.contains("redaction placeholder"), "{e:?}");
    let mut reader = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write"]).await.expect("connect");
    let e = call(&mut reader, "secrets.store.list", json!({})).await.unwrap_err();
    assert_eq!((e.code.as_str(), e.message.as_str()), ("FORBIDDEN", "missing scope: operator.admin"));

    // The CLI reads the same store.
    let home = gw.home_path().to_path_buf();
    let sd = home.join("state");
    let out = tokio::task::block_in_place(|| {
        cli(Cli::Clawgate, &home, &["secrets", "store", "list", "--plain"], &[("OPENCLAW_STATE_DIR", sd.to_str().unwrap())], None)
    });
    assert!(out.stdout.contains("SOME_URL\tenv\t") && out.stdout.contains("FAKE_STORE_KEY\tsecret\t"), "{out:?}");

    // Deleting the referenced name re-resolves too: the provider degrades (one warning).
    assert_eq!(
        call(&mut admin, "secrets.store.delete", json!({"name": "FAKE_STORE_KEY"})).await.unwrap(),
        json!({"ok": true, "reloaded": true, "warningCount": 1})
    );
    assert_ne!(chat(&gw), 200, "the deleted key is no longer used");
    assert_eq!(
        call(&mut admin, "secrets.store.delete", json!({"name": "NEVER_SET"})).await.unwrap(),
        json!({"ok": true, "reloaded": false})
    );
    assert!(!gw.stderr().contains("key-set-over-rpc"), "a secret reached the log");
}

/// `clawgate secrets configure` on a terminal (tmux): an env provider added, two plaintext
/// fields mapped to refs (each resolved as it is given), the preflight and plan lines, the
/// apply declined; the plan it wrote is accepted by the reference's `apply --dry-run` and by
/// clawgate's, and applying it writes the refs. Without a terminal it refuses, as the reference.
#[test]
fn configure_writes_a_plan_the_reference_applies() {
    let home = TempDir::new("configure");
    let sd = home.path().join(".openclaw");
    std::fs::create_dir_all(&sd).unwrap();
    let config = r#"{models:{providers:{openai:{baseUrl:"https://api.openai.com/v1",apiKey:"sk-plain-123",models:[]}}}, gateway:{auth:{mode:"token",token:"plain-token-abcdef"}}}"#;
    std::fs::write(sd.join("openclaw.json"), config).unwrap();
    let env = [("OPENAI_API_KEY", "sk-env-999"), ("OPENCLAW_GATEWAY_TOKEN", "gw-env-token-0123456789")];

    let out = cli(Cli::Clawgate, home.path(), &["secrets", "configure"], &[], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("Secrets configure failed: secrets configure requires an interactive TTY."), "{out:?}");

    let plan_path = home.path().join("plan.json");
    let line = format!(
        "env HOME='{h}' OPENCLAW_STATE_DIR='{sd}' OPENAI_API_KEY=sk-env-999 OPENCLAW_GATEWAY_TOKEN=gw-env-token-0123456789 '{bin}' secrets configure --plan-out '{plan}'; echo EXIT=$?",
        h = home.path().display(),
        sd = sd.display(),
        bin = clawgate_bin().display(),
        plan = plan_path.display()
    );
    let pane = clawgate_tests::tui::Tui::pane(&line);
    let wait = |text: &str| {
        pane.wait_for(Duration::from_secs(20), |s| s.contains(text)).unwrap_or_else(|screen| panic!("waiting for {text:?}:\n{screen}"))
    };
    let active = |prompt: &str| wait(&format!("◆  {prompt}"));
    active("Configure secret providers");
    pane.keys(&["Enter"]); // Add provider
    active("Provider source");
    pane.keys(&["Enter"]); // env
    active("Provider alias");
    pane.send_line("envx");
    active("Env allowlist");
    pane.keys(&["Enter"]); // unrestricted
    wait("Edit provider");
    pane.keys(&["Down", "Down", "Down", "Enter"]); // Continue
    active("Select credential field");
    pane.keys(&["Down", "Enter"]); // models.providers.openai.apiKey
    for (i, id) in ["OPENAI_API_KEY", "OPENCLAW_GATEWAY_TOKEN"].into_iter().enumerate() {
        active("Secret source");
        pane.keys(&["Enter"]); // env
        active("Provider alias");
        pane.keys(&["Enter"]); // envx, the configured env provider
        let screen = active("Secret id");
        assert!(screen.contains(id), "{id} proposed:\n{screen}");
        pane.keys(&["Enter"]);
        active("Configure another credential?");
        if i == 0 {
            pane.keys(&["Enter"]); // yes
            wait("Done");
            pane.keys(&["Down", "Enter"]); // gateway.auth.token (after Done)
        } else {
            pane.keys(&["Right", "Enter"]); // no
        }
    }
    active("Apply this plan now?");
    pane.keys(&["Right", "Enter"]); // no
    let screen = wait("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(screen.contains("Preflight: changed=true, files=1, warnings=0."), "{screen}");
    assert!(screen.contains("Plan: targets=2, providerUpserts=1, providerDeletes=0."), "{screen}");
    assert!(!screen.contains("sk-env-999") && !screen.contains("gw-env-token"), "no value on screen:\n{screen}");
    let plan: Value = serde_json::from_slice(&std::fs::read(&plan_path).expect("plan written")).expect("plan JSON");
    assert_eq!(plan["providerUpserts"], json!({"envx": {"source": "env"}}), "{plan:#}");
    assert_eq!(plan["targets"][0]["ref"], json!({"source": "env", "provider": "envx", "id": "OPENAI_API_KEY"}));
    assert_eq!(plan["targets"][0]["providerId"], "openai");
    assert_eq!(plan["targets"][1]["type"], "gateway.auth.token");
    assert!(config_of(home.path())["models"]["providers"]["openai"]["apiKey"] == "sk-plain-123", "declined: nothing applied");

    // The reference's apply accepts it (dry run), as does clawgate's, which then writes it.
    let plan_arg = plan_path.to_str().unwrap();
    let reference = cli(Cli::Reference, home.path(), &["secrets", "apply", "--from", plan_arg, "--dry-run"], &env, None);
    assert!(reference.success() && reference.stdout.contains("1 file(s) would change"), "{reference:?}");
    let ours = cli(Cli::Clawgate, home.path(), &["secrets", "apply", "--from", plan_arg, "--dry-run"], &env, None);
    assert!(ours.success() && ours.stdout.contains("1 file(s) would change"), "{ours:?}");
    let applied = cli(Cli::Clawgate, home.path(), &["secrets", "apply", "--from", plan_arg], &env, None);
    assert!(applied.success(), "{applied:?}");
    let after = config_of(home.path());
    assert_eq!(after["models"]["providers"]["openai"]["apiKey"], json!({"source": "env", "provider": "envx", "id": "OPENAI_API_KEY"}));
    assert_eq!(after["secrets"]["providers"]["envx"], json!({"source": "env"}));
    drop(pane);

    // --skip-provider-setup --yes --json: straight to the fields, applied without a question,
    // the apply report as JSON on stdout (the prompts are on stderr).
    let home2 = TempDir::new("configure-json");
    let sd2 = home2.path().join(".openclaw");
    std::fs::create_dir_all(&sd2).unwrap();
    std::fs::write(sd2.join("openclaw.json"), config).unwrap();
    let json_out = home2.path().join("out.json");
    let line = format!(
        "env HOME='{h}' OPENCLAW_STATE_DIR='{sd}' OPENCLAW_GATEWAY_TOKEN=gw-env-token-0123456789 '{bin}' secrets configure --skip-provider-setup --yes --json > '{out}'; echo EXIT=$?",
        h = home2.path().display(),
        sd = sd2.display(),
        bin = clawgate_bin().display(),
        out = json_out.display()
    );
    let pane = clawgate_tests::tui::Tui::pane(&line);
    let wait = |text: &str| {
        pane.wait_for(Duration::from_secs(20), |s| s.contains(text)).unwrap_or_else(|screen| panic!("waiting for {text:?}:\n{screen}"))
    };
    wait("◆  Select credential field");
    pane.keys(&["Enter"]); // gateway.auth.token
    for _ in 0..3 {
        // source env, alias default, id OPENCLAW_GATEWAY_TOKEN
        std::thread::sleep(Duration::from_millis(300));
        pane.keys(&["Enter"]);
    }
    wait("◆  Configure another credential?");
    pane.keys(&["Right", "Enter"]);
    let screen = wait("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap_or_else(|e| panic!("{e}: {screen}"));
    assert_eq!(
        (report["mode"].as_str(), report["changed"].as_bool(), report["refsChecked"].as_u64()),
        (Some("write"), Some(true), Some(1))
    );
    assert_eq!(
        config_of(home2.path())["gateway"]["auth"]["token"],
        json!({"source": "env", "provider": "default", "id": "OPENCLAW_GATEWAY_TOKEN"})
    );
}

/// Plans the reference's `secrets configure` wrote (captured: tests/testdata/secrets-configure)
/// are accepted by `clawgate secrets apply --dry-run`.
#[test]
fn reference_configure_plans_are_accepted_by_clawgate_apply() {
    let dir = clawgate_tests::workspace_root().join("tests/testdata/secrets-configure");
    for case in ["w2-example", "w5-providers-only", "w6-file-delete", "w14-providers-all"] {
        let home = TempDir::new("configure-ref-plan");
        let sd = home.path().join(".openclaw");
        std::fs::create_dir_all(&sd).unwrap();
        let secrets_json = home.path().join("secrets.json");
        std::fs::write(&secrets_json, r#"{"providers":{"openai":{"apiKey":"sk-from-file"}}}"#).unwrap();
        std::fs::set_permissions(&secrets_json, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let config = std::fs::read_to_string(dir.join(case).join("config.json5")).unwrap();
        std::fs::write(sd.join("openclaw.json"), config.replace("{{SECRETS_JSON}}", secrets_json.to_str().unwrap())).unwrap();
        let plan = dir.join(case).join("plan.json");
        let env = [("OPENAI_API_KEY", "sk-env-999"), ("OPENCLAW_GATEWAY_TOKEN", "gw-env-token-0123456789")];
        let out = cli(Cli::Clawgate, home.path(), &["secrets", "apply", "--from", plan.to_str().unwrap(), "--dry-run"], &env, None);
        assert!(out.success() && out.stdout.contains("1 file(s) would change"), "{case}: {out:?}");
    }
}
