//! `clawgate secrets configure` (issue 16): the interactive planner on a terminal — provider
//! setup, credential fields mapped to SecretRefs (each ref resolved as it is given), the
//! preflight (the apply dry run), an optional plan file and apply. The decisions are
//! `clawgate_core::secrets::configure`; this file asks the questions (cliclack, clack's look,
//! drawn on stderr so `--json` keeps stdout clean) and does the IO.

use std::io::{self, IsTerminal};
use std::path::Path;

use clawgate_core::cli::SecretsConfigureArgs;
use clawgate_core::config::secrets::{self, SecretIo, SecretRef, SecretSource};
use clawgate_core::secrets::configure::{self as planner, Candidate, ExecAnswers, ProviderAnswers};
use clawgate_core::secrets::plan;
use serde_json::{Map, Value, json};

use crate::config::ShellSecretIo;
use crate::secrets::{applied_json, apply_parsed};
use crate::state;

/// Why the planner stopped (the message of `Secrets configure failed: …`).
struct Failed(String);

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Failed {
        if e.kind() == io::ErrorKind::Interrupted { Failed("Secrets configure cancelled.".into()) } else { Failed(e.to_string()) }
    }
}

fn failed(m: impl Into<String>) -> Failed {
    Failed(m.into())
}

type Step<T> = Result<T, Failed>;

/// `secrets configure [--plan-out] [--providers-only | --skip-provider-setup] [--apply] [--yes]
/// [--json] [--allow-exec] [--agent]`. Exit 1 on any failure or a cancelled prompt, 0 otherwise
/// (a declined apply included).
pub fn configure(a: SecretsConfigureArgs) -> i32 {
    match run(&a) {
        Ok(code) => code,
        Err(Failed(message)) => {
            if a.json {
                let v = json!({"ok": false, "error": {"type": "cli_error", "message": message}});
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                // As the reference words it (a message's own period is kept: "…TTY.. Re-run").
                eprintln!("Secrets configure failed: {message}. Re-run clawgate secrets audit before applying changes.");
            }
            1
        }
    }
}

fn run(a: &SecretsConfigureArgs) -> Step<i32> {
    if !io::stdin().is_terminal() {
        return Err(failed("secrets configure requires an interactive TTY."));
    }
    if a.providers_only && a.skip_provider_setup {
        return Err(failed("Cannot combine --providers-only with --skip-provider-setup."));
    }
    let state_dir = state::state_dir();
    let config_path = state::config_path(&state_dir);
    let config = match crate::config::load_file(&config_path) {
        Ok(Some((c, _))) => c.source,
        Ok(None) => Value::Object(Map::new()),
        Err(_) => return Err(failed("Cannot run interactive secrets configure because config is invalid.")),
    };
    if !a.json {
        cliclack::intro("clawgate secrets configure")?;
    }
    let original: Map<String, Value> = config.pointer("/secrets/providers").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut staged = original.clone();
    if !a.skip_provider_setup {
        provider_step(&mut staged)?;
    }
    check_agent(&config, a.agent.as_deref())?;
    let mut staged_config = config.clone();
    staged_config["secrets"] = staged_config.get("secrets").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    staged_config["secrets"]["providers"] = Value::Object(staged.clone());
    let targets = if a.providers_only { Vec::new() } else { mapping_step(&staged_config, &staged, a.allow_exec)? };
    if targets.is_empty() && staged == original {
        return Err(failed("No secrets changes were selected."));
    }
    let generated_at = clawgate_core::logs::line::iso_utc(crate::session::unix_ms());
    let plan_value = planner::build_plan(&targets, &original, &staged, &generated_at, "clawgate secrets configure");
    let plan_text = serde_json::to_string_pretty(&plan_value).unwrap_or_default() + "\n";
    let parsed = plan::parse("(generated plan)", plan_text.as_bytes()).map_err(|e| failed(e.to_string()))?;
    let preflight = apply_parsed(&parsed, true, a.allow_exec).map_err(|f| failed(f.detail))?;
    if let Some(out) = &a.plan_out {
        if plan_text.len() as u64 > plan::MAX_PLAN_BYTES {
            return Err(failed(format!("Secrets plan exceeds {} bytes and cannot be written: {out}", plan::MAX_PLAN_BYTES)));
        }
        // A plan holds refs, never values: readable like any reviewed file.
        state::write_atomic(Path::new(out), plan_text.as_bytes(), 0o644).map_err(|e| failed(format!("cannot write {out}: {e}")))?;
    }
    if !a.json {
        println!("Preflight: changed={}, files={}, warnings=0.", !preflight.changed_files.is_empty(), preflight.changed_files.len());
        if preflight.skipped_exec_refs > 0 {
            println!(
                "Preflight note: skipped {} exec SecretRef resolvability check(s). Re-run with --allow-exec to execute exec providers during preflight.",
                preflight.skipped_exec_refs
            );
        }
        println!(
            "Plan: targets={}, providerUpserts={}, providerDeletes={}.",
            parsed.targets.len(),
            parsed.provider_upserts.len(),
            parsed.provider_deletes.len()
        );
        if let Some(out) = &a.plan_out {
            println!("Plan written to {out}");
        }
    }
    let mut apply = a.apply || a.yes;
    if !apply && !a.json {
        // A cancelled question here ends the command quietly (nothing was changed).
        match cliclack::confirm("Apply this plan now?").initial_value(true).interact() {
            Ok(yes) => apply = yes,
            Err(_) => return Ok(0),
        }
    }
    if !apply {
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"plan": plan_value, "preflight": applied_json(&preflight, true)})).unwrap_or_default()
            );
        }
        return Ok(0);
    }
    if !a.yes && !a.json {
        let go = cliclack::confirm("This migration is one-way for migrated plaintext values. Continue with apply?")
            .initial_value(true)
            .interact();
        if !matches!(go, Ok(true)) {
            println!("Apply cancelled.");
            return Ok(0);
        }
    }
    if parsed.has_exec() && !a.allow_exec {
        return Err(failed("Plan contains exec SecretRefs/providers. Re-run with --allow-exec."));
    }
    let applied = apply_parsed(&parsed, false, a.allow_exec).map_err(|f| failed(f.detail))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&applied_json(&applied, false)).unwrap_or_default());
    } else if applied.changed_files.is_empty() {
        println!("Secrets apply: no changes.");
    } else {
        println!("Secrets applied. Updated {} file(s).", applied.changed_files.len());
    }
    Ok(0)
}

/// `--agent` names a configured agent (the default one when not given).
fn check_agent(config: &Value, agent: Option<&str>) -> Step<()> {
    let Some(agent) = agent else { return Ok(()) };
    let mut known: Vec<String> = config
        .pointer("/agents/list")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|a| a.get("id").and_then(Value::as_str)).map(str::to_ascii_lowercase).collect())
        .unwrap_or_default();
    if known.is_empty() {
        known.push("main".into());
    }
    if known.iter().any(|k| k == &agent.to_ascii_lowercase()) {
        Ok(())
    } else {
        Err(failed(format!("Unknown agent id \"{agent}\". Known agents: {}.", known.join(", "))))
    }
}

// ---- provider setup ------------------------------------------------------------------------

#[derive(Clone, PartialEq, Eq)]
enum ProviderAction {
    Add,
    Edit,
    Remove,
    Continue,
}

fn provider_step(staged: &mut Map<String, Value>) -> Step<()> {
    loop {
        let message = if staged.is_empty() {
            "Configure secret providers (env/store refs are built in; add file/exec providers as needed)"
        } else {
            "Configure secret providers"
        };
        let mut menu = cliclack::select(message).item(ProviderAction::Add, "Add provider", "Define a new env/file/exec/store provider");
        if !staged.is_empty() {
            menu = menu.item(ProviderAction::Edit, "Edit provider", "Update an existing provider").item(
                ProviderAction::Remove,
                "Remove provider",
                "Delete a provider alias",
            );
        }
        match menu.item(ProviderAction::Continue, "Continue", "Move to credential mapping").interact()? {
            ProviderAction::Continue => return Ok(()),
            ProviderAction::Add => {
                let source = ask_source(None)?;
                let taken: Vec<String> = staged.keys().cloned().collect();
                let alias: String = cliclack::input("Provider alias")
                    .default_input("default")
                    .validate(move |s: &String| match planner::check_alias(s.trim()) {
                        Ok(()) if taken.iter().any(|t| t == s.trim()) => Err("Alias already exists"),
                        other => other,
                    })
                    .interact()?;
                let answers = ask_provider(source, None)?;
                staged.insert(alias.trim().to_string(), answers.to_value());
            }
            ProviderAction::Edit => {
                let alias = pick_provider(staged, "Select provider to edit")?;
                let current = ProviderAnswers::from_value(&staged[&alias]);
                let source = ask_source(current.as_ref().map(source_of))?;
                let answers = ask_provider(source, current.as_ref().filter(|c| source_of(c) == source))?;
                let value = answers.to_value();
                if staged.get(&alias) != Some(&value) {
                    staged.insert(alias, value);
                }
            }
            ProviderAction::Remove => {
                let alias = pick_provider(staged, "Select provider to remove")?;
                if cliclack::confirm(format!("Remove provider \"{alias}\"?")).initial_value(false).interact()? {
                    staged.remove(&alias);
                }
            }
        }
    }
}

fn source_of(a: &ProviderAnswers) -> &'static str {
    match a {
        ProviderAnswers::Env { .. } => "env",
        ProviderAnswers::File { .. } => "file",
        ProviderAnswers::Exec(_) => "exec",
        ProviderAnswers::Store => "store",
    }
}

fn ask_source(current: Option<&'static str>) -> Step<&'static str> {
    let mut s = cliclack::select("Provider source")
        .item("env", "env", "")
        .item("file", "file", "")
        .item("exec", "exec", "")
        .item("store", "store", "");
    if let Some(c) = current {
        s = s.initial_value(c);
    }
    Ok(s.interact()?)
}

fn pick_provider(staged: &Map<String, Value>, message: &str) -> Step<String> {
    let mut aliases: Vec<&String> = staged.keys().collect();
    aliases.sort_by_key(|a| a.to_lowercase());
    let mut s = cliclack::select(message);
    for a in aliases {
        s = s.item(a.clone(), a, planner::provider_hint(&staged[a]));
    }
    Ok(s.interact()?)
}

/// A text answer checked by `check` (blank allowed when `optional`), pre-filled from `current`.
fn ask_text<F>(message: &str, current: &str, optional: bool, check: F) -> Step<String>
where
    F: Fn(&str) -> Result<(), String> + 'static,
{
    let mut input = cliclack::input(message).required(!optional);
    if !current.is_empty() {
        input = input.default_input(current);
    }
    let answer: String = input
        .validate(move |s: &String| if optional && s.trim().is_empty() { Ok(()) } else { check(s.trim()) })
        .interact()
        .or_else(|e: io::Error| if optional && e.kind() != io::ErrorKind::Interrupted { Ok(String::new()) } else { Err(e) })?;
    Ok(answer.trim().to_string())
}

fn joined(v: &[String]) -> String {
    v.join(",")
}

fn number(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

fn ask_provider(source: &str, current: Option<&ProviderAnswers>) -> Step<ProviderAnswers> {
    Ok(match source {
        "env" => {
            let now = match current {
                Some(ProviderAnswers::Env { allowlist }) => joined(allowlist),
                _ => String::new(),
            };
            let csv = ask_text("Env allowlist (comma-separated, blank for unrestricted)", &now, true, |s| {
                planner::parse_env_names(s).map(|_| ())
            })?;
            ProviderAnswers::Env { allowlist: planner::parse_env_names(&csv).unwrap_or_default() }
        }
        "file" => {
            let (path, single, timeout, max) = match current {
                Some(ProviderAnswers::File { path, single_value, timeout_ms, max_bytes }) => {
                    (path.clone(), *single_value, *timeout_ms, *max_bytes)
                }
                _ => (String::new(), false, None, None),
            };
            let path = ask_text("File path (absolute)", &path, false, |s| planner::check_absolute_path(s).map_err(str::to_string))?;
            let single_value =
                cliclack::select("File mode").item(false, "json", "").item(true, "singleValue", "").initial_value(single).interact()?;
            let timeout = ask_text("Timeout ms (blank for default)", &number(timeout), true, |s| {
                planner::parse_optional_int(s, 120_000).map(|_| ())
            })?;
            let max =
                ask_text("Max bytes (blank for default)", &number(max), true, |s| planner::parse_optional_int(s, 20_971_520).map(|_| ()))?;
            ProviderAnswers::File {
                path,
                single_value,
                timeout_ms: planner::parse_optional_int(&timeout, 120_000).unwrap_or_default(),
                max_bytes: planner::parse_optional_int(&max, 20_971_520).unwrap_or_default(),
            }
        }
        "exec" => {
            let e = match current {
                Some(ProviderAnswers::Exec(e)) => e.clone(),
                _ => ExecAnswers { json_only: true, ..ExecAnswers::default() },
            };
            let command = ask_text("Command path (absolute)", &e.command, false, |s| planner::check_command(s).map_err(str::to_string))?;
            let args_now = if e.args.is_empty() { "[]".to_string() } else { serde_json::to_string(&e.args).unwrap_or_default() };
            let args = ask_text("Args JSON array (blank for none)", &args_now, true, |s| {
                planner::parse_args(s).map(|_| ()).map_err(str::to_string)
            })?;
            let int = |m: &str, now: Option<u64>, max: u64| -> Step<Option<u64>> {
                let t = ask_text(m, &number(now), true, move |s| planner::parse_optional_int(s, max).map(|_| ()))?;
                Ok(planner::parse_optional_int(&t, max).unwrap_or_default())
            };
            let timeout_ms = int("Timeout ms (blank for default)", e.timeout_ms, 120_000)?;
            let no_output_timeout_ms = int("No-output timeout ms (blank for default)", e.no_output_timeout_ms, 120_000)?;
            let max_output_bytes = int("Max output bytes (blank for default)", e.max_output_bytes, 20_971_520)?;
            let json_only = cliclack::confirm("Require JSON-only response?").initial_value(e.json_only).interact()?;
            let pass = ask_text("Pass-through env vars (comma-separated, blank for none)", &joined(&e.pass_env), true, |s| {
                planner::parse_env_names(s).map(|_| ())
            })?;
            let dirs = ask_text("Trusted dirs (comma-separated absolute paths, blank for none)", &joined(&e.trusted_dirs), true, |s| {
                planner::parse_trusted_dirs(s).map(|_| ())
            })?;
            ProviderAnswers::Exec(ExecAnswers {
                command,
                args: planner::parse_args(&args).unwrap_or_default(),
                timeout_ms,
                no_output_timeout_ms,
                max_output_bytes,
                json_only,
                pass_env: planner::parse_env_names(&pass).unwrap_or_default(),
                trusted_dirs: planner::parse_trusted_dirs(&dirs).unwrap_or_default(),
            })
        }
        _ => ProviderAnswers::Store,
    })
}

// ---- credential mapping --------------------------------------------------------------------

#[derive(Clone, PartialEq, Eq)]
enum Pick {
    Done,
    Field(usize),
}

fn mapping_step(staged_config: &Value, staged: &Map<String, Value>, allow_exec: bool) -> Step<Vec<(Candidate, SecretRef)>> {
    let candidates = planner::candidates(staged_config);
    if candidates.is_empty() {
        return Err(failed("No configurable secret-bearing fields found for this agent scope."));
    }
    let providers = secrets::providers(staged_config).map_err(failed)?;
    let mut chosen: Vec<(Candidate, SecretRef)> = Vec::new();
    loop {
        let mut menu = cliclack::select("Select credential field");
        if !chosen.is_empty() {
            menu = menu.item(Pick::Done, "Done", "Finish and run preflight");
        }
        for (i, c) in candidates.iter().enumerate() {
            menu = menu.item(Pick::Field(i), c.path(), "openclaw.json");
        }
        let i = match menu.interact()? {
            Pick::Done => return Ok(chosen),
            Pick::Field(i) => i,
        };
        let c = &candidates[i];
        let earlier = chosen.iter().position(|(d, _)| d == c);
        // A field mapped before is asked again with its earlier answers as the defaults.
        let mut shown = c.clone();
        if let Some(e) = earlier {
            shown.current = Some(chosen[e].1.clone());
        }
        let r = ask_ref(&shown, staged_config, staged)?;
        check_resolves(&r, &providers, staged, allow_exec)?;
        match earlier {
            Some(e) => chosen[e].1 = r,
            None => chosen.push((c.clone(), r)),
        }
        if !cliclack::confirm("Configure another credential?").initial_value(true).interact()? {
            return Ok(chosen);
        }
    }
}

fn ask_ref(c: &Candidate, staged_config: &Value, staged: &Map<String, Value>) -> Step<SecretRef> {
    let offered = planner::offered_sources(staged);
    let mut s = cliclack::select("Secret source");
    for src in &offered {
        s = s.item(*src, src.as_str(), "");
    }
    if let Some(now) = c.current.as_ref().map(|r| r.source).filter(|s| offered.contains(s)) {
        s = s.initial_value(now);
    }
    let source = s.interact()?;
    let alias = ask_text("Provider alias", &planner::proposed_alias(c, source, staged_config, staged), false, |s| {
        planner::check_alias(s).map_err(str::to_string)
    })?;
    let id = ask_text("Secret id", &planner::proposed_id(c, source, staged.get(&alias)), false, move |s| planner::check_ref_id(source, s))?;
    Ok(SecretRef { source, provider: alias, id })
}

/// Every ref is resolved when it is given (exec ones only with `--allow-exec`; otherwise only
/// checked against the configured providers): a ref that does not resolve stops the planner.
fn check_resolves(
    r: &SecretRef,
    providers: &std::collections::HashMap<String, (SecretSource, secrets::Provider)>,
    staged: &Map<String, Value>,
    allow_exec: bool,
) -> Step<()> {
    if matches!(r.source, SecretSource::File | SecretSource::Exec) {
        let Some(p) = staged.get(&r.provider) else {
            return Err(failed(format!("Secret provider \"{}\" is not configured (ref: {}).", r.provider, r.describe())));
        };
        let has = p.get("source").and_then(Value::as_str).unwrap_or_default();
        if has != r.source.as_str() {
            return Err(failed(format!(
                "Secret provider \"{}\" has source \"{has}\" but ref requests \"{}\".",
                r.provider,
                r.source.as_str()
            )));
        }
        if r.source == SecretSource::Exec && !allow_exec {
            return Ok(());
        }
    }
    let mut io = ShellSecretIo;
    secrets::resolve(&secrets::SecretInput::Ref(r.clone()), providers, &mut io as &mut dyn SecretIo).map(|_| ()).map_err(|e| failed(e.0))
}
