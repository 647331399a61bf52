//! The official `openai` Python SDK (pinned, installed from PyPI into a venv under the target
//! dir) against a real gateway whose provider is the fake upstream on loopback:
//! tests/python/openai_sdk_suite.py must pass every check (models, chat with and without stream,
//! a tool-call round trip, responses with stream and `previous_response_id`, embeddings float and
//! base64, a wrong key).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clawgate_tests::GatewayBuilder;
use clawgate_tests::python::openai_venv;
use clawgate_tests::run_command;
use clawgate_tests::upstream::FakeUpstream;
use serde_json::json;

#[test]
fn openai_python_sdk_suite_passes() {
    let py = openai_venv(Path::new(env!("CARGO_TARGET_TMPDIR")).join("py").as_path());
    let up = FakeUpstream::start();
    let cfg = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}}}},
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
        "memory": {"search": {"provider": "openai-compatible", "model": "fake-embed", "remote": {"baseUrl": up.base_url(), "apiKey": "fake-embed-key"}}},
    });
    let gw = GatewayBuilder::new().config(cfg.to_string()).start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join("openai_sdk_suite.py");
    let out = run_command(
        Command::new(&py)
            .arg(&script)
            .env("CLAWGATE_BASE_URL", format!("http://127.0.0.1:{}", gw.port))
            .env("CLAWGATE_TOKEN", gw.token())
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL"),
        Duration::from_secs(300),
    );
    println!("{}", out.stdout);
    assert!(
        out.success(),
        "the openai SDK suite failed (code {:?}):\n{}\n{}\n--- gateway ---\n{}",
        out.code,
        out.stdout,
        out.stderr,
        gw.stderr()
    );
    assert!(out.stdout.contains("PASS embeddings") && !out.stdout.contains("FAIL"), "{}", out.stdout);
}
