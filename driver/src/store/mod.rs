//! The session store: conversation sessions, their transcripts and stored `/v1/responses`
//! objects in one SQLite file, `<stateDir>/clawgate/sessions.sqlite` ([`sessions_db_path`]).
//!
//! Blocking API: the shells call it from `spawn_blocking` (or their runtime's equivalent), except
//! [`Store::submit_turn`], which queues a turn and returns at once. [`Store`] is `Send + Sync`;
//! it holds two connections, a writer and a reader, each behind a mutex, so reads
//! (`sessions.list`, `chat.history`) never queue behind a turn's commit. Turns are written by one
//! committer thread, many per transaction (group commit, [`turns`]).
//!
//! # Durability
//!
//! * WAL journal, `synchronous=FULL` by default ([`Durability::Full`]): every commit is fsynced
//!   before [`Store::append_turn`] returns, so a committed turn survives `kill -9` of the process
//!   *and* a power loss or kernel crash. Turns that arrive together share one commit and its
//!   fsync, and each is acknowledged only once that commit returned.
//! * [`Durability::Normal`] (`synchronous=NORMAL`) skips that fsync: a committed turn still
//!   survives the process being killed (the WAL pages are in the OS page cache before commit
//!   returns), but the last commits before a power loss / OS crash can be lost (never torn: the
//!   database rolls back to an earlier consistent state).
//! * A turn (user message + assistant reply + tool messages, plus the session row and an optional
//!   stored response) is written in ONE `BEGIN IMMEDIATE` transaction: all or nothing.
//!
//! # Files
//!
//! The directory is created 0700 and the database file 0600 (SQLite gives its `-wal`/`-shm`
//! files the database file's mode). A file that is not a usable clawgate session store
//! (not SQLite, corrupt per `PRAGMA quick_check`, or another application's SQLite database) is
//! renamed aside to `sessions.sqlite.corrupt-<unix ms>` (with its `-wal`/`-shm`) and a fresh
//! store is created, into which every row still readable in the damaged copy is salvaged (row
//! by row: one bad page loses only its rows), with `error!` log lines naming both paths and the
//! counts ([`Store::recovery`]). Any other failure (permission
//! denied, disk full, locked, a store written by a newer clawgate) is returned as an error and
//! the file is left alone: a good database is never moved.
//!
//! # Schema (`PRAGMA user_version` = [`SCHEMA_VERSION`], `application_id` = [`APPLICATION_ID`])
//!
//! * `sessions(key PK, agent_id, session_id, created_ms, updated_ms, label, display_name,
//!   channel, origin, message_count, last_seq, last_model, last_model_provider, input_tokens,
//!   output_tokens, last_total_tokens, status, aborted_last_run, last_message_preview, settings JSON (v5))`, indexed
//!   by `updated_ms` and `(agent_id, updated_ms)`;
//! * `messages(session_key → sessions ON DELETE CASCADE, seq, role, content JSON, tool_calls
//!   JSON, tool_call_id, run_id, ts_ms, meta JSON (v2), PK(session_key, seq))`; a message's
//!   `__openclaw.id` is derived from the session id and `seq` ([`message_id`]), not stored;
//!   indexed by `ts_ms` (v4);
//! * `responses(id PK, session_key, agent_id, owner, session_key_header, created_ms, body JSON)`;
//! * `cron_jobs(id PK, body JSON, updated_ms)` and `cron_runs(seq PK, job_id, ts_ms, status, body
//!   JSON)`, the newest [`CRON_RUNS_PER_JOB`] entries per job (v6).
//!
//! Migrations run in one transaction from the stored `user_version` up to [`SCHEMA_VERSION`].

mod cron;
mod files;
mod turns;

pub use cron::CronWrite;
use files::*;
pub use files::{Recovery, Salvaged};
pub use turns::TurnReply;
use turns::{Committer, insert_message};

use std::sync::Arc;

use parking_lot::{FairMutex, FairMutexGuard};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clawgate_core::sessions::{
    ArchivedFilter, Expect, Guarded, HistoryPage, LastRun, Maintenance, Role, RunStatus, SessionListQuery, SessionMeta, SessionPage,
    SessionSummary, StoredResponse, TranscriptEntry, UsageRow, derive_title, message_id, message_preview,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params, params_from_iter};
use serde_json::Value;

/// Where the session store lives inside the state dir.
pub const SESSIONS_DB: &str = "clawgate/sessions.sqlite";
/// The schema this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 6;
/// `PRAGMA application_id` of a clawgate session store (`"CGss"`).
pub const APPLICATION_ID: i64 = 0x4347_7373;

/// `<stateDir>/clawgate/sessions.sqlite`.
pub fn sessions_db_path(state_dir: &str) -> PathBuf {
    Path::new(state_dir).join(SESSIONS_DB)
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("session store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("session store {} has schema version {found}; this clawgate understands up to {SCHEMA_VERSION}", path.display())]
    TooNew { path: PathBuf, found: i64 },
    #[error("session store: {0}")]
    Invalid(String),
}

/// How hard a commit is pushed to disk (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: survives process kill and power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives process kill; a power loss can drop the last commits.
    Normal,
}

/// Options of [`Store::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    pub durability: Durability,
    /// Run `PRAGMA quick_check` at open (a full read of the file; milliseconds for a few MB).
    pub verify_on_open: bool,
    /// How long a statement waits for a lock held by another connection or process.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { durability: Durability::Full, verify_on_open: true, busy_timeout: Duration::from_secs(5) }
    }
}

/// What [`Store::append_turn`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The session did not exist before this turn.
    pub created: bool,
    /// `seq` of the first and last message written (`first_seq > last_seq` when none was).
    pub first_seq: u64,
    pub last_seq: u64,
    /// Messages in the session after the turn.
    pub message_count: u64,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneOutcome {
    pub sessions: usize,
    pub responses: usize,
}

/// The session store. See the module docs.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// Fair (FIFO hand-off): under a steady stream of run writes an operator's write (a
    /// `cron.update`, a `sessions.patch`) waits its turn instead of being barged past
    /// indefinitely, as it was behind 50 runs a second on a slow disk.
    writer: Arc<FairMutex<Connection>>,
    reader: FairMutex<Connection>,
    recovery: Option<Recovery>,
    /// The turn appends' group commit (its thread shares the writer).
    committer: Committer,
}

const SCHEMA_V1: &str = "
CREATE TABLE sessions (
    key TEXT PRIMARY KEY NOT NULL,
    agent_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    label TEXT,
    display_name TEXT,
    channel TEXT,
    origin TEXT,
    message_count INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_model TEXT,
    last_model_provider TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    last_total_tokens INTEGER NOT NULL DEFAULT 0,
    status TEXT,
    aborted_last_run INTEGER NOT NULL DEFAULT 0,
    last_message_preview TEXT
);
CREATE INDEX sessions_by_updated ON sessions(updated_ms DESC);
CREATE INDEX sessions_by_agent_updated ON sessions(agent_id, updated_ms DESC);
CREATE TABLE messages (
    session_key TEXT NOT NULL REFERENCES sessions(key) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    tool_calls TEXT,
    tool_call_id TEXT,
    run_id TEXT,
    ts_ms INTEGER NOT NULL,
    PRIMARY KEY (session_key, seq)
) WITHOUT ROWID;
CREATE TABLE responses (
    id TEXT PRIMARY KEY NOT NULL,
    session_key TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    owner TEXT,
    session_key_header TEXT,
    created_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX responses_by_session ON responses(session_key);
CREATE INDEX responses_by_created ON responses(created_ms);
";

/// v2: per-message display metadata of assistant replies (`{api, provider, model, usage,
/// stopReason}` as JSON).
const SCHEMA_V2: &str = "ALTER TABLE messages ADD COLUMN meta TEXT;";

/// v3: the session's last finished run (`lastRunId`, `startedAt`, `endedAt`: the Control UI's
/// "Done in …" recap).
const SCHEMA_V3: &str = "ALTER TABLE sessions ADD COLUMN last_run_id TEXT;
ALTER TABLE sessions ADD COLUMN run_started_ms INTEGER;
ALTER TABLE sessions ADD COLUMN run_ended_ms INTEGER;";

/// v4: messages by time (usage by day: `usage.cost`, `sessions.usage`).
const SCHEMA_V4: &str = "CREATE INDEX messages_by_ts ON messages(ts_ms);";

/// v5: what operators set on a session (`sessions.create|patch|reset`), a JSON object.
const SCHEMA_V5: &str = "ALTER TABLE sessions ADD COLUMN settings TEXT;";

/// v6: cron jobs (the job as JSON, [`clawgate_core::cron::Job`]) and their run history.
const SCHEMA_V6: &str = "CREATE TABLE cron_jobs (id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE cron_runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX cron_runs_by_job ON cron_runs(job_id, seq);";

/// Run history kept per job (older entries are dropped as new ones come).
pub const CRON_RUNS_PER_JOB: i64 = 500;

const SESSION_COLUMNS: &str = "key, agent_id, session_id, created_ms, updated_ms, label, display_name, channel, origin, message_count, \
     last_model, last_model_provider, input_tokens, output_tokens, last_total_tokens, status, aborted_last_run, last_message_preview, \
     last_run_id, run_started_ms, run_ended_ms, settings";

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn lock(m: &FairMutex<Connection>) -> FairMutexGuard<'_, Connection> {
    // No poisoning: a panic while holding the lock leaves the connection usable (an open
    // transaction rolls back when its guard drops).
    m.lock()
}

/// Why opening failed: the file is not a usable store (move it aside), or anything else.
enum OpenFailure {
    Unusable(String),
    Fatal(StoreError),
}

impl From<rusqlite::Error> for OpenFailure {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => OpenFailure::Unusable(e.to_string()),
            _ => OpenFailure::Fatal(StoreError::Sqlite(e)),
        }
    }
}

impl Store {
    /// Open (or create) the store at `path` with [`StoreOptions::default`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Open (or create) the store at `path`. A file that is not a usable clawgate store is moved
    /// aside and replaced by a fresh one (module docs).
    pub fn open_with(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        prepare_files(&path)?;
        let mut recovery = None;
        let writer = match open_writer(&path, &opts) {
            Ok(c) => c,
            Err(OpenFailure::Fatal(e)) => return Err(e),
            Err(OpenFailure::Unusable(reason)) => {
                let aside = move_aside(&path, &reason)?;
                prepare_files(&path)?;
                let mut fresh = open_writer(&path, &opts).map_err(|f| match f {
                    OpenFailure::Fatal(e) => e,
                    OpenFailure::Unusable(r) => StoreError::Invalid(format!("fresh store {} is unusable: {r}", path.display())),
                })?;
                // Everything still readable in the damaged file comes back, row by row.
                let salvaged = salvage_into(&aside, &mut fresh).unwrap_or_else(|e| {
                    tracing::warn!(moved_to = %aside.display(), "nothing could be salvaged from the unusable session store: {e}");
                    Salvaged::default()
                });
                tracing::error!(
                    moved_to = %aside.display(),
                    "session store recovered from the damaged copy: {} session(s), {} message(s), {} stored response(s), {} cron job(s), {} cron run(s)",
                    salvaged.sessions,
                    salvaged.messages,
                    salvaged.responses,
                    salvaged.cron_jobs,
                    salvaged.cron_runs
                );
                recovery = Some(Recovery { reason, moved_to: aside, salvaged });
                fresh
            }
        };
        let reader = open_conn(&path, &opts)?;
        reader.pragma_update(None, "query_only", true)?;
        tracing::debug!(path = %path.display(), "session store open");
        writer.pragma_update(None, "wal_autocheckpoint", turns::WAL_AUTOCHECKPOINT_PAGES)?;
        let writer = Arc::new(FairMutex::new(writer));
        let committer = Committer::start(writer.clone())?;
        Ok(Store { path, writer, reader: FairMutex::new(reader), recovery, committer })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When this open found the file unusable: where it was moved and what was recovered from it.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// One session's row.
    pub fn get_session(&self, key: &str) -> Result<Option<SessionSummary>, StoreError> {
        let conn = lock(&self.reader);
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE key = ?1");
        Ok(conn.query_row(&sql, [key], summary_from_row).optional()?)
    }

    /// Sessions matching `query`, newest `updated_ms` first, with the total before paging.
    pub fn list_sessions(&self, query: &SessionListQuery) -> Result<SessionPage, StoreError> {
        if query.match_nothing || query.only_agents.as_ref().is_some_and(Vec::is_empty) {
            return Ok(SessionPage::default());
        }
        fn arg(v: SqlValue, args: &mut Vec<SqlValue>) -> usize {
            args.push(v);
            args.len()
        }
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(a) = &query.agent_id {
            let i = arg(SqlValue::Text(a.clone()), &mut args);
            clauses.push(format!("agent_id = ?{i}"));
        }
        if let Some(only) = &query.only_agents {
            let marks: Vec<String> = only.iter().map(|a| format!("?{}", arg(SqlValue::Text(a.clone()), &mut args))).collect();
            clauses.push(format!("agent_id IN ({})", marks.join(", ")));
        }
        if let Some(l) = &query.label {
            let i = arg(SqlValue::Text(l.clone()), &mut args);
            clauses.push(format!("label = ?{i}"));
        }
        match query.archived {
            ArchivedFilter::Exclude => clauses.push("json_extract(settings, '$.archivedAt') IS NULL".into()),
            ArchivedFilter::Only => clauses.push("json_extract(settings, '$.archivedAt') IS NOT NULL".into()),
            ArchivedFilter::All => {}
        }
        if let Some(since) = query.updated_since_ms {
            let i = arg(SqlValue::Integer(to_i64(since)), &mut args);
            clauses.push(format!("updated_ms >= ?{i}"));
        }
        if let Some(s) = &query.search {
            let i = arg(SqlValue::Text(s.to_ascii_lowercase()), &mut args);
            let cols = ["key", "label", "display_name", "session_id", "last_model", "last_model_provider"];
            let any: Vec<String> = cols.iter().map(|c| format!("instr(lower(coalesce({c}, '')), ?{i}) > 0")).collect();
            clauses.push(format!("({})", any.join(" OR ")));
        }
        let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let mut conn = lock(&self.reader);
        // One read transaction: the count and the page see the same snapshot.
        let tx = conn.transaction()?;
        let total: i64 = tx.query_row(&format!("SELECT COUNT(*) FROM sessions{filter}"), params_from_iter(args.iter()), |r| r.get(0))?;
        let li = args.len() + 1;
        let sql =
            format!("SELECT {SESSION_COLUMNS} FROM sessions{filter} ORDER BY updated_ms DESC, key ASC LIMIT ?{li} OFFSET ?{}", li + 1);
        args.push(SqlValue::Integer(to_i64(query.limit as u64)));
        args.push(SqlValue::Integer(to_i64(query.offset as u64)));
        let sessions = {
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), summary_from_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.finish()?;
        Ok(SessionPage { total_count: usize::try_from(total).unwrap_or(0), sessions })
    }

    /// The newest `limit` messages of a session, oldest first.
    /// Transcript rows written in `[start_ms, end_ms]`, oldest first, the newest `limit`, without
    /// their content (what usage sums: role, time, tool calls, the reply's metadata).
    pub fn usage_rows_between(&self, start_ms: u64, end_ms: u64, limit: usize) -> Result<Vec<UsageRow>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare(
            "SELECT m.session_key, s.agent_id, m.role, m.ts_ms, m.tool_calls, m.meta FROM messages m JOIN sessions s ON s.key = m.session_key \
             WHERE m.ts_ms >= ?1 AND m.ts_ms <= ?2 ORDER BY m.ts_ms DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![to_i64(start_ms), to_i64(end_ms), to_i64(limit as u64)], |r| {
            let tool_calls: Option<String> = r.get(4)?;
            let meta: Option<String> = r.get(5)?;
            Ok(UsageRow {
                session_key: r.get(0)?,
                agent_id: r.get(1)?,
                role: r.get(2)?,
                ts_ms: to_u64(r.get(3)?),
                tool_calls: tool_calls
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v.as_array().map(|a| a.len() as u64))
                    .unwrap_or(0),
                meta: meta.and_then(|m| serde_json::from_str(&m).ok()),
            })
        })?;
        // Newest first so the limit drops the oldest rows; handed back oldest first.
        let mut out: Vec<UsageRow> = rows.filter_map(Result::ok).collect();
        out.reverse();
        Ok(out)
    }

    pub fn history(&self, key: &str, limit: usize) -> Result<Vec<TranscriptEntry>, StoreError> {
        Ok(self.history_page(key, limit, 0)?.entries)
    }

    /// Up to `limit` messages after skipping the `offset` newest, oldest first, and the number
    /// of messages in the session (0 for an unknown session). Rows that cannot be decoded (a
    /// damaged value) are skipped with a warning rather than failing the whole history.
    pub fn history_page(&self, key: &str, limit: usize, offset: usize) -> Result<HistoryPage, StoreError> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction()?;
        let row: Option<(i64, String)> = tx
            .query_row("SELECT message_count, session_id FROM sessions WHERE key = ?1", [key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((total, session_id)) = row else {
            return Ok(HistoryPage::default());
        };
        let mut entries = {
            let mut stmt = tx.prepare(
                "SELECT seq, role, content, tool_calls, tool_call_id, run_id, ts_ms, meta FROM messages WHERE session_key = ?1 \
                 ORDER BY seq DESC LIMIT ?2 OFFSET ?3",
            )?;
            let rows = stmt.query_map(params![key, to_i64(limit as u64), to_i64(offset as u64)], raw_message)?;
            let mut out = Vec::new();
            for row in rows {
                match decode_message(row?) {
                    Ok(mut e) => {
                        e.id = Some(message_id(&session_id, e.seq));
                        out.push(e)
                    }
                    Err(why) => tracing::warn!(session = key, "skipping an unreadable stored message: {why}"),
                }
            }
            out
        };
        tx.finish()?;
        entries.reverse();
        Ok(HistoryPage { entries, total: to_u64(total) })
    }

    /// Delete a session with its messages and stored responses, if `expect` holds for it.
    pub fn delete_session(&self, key: &str, expect: &Expect) -> Result<Guarded<()>, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !expect.is_empty()
            && let Err(why) = expect.check(read_session(&tx, key)?.as_ref())
        {
            return Ok(Guarded::Refused(why));
        }
        tx.execute("DELETE FROM responses WHERE session_key = ?1", [key])?;
        tx.execute("DELETE FROM messages WHERE session_key = ?1", [key])?;
        let n = tx.execute("DELETE FROM sessions WHERE key = ?1", [key])?;
        tx.commit()?;
        Ok(if n > 0 { Guarded::Done(()) } else { Guarded::Missing })
    }

    /// `sessions.create`: a session with no messages yet, unless `key` exists (then it is
    /// returned as it is: adopted). `true` when created.
    pub fn create_session(&self, meta: &SessionMeta, settings: &Value) -> Result<(SessionSummary, bool), StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE key = ?1");
        if let Some(existing) = tx.query_row(&sql, [&meta.key], summary_from_row).optional()? {
            return Ok((existing, false));
        }
        tx.execute(
            "INSERT INTO sessions (key, agent_id, session_id, created_ms, updated_ms, label, display_name, origin, settings) \
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8)",
            params![
                meta.key,
                meta.agent_id,
                meta.session_id,
                to_i64(meta.now_ms),
                meta.label,
                meta.display_name,
                meta.origin,
                settings.to_string()
            ],
        )?;
        let created = tx.query_row(&sql, [&meta.key], summary_from_row)?;
        tx.commit()?;
        Ok((created, true))
    }

    /// `sessions.patch`: if `expect` holds, set or clear the label (`Some(None)` clears) and
    /// merge-patch the settings (`null` removes a key).
    pub fn patch_session(
        &self,
        key: &str,
        expect: &Expect,
        label: Option<Option<&str>>,
        settings: &Value,
        now_ms: u64,
    ) -> Result<Guarded<SessionSummary>, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = settings_patched(&tx, key, settings)?;
        if let Err(why) = expect.check(found.as_ref().map(|(s, _)| s)) {
            return Ok(Guarded::Refused(why));
        }
        let Some((current, merged)) = found else { return Ok(Guarded::Missing) };
        let label = match label {
            Some(l) => l.map(str::to_string),
            None => current.label.clone(),
        };
        tx.execute(
            "UPDATE sessions SET label = ?2, settings = ?3, updated_ms = max(updated_ms, ?4) WHERE key = ?1",
            params![key, label, merged.to_string(), to_i64(now_ms)],
        )?;
        let patched = read_session(&tx, key)?;
        tx.commit()?;
        Ok(patched.map_or(Guarded::Missing, Guarded::Done))
    }

    /// `sessions.reset`: the same key with a new conversation — its messages and stored
    /// responses go, the token counters and run status are cleared, a new session id; the
    /// settings are merge-patched with `settings`. `None` for an unknown session.
    pub fn reset_session(
        &self,
        key: &str,
        new_session_id: &str,
        settings: &Value,
        now_ms: u64,
    ) -> Result<Option<SessionSummary>, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some((_, merged)) = settings_patched(&tx, key, settings)? else { return Ok(None) };
        tx.execute("DELETE FROM messages WHERE session_key = ?1", [key])?;
        tx.execute("DELETE FROM responses WHERE session_key = ?1", [key])?;
        tx.execute(
            "UPDATE sessions SET session_id = ?2, updated_ms = ?3, message_count = 0, last_seq = 0, input_tokens = 0, output_tokens = 0, \
             last_total_tokens = 0, status = NULL, aborted_last_run = 0, last_message_preview = NULL, last_run_id = NULL, \
             run_started_ms = NULL, run_ended_ms = NULL, settings = ?4 WHERE key = ?1",
            params![key, new_session_id, to_i64(now_ms), merged.to_string()],
        )?;
        let reset = read_session(&tx, key)?;
        tx.commit()?;
        Ok(reset)
    }

    /// `sessions.compact`: the messages before `keep_from_seq` go, replaced by `summary` when
    /// there is one (stored just before the kept ones); `compactionCount` goes up. `None` for an
    /// unknown session.
    pub fn compact_session(
        &self,
        key: &str,
        keep_from_seq: u64,
        summary: Option<&TranscriptEntry>,
    ) -> Result<Option<SessionSummary>, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(current) = read_session(&tx, key)? else { return Ok(None) };
        let count = current.settings.as_ref().and_then(|s| s.get("compactionCount")).and_then(Value::as_u64).unwrap_or(0);
        let Some((_, settings)) = settings_patched(&tx, key, &serde_json::json!({"compactionCount": count + 1}))? else { return Ok(None) };
        let first = to_i64(keep_from_seq);
        tx.execute("DELETE FROM messages WHERE session_key = ?1 AND seq < ?2", params![key, first])?;
        if let Some(summary) = summary {
            insert_message(&tx, key, first - 1, summary)?;
        }
        tx.execute(
            "UPDATE sessions SET message_count = (SELECT COUNT(*) FROM messages WHERE session_key = ?1), settings = ?2 WHERE key = ?1",
            params![key, settings.to_string()],
        )?;
        let compacted = read_session(&tx, key)?;
        tx.commit()?;
        Ok(compacted)
    }

    /// Store (or replace) a `/v1/responses` object.
    pub fn put_response(&self, response: &StoredResponse) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        put_response_in(&conn, response)
    }

    /// A stored response by id.
    pub fn get_response(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let conn = lock(&self.reader);
        let row = conn
            .query_row(
                "SELECT id, session_key, agent_id, owner, session_key_header, created_ms, body FROM responses WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, session_key, agent_id, owner, session_key_header, created_ms, body)) = row else { return Ok(None) };
        let body: Value = serde_json::from_str(&body).map_err(|e| StoreError::Invalid(format!("stored response {id}: {e}")))?;
        Ok(Some(StoredResponse { id, session_key, agent_id, owner, session_key_header, created_ms: to_u64(created_ms), body }))
    }

    /// Remove sessions not updated since `cutoff_ms` (with their messages and responses) and
    /// responses created before it.
    pub fn prune(&self, cutoff_ms: u64) -> Result<PruneOutcome, StoreError> {
        let cutoff = to_i64(cutoff_ms);
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let responses = tx.execute(
            "DELETE FROM responses WHERE created_ms < ?1 OR session_key IN (SELECT key FROM sessions WHERE updated_ms < ?1)",
            [cutoff],
        )?;
        tx.execute("DELETE FROM messages WHERE session_key IN (SELECT key FROM sessions WHERE updated_ms < ?1)", [cutoff])?;
        let sessions = tx.execute("DELETE FROM sessions WHERE updated_ms < ?1", [cutoff])?;
        tx.commit()?;
        Ok(PruneOutcome { sessions, responses })
    }

    /// Bytes the store takes on disk (the database file and its WAL).
    fn disk_bytes(&self) -> u64 {
        let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.path) + size(Path::new(&wal))
    }

    /// `sessions.cleanup`: fold the WAL into the database file (the one maintenance the store
    /// needs: nothing expires, nothing is capped) and report the agent's sessions and the bytes
    /// on disk before and after.
    pub fn maintain(&self, agent_id: &str) -> Result<Maintenance, StoreError> {
        let before = self.disk_bytes();
        let sessions: i64 = lock(&self.reader).query_row("SELECT COUNT(*) FROM sessions WHERE agent_id = ?1", [agent_id], |r| r.get(0))?;
        self.checkpoint()?;
        Ok(Maintenance { sessions: to_u64(sessions), bytes_before: before, bytes_after: self.disk_bytes() })
    }

    /// Fold the WAL back into the database file (e.g. at shutdown). Optional: SQLite also does
    /// this as the WAL grows and when the last connection closes.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// The core's view of the store (`sessions.list`, `chat.history`, the built-in tools, the
/// session HTTP routes).
impl clawgate_core::sessions::SessionStore for Store {
    fn path(&self) -> String {
        self.path.display().to_string()
    }
    fn list(&self, query: &SessionListQuery) -> Result<SessionPage, String> {
        self.list_sessions(query).map_err(|e| e.to_string())
    }
    fn session(&self, key: &str) -> Result<Option<SessionSummary>, String> {
        self.get_session(key).map_err(|e| e.to_string())
    }
    fn history(&self, key: &str, limit: usize, offset: usize) -> Result<HistoryPage, String> {
        self.history_page(key, limit, offset).map_err(|e| e.to_string())
    }
    fn usage_rows(&self, start_ms: u64, end_ms: u64, limit: usize) -> Result<Vec<UsageRow>, String> {
        self.usage_rows_between(start_ms, end_ms, limit).map_err(|e| e.to_string())
    }
    fn create(&self, meta: &SessionMeta, settings: &Value) -> Result<(SessionSummary, bool), String> {
        self.create_session(meta, settings).map_err(|e| e.to_string())
    }
    fn patch(
        &self,
        key: &str,
        expect: &Expect,
        label: Option<Option<&str>>,
        settings: &Value,
        now_ms: u64,
    ) -> Result<Guarded<SessionSummary>, String> {
        self.patch_session(key, expect, label, settings, now_ms).map_err(|e| e.to_string())
    }
    fn reset(&self, key: &str, new_session_id: &str, settings: &Value, now_ms: u64) -> Result<Option<SessionSummary>, String> {
        self.reset_session(key, new_session_id, settings, now_ms).map_err(|e| e.to_string())
    }
    fn delete(&self, key: &str, expect: &Expect) -> Result<Guarded<()>, String> {
        self.delete_session(key, expect).map_err(|e| e.to_string())
    }
    fn maintain(&self, agent_id: &str) -> Result<Maintenance, String> {
        Store::maintain(self, agent_id).map_err(|e| e.to_string())
    }
}

fn read_session(conn: &Connection, key: &str) -> Result<Option<SessionSummary>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE key = ?1");
    Ok(conn.query_row(&sql, [key], summary_from_row).optional()?)
}

/// A session and its settings merge-patched with `patch` (RFC 7396: `null` removes a key).
fn settings_patched(conn: &Connection, key: &str, patch: &Value) -> Result<Option<(SessionSummary, Value)>, StoreError> {
    let Some(current) = read_session(conn, key)? else { return Ok(None) };
    let mut merged = current.settings.clone().unwrap_or_else(|| Value::Object(Default::default()));
    clawgate_core::config::file::merge_patch(&mut merged, patch);
    Ok(Some((current, merged)))
}

fn put_response_in(conn: &Connection, r: &StoredResponse) -> Result<(), StoreError> {
    let body = serde_json::to_string(&r.body).map_err(|e| StoreError::Invalid(format!("response body: {e}")))?;
    // Cached: every `/v1/responses` turn runs it (issue 17; a fresh prepare parsed the SQL each time).
    conn.prepare_cached(
        "INSERT OR REPLACE INTO responses (id, session_key, agent_id, owner, session_key_header, created_ms, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![r.id, r.session_key, r.agent_id, r.owner, r.session_key_header, to_i64(r.created_ms), body])?;
    Ok(())
}

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    Ok(SessionSummary {
        key: r.get(0)?,
        agent_id: r.get(1)?,
        session_id: r.get(2)?,
        created_ms: to_u64(r.get(3)?),
        updated_ms: to_u64(r.get(4)?),
        label: r.get(5)?,
        display_name: r.get(6)?,
        channel: r.get(7)?,
        origin: r.get(8)?,
        message_count: to_u64(r.get(9)?),
        last_model: r.get(10)?,
        last_model_provider: r.get(11)?,
        input_tokens: to_u64(r.get(12)?),
        output_tokens: to_u64(r.get(13)?),
        last_total_tokens: to_u64(r.get(14)?),
        status: r.get::<_, Option<String>>(15)?.as_deref().and_then(RunStatus::parse),
        aborted_last_run: r.get::<_, i64>(16)? != 0,
        last_message_preview: r.get(17)?,
        last_run: match (r.get::<_, Option<String>>(18)?, r.get::<_, Option<i64>>(19)?, r.get::<_, Option<i64>>(20)?) {
            (Some(run_id), Some(s), Some(e)) => Some(LastRun { run_id, started_ms: to_u64(s), ended_ms: to_u64(e) }),
            _ => None,
        },
        settings: r.get::<_, Option<String>>(21)?.and_then(|t| serde_json::from_str::<Value>(&t).ok()).filter(Value::is_object),
    })
}

type RawMessage = (i64, String, String, Option<String>, Option<String>, Option<String>, i64, Option<String>);

fn raw_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawMessage> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

fn decode_message((seq, role, content, tool_calls, tool_call_id, run_id, ts, meta): RawMessage) -> Result<TranscriptEntry, String> {
    let role = Role::parse(&role).ok_or_else(|| format!("seq {seq}: unknown role {role:?}"))?;
    let content: Value = serde_json::from_str(&content).map_err(|e| format!("seq {seq}: content: {e}"))?;
    let tool_calls = match tool_calls {
        Some(t) => Some(serde_json::from_str::<Value>(&t).map_err(|e| format!("seq {seq}: tool_calls: {e}"))?),
        None => None,
    };
    // Damaged metadata only loses the display extras, never the message.
    let meta = meta.and_then(|m| serde_json::from_str::<Value>(&m).ok());
    Ok(TranscriptEntry { seq: to_u64(seq), role, content, tool_calls, tool_call_id, ts_ms: to_u64(ts), run_id, id: None, meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }
}
