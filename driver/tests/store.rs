//! The session store against real files: roundtrips, all-or-nothing turns, a writer killed with
//! SIGKILL mid-loop, and unusable files moved aside.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clawgate_core::sessions::{
    ArchivedFilter, Expect, Guarded, Refusal, Role, RunStatus, SessionListQuery, SessionMeta, StoredResponse, TranscriptEntry, Usage,
    chat_history_payload, parse_chat_history_params, to_openai_messages,
};
use clawgate_driver::store::{APPLICATION_ID, CRON_RUNS_PER_JOB, CronWrite, SCHEMA_VERSION, Store, StoreError, sessions_db_path};
use serde_json::json;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("clawgate-store-{tag}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn db(&self) -> PathBuf {
        sessions_db_path(self.0.to_str().unwrap())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn meta(key: &str, now: u64) -> SessionMeta {
    let mut m = SessionMeta::new(key, "main", format!("sid-{key}"), now);
    m.origin = Some("openai".into());
    m.channel = Some("webchat".into());
    m.model = Some("fake-model".into());
    m.model_provider = Some("fake".into());
    m.usage = Some(Usage { input_tokens: 11, output_tokens: 4, total_tokens: 15 });
    m.status = Some(RunStatus::Done);
    m
}

fn turn(i: u64, pad: usize) -> Vec<TranscriptEntry> {
    let id = format!("call{i}");
    let run = format!("run{i}");
    vec![
        TranscriptEntry::user(format!("question {i} {}", "q".repeat(pad)), i).with_run_id(&run),
        TranscriptEntry::assistant(
            "",
            Some(json!([{"id": id, "type": "function", "function": {"name": "lookup", "arguments": format!("{{\"i\":{i}}}")}}])),
            i,
        )
        .with_run_id(&run),
        TranscriptEntry::tool(&id, format!("result {i} {}", "r".repeat(pad)), i).with_run_id(&run),
        TranscriptEntry::assistant(format!("answer {i}"), None, i).with_run_id(&run),
    ]
}

fn aside_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains(".corrupt-")).collect();
    v.sort();
    v
}

#[test]
fn append_list_history_roundtrip() {
    let tmp = TempDir::new("roundtrip");
    let path = tmp.db();
    let store = Store::open(&path).unwrap();
    let a = store.append_turn(&meta("agent:main:openai-user:conv-42", 1_000), &turn(1, 0)).unwrap();
    assert_eq!((a.created, a.first_seq, a.last_seq, a.message_count), (true, 1, 4, 4));
    let b = store.append_turn(&meta("agent:main:openai-user:conv-42", 2_000), &turn(2, 0)).unwrap();
    assert_eq!((b.created, b.first_seq, b.last_seq, b.message_count), (false, 5, 8, 8));
    let mut other = meta("agent:research:openai:x", 1_500);
    other.agent_id = "research".into();
    other.label = Some("lab".into());
    store.append_turn(&other, &[TranscriptEntry::user("Say hello", 1_500), TranscriptEntry::assistant("Hello", None, 1_500)]).unwrap();

    let s = store.get_session("agent:main:openai-user:conv-42").unwrap().unwrap();
    assert_eq!(s.message_count, 8);
    assert_eq!((s.created_ms, s.updated_ms), (1_000, 2_000));
    assert_eq!((s.input_tokens, s.output_tokens, s.last_total_tokens), (22, 8, 15));
    assert_eq!(s.display_name.as_deref(), Some("question 1"));
    assert_eq!(s.last_message_preview.as_deref(), Some("answer 2"));
    assert_eq!(s.status, Some(RunStatus::Done));
    assert_eq!(s.channel.as_deref(), Some("webchat"));

    let all = store.list_sessions(&SessionListQuery { limit: 10, ..Default::default() }).unwrap();
    assert_eq!(all.total_count, 2);
    assert_eq!(all.sessions[0].key, "agent:main:openai-user:conv-42", "newest first");
    let page = store.list_sessions(&SessionListQuery { limit: 1, offset: 1, ..Default::default() }).unwrap();
    assert_eq!((page.total_count, page.sessions.len()), (2, 1));
    assert_eq!(page.sessions[0].key, "agent:research:openai:x");
    let q = |f: fn(&mut SessionListQuery)| {
        let mut q = SessionListQuery { limit: 10, ..Default::default() };
        f(&mut q);
        store.list_sessions(&q).unwrap().sessions.into_iter().map(|s| s.key).collect::<Vec<_>>()
    };
    assert_eq!(q(|q| q.agent_id = Some("research".into())), ["agent:research:openai:x"]);
    assert_eq!(q(|q| q.label = Some("lab".into())), ["agent:research:openai:x"]);
    assert_eq!(q(|q| q.search = Some("conv-".into())), ["agent:main:openai-user:conv-42"]);
    assert_eq!(q(|q| q.search = Some("say hel".into())), ["agent:research:openai:x"]);
    assert_eq!(q(|q| q.updated_since_ms = Some(1_600)), ["agent:main:openai-user:conv-42"]);
    assert_eq!(q(|q| q.only_agents = Some(vec!["main".into()])), ["agent:main:openai-user:conv-42"]);
    assert!(q(|q| q.match_nothing = true).is_empty());

    let h = store.history("agent:main:openai-user:conv-42", 3).unwrap();
    assert_eq!(h.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 7, 8]);
    assert_eq!(h[0].role, Role::Assistant);
    assert_eq!(h[1].tool_call_id.as_deref(), Some("call2"));
    assert_eq!(h[2].run_id.as_deref(), Some("run2"));
    let full = store.history("agent:main:openai-user:conv-42", 100).unwrap();
    assert_eq!(full.len(), 8);
    assert_eq!(full[0].content, json!("question 1 "));
    let upstream = to_openai_messages(&full, &Default::default());
    assert_eq!(upstream.len(), 8);
    assert_eq!(upstream[2], json!({"role": "tool", "tool_call_id": "call1", "content": "result 1 "}));
    let page = store.history_page("agent:main:openai-user:conv-42", 2, 4).unwrap();
    assert_eq!((page.total, page.entries.iter().map(|e| e.seq).collect::<Vec<_>>()), (8, vec![3, 4]));
    assert_eq!(store.history_page("nope", 10, 0).unwrap().total, 0);

    // The chat.history payload over real rows.
    let agents = clawgate_core::openai::Agents { ids: vec!["main".into(), "research".into()], default: None };
    let hq = parse_chat_history_params(Some(&json!({"sessionKey": "agent:main:openai-user:conv-42", "limit": 2})), &agents).unwrap();
    let page = store.history_page(&hq.session_key, hq.limit, hq.offset).unwrap();
    let session = store.get_session(&hq.session_key).unwrap();
    let payload = chat_history_payload(&hq, session.as_ref(), &page, &Default::default());
    assert_eq!(payload["messages"].as_array().unwrap().len(), 2);
    assert_eq!(payload["hasMore"], true);
    assert_eq!(payload["sessionId"], "sid-agent:main:openai-user:conv-42");

    // Responses, and delete.
    let r = StoredResponse {
        id: "resp_1".into(),
        session_key: "agent:main:openai-user:conv-42".into(),
        agent_id: "main".into(),
        owner: Some("tok".into()),
        session_key_header: None,
        created_ms: 2_000,
        body: json!({"id": "resp_1", "object": "response", "status": "completed"}),
    };
    store.put_response(&r).unwrap();
    assert_eq!(store.get_response("resp_1").unwrap().as_ref(), Some(&r));
    assert_eq!(store.get_response("resp_2").unwrap(), None);
    let none = Expect::default();
    let key = "agent:main:openai-user:conv-42";
    let not_archived = Expect { archived: true, ..Expect::default() };
    assert_eq!(store.delete_session(key, &not_archived).unwrap(), Guarded::Refused(Refusal::NotArchived));
    let other = Expect { session_id: Some("another-id".into()), ..Expect::default() };
    assert_eq!(store.delete_session(key, &other).unwrap(), Guarded::Refused(Refusal::Changed));
    assert!(store.get_session(key).unwrap().is_some(), "a refused delete leaves the session");
    assert_eq!(store.delete_session(key, &none).unwrap(), Guarded::Done(()));
    assert_eq!(store.delete_session(key, &none).unwrap(), Guarded::Missing);
    assert_eq!(store.get_response("resp_1").unwrap(), None, "a session's responses go with it");
    assert!(store.history("agent:main:openai-user:conv-42", 10).unwrap().is_empty());
    drop(store);

    // Reopen: the good database is kept as is.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.list_sessions(&SessionListQuery { limit: 10, ..Default::default() }).unwrap().total_count, 1);
    assert_eq!(store.prune(1_600).unwrap().sessions, 1);
    assert!(aside_files(path.parent().unwrap()).is_empty());
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("modes");
    let path = tmp.db();
    let store = Store::open(&path).unwrap();
    store.append_turn(&meta("k", 1), &turn(1, 0)).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    assert!(wal.exists(), "WAL mode");
    assert_eq!(mode(&wal), 0o600);
}

#[test]
fn a_turn_is_all_or_nothing() {
    let tmp = TempDir::new("atomic");
    let path = tmp.db();
    let store = Store::open(&path).unwrap();
    store.append_turn(&meta("k", 1), &turn(1, 0)).unwrap();
    // Make every tool message fail to insert, half-way through a turn.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER fail_tool BEFORE INSERT ON messages WHEN NEW.role = 'tool' BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
    }
    let response = StoredResponse {
        id: "resp_x".into(),
        session_key: "k".into(),
        agent_id: "main".into(),
        owner: None,
        session_key_header: None,
        created_ms: 2,
        body: json!({}),
    };
    let err = store.append_turn_with_response(&meta("k", 2), &turn(2, 0), Some(&response)).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err}");
    let s = store.get_session("k").unwrap().unwrap();
    assert_eq!((s.message_count, s.updated_ms, s.input_tokens), (4, 1, 11), "the session row is unchanged");
    assert_eq!(store.history("k", 100).unwrap().len(), 4, "no message of the failed turn");
    assert_eq!(store.get_response("resp_x").unwrap(), None, "nor its response");
    // A new session whose first turn fails does not exist at all.
    assert!(store.append_turn(&meta("new", 3), &turn(3, 0)).is_err());
    assert_eq!(store.get_session("new").unwrap(), None);
    // The store goes on working.
    let ok = store.append_turn(&meta("k", 4), &[TranscriptEntry::user("more", 4)]).unwrap();
    assert_eq!((ok.first_seq, ok.message_count), (5, 5));
}

/// Turns queued together are committed as one batch; one that fails (a tool message refused by
/// an injected trigger) is rolled back alone and every other turn of its batch is kept whole.
#[test]
fn a_failing_turn_in_a_batch_leaves_the_others_whole() {
    let tmp = TempDir::new("batch");
    let path = tmp.db();
    let store = Store::open(&path).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER fail_tool BEFORE INSERT ON messages WHEN NEW.role = 'tool' BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    // Queued without waiting, so the committer finds most of them together.
    for i in 0..60u64 {
        let entries =
            if i % 7 == 3 { turn(i, 0) } else { vec![TranscriptEntry::user(format!("q{i}"), i), TranscriptEntry::assistant("a", None, i)] };
        let tx = tx.clone();
        store.submit_turn(meta(&format!("b{i}"), i), entries, None, Box::new(move |r| tx.send((i, r.is_ok())).unwrap()));
    }
    drop(tx);
    let mut results: Vec<(u64, bool)> = rx.iter().collect();
    results.sort();
    assert_eq!(results.len(), 60, "every turn got its result");
    for (i, ok) in results {
        assert_eq!(ok, i % 7 != 3, "turn {i}");
        let row = store.get_session(&format!("b{i}")).unwrap();
        if ok {
            assert_eq!(row.map(|r| r.message_count), Some(2), "turn {i} kept whole");
            assert_eq!(store.history(&format!("b{i}"), 10).unwrap().len(), 2);
        } else {
            assert_eq!(row, None, "turn {i} left nothing");
        }
    }
}

/// Messages per crash-test turn, and how many turns to see committed before the kill.
const CRASH_TURN: usize = 4;
const CRASH_COMMITS_BEFORE_KILL: u64 = 40;
const CRASH_ENV: &str = "CLAWGATE_STORE_CRASH_DB";

/// The child half of `committed_turns_survive_sigkill`: appends turns until killed (or a bound
/// is reached), printing each committed turn. Does nothing in a normal test run.
#[test]
fn crash_writer_child() {
    let Ok(path) = std::env::var(CRASH_ENV) else { return };
    let store = Store::open(&path).unwrap();
    let started = Instant::now();
    for i in 0..100_000u64 {
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
        let key = format!("agent:main:crash:{}", i % 3);
        // Big messages: a turn spans several pages, so a kill can land mid-write.
        store.append_turn(&meta(&key, i), &turn(i, 6_000)).unwrap();
        println!("committed {i}");
    }
}

#[test]
fn committed_turns_survive_sigkill() {
    // The kill lands at a different point of the writer's loop each round.
    for delay_ms in [0, 3, 11, 25] {
        crash_round(delay_ms);
    }
}

fn crash_round(delay_ms: u64) {
    let tmp = TempDir::new("crash");
    let path = tmp.db();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["crash_writer_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CRASH_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Keep draining the child's stdout until it dies: a closed pipe would kill it (EPIPE) before
    // our SIGKILL does.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let drain = std::thread::spawn(move || {
        let mut last = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("committed ").and_then(|n| n.trim().parse::<u64>().ok()) {
                last = Some(n);
                let _ = tx.send(n);
            }
        }
        last
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(n) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if n + 1 >= CRASH_COMMITS_BEFORE_KILL {
            break;
        }
    }
    // SIGKILL while the child is still writing.
    std::thread::sleep(Duration::from_millis(delay_ms));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the writer was killed");
    let last_reported = drain.join().unwrap();
    let last_reported = last_reported.expect("the child committed turns");

    let store = Store::open(&path).unwrap();
    assert!(aside_files(path.parent().unwrap()).is_empty(), "a killed writer leaves a good database");
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mut seen = Vec::new();
    for s in store.list_sessions(&SessionListQuery { limit: 10, ..Default::default() }).unwrap().sessions {
        let rows: i64 = raw.query_row("SELECT COUNT(*) FROM messages WHERE session_key = ?1", [&s.key], |r| r.get(0)).unwrap();
        assert_eq!(rows as u64, s.message_count, "{}: the counters match the rows", s.key);
        assert_eq!(s.message_count as usize % CRASH_TURN, 0, "{}: no torn turn", s.key);
        let h = store.history(&s.key, usize::MAX / 2).unwrap();
        assert_eq!(h.len() as u64, s.message_count);
        for (n, chunk) in h.chunks(CRASH_TURN).enumerate() {
            let i = chunk[0].ts_ms;
            assert_eq!(chunk[0].seq, (n * CRASH_TURN) as u64 + 1);
            assert!(chunk.iter().all(|e| e.ts_ms == i), "{}: a turn's messages belong together", s.key);
            assert_eq!(chunk.iter().map(|e| e.role).collect::<Vec<_>>(), [Role::User, Role::Assistant, Role::Tool, Role::Assistant]);
            assert_eq!(chunk[3].content, json!(format!("answer {i}")));
            seen.push(i);
        }
    }
    seen.sort_unstable();
    eprintln!("crash round ({delay_ms} ms): {} turns reported committed, {} found after SIGKILL", last_reported + 1, seen.len());
    // Every reported commit is there; at most one more (committed, not yet printed).
    let expected: Vec<u64> = (0..seen.len() as u64).collect();
    assert_eq!(seen, expected, "turns are contiguous from 0");
    assert!(seen.len() as u64 > last_reported, "all {} reported turns survived (found {})", last_reported + 1, seen.len());
    assert!(seen.len() as u64 <= last_reported + 2, "at most one unreported turn");
    // The reopened store takes new turns.
    store.append_turn(&meta("agent:main:crash:0", 1), &turn(1_000_000, 0)).unwrap();
}

#[test]
fn garbage_file_is_moved_aside() {
    let tmp = TempDir::new("garbage");
    let path = tmp.db();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let garbage = b"this is not a database, just some bytes\n".repeat(200);
    fs::write(&path, &garbage).unwrap();
    let store = Store::open(&path).unwrap();
    store.append_turn(&meta("k", 1), &turn(1, 0)).unwrap();
    let aside = aside_files(path.parent().unwrap());
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read(&aside[0]).unwrap(), garbage, "the bad file is kept, untouched");
    // A tiny non-database file too.
    drop(store);
    fs::write(&path, b"hello").unwrap();
    let _ = fs::remove_file(format!("{}-wal", path.display()));
    let _ = fs::remove_file(format!("{}-shm", path.display()));
    let store = Store::open(&path).unwrap();
    assert!(store.get_session("k").unwrap().is_none());
    assert_eq!(aside_files(path.parent().unwrap()).len(), 2);
}

#[test]
fn corrupt_pages_are_moved_aside() {
    let tmp = TempDir::new("corrupt");
    let path = tmp.db();
    {
        let store = Store::open(&path).unwrap();
        for i in 0..30 {
            store.append_turn(&meta(&format!("k{i}"), i), &turn(i, 2_000)).unwrap();
        }
        store.checkpoint().unwrap();
    }
    // Scribble over the pages after the first (the header page stays valid).
    let mut bytes = fs::read(&path).unwrap();
    assert!(bytes.len() > 16 * 4096, "{}", bytes.len());
    for b in &mut bytes[4096 * 2..4096 * 12] {
        *b = 0xA5;
    }
    fs::write(&path, &bytes).unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(aside_files(path.parent().unwrap()).len(), 1, "the damaged copy is kept, nothing beside it");
    // Every readable row came back (issue 11): ten scribbled pages lose only their rows.
    let r = store.recovery().expect("a recovery was reported");
    let listed = store.list_sessions(&SessionListQuery { limit: 100, ..Default::default() }).unwrap().total_count;
    assert_eq!(listed as u64, r.salvaged.sessions);
    assert!(listed > 0 && listed <= 30, "{listed} of 30 sessions salvaged");
    let mut messages = 0;
    for i in 0..30 {
        if let Some(s) = store.get_session(&format!("k{i}")).unwrap() {
            messages += s.message_count;
        }
    }
    assert_eq!(messages, r.salvaged.messages, "session counters recomputed from what came back");
}

/// One bad page in a store of 300 sessions: almost everything is back (it was 1 of 300 when the
/// whole file was set aside).
#[test]
fn one_bad_page_loses_only_its_rows() {
    let tmp = TempDir::new("one-page");
    let path = tmp.db();
    {
        let store = Store::open(&path).unwrap();
        for i in 0..300 {
            store.append_turn(&meta(&format!("k{i}"), i), &turn(i, 200)).unwrap();
        }
        let jobs: Vec<CronWrite> =
            (0..20).map(|i| CronWrite::Job { id: format!("job-{i}"), body: format!("{{\"id\":\"job-{i}\"}}"), updated_ms: 1 }).collect();
        store.cron_write(&jobs).unwrap();
        store.checkpoint().unwrap();
    }
    let mut bytes = fs::read(&path).unwrap();
    let pages = bytes.len() / 4096;
    // A page of messages in the middle (the cron rows were written last, in the last pages).
    let victim = pages / 2;
    for b in &mut bytes[4096 * victim..4096 * (victim + 1)] {
        *b = 0x5A;
    }
    fs::write(&path, &bytes).unwrap();
    let store = Store::open(&path).unwrap();
    let r = store.recovery().expect("the damage was found");
    assert!(r.reason.contains("integrity"), "{}", r.reason);
    let listed = store.list_sessions(&SessionListQuery { limit: 1000, ..Default::default() }).unwrap().total_count;
    assert!(listed >= 280, "only {listed} of 300 sessions salvaged after one bad page ({:?})", r.salvaged);
    assert!(r.salvaged.messages >= 500, "{:?}", r.salvaged);
    assert_eq!(r.salvaged.cron_jobs, 20, "cron jobs come back too: {:?}", r.salvaged);
    assert_eq!(store.cron_jobs().unwrap().len(), 20);
}

/// A v3 store (before the message-time index) migrates to the current schema with its rows,
/// and the usage rows read back by time window.
#[test]
fn a_v3_store_migrates_and_usage_rows_read_by_time() {
    let tmp = TempDir::new("migrate-v4");
    let path = tmp.db();
    {
        let store = Store::open(&path).unwrap();
        let mut entries = turn(1_000, 0);
        entries[3].meta = Some(json!({"provider": "fake", "model": "m", "usage": {"input": 7, "output": 2, "totalTokens": 9}}));
        store.append_turn(&meta("old", 1_000), &entries).unwrap();
        store.append_turn(&meta("later", 5_000), &turn(5_000, 0)).unwrap();
    }
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        // Back to the v3 schema: no message-time index (v4), no session settings (v5), no cron
        // tables (v6).
        c.execute_batch(
            "DROP INDEX messages_by_ts; ALTER TABLE sessions DROP COLUMN settings; DROP TABLE cron_runs; DROP TABLE cron_jobs;",
        )
        .unwrap();
        c.pragma_update(None, "user_version", 3).unwrap();
    }
    let store = Store::open(&path).unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let idx: i64 = c.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_by_ts'", [], |r| r.get(0)).unwrap();
        assert_eq!(idx, 1, "the migration adds the index");
    }
    assert_eq!(store.history("old", 10).unwrap().len(), 4, "rows survive the migration");
    let rows = store.usage_rows_between(0, 2_000, 100).unwrap();
    assert_eq!(rows.len(), 4, "only the first turn is in the window");
    assert!(rows.iter().all(|r| r.session_key == "old" && r.agent_id == "main"));
    assert_eq!(rows[1].tool_calls, 1, "the tool-calling reply counts its call");
    assert_eq!(rows[3].meta.as_ref().unwrap()["usage"]["totalTokens"], 9);
    let newest = store.usage_rows_between(0, u64::MAX / 2, 2).unwrap();
    assert!(newest.iter().all(|r| r.session_key == "later"), "a limit keeps the newest rows");
    // v5: session settings are kept, patched and survive a reset.
    let (s, created) = store.create_session(&meta("fresh", 9_000), &json!({"createdVia": "operator"})).unwrap();
    assert!(created && s.message_count == 0);
    let (again, created) = store.create_session(&meta("fresh", 9_500), &json!({})).unwrap();
    assert!(!created && again.session_id == s.session_id, "an existing key is adopted");
    let any = Expect::default();
    let patched = store.patch_session("fresh", &any, Some(Some("label")), &json!({"modelOverride": "fake/m", "createdVia": null}), 9_600);
    let Guarded::Done(p) = patched.unwrap() else { panic!("patch of an existing session") };
    assert_eq!(p.settings, Some(json!({"modelOverride": "fake/m"})));
    assert_eq!(p.label.as_deref(), Some("label"));
    let r = store.reset_session("old", "sid-new", &json!({"compactionCount": 0}), 9_700).unwrap().unwrap();
    assert_eq!((r.session_id.as_str(), r.message_count, r.input_tokens), ("sid-new", 0, 0));
    assert!(store.history("old", 10).unwrap().is_empty(), "a reset empties the conversation");
    assert_eq!(store.patch_session("nope", &any, None, &json!({}), 1).unwrap(), Guarded::Missing);
    // v6: cron jobs and their run history, written together; the history is capped per job and
    // goes with its job.
    let mut writes = vec![CronWrite::Job { id: "j1".into(), body: r#"{"id":"j1"}"#.into(), updated_ms: 1 }];
    for n in 0..(CRON_RUNS_PER_JOB + 5) {
        let status = if n % 2 == 0 { "ok" } else { "error" };
        let body = json!({"n": n, "status": status, "summary": format!("run {n}")}).to_string();
        writes.push(CronWrite::Run { job_id: "j1".into(), ts_ms: n as u64, status: status.into(), body });
    }
    store.cron_write(&writes).unwrap();
    assert_eq!(store.cron_jobs().unwrap(), [("j1".to_string(), r#"{"id":"j1"}"#.to_string())]);
    let q = |statuses: Vec<String>, query: Option<&str>| clawgate_core::methods::cron::RunsQuery {
        job_id: Some("j1".into()),
        statuses,
        query: query.map(str::to_string),
        limit: 3,
        ..Default::default()
    };
    let (page, total) = store.cron_runs(&q(vec![], None)).unwrap();
    assert_eq!(total, CRON_RUNS_PER_JOB as usize, "capped");
    assert!(page[0].contains(&format!("\"n\":{}", CRON_RUNS_PER_JOB + 4)), "newest first: {page:?}");
    let (_, errors) = store.cron_runs(&q(vec!["error".into()], None)).unwrap();
    assert_eq!(errors, CRON_RUNS_PER_JOB as usize / 2);
    let mut one = q(vec![], None);
    one.run_id = Some("r-42".into());
    store.cron_write(&[CronWrite::Run { job_id: "j1".into(), ts_ms: 1, status: "ok".into(), body: r#"{"runId":"r-42"}"#.into() }]).unwrap();
    assert_eq!(store.cron_runs(&one).unwrap(), (vec![r#"{"runId":"r-42"}"#.to_string()], 1), "by run id");
    let (found, n) = store.cron_runs(&q(vec![], Some("run 7"))).unwrap();
    assert!(n >= 1 && found.iter().all(|b| b.contains("run 7")), "{found:?}");
    store.cron_write(&[CronWrite::Retire("j1".into())]).unwrap();
    assert!(store.cron_jobs().unwrap().is_empty());
    assert!(store.cron_runs(&q(vec![], None)).unwrap().1 > 0, "a retired job's history stays");
    store.cron_write(&[CronWrite::Job { id: "j1".into(), body: "{}".into(), updated_ms: 2 }, CronWrite::Delete("j1".into())]).unwrap();
    assert!(store.cron_jobs().unwrap().is_empty());
    assert_eq!(store.cron_runs(&q(vec![], None)).unwrap().1, 0);
    // Preconditions are checked in the write's own transaction; a refused patch changes nothing.
    let stale = Expect { session_id: Some(s.session_id.clone()), ..Expect::default() };
    assert_eq!(store.patch_session("old", &stale, None, &json!({"x": 1}), 9_800).unwrap(), Guarded::Refused(Refusal::Changed));
    assert_eq!(store.get_session("old").unwrap().unwrap().settings.unwrap().get("x"), None);
    let current = Expect { session_id: Some("sid-new".into()), ..Expect::default() };
    assert!(matches!(store.patch_session("old", &current, None, &json!({"archivedAt": 9_900}), 9_900).unwrap(), Guarded::Done(_)));
    // Archived sessions are listed only when asked for.
    let listed = |archived| {
        let q = SessionListQuery { limit: 100, archived, ..SessionListQuery::default() };
        store.list_sessions(&q).unwrap().sessions.into_iter().map(|s| s.key).collect::<Vec<_>>()
    };
    assert!(!listed(ArchivedFilter::Exclude).contains(&"old".to_string()));
    assert_eq!(listed(ArchivedFilter::Only), ["old"]);
    assert!(listed(ArchivedFilter::All).contains(&"old".to_string()) && listed(ArchivedFilter::All).len() > 1);
}

#[test]
fn foreign_and_newer_databases() {
    // Another application's SQLite database: moved aside, never written to.
    let tmp = TempDir::new("foreign");
    let path = tmp.db();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE sessions (x TEXT); INSERT INTO sessions VALUES ('theirs');").unwrap();
    }
    let store = Store::open(&path).unwrap();
    store.append_turn(&meta("k", 1), &turn(1, 0)).unwrap();
    let aside = aside_files(path.parent().unwrap());
    assert_eq!(aside.len(), 1);
    let c = rusqlite::Connection::open(&aside[0]).unwrap();
    let x: String = c.query_row("SELECT x FROM sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(x, "theirs");
    drop(store);

    // A store from a newer clawgate: an error, and the file is left alone.
    let tmp = TempDir::new("newer");
    let path = tmp.db();
    drop(Store::open(&path).unwrap());
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let app: i64 = c.query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
        assert_eq!(app, APPLICATION_ID);
    }
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found, .. } if found == SCHEMA_VERSION + 1), "{err}");
    assert!(aside_files(path.parent().unwrap()).is_empty());
}

#[test]
fn concurrent_readers_and_writers() {
    let tmp = TempDir::new("threads");
    let store = std::sync::Arc::new(Store::open(tmp.db()).unwrap());
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    store.append_turn(&meta(&format!("t{t}"), i), &turn(i, 10)).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            for _ in 0..50 {
                for s in store.list_sessions(&SessionListQuery { limit: 10, ..Default::default() }).unwrap().sessions {
                    assert_eq!(s.message_count as usize % 4, 0);
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    for t in 0..4 {
        assert_eq!(store.history(&format!("t{t}"), 1000).unwrap().len(), 40);
    }
}
