//! The session store: conversation sessions, their transcripts and stored `/v1/responses`
//! objects in one SQLite file, `<stateDir>/clawgate/sessions.sqlite` ([`sessions_db_path`]).
//!
//! Blocking API: the shells call it from `spawn_blocking` (or their runtime's equivalent).
//! [`Store`] is `Send + Sync`; it holds two connections, a writer and a reader, each behind a
//! mutex, so reads (`sessions.list`, `chat.history`) never queue behind a turn's commit.
//!
//! # Durability
//!
//! * WAL journal, `synchronous=FULL` by default ([`Durability::Full`]): every commit is fsynced
//!   before [`Store::append_turn`] returns, so a committed turn survives `kill -9` of the process
//!   *and* a power loss or kernel crash. A turn costs one fsync, nothing beside an LLM round trip.
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
    writer: FairMutex<Connection>,
    reader: FairMutex<Connection>,
    recovery: Option<Recovery>,
    /// Turn appends waiting for the writer: whoever holds it next commits them all in one
    /// transaction (group commit, one fsync for the batch).
    pending: std::sync::Mutex<Vec<Arc<PendingAppend>>>,
}

/// One turn append queued for a group commit; its result is published only once the batch's
/// commit returned (so a turn is acknowledged only when it is durable).
struct PendingAppend {
    turn: std::sync::Mutex<Option<TurnWrite>>,
    result: std::sync::Mutex<Option<Result<AppendOutcome, StoreError>>>,
}

impl std::fmt::Debug for PendingAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingAppend")
    }
}

/// What one turn append writes.
struct TurnWrite {
    session: SessionMeta,
    entries: Vec<TranscriptEntry>,
    response: Option<StoredResponse>,
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
        Ok(Store { path, writer: FairMutex::new(writer), reader: FairMutex::new(reader), recovery, pending: Default::default() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When this open found the file unusable: where it was moved and what was recovered from it.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// Append one turn to `session` (created on first use) in ONE transaction: the session row
    /// (timestamps, counters, usage, model, status, title) and every entry, or nothing. Entries
    /// are numbered after the session's last message; their `seq` on input is ignored.
    pub fn append_turn(&self, session: &SessionMeta, entries: &[TranscriptEntry]) -> Result<AppendOutcome, StoreError> {
        self.append_turn_with_response(session, entries, None)
    }

    /// [`Store::append_turn`] that also stores `response` (a `/v1/responses` object) in the same
    /// transaction, so a response id never names a turn that was not kept.
    pub fn append_turn_with_response(
        &self,
        session: &SessionMeta,
        entries: &[TranscriptEntry],
        response: Option<&StoredResponse>,
    ) -> Result<AppendOutcome, StoreError> {
        if session.key.is_empty() {
            return Err(StoreError::Invalid("empty session key".into()));
        }
        let turn = TurnWrite { session: session.clone(), entries: entries.to_vec(), response: response.cloned() };
        let mine = Arc::new(PendingAppend { turn: std::sync::Mutex::new(Some(turn)), result: std::sync::Mutex::new(None) });
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(mine.clone());
        let mut conn = lock(&self.writer);
        // A writer before us may have committed our turn with its batch.
        if let Some(done) = mine.result.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return done;
        }
        let batch: Vec<Arc<PendingAppend>> = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let mut results: Vec<Result<AppendOutcome, StoreError>> = Vec::with_capacity(batch.len());
        let committed = (|| -> Result<(), StoreError> {
            let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for p in &batch {
                let Some(turn) = p.turn.lock().unwrap_or_else(|e| e.into_inner()).take() else {
                    results.push(Err(StoreError::Invalid("turn already written".into())));
                    continue;
                };
                // Each turn in its own savepoint: one that fails leaves the others whole.
                let sp = tx.savepoint()?;
                match append_in(&sp, &turn.session, &turn.entries, turn.response.as_ref()) {
                    Ok(o) => {
                        sp.commit()?;
                        results.push(Ok(o));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
            tx.commit()?;
            Ok(())
        })();
        let mut own = None;
        for (i, p) in batch.iter().enumerate() {
            let r = match (&committed, results.get_mut(i)) {
                (Ok(()), Some(r)) => std::mem::replace(r, Err(StoreError::Invalid(String::new()))),
                (Err(e), _) => Err(StoreError::Invalid(format!("the batch's commit failed: {e}"))),
                (Ok(()), None) => Err(StoreError::Invalid("no result".into())),
            };
            if Arc::ptr_eq(p, &mine) {
                own = Some(r);
            } else {
                *p.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            }
        }
        drop(conn);
        own.unwrap_or_else(|| Err(StoreError::Invalid("turn not in its batch".into())))
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

/// One write of the cron scheduler's outputs (applied together in one transaction).
#[derive(Debug, Clone, PartialEq)]
pub enum CronWrite {
    /// Insert or replace a job row.
    Job { id: String, body: String, updated_ms: u64 },
    /// Delete a job with its history.
    Delete(String),
    /// Delete a job, keep its history (`cron.runs {scope:"all"}` still shows its runs).
    Retire(String),
    /// Append a run history entry.
    Run { job_id: String, ts_ms: u64, status: String, body: String },
}

impl Store {
    /// Every stored cron job: `(id, JSON body)`.
    pub fn cron_jobs(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare("SELECT id, body FROM cron_jobs ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Apply the scheduler's writes atomically, in order.
    pub fn cron_write(&self, writes: &[CronWrite]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for w in writes {
            match w {
                CronWrite::Job { id, body, updated_ms } => {
                    tx.prepare("INSERT OR REPLACE INTO cron_jobs (id, body, updated_ms) VALUES (?1, ?2, ?3)")?.execute(params![
                        id,
                        body,
                        to_i64(*updated_ms)
                    ])?;
                }
                CronWrite::Retire(id) => {
                    tx.execute("DELETE FROM cron_jobs WHERE id = ?1", [id])?;
                }
                CronWrite::Delete(id) => {
                    tx.execute("DELETE FROM cron_jobs WHERE id = ?1", [id])?;
                    tx.execute("DELETE FROM cron_runs WHERE job_id = ?1", [id])?;
                }
                CronWrite::Run { job_id, ts_ms, status, body } => {
                    tx.prepare("INSERT INTO cron_runs (job_id, ts_ms, status, body) VALUES (?1, ?2, ?3, ?4)")?.execute(params![
                        job_id,
                        to_i64(*ts_ms),
                        status,
                        body
                    ])?;
                    tx.prepare(
                        "DELETE FROM cron_runs WHERE job_id = ?1 AND seq <= (SELECT seq FROM cron_runs WHERE job_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                    )?
                    .execute(params![job_id, CRON_RUNS_PER_JOB])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Run history entries (JSON bodies) matching the filters, newest first (or oldest first),
    /// one page, with the total before paging.
    pub fn cron_runs(&self, q: &clawgate_core::methods::cron::RunsQuery) -> Result<(Vec<String>, usize), StoreError> {
        let mut clauses = Vec::new();
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(id) = &q.job_id {
            args.push(SqlValue::Text(id.clone()));
            clauses.push(format!("job_id = ?{}", args.len()));
        }
        if let Some(run) = &q.run_id {
            args.push(SqlValue::Text(run.clone()));
            clauses.push(format!("json_extract(body, '$.runId') = ?{}", args.len()));
        }
        let mut any_of = |column: &str, values: &[String], args: &mut Vec<SqlValue>| {
            if values.is_empty() {
                return;
            }
            let marks: Vec<String> = values
                .iter()
                .map(|v| {
                    args.push(SqlValue::Text(v.clone()));
                    format!("?{}", args.len())
                })
                .collect();
            clauses.push(format!("{column} IN ({})", marks.join(", ")));
        };
        any_of("status", &q.statuses, &mut args);
        any_of("json_extract(body, '$.deliveryStatus')", &q.delivery_statuses, &mut args);
        if let Some(text) = &q.query {
            args.push(SqlValue::Text(text.clone()));
            let i = args.len();
            clauses.push(format!(
                "(instr(lower(coalesce(json_extract(body, '$.summary'), '')), ?{i}) > 0 OR instr(lower(coalesce(json_extract(body, '$.error'), '')), ?{i}) > 0 OR instr(lower(coalesce(json_extract(body, '$.jobName'), '')), ?{i}) > 0)"
            ));
        }
        let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let order = if q.ascending { "ASC" } else { "DESC" };
        let mut conn = lock(&self.reader);
        let tx = conn.transaction()?;
        let total: i64 = tx.query_row(&format!("SELECT COUNT(*) FROM cron_runs{filter}"), params_from_iter(args.iter()), |r| r.get(0))?;
        let li = args.len() + 1;
        args.push(SqlValue::Integer(to_i64(q.limit as u64)));
        args.push(SqlValue::Integer(to_i64(q.offset as u64)));
        let bodies = {
            let mut stmt =
                tx.prepare(&format!("SELECT body FROM cron_runs{filter} ORDER BY seq {order} LIMIT ?{li} OFFSET ?{}", li + 1))?;
            let rows = stmt.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.finish()?;
        Ok((bodies, usize::try_from(total).unwrap_or(0)))
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

/// Write one turn (the session row and its messages, the response) inside the caller's
/// transaction.
fn append_in(
    tx: &Connection,
    session: &SessionMeta,
    entries: &[TranscriptEntry],
    response: Option<&StoredResponse>,
) -> Result<AppendOutcome, StoreError> {
    let existing: Option<(i64, i64)> = tx
        .query_row("SELECT last_seq, message_count FROM sessions WHERE key = ?1", [&session.key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let n = entries.len() as i64;
    let usage = session.usage;
    let status = session.status.map(RunStatus::as_str);
    let preview = message_preview(entries);
    let (tokens_in, tokens_out, tokens_total) =
        usage.map_or((0, 0, 0), |u| (to_i64(u.input_tokens), to_i64(u.output_tokens), to_i64(u.total_tokens)));
    let last_run_id = session.last_run.as_ref().map(|r| r.run_id.clone());
    let run_started = session.last_run.as_ref().map(|r| to_i64(r.started_ms));
    let run_ended = session.last_run.as_ref().map(|r| to_i64(r.ended_ms));
    let (created, last_seq, count) = match existing {
        None => {
            let title = session.display_name.clone().or_else(|| derive_title(entries));
            tx.prepare_cached(
                "INSERT INTO sessions (key, agent_id, session_id, created_ms, updated_ms, label, display_name, channel, origin, \
                     message_count, last_seq, last_model, last_model_provider, input_tokens, output_tokens, last_total_tokens, status, \
                     aborted_last_run, last_message_preview, last_run_id, run_started_ms, run_ended_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            )?
            .execute(params![
                session.key,
                session.agent_id,
                session.session_id,
                to_i64(session.now_ms),
                session.label,
                title,
                session.channel,
                session.origin,
                n,
                session.model,
                session.model_provider,
                tokens_in,
                tokens_out,
                tokens_total,
                status,
                session.aborted,
                preview,
                last_run_id,
                run_started,
                run_ended,
            ])?;
            (true, 0i64, n)
        }
        Some((last_seq, count)) => {
            tx.prepare_cached(
                "UPDATE sessions SET updated_ms = max(updated_ms, ?2), label = coalesce(?3, label), \
                     display_name = coalesce(?4, display_name, ?5), channel = coalesce(?6, channel), origin = coalesce(origin, ?7), \
                     message_count = message_count + ?8, last_seq = last_seq + ?8, last_model = coalesce(?9, last_model), \
                     last_model_provider = coalesce(?10, last_model_provider), input_tokens = input_tokens + ?11, \
                     output_tokens = output_tokens + ?12, last_total_tokens = CASE WHEN ?13 > 0 THEN ?13 ELSE last_total_tokens END, \
                     status = coalesce(?14, status), aborted_last_run = ?15, last_message_preview = coalesce(?16, last_message_preview), \
                     run_started_ms = CASE WHEN ?17 IS NULL THEN run_started_ms ELSE ?18 END, \
                     run_ended_ms = CASE WHEN ?17 IS NULL THEN run_ended_ms ELSE ?19 END, last_run_id = coalesce(?17, last_run_id) \
                     WHERE key = ?1",
            )?
            .execute(params![
                session.key,
                to_i64(session.now_ms),
                session.label,
                session.display_name,
                derive_title(entries),
                session.channel,
                session.origin,
                n,
                session.model,
                session.model_provider,
                tokens_in,
                tokens_out,
                tokens_total,
                status,
                session.aborted,
                preview,
                last_run_id,
                run_started,
                run_ended,
            ])?;
            (false, last_seq, count + n)
        }
    };
    for (i, e) in entries.iter().enumerate() {
        insert_message(tx, &session.key, last_seq + 1 + i as i64, e)?;
    }
    if let Some(r) = response {
        put_response_in(tx, r)?;
    }
    Ok(AppendOutcome { created, first_seq: to_u64(last_seq) + 1, last_seq: to_u64(last_seq + n), message_count: to_u64(count) })
}

/// Write one transcript entry at `seq`.
fn insert_message(conn: &Connection, key: &str, seq: i64, e: &TranscriptEntry) -> Result<(), StoreError> {
    let content = serde_json::to_string(&e.content).map_err(|err| StoreError::Invalid(format!("message content: {err}")))?;
    let tool_calls = match &e.tool_calls {
        Some(t) => Some(serde_json::to_string(t).map_err(|err| StoreError::Invalid(format!("tool_calls: {err}")))?),
        None => None,
    };
    let meta = match &e.meta {
        Some(m) => Some(serde_json::to_string(m).map_err(|err| StoreError::Invalid(format!("message meta: {err}")))?),
        None => None,
    };
    conn.prepare_cached(
        "INSERT INTO messages (session_key, seq, role, content, tool_calls, tool_call_id, run_id, ts_ms, meta) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![key, seq, e.role.as_str(), content, tool_calls, e.tool_call_id, e.run_id, to_i64(e.ts_ms), meta])?;
    Ok(())
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
    conn.execute(
        "INSERT OR REPLACE INTO responses (id, session_key, agent_id, owner, session_key_header, created_ms, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![r.id, r.session_key, r.agent_id, r.owner, r.session_key_header, to_i64(r.created_ms), body],
    )?;
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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// Create the directory (0700) and the database file (0600), tightening an existing file's mode.
fn prepare_files(path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(io_err(dir))?;
    create_private_file(path).map_err(io_err(path))?;
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        if side.exists() {
            restrict_mode(&side).map_err(io_err(&side))?;
        }
    }
    Ok(())
}

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
    restrict_mode(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    fs::OpenOptions::new().write(true).create(true).truncate(false).open(path).map(|_| ())
}

#[cfg(unix)]
fn restrict_mode(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_mode(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Rename an unusable store (and its side files) to `<name>.corrupt-<unix ms>`.
/// What an open did with an unusable store file.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Why the file was unusable.
    pub reason: String,
    /// Where it was moved (kept as it was).
    pub moved_to: PathBuf,
    pub salvaged: Salvaged,
}

/// Rows copied from a damaged store into the fresh one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Salvaged {
    pub sessions: u64,
    pub messages: u64,
    pub responses: u64,
    /// Cron jobs and run history entries (v6).
    pub cron_jobs: u64,
    pub cron_runs: u64,
}

/// Rows of a rowid table past the last readable `max(rowid)` tried before giving up.
const SALVAGE_ROWID_SLACK: i64 = 1000;

/// Copy every readable row of the damaged store at `aside` into `fresh`: sessions, stored
/// responses, cron jobs and their run history by rowid (a row on a bad page fails alone), each session's messages by `seq`
/// (in one query, or one by one when that query meets the damage). A file that is not a
/// clawgate store gives nothing. Session counters are recomputed from what came back.
fn salvage_into(aside: &Path, fresh: &mut Connection) -> Result<Salvaged, StoreError> {
    // Read-only and immutable: no lock, no `-shm`/`-wal` created beside the kept copy.
    let uri = format!("file:{}?immutable=1", aside.display().to_string().replace('%', "%25").replace('?', "%3f").replace('#', "%23"));
    let old =
        Connection::open_with_flags(uri, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    let app_id: i64 = old.query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap_or(0);
    if app_id != APPLICATION_ID {
        return Ok(Salvaged::default());
    }
    let mut out = Salvaged::default();
    let tx = fresh.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // One row of a rowid table, copied by column name (an older schema has fewer columns).
    let copy_row = |tx: &rusqlite::Transaction<'_>, table: &str, rowid: i64| -> bool {
        let Ok(mut st) = old.prepare(&format!("SELECT * FROM {table} WHERE rowid = ?1")) else { return false };
        let names: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
        let values: Option<Vec<SqlValue>> =
            st.query_row([rowid], |r| (0..names.len()).map(|i| r.get::<_, SqlValue>(i)).collect()).optional().ok().flatten();
        let Some(values) = values else { return false };
        let marks = vec!["?"; names.len()].join(", ");
        let sql = format!("INSERT OR IGNORE INTO {table} ({}) VALUES ({marks})", names.join(", "));
        tx.execute(&sql, params_from_iter(values)).map(|n| n > 0).unwrap_or(false)
    };
    for (table, count) in [
        ("sessions", &mut out.sessions),
        ("responses", &mut out.responses),
        ("cron_jobs", &mut out.cron_jobs),
        ("cron_runs", &mut out.cron_runs),
    ] {
        let max: i64 =
            old.query_row(&format!("SELECT max(rowid) FROM {table}"), [], |r| r.get::<_, Option<i64>>(0)).ok().flatten().unwrap_or(0);
        let mut misses = 0;
        let mut rowid = 1;
        while rowid <= max || misses < SALVAGE_ROWID_SLACK {
            if copy_row(&tx, table, rowid) {
                *count += 1;
                misses = 0;
            } else if rowid > max {
                misses += 1;
            }
            rowid += 1;
        }
    }
    // Messages (WITHOUT ROWID): per recovered session, by seq.
    let keys: Vec<(String, i64)> = {
        let mut st = tx.prepare("SELECT key, last_seq FROM sessions")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.filter_map(Result::ok).collect()
    };
    let columns: Vec<String> = match old.prepare("SELECT * FROM messages LIMIT 0") {
        Ok(st) => st.column_names().iter().map(|c| c.to_string()).collect(),
        Err(_) => Vec::new(),
    };
    if !columns.is_empty() {
        let insert = format!("INSERT OR IGNORE INTO messages ({}) VALUES ({})", columns.join(", "), vec!["?"; columns.len()].join(", "));
        let read_rows = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Vec<Vec<SqlValue>>, rusqlite::Error> {
            let mut st = old.prepare(sql)?;
            let rows = st.query_map(p, |r| (0..columns.len()).map(|i| r.get::<_, SqlValue>(i)).collect::<Result<Vec<_>, _>>())?;
            rows.collect()
        };
        for (key, last_seq) in keys {
            let rows = match read_rows("SELECT * FROM messages WHERE session_key = ?1 ORDER BY seq", &[&key]) {
                Ok(rows) => rows,
                // The damage is in this session's messages: one by one, skipping what fails.
                Err(_) => (1..=last_seq.max(0))
                    .filter_map(|seq| read_rows("SELECT * FROM messages WHERE session_key = ?1 AND seq = ?2", &[&key, &seq]).ok())
                    .flatten()
                    .collect(),
            };
            for row in rows {
                if tx.execute(&insert, params_from_iter(row)).map(|n| n > 0).unwrap_or(false) {
                    out.messages += 1;
                }
            }
        }
    }
    tx.execute_batch(
        "UPDATE sessions SET message_count = (SELECT COUNT(*) FROM messages m WHERE m.session_key = sessions.key),
                             last_seq = COALESCE((SELECT MAX(seq) FROM messages m WHERE m.session_key = sessions.key), 0);",
    )?;
    tx.commit()?;
    Ok(out)
}

fn move_aside(path: &Path, reason: &str) -> Result<PathBuf, StoreError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "sessions.sqlite".into());
    let mut stamp = unix_ms();
    let aside = loop {
        let candidate = path.with_file_name(format!("{name}.corrupt-{stamp}"));
        if !candidate.exists() {
            break candidate;
        }
        stamp += 1;
    };
    fs::rename(path, &aside).map_err(io_err(path))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = side_file(path, suffix);
        if side.exists() {
            let to = side_file(&aside, suffix);
            if let Err(e) = fs::rename(&side, &to) {
                tracing::warn!(path = %side.display(), "could not move a side file of the unusable session store: {e}");
            }
        }
    }
    tracing::error!(
        path = %path.display(),
        moved_to = %aside.display(),
        "session store could not be opened ({reason}); moved it aside, starting a fresh store with what can be salvaged from it"
    );
    Ok(aside)
}

fn open_conn(path: &Path, opts: &StoreOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(opts.busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    let sync = match opts.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    Ok(conn)
}

/// Open the writer connection: WAL, checks, migrations.
fn open_writer(path: &Path, opts: &StoreOptions) -> Result<Connection, OpenFailure> {
    let mut conn = open_conn(path, opts).map_err(|e| match e {
        StoreError::Sqlite(s) => OpenFailure::from(s),
        other => OpenFailure::Fatal(other),
    })?;
    // The first statement that reads the file: a foreign file fails here (NotADatabase).
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), "session store journal mode is {mode}, not wal");
    }
    if opts.verify_on_open {
        let verdict: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
        if verdict != "ok" {
            return Err(OpenFailure::Unusable(format!("integrity check failed: {verdict}")));
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let app_id: i64 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let objects: i64 = tx.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    if app_id != APPLICATION_ID && (app_id != 0 || objects != 0) {
        return Err(OpenFailure::Unusable(format!("not a clawgate session store (application_id {app_id:#x}, {objects} schema objects)")));
    }
    if version > SCHEMA_VERSION {
        return Err(OpenFailure::Fatal(StoreError::TooNew { path: path.to_path_buf(), found: version }));
    }
    if version < SCHEMA_VERSION {
        if version < 1 {
            tx.execute_batch(SCHEMA_V1)?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2)?;
        }
        if version < 3 {
            tx.execute_batch(SCHEMA_V3)?;
        }
        if version < 4 {
            tx.execute_batch(SCHEMA_V4)?;
        }
        if version < 5 {
            tx.execute_batch(SCHEMA_V5)?;
        }
        if version < 6 {
            tx.execute_batch(SCHEMA_V6)?;
        }
        // Later versions add their steps here: `if version < 7 { … }`.
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tracing::info!(path = %path.display(), from = version, to = SCHEMA_VERSION, "session store schema migrated");
    }
    tx.commit()?;
    Ok(conn)
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
