//! Opening the store's files: private modes, moving an unusable store aside, salvaging its
//! readable rows into a fresh one.

use super::*;

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// Create the directory (0700) and the database file (0600), tightening an existing file's mode.
pub(super) fn prepare_files(path: &Path) -> Result<(), StoreError> {
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

pub(super) fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(unix)]
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
pub(super) fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
    restrict_mode(path)
}

#[cfg(not(unix))]
pub(super) fn create_private_file(path: &Path) -> std::io::Result<()> {
    fs::OpenOptions::new().write(true).create(true).truncate(false).open(path).map(|_| ())
}

#[cfg(unix)]
pub(super) fn restrict_mode(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn restrict_mode(_path: &Path) -> std::io::Result<()> {
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
pub(super) const SALVAGE_ROWID_SLACK: i64 = 1000;

/// Copy every readable row of the damaged store at `aside` into `fresh`: sessions, stored
/// responses, cron jobs and their run history by rowid (a row on a bad page fails alone), each session's messages by `seq`
/// (in one query, or one by one when that query meets the damage). A file that is not a
/// clawgate store gives nothing. Session counters are recomputed from what came back.
pub(super) fn salvage_into(aside: &Path, fresh: &mut Connection) -> Result<Salvaged, StoreError> {
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

pub(super) fn move_aside(path: &Path, reason: &str) -> Result<PathBuf, StoreError> {
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

pub(super) fn open_conn(path: &Path, opts: &StoreOptions) -> Result<Connection, StoreError> {
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
pub(super) fn open_writer(path: &Path, opts: &StoreOptions) -> Result<Connection, OpenFailure> {
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
