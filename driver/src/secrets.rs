//! `secrets audit` and `secrets store` (issue 16): the IO half of `clawgate_core::secrets`.
//!
//! The team store is a SQLite file, `<stateDir>/clawgate/secrets.sqlite` (mode 0600), with the
//! reference's `secret_store_entries` table; a state dir the reference gateway used brings its
//! entries along (read once from `<stateDir>/state/openclaw.sqlite` when clawgate's store is
//! first created). Values are kept as the reference keeps them: plaintext in a private file.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use clawgate_core::cli::{SecretsApplyArgs, SecretsAuditArgs, StoreCommand};
use clawgate_core::config::secrets::{self, SecretIo};
use clawgate_core::methods::secret_store::{self, Refresh, SecretStoreCall, SetEntry};
use clawgate_core::secrets::audit::{self, EnvFile};
use clawgate_core::secrets::store::{self, Entry, Incoming, Kind, StoreError};
use clawgate_core::secrets::{dotenv, plan};
use rusqlite::{Connection, OpenFlags, params};
use serde_json::{Value, json};

use crate::config::ShellSecretIo;
use crate::session::unix_ms;
use crate::state;

/// Soft-deleted rows are purged after this long.
const PURGE_AFTER_MS: u64 = 30 * 24 * 3600 * 1000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS secret_store_entries (
    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('team', 'identity')),
    scope_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('secret', 'env')),
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    updated_by TEXT,
    deleted_at_ms INTEGER,
    allowed_hosts TEXT,
    CHECK ((scope_kind = 'team' AND scope_id = '') OR (scope_kind = 'identity' AND length(scope_id) > 0)),
    PRIMARY KEY (scope_kind, scope_id, name)
) STRICT;
";

pub fn store_path(state_dir: &str) -> PathBuf {
    Path::new(state_dir).join("clawgate/secrets.sqlite")
}

/// The reference gateway's shared state database, where its store lives.
fn reference_store_path(state_dir: &str) -> PathBuf {
    Path::new(state_dir).join("state/openclaw.sqlite")
}

fn live_rows(conn: &Connection) -> rusqlite::Result<Vec<Entry>> {
    let mut st = conn.prepare(
        "SELECT name, kind, value, created_at_ms, updated_at_ms, COALESCE(updated_by, ''), allowed_hosts
         FROM secret_store_entries WHERE scope_kind = 'team' AND scope_id = '' AND deleted_at_ms IS NULL ORDER BY name",
    )?;
    let rows = st.query_map([], |r| {
        let hosts: Option<String> = r.get(6)?;
        Ok(Entry {
            name: r.get(0)?,
            kind: if r.get::<_, String>(1)? == "secret" { Kind::Secret } else { Kind::Env },
            value: r.get(2)?,
            created_at_ms: r.get::<_, i64>(3)?.max(0) as u64,
            updated_at_ms: r.get::<_, i64>(4)?.max(0) as u64,
            updated_by: r.get(5)?,
            allowed_hosts: hosts.and_then(|h| serde_json::from_str(&h).ok()).unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// Open the store for writing, creating it (private) on first use.
fn open_rw(state_dir: &str) -> Result<Connection, String> {
    let path = store_path(state_dir);
    let fresh = !path.exists();
    if fresh {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Created private before SQLite opens it (its -wal/-shm files copy these permissions).
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    }
    let conn = Connection::open(&path).map_err(|e| format!("cannot open the secret store {}: {e}", path.display()))?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let cutoff = unix_ms().saturating_sub(PURGE_AFTER_MS) as i64;
        conn.execute("DELETE FROM secret_store_entries WHERE deleted_at_ms IS NOT NULL AND deleted_at_ms < ?1", [cutoff])?;
        Ok(())
    };
    setup().map_err(|e| format!("the secret store {} is not usable: {e}", path.display()))?;
    if fresh {
        import_reference_store(state_dir, &conn);
    }
    Ok(conn)
}

/// A state dir the reference gateway used keeps its team store in its shared database: bring
/// the live team rows over once (read-only on the reference's file).
fn import_reference_store(state_dir: &str, conn: &Connection) {
    let path = reference_store_path(state_dir);
    if !path.exists() {
        return;
    }
    let Ok(src) = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX) else { return };
    let Ok(rows) = live_rows(&src) else { return };
    for e in &rows {
        let hosts = (!e.allowed_hosts.is_empty()).then(|| serde_json::to_string(&e.allowed_hosts).unwrap_or_default());
        let _ = conn.execute(
            "INSERT OR IGNORE INTO secret_store_entries (scope_kind, scope_id, name, value, kind, created_at_ms, updated_at_ms, updated_by, allowed_hosts)
             VALUES ('team', '', ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![e.name, e.value, e.kind.as_str(), e.created_at_ms as i64, e.updated_at_ms as i64, e.updated_by, hosts],
        );
    }
    if !rows.is_empty() {
        tracing::info!("imported {} team secret store entries from {}", rows.len(), path.display());
    }
}

/// The live entries, without creating a store that does not exist.
pub fn read_entries(state_dir: &str) -> Result<Vec<Entry>, String> {
    let path = store_path(state_dir);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| format!("cannot open the secret store {}: {e}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| e.to_string())?;
    live_rows(&conn).map_err(|e| format!("the secret store {} is not usable: {e}", path.display()))
}

/// One live entry's value (for `{source: "store"}` refs).
pub fn lookup(state_dir: &str, name: &str) -> Option<String> {
    read_entries(state_dir).ok()?.into_iter().find(|e| e.name == name).map(|e| e.value)
}

fn fail(e: &StoreError, json_out: bool) -> i32 {
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": false, "error": {"type": "cli_error", "message": e.to_string()}}))
                .unwrap_or_default()
        );
    } else {
        eprintln!("{e}");
    }
    e.exit_code()
}

fn io_fail(message: &str) -> i32 {
    eprintln!("{message}");
    1
}

/// Stdin, up to just past the value limit (so an oversized value is told apart). A read
/// error counts as no input: the value checks then say what is missing.
fn read_stdin() -> Result<Vec<u8>, StoreError> {
    let mut buf = Vec::new();
    if std::io::stdin().take((store::MAX_VALUE_BYTES + 3) as u64).read_to_end(&mut buf).is_err() {
        buf.clear();
    }
    Ok(buf)
}

/// The value of `set`: `--value` (env only), `--value-file`, piped stdin, or a no-echo prompt.
fn incoming_value(name: &str, kind: Kind, value: Option<String>, value_file: Option<&str>) -> Result<Result<String, String>, StoreError> {
    if let Some(v) = value {
        if kind == Kind::Secret {
            return Err(StoreError::ValueFlagForSecret);
        }
        return Ok(Ok(v));
    }
    match value_file {
        Some("-") => return store::stdin_value(&read_stdin()?).map(Ok),
        Some(path) => {
            return Ok(state::read_regular(Path::new(path), store::MAX_VALUE_BYTES + 1)
                .map_err(|e| format!("cannot read {path}: {e}"))
                .map(|b| String::from_utf8_lossy(&b).into_owned()));
        }
        None => {}
    }
    if std::io::stdin().is_terminal() {
        return Ok(rpassword::prompt_password(format!("Value for {name}: ")).map_err(|e| format!("cannot read the value: {e}")));
    }
    store::stdin_value(&read_stdin()?).map(Ok)
}

/// Ask before a bulk change on a terminal; refuse without `--yes` elsewhere.
fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

fn write_entry(conn: &Connection, name: &str, kind: Kind, value: &str) -> rusqlite::Result<()> {
    let now = unix_ms() as i64;
    conn.execute(
        "INSERT INTO secret_store_entries (scope_kind, scope_id, name, value, kind, created_at_ms, updated_at_ms, updated_by)
         VALUES ('team', '', ?1, ?2, ?3, ?4, ?4, 'cli')
         ON CONFLICT (scope_kind, scope_id, name) DO UPDATE SET value = excluded.value, kind = excluded.kind,
           updated_at_ms = excluded.updated_at_ms, updated_by = 'cli', deleted_at_ms = NULL",
        params![name, value, kind.as_str(), now],
    )?;
    Ok(())
}

/// `secrets.store.*` from a connected client (blocking): read or write the store, then, after
/// a write to a name the applied config references, re-resolve the secrets as `secrets.reload`
/// does. Returns the reply and the close a rotated gateway token owes the caller's socket.
pub fn store_call(
    hub: &clawgate_core::gateway::Hub,
    cfg: &std::sync::Mutex<crate::config::ConfigRuntime>,
    call: SecretStoreCall,
    caller: &str,
) -> (clawgate_core::Reply, Option<(u16, &'static str)>) {
    let state_dir = state::state_dir();
    let method = call.method();
    let done = match &call {
        SecretStoreCall::List => {
            return match read_entries(&state_dir) {
                Ok(entries) => (clawgate_core::Reply::Ok(Some(secret_store::list_result(&entries))), None),
                Err(e) => {
                    tracing::warn!("{method} failed: {e}");
                    (secret_store::store_failed(method), None)
                }
            };
        }
        SecretStoreCall::Set(s) => open_rw(&state_dir).and_then(|conn| rpc_write(&conn, s).map_err(|e| e.to_string())),
        SecretStoreCall::Delete { name } => open_rw(&state_dir).and_then(|conn| rpc_delete(&conn, name).map_err(|e| e.to_string())),
    };
    if let Err(e) = done {
        tracing::warn!("{method} failed: {e}");
        return (secret_store::store_failed(method), None);
    }
    let name = call.name().unwrap_or_default();
    tracing::info!("{method} {name}");
    if !crate::config::references_store_entry(cfg, name) {
        return (secret_store::written_reply(method, Refresh::NotReferenced), None);
    }
    let (reply, close) = crate::config::reload_secrets(hub, cfg, caller);
    let refresh = match &reply {
        clawgate_core::Reply::Ok(Some(p)) => {
            p.get("warningCount").and_then(Value::as_u64).map_or(Refresh::Failed, |n| Refresh::Reloaded(n as usize))
        }
        _ => Refresh::Failed,
    };
    (secret_store::written_reply(method, refresh), close)
}

/// A store method's upsert: a re-set after a delete keeps the first creation time; a secret's
/// hosts change only when given, an env entry has none.
fn rpc_write(conn: &Connection, s: &SetEntry) -> rusqlite::Result<()> {
    let now = unix_ms() as i64;
    let hosts = match (s.kind, &s.allowed_hosts) {
        (Kind::Env, _) => Some(None),
        (Kind::Secret, Some(h)) => Some(Some(serde_json::to_string(h).unwrap_or_default())),
        (Kind::Secret, None) => None,
    };
    conn.execute(
        "INSERT INTO secret_store_entries (scope_kind, scope_id, name, value, kind, created_at_ms, updated_at_ms, updated_by, allowed_hosts)
         VALUES ('team', '', ?1, ?2, ?3, ?4, ?4, ?5, ?6)
         ON CONFLICT (scope_kind, scope_id, name) DO UPDATE SET value = excluded.value, kind = excluded.kind,
           updated_at_ms = excluded.updated_at_ms, updated_by = excluded.updated_by, deleted_at_ms = NULL,
           allowed_hosts = CASE WHEN ?7 THEN excluded.allowed_hosts ELSE allowed_hosts END",
        params![s.name, s.value, s.kind.as_str(), now, s.updated_by, hosts.clone().flatten(), hosts.is_some()],
    )?;
    Ok(())
}

/// A store method's delete: soft (purged later) and idempotent; the GitHub setup entries go at
/// once.
fn rpc_delete(conn: &Connection, name: &str) -> rusqlite::Result<()> {
    if store::is_hidden_name(name) {
        conn.execute("DELETE FROM secret_store_entries WHERE scope_kind = 'team' AND scope_id = '' AND name = ?1", [name])?;
        return Ok(());
    }
    soft_delete(conn, name, unix_ms() as i64)
}

/// Mark a live entry deleted (purged after [`PURGE_AFTER_MS`]); nothing for a missing name.
fn soft_delete(conn: &Connection, name: &str, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE secret_store_entries SET deleted_at_ms = ?2, updated_at_ms = ?2 WHERE scope_kind = 'team' AND scope_id = '' AND name = ?1 AND deleted_at_ms IS NULL",
        params![name, now],
    )?;
    Ok(())
}

/// `secrets store …`.
pub fn store(c: StoreCommand) -> i32 {
    let state_dir = state::state_dir();
    match c {
        StoreCommand::List { json: j, plain, scope } => {
            if let Err(e) = store::check_scope(&scope) {
                return fail(&e, j);
            }
            if j && plain {
                eprintln!("Choose either --json or --plain, not both.");
                return 2;
            }
            let entries = match read_entries(&state_dir) {
                Ok(e) => e,
                Err(e) => return io_fail(&e),
            };
            if j {
                println!("{}", serde_json::to_string_pretty(&store::list_json(&entries)).unwrap_or_default());
            } else if plain {
                print!("{}", store::list_plain(&entries));
            } else {
                print!("{}", store::list_text(&entries));
            }
            0
        }
        StoreCommand::Get { name, json: j, plain, scope } => {
            if j && plain {
                eprintln!("Choose either --json or --plain, not both.");
                return 2;
            }
            if let Err(e) = store::check_scope(&scope).and_then(|_| store::check_name(&name)) {
                return fail(&e, j);
            }
            let entries = match read_entries(&state_dir) {
                Ok(e) => e,
                Err(e) => return io_fail(&e),
            };
            match entries.into_iter().find(|e| e.name == name) {
                None => fail(&StoreError::NotFound(name), j),
                Some(e) if e.kind == Kind::Secret => fail(&StoreError::WriteOnly(name), j),
                Some(e) => {
                    if j {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&json!({"name": e.name, "kind": "env", "value": e.value})).unwrap_or_default()
                        );
                    } else if plain {
                        println!("{}", e.value);
                    } else {
                        println!("{}={}", e.name, e.value);
                    }
                    0
                }
            }
        }
        StoreCommand::Set { name, kind, value, value_file, allow_host, clear_allowed_hosts, dry_run, scope } => {
            let checked = store::check_scope(&scope)
                .and_then(|_| store::check_name(&name))
                .and_then(|_| kind.as_deref().map_or(Ok(Kind::detect(&name)), Kind::parse));
            let kind = match checked {
                Ok(k) => k,
                Err(e) => return fail(&e, false),
            };
            let hosts: Result<Vec<String>, StoreError> = allow_host.iter().map(|h| store::normalize_host(h)).collect();
            let hosts = match hosts {
                Ok(h) => h,
                Err(e) => return fail(&e, false),
            };
            let existing = match read_entries(&state_dir) {
                Ok(e) => e.into_iter().find(|e| e.name == name),
                Err(e) => return io_fail(&e),
            };
            let policy_only = (!hosts.is_empty() || clear_allowed_hosts) && value.is_none() && value_file.is_none();
            if policy_only {
                if existing.is_none() {
                    return fail(&StoreError::NotFound(name), false);
                }
                if dry_run {
                    println!("Would update allowed hosts of {name}.");
                    return 0;
                }
                return match open_rw(&state_dir).and_then(|conn| set_hosts(&conn, &name, &hosts).map_err(|e| e.to_string())) {
                    Ok(()) if hosts.is_empty() => {
                        println!("Cleared allowed hosts of {name}.");
                        0
                    }
                    Ok(()) => {
                        println!("Allowed {name} for {}.", hosts.join(", "));
                        0
                    }
                    Err(e) => io_fail(&e),
                };
            }
            let raw = match incoming_value(&name, kind, value, value_file.as_deref()) {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => return io_fail(&e),
                Err(e) => return fail(&e, false),
            };
            let usable = existing.as_ref().is_some_and(|e| !e.value.contains(clawgate_core::config::settings::REDACTED));
            let value = match store::check_value(&name, kind, raw, usable) {
                Ok(Incoming::Store(v)) => v,
                Ok(Incoming::KeepExisting) => {
                    println!("Skipped redacted value for {name}; existing entry unchanged.");
                    return 0;
                }
                Err(e) => return fail(&e, false),
            };
            if dry_run {
                match kind {
                    Kind::Secret => println!("Would write {name} (secret)."),
                    Kind::Env => println!("Would set {name} (env)."),
                }
                return 0;
            }
            let written = open_rw(&state_dir).and_then(|conn| {
                write_entry(&conn, &name, kind, &value).map_err(|e| e.to_string())?;
                if !hosts.is_empty() || clear_allowed_hosts {
                    set_hosts(&conn, &name, &hosts).map_err(|e| e.to_string())?;
                }
                Ok(())
            });
            match written {
                Ok(()) => {
                    println!("Stored {name} ({}).", kind.as_str());
                    if crate::state::read_run_file(&state_dir).is_some() {
                        println!("Run `clawgate secrets reload` so a config that references {name} picks it up.");
                    }
                    0
                }
                Err(e) => io_fail(&e),
            }
        }
        StoreCommand::Rm { names, yes, dry_run, scope } => {
            if let Err(e) = store::check_scope(&scope) {
                return fail(&e, false);
            }
            if let Some(e) = names.iter().find_map(|n| store::check_name(n).err()) {
                return fail(&e, false);
            }
            let what = store::entries_word(names.len());
            if dry_run {
                println!("Would remove {what}.");
                return 0;
            }
            if !yes && !confirm(&format!("Remove {what}?")) {
                eprintln!("Remove {what}? Re-run with --yes in non-interactive mode.");
                return 2;
            }
            let now = unix_ms() as i64;
            let removed = open_rw(&state_dir).and_then(|conn| {
                for n in &names {
                    soft_delete(&conn, n, now).map_err(|e| e.to_string())?;
                }
                Ok(())
            });
            match removed {
                Ok(()) => {
                    println!("Removed {what}.");
                    0
                }
                Err(e) => io_fail(&e),
            }
        }
        StoreCommand::Import { from, kind, yes, dry_run, scope } => {
            if let Err(e) = store::check_scope(&scope) {
                return fail(&e, false);
            }
            let forced = match kind.as_deref().map(Kind::parse).transpose() {
                Ok(k) => k,
                Err(e) => return fail(&e, false),
            };
            let text = match from.as_deref() {
                None | Some("-") => match read_import_stdin() {
                    Ok(t) => t,
                    Err(e) => return io_fail(&e),
                },
                Some(p) => match state::read_regular(Path::new(p), 16 * 1024 * 1024) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => return io_fail(&format!("cannot read {p}: {e}")),
                },
            };
            let assignments = dotenv::parse(&text);
            if assignments.is_empty() {
                return fail(&StoreError::EmptyImport, false);
            }
            let existing = match read_entries(&state_dir) {
                Ok(e) => e,
                Err(e) => return io_fail(&e),
            };
            let mut plan = Vec::new();
            let mut skipped = Vec::new();
            for a in assignments {
                let k = forced.unwrap_or_else(|| Kind::detect(&a.name));
                if let Err(e) = store::check_name(&a.name) {
                    return fail(&e, false);
                }
                let usable = existing.iter().any(|e| e.name == a.name && !e.value.contains(clawgate_core::config::settings::REDACTED));
                match store::check_value(&a.name, k, a.value, usable) {
                    Ok(Incoming::Store(v)) => plan.push((a.name, k, v)),
                    Ok(Incoming::KeepExisting) => skipped.push(a.name),
                    Err(e) => return fail(&e, false),
                }
            }
            for n in &skipped {
                println!("Skipped redacted value for {n}; existing entry unchanged.");
            }
            let what = store::entries_word(plan.len());
            if dry_run {
                println!("Would import {what}.");
                return 0;
            }
            if !yes && !confirm(&format!("Import {what}?")) {
                eprintln!("Import {what}? Re-run with --yes in non-interactive mode.");
                return 2;
            }
            let written = open_rw(&state_dir).and_then(|mut conn| {
                let tx = conn.transaction().map_err(|e| e.to_string())?;
                for (n, k, v) in &plan {
                    write_entry(&tx, n, *k, v).map_err(|e| e.to_string())?;
                }
                tx.commit().map_err(|e| e.to_string())
            });
            match written {
                Ok(()) => {
                    println!("Imported {what}.");
                    0
                }
                Err(e) => io_fail(&e),
            }
        }
    }
}

fn read_import_stdin() -> Result<String, String> {
    let mut buf = Vec::new();
    std::io::stdin().take(16 * 1024 * 1024).read_to_end(&mut buf).map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn set_hosts(conn: &Connection, name: &str, hosts: &[String]) -> rusqlite::Result<()> {
    let value = (!hosts.is_empty()).then(|| serde_json::to_string(hosts).unwrap_or_default());
    conn.execute(
        "UPDATE secret_store_entries SET allowed_hosts = ?2, updated_at_ms = ?3 WHERE scope_kind = 'team' AND scope_id = '' AND name = ?1 AND deleted_at_ms IS NULL",
        params![name, value, unix_ms() as i64],
    )?;
    Ok(())
}

/// The `.env` files the audit reads: the state dir's and the config's directory's (once when
/// they are the same file).
fn env_files(state_dir: &str, config_path: &str) -> Vec<EnvFile> {
    let mut paths: Vec<PathBuf> = vec![Path::new(state_dir).join(".env")];
    if let Some(dir) = Path::new(config_path).parent() {
        paths.push(dir.join(".env"));
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    for p in paths {
        let Ok(canon) = std::fs::canonicalize(&p) else { continue };
        if seen.contains(&canon) {
            continue;
        }
        seen.push(canon);
        if let Ok(b) = state::read_regular(&p, 4 * 1024 * 1024) {
            out.push(EnvFile {
                path: std::path::absolute(&p).unwrap_or(p).display().to_string(),
                text: String::from_utf8_lossy(&b).into_owned(),
            });
        }
    }
    out
}

/// `secrets audit [--check] [--json] [--allow-exec]`.
pub fn audit(a: SecretsAuditArgs) -> i32 {
    let state_dir = state::state_dir();
    let config_path = state::config_path(&state_dir);
    let config_abs = std::path::absolute(&config_path).map(|p| p.display().to_string()).unwrap_or(config_path.clone());
    let loaded = crate::config::load_file(&config_path);
    let empty = Value::Object(Default::default());
    let (source, resolved) = match &loaded {
        Ok(Some((c, _))) => (Some(&c.source), Some(&c.resolved)),
        Ok(None) => (Some(&empty), Some(&empty)),
        Err(_) => (None, None),
    };
    let store_entries: Vec<(String, String)> =
        read_entries(&state_dir).unwrap_or_default().into_iter().map(|e| (e.name, e.value)).collect();
    let envs = env_files(&state_dir, &config_path);
    let providers = resolved.map(secrets::providers);
    let mut io = ShellSecretIo;
    let mut resolve = |r: &secrets::SecretRef| -> Result<String, String> {
        let providers = match &providers {
            Some(Ok(p)) => p,
            Some(Err(e)) => return Err(e.clone()),
            None => return Err("the config is invalid".into()),
        };
        let v = secrets::resolve(&secrets::SecretInput::Ref(r.clone()), providers, &mut io as &mut dyn SecretIo).map_err(|e| e.0)?;
        Ok(v.expose().to_string())
    };
    let input =
        audit::Input { config_path: &config_abs, config: source, env_files: &envs, store: &store_entries, allow_exec: a.allow_exec };
    let report = audit::audit(&input, &mut resolve);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", audit::text(&report));
    }
    audit::exit_code(&report, a.check)
}

/// Why `apply` stopped (nothing, or nothing more, was written).
pub(crate) struct ApplyFailure {
    pub(crate) message: String,
    /// The plain-text form (with the cause chain).
    pub(crate) detail: String,
}

impl ApplyFailure {
    fn new(message: impl Into<String>) -> ApplyFailure {
        let message = message.into();
        ApplyFailure { detail: message.clone(), message }
    }
}

/// Read a plan file: a regular file of at most 16 MiB.
fn read_plan(path: &str) -> Result<Vec<u8>, ApplyFailure> {
    let md = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ApplyFailure::new(format!("Secrets plan file not found: {path}")),
        _ => ApplyFailure::new(format!("Secrets plan file cannot be read: {path} | {e}")),
    })?;
    if !md.is_file() {
        return Err(ApplyFailure::new(format!("Secrets plan path is not a regular file: {path}")));
    }
    if md.len() > plan::MAX_PLAN_BYTES {
        return Err(ApplyFailure::new(format!("Secrets plan file exceeds {} bytes: {path}", plan::MAX_PLAN_BYTES)));
    }
    state::read_regular(Path::new(path), plan::MAX_PLAN_BYTES as usize)
        .map_err(|e| ApplyFailure::new(format!("Secrets plan file cannot be read: {path} | {e}")))
}

pub(crate) struct Applied {
    pub(crate) changed_files: Vec<String>,
    pub(crate) refs_checked: usize,
    pub(crate) skipped_exec_refs: usize,
}

/// The reference's JSON report of an apply (or its dry run).
pub(crate) fn applied_json(r: &Applied, dry_run: bool) -> Value {
    json!({
        "mode": if dry_run { "dry-run" } else { "write" }, "changed": !r.changed_files.is_empty(), "changedFiles": r.changed_files,
        "checks": {"resolvability": true, "resolvabilityComplete": r.skipped_exec_refs == 0},
        "refsChecked": r.refs_checked, "skippedExecRefs": r.skipped_exec_refs, "warningCount": 0, "warnings": [],
    })
}

fn apply_plan(a: &SecretsApplyArgs) -> Result<Applied, ApplyFailure> {
    let bytes = read_plan(&a.from)?;
    let plan = plan::parse(&a.from, &bytes).map_err(|e| ApplyFailure { message: e.to_string(), detail: e.with_cause() })?;
    if plan.has_exec() && !a.dry_run && !a.allow_exec {
        return Err(ApplyFailure::new("Plan contains exec SecretRefs/providers. Re-run with --allow-exec."));
    }
    apply_parsed(&plan, a.dry_run, a.allow_exec)
}

/// Apply a validated plan to the state dir's config (or, `dry_run`, say what would change):
/// every ref resolved against the new config first, then each file replaced atomically.
pub(crate) fn apply_parsed(plan: &plan::Plan, dry_run: bool, allow_exec: bool) -> Result<Applied, ApplyFailure> {
    let state_dir = state::state_dir();
    let config_path = state::config_path(&state_dir);
    let (current, current_bytes) = match crate::config::load_file(&config_path) {
        Ok(Some((c, _))) if !c.included.is_empty() => {
            return Err(ApplyFailure::new(format!(
                "{config_path} uses $include; secrets apply rewrites openclaw.json only and would inline the included files. Move the targeted fields into openclaw.json, or set the refs by hand"
            )));
        }
        Ok(Some((c, _))) => (c.source, std::fs::read(&config_path).ok()),
        Ok(None) => (Value::Object(Default::default()), None),
        Err(e) => return Err(ApplyFailure::new(format!("Config is invalid: {}", e.one_line()))),
    };
    let (next, migrated) = plan::apply_to(&current, plan);
    // The result must load as a config (nothing is written otherwise).
    let text = serde_json::to_string_pretty(&next).unwrap_or_default() + "\n";
    let env = |n: &str| std::env::var(n).ok();
    let loaded = clawgate_core::config::file::load(&config_path, &text, &env, &mut crate::config::FsIncludes, &[])
        .map_err(|e| ApplyFailure::new(format!("The plan would leave an invalid config: {}", e.one_line())))?;
    // Preflight: every target's ref resolves against the new config.
    let providers = secrets::providers(&loaded.resolved).map_err(ApplyFailure::new)?;
    let mut io = ShellSecretIo;
    let (mut refs_checked, mut skipped_exec_refs) = (0, 0);
    for t in &plan.targets {
        let r = &t.secret_ref;
        if r.source == secrets::SecretSource::Exec && !allow_exec {
            skipped_exec_refs += 1;
            continue;
        }
        if matches!(r.source, secrets::SecretSource::File | secrets::SecretSource::Exec) && !providers.contains_key(&r.provider) {
            return Err(ApplyFailure::new(format!("Secret provider \"{}\" is not configured (ref: {}).", r.provider, r.describe())));
        }
        refs_checked += 1;
        secrets::resolve(&secrets::SecretInput::Ref(r.clone()), &providers, &mut io as &mut dyn SecretIo)
            .map_err(|e| ApplyFailure::new(e.0))?;
    }
    // What would change.
    let config_changed = next != current || current_bytes.is_none();
    let mut writes: Vec<(PathBuf, String, u32)> = Vec::new();
    if config_changed {
        writes.push((PathBuf::from(&config_path), text, 0o600));
    }
    if plan.scrub_env && !migrated.is_empty() {
        for e in env_files(&state_dir, &config_path) {
            if let Some(scrubbed) = plan::scrub_env(&e.text, &migrated) {
                writes.push((PathBuf::from(&e.path), scrubbed, 0o600));
            }
        }
    }
    let mut changed_files: Vec<String> =
        writes.iter().map(|(p, _, _)| std::path::absolute(p).unwrap_or(p.clone()).display().to_string()).collect();
    changed_files.sort();
    if !dry_run {
        // Each file is replaced atomically (temp, fsync, rename): a kill leaves the old or the
        // new file, never a torn one. No backup holding the old plaintext is written.
        for (p, text, mode) in &writes {
            state::write_atomic(p, text.as_bytes(), *mode).map_err(|e| ApplyFailure::new(format!("cannot write {}: {e}", p.display())))?;
        }
    }
    Ok(Applied { changed_files, refs_checked, skipped_exec_refs })
}

/// `secrets apply --from plan.json [--dry-run] [--allow-exec] [--json]`.
pub fn apply(a: SecretsApplyArgs) -> i32 {
    match apply_plan(&a) {
        Ok(r) => {
            let n = r.changed_files.len();
            if a.json {
                println!("{}", serde_json::to_string_pretty(&applied_json(&r, a.dry_run)).unwrap_or_default());
            } else if a.dry_run {
                if n == 0 {
                    println!("Secrets apply dry run: no changes.");
                } else {
                    println!("Secrets apply dry run: {n} file(s) would change.");
                }
                if r.skipped_exec_refs > 0 {
                    println!(
                        "Secrets apply dry-run note: skipped {} exec SecretRef resolvability check(s). Re-run with --allow-exec to execute exec providers during dry-run.",
                        r.skipped_exec_refs
                    );
                }
            } else if n == 0 {
                println!("Secrets apply: no changes.");
            } else {
                println!("Secrets applied. Updated {n} file(s).");
            }
            0
        }
        Err(f) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"ok": false, "error": {"type": "cli_error", "message": f.message}}))
                        .unwrap_or_default()
                );
            } else {
                eprintln!(
                    "Secrets apply failed: {}. Re-run clawgate secrets apply --from <path> --dry-run to inspect the plan without writing.",
                    f.detail
                );
            }
            1
        }
    }
}
