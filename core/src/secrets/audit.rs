//! `secrets audit` (the reference's report contract): a read-only scan of the config's
//! credential fields (`surface`), the `.env` files beside the state and the config, and the
//! team store, for plaintext, refs that do not resolve, and plaintext that duplicates a store
//! entry. Resolution goes through the caller (exec refs only with `--allow-exec`).
//!
//! `REF_SHADOWED` and `LEGACY_RESIDUE` concern the reference's per-agent auth-profile stores and
//! legacy `auth.json`, which clawgate does not keep: their counts are always 0.

use serde::Serialize;
use serde_json::Value;

use crate::config::secrets::{SecretInput, SecretRef, SecretSource};
use crate::config::settings::REDACTED;

/// Env names whose `.env` values count as secrets (the reference's known provider and tool
/// credential names, as its audit flagged them in 2026.9.6).
pub const KNOWN_SECRET_ENV_NAMES: &[&str] = &[
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "MODELSTUDIO_API_KEY",
    "DASHSCOPE_API_KEY",
    "QWEN_API_KEY",
    "ANTHROPIC_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "AZURE_SPEECH_KEY",
    "AZURE_SPEECH_API_KEY",
    "SPEECH_KEY",
    "AZURE_SPEECH_REGION",
    "SPEECH_REGION",
    "CLAWROUTER_API_KEY",
    "DEEPGRAM_API_KEY",
    "ELEVENLABS_API_KEY",
    "XI_API_KEY",
    "FAL_KEY",
    "FAL_API_KEY",
    "COPILOT_GITHUB_TOKEN",
    "GOOGLE_CLOUD_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "HUGGINGFACE_HUB_TOKEN",
    "HF_TOKEN",
    "LITELLM_API_KEY",
    "LM_API_TOKEN",
    "AZURE_OPENAI_API_KEY",
    "MINIMAX_API_KEY",
    "MINIMAX_OAUTH_TOKEN",
    "NVIDIA_API_KEY",
    "OLLAMA_API_KEY",
    "CODEX_API_KEY",
    "OPENAI_API_KEY",
    "OPENCODE_API_KEY",
    "OPENCODE_ZEN_API_KEY",
    "OPENROUTER_API_KEY",
    "RUNWAYML_API_SECRET",
    "RUNWAY_API_KEY",
    "SENSEAUDIO_API_KEY",
    "SGLANG_API_KEY",
    "TOGETHER_API_KEY",
    "VLLM_API_KEY",
    "XAI_API_KEY",
    "MINIMAX_CODE_PLAN_KEY",
    "MINIMAX_CODING_API_KEY",
    "VOYAGE_API_KEY",
    "CEREBRAS_API_KEY",
    "ANTHROPIC_ADMIN_KEY",
    "ANTHROPIC_ADMIN_API_KEY",
    "OPENAI_ADMIN_KEY",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    PlaintextFound,
    RefUnresolved,
    PlaceholderValue,
    RefShadowed,
    StorePlaintextResidue,
    LegacyResidue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: &'static str,
    pub file: String,
    #[serde(rename = "jsonPath")]
    pub json_path: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub refs_checked: usize,
    pub skipped_exec_refs: usize,
    pub resolvability_complete: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub plaintext_count: usize,
    pub unresolved_ref_count: usize,
    pub shadowed_ref_count: usize,
    pub store_residue_count: usize,
    pub legacy_residue_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub version: u32,
    /// `clean`, `findings`, `unresolved`.
    pub status: &'static str,
    pub resolution: Resolution,
    pub files_scanned: Vec<String>,
    pub summary: Summary,
    pub findings: Vec<Finding>,
}

/// A `.env` file that exists, and its text.
#[derive(Debug, Clone)]
pub struct EnvFile {
    pub path: String,
    pub text: String,
}

/// What the shell read.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub config_path: &'a str,
    /// The config as authored (`$include`s merged, `${VAR}` not substituted); `None` when the
    /// file does not parse or validate.
    pub config: Option<&'a Value>,
    pub env_files: &'a [EnvFile],
    /// Live store entries: `(name, value)`.
    pub store: &'a [(String, String)],
    pub allow_exec: bool,
}

fn finding(code: Code, file: &str, path: &str, message: String, provider: Option<&str>) -> Finding {
    let severity = match code {
        Code::RefUnresolved | Code::PlaceholderValue => "error",
        _ => "warn",
    };
    Finding { code, severity, file: file.into(), json_path: path.into(), message, provider: provider.map(str::to_string) }
}

/// Run the audit; `resolve` returns a ref's value or why it cannot (never called for an exec
/// ref without `allow_exec`).
pub fn audit(input: &Input<'_>, resolve: &mut dyn FnMut(&SecretRef) -> Result<String, String>) -> Report {
    let mut findings = Vec::new();
    let mut resolution = Resolution { resolvability_complete: true, ..Default::default() };
    let file = input.config_path;
    match input.config {
        None => findings.push(finding(
            Code::RefUnresolved,
            file,
            "<root>",
            "Config is invalid; cannot validate secret references reliably.".into(),
            None,
        )),
        Some(config) => {
            for f in super::surface::find(config) {
                let path = f.path();
                match SecretInput::from_value(f.value) {
                    Ok(SecretInput::Plain(s)) if s.is_empty() => {}
                    Ok(SecretInput::Plain(s)) => {
                        findings.push(finding(Code::PlaintextFound, file, &path, format!("{path} is stored as plaintext."), f.provider()));
                        if let Some((name, _)) = input.store.iter().find(|(_, v)| *v == s) {
                            findings.push(finding(
                                Code::StorePlaintextResidue,
                                file,
                                &path,
                                format!(
                                    "{path} duplicates team secret store entry \"{name}\"; replace the plaintext with a store SecretRef."
                                ),
                                None,
                            ));
                        }
                    }
                    Ok(SecretInput::Ref(r)) => {
                        if r.source == SecretSource::Exec && !input.allow_exec {
                            resolution.skipped_exec_refs += 1;
                            resolution.resolvability_complete = false;
                            continue;
                        }
                        resolution.refs_checked += 1;
                        let d = r.describe();
                        match resolve(&r) {
                            Ok(v) if v.contains(REDACTED) => findings.push(finding(
                                Code::PlaceholderValue,
                                file,
                                &path,
                                format!(
                                    "Failed to resolve {d} (Secret reference \"{d}\" resolves to a redaction placeholder. Run clawgate doctor --fix to repair a store-backed Gateway token; supply a real credential for other secrets.)."
                                ),
                                f.provider(),
                            )),
                            Ok(_) => {}
                            Err(e) => findings.push(finding(Code::RefUnresolved, file, &path, format!("Failed to resolve {d} ({e})."), f.provider())),
                        }
                    }
                    // Not a credential shape (a number, a malformed ref): the config's validation says so.
                    Err(_) => {}
                }
            }
        }
    }
    for env in input.env_files {
        for line in env.text.lines() {
            if let Some((name, value)) = super::dotenv::line_assignment(line) {
                if !value.is_empty() && KNOWN_SECRET_ENV_NAMES.contains(&name) {
                    findings.push(finding(
                        Code::PlaintextFound,
                        &env.path,
                        &format!("$env.{name}"),
                        format!("Potential secret found in .env ({name})."),
                        None,
                    ));
                }
            }
        }
    }
    let count = |c: &[Code]| findings.iter().filter(|f| c.contains(&f.code)).count();
    let summary = Summary {
        plaintext_count: count(&[Code::PlaintextFound]),
        unresolved_ref_count: count(&[Code::RefUnresolved, Code::PlaceholderValue]),
        shadowed_ref_count: count(&[Code::RefShadowed]),
        store_residue_count: count(&[Code::StorePlaintextResidue]),
        legacy_residue_count: count(&[Code::LegacyResidue]),
    };
    let status = if summary.unresolved_ref_count > 0 {
        "unresolved"
    } else if findings.is_empty() {
        "clean"
    } else {
        "findings"
    };
    let mut files_scanned: Vec<String> =
        std::iter::once(input.config_path.to_string()).chain(input.env_files.iter().map(|e| e.path.clone())).collect();
    files_scanned.sort();
    files_scanned.dedup();
    Report { version: 1, status, resolution, files_scanned, summary, findings }
}

/// 2 with unresolved refs (always), 1 for other findings with `--check`, else 0.
pub fn exit_code(r: &Report, check: bool) -> i32 {
    match r.status {
        "unresolved" => 2,
        "findings" if check => 1,
        _ => 0,
    }
}

/// The human report (at most 20 findings listed).
pub fn text(r: &Report) -> String {
    let s = &r.summary;
    let mut out = format!(
        "Secrets audit: {}. plaintext={}, unresolved={}, shadowed={}, storeResidue={}, legacy={}.\n",
        r.status, s.plaintext_count, s.unresolved_ref_count, s.shadowed_ref_count, s.store_residue_count, s.legacy_residue_count
    );
    for f in r.findings.iter().take(20) {
        let code = serde_json::to_value(f.code).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        out.push_str(&format!("- [{code}] {}:{} {}\n", f.file, f.json_path, f.message));
    }
    if r.findings.len() > 20 {
        out.push_str(&format!("... {} more finding(s).\n", r.findings.len() - 20));
    }
    if r.resolution.skipped_exec_refs > 0 {
        out.push_str(&format!(
            "Audit note: skipped {} exec SecretRef resolvability check(s). Re-run with --allow-exec to execute exec providers during audit.\n",
            r.resolution.skipped_exec_refs
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plaintext_residue_refs_and_env_files() {
        let cfg = json!({
            "gateway": {"auth": {"token": "plain-token"}},
            "models": {"providers": {
                "openai": {"apiKey": "sk-1"},
                "a": {"apiKey": {"source": "env", "provider": "default", "id": "MISSING_X"}},
                "b": {"apiKey": {"source": "exec", "provider": "vault", "id": "k"}},
                "c": {"apiKey": "${SET_Y}"},
            }},
        });
        let envs = [EnvFile { path: "/s/.env".into(), text: "OPENAI_API_KEY=sk-env\nMY_SECRET=x\nGITHUB_TOKEN=\n".into() }];
        let store = [("OPENAI_API_KEY".to_string(), "sk-1".to_string())];
        let input = Input { config_path: "/s/openclaw.json", config: Some(&cfg), env_files: &envs, store: &store, allow_exec: false };
        let r = audit(&input, &mut |r| {
            if r.id == "SET_Y" { Ok("v".into()) } else { Err(format!("Environment variable \"{}\" is missing or empty.", r.id)) }
        });
        let got: Vec<(Code, &str)> = r.findings.iter().map(|f| (f.code, f.json_path.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Code::PlaintextFound, "gateway.auth.token"),
                (Code::PlaintextFound, "models.providers.openai.apiKey"),
                (Code::StorePlaintextResidue, "models.providers.openai.apiKey"),
                (Code::RefUnresolved, "models.providers.a.apiKey"),
                (Code::PlaintextFound, "$env.OPENAI_API_KEY"),
            ]
        );
        assert_eq!(r.status, "unresolved");
        assert_eq!((r.resolution.refs_checked, r.resolution.skipped_exec_refs, r.resolution.resolvability_complete), (2, 1, false));
        assert_eq!(exit_code(&r, false), 2);
        let t = text(&r);
        assert!(t.starts_with("Secrets audit: unresolved. plaintext=3, unresolved=1, shadowed=0, storeResidue=1, legacy=0.\n"), "{t}");
        assert!(t.contains("Failed to resolve env:default:MISSING_X (Environment variable \"MISSING_X\" is missing or empty.)."));
        assert!(t.ends_with("Re-run with --allow-exec to execute exec providers during audit.\n"));
        assert!(!serde_json::to_string(&r).unwrap().contains("sk-1"), "a value never reaches the report");
    }

    #[test]
    fn an_invalid_config_is_one_unresolved_root_finding() {
        let input = Input { config_path: "/c.json", config: None, env_files: &[], store: &[], allow_exec: true };
        let r = audit(&input, &mut |_| Ok(String::new()));
        assert_eq!((r.status, r.findings[0].json_path.as_str(), exit_code(&r, true)), ("unresolved", "<root>", 2));
        let clean = audit(&Input { config: Some(&json!({})), ..input }, &mut |_| Ok(String::new()));
        assert_eq!((clean.status, exit_code(&clean, true)), ("clean", 0));
        assert_eq!(serde_json::to_value(&clean).unwrap()["filesScanned"], json!(["/c.json"]));
    }
}
