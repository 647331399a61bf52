//! Turn appends and their group commit (issue 17). One committer thread per store owns the turn
//! queue: it takes every turn queued while it was busy, writes them in one transaction (one
//! fsync; savepoints only to isolate a turn that fails, [`commit_batch`]), and hands each turn
//! its result only after the batch's commit returned (a turn is acknowledged only when it is
//! durable). Callers never hold a thread
//! while they wait ([`Store::submit_turn`]); the WAL is checkpointed by the same thread once the
//! queue is empty, off every turn's path.

use std::sync::mpsc;

use super::*;

/// What one turn append writes.
pub(super) struct TurnWrite {
    session: SessionMeta,
    entries: Vec<TranscriptEntry>,
    response: Option<StoredResponse>,
}

/// Where a turn's result goes once its batch committed (or failed). It runs on the committer
/// thread: it must only hand the result on (a channel send), never block or own the store.
pub type TurnReply = Box<dyn FnOnce(Result<AppendOutcome, StoreError>) + Send>;

/// A turn waiting for the committer.
pub(super) struct QueuedTurn {
    turn: TurnWrite,
    reply: TurnReply,
}

/// At most this many turns in one transaction: a batch's commit stays short enough that an
/// operator's write waiting for the writer is not held up for long.
const MAX_BATCH: usize = 256;
/// Checkpoint the WAL (copy its pages into the database file) after this many batches, when the
/// queue is empty ...
const CHECKPOINT_AFTER_BATCHES: u32 = 64;
/// ... or after this many even under load without a pause. SQLite's own auto-checkpoint (run
/// inside whichever commit crosses its threshold) stays on as the backstop for the writes that
/// do not come through the committer ([`WAL_AUTOCHECKPOINT_PAGES`]).
const CHECKPOINT_FORCED_AFTER_BATCHES: u32 = 1024;
/// The writer connection's `wal_autocheckpoint` (pages): well above what the committer lets
/// accumulate, so under turn traffic no commit runs a checkpoint inline.
pub(super) const WAL_AUTOCHECKPOINT_PAGES: i64 = 16_384;

/// The committer thread's handle, kept by the store: dropping the store closes the queue and
/// joins the thread (it finishes the turns already queued first).
#[derive(Debug)]
pub(super) struct Committer {
    queue: Option<mpsc::Sender<QueuedTurn>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    pub(super) fn start(writer: Arc<FairMutex<Connection>>) -> Result<Committer, StoreError> {
        let (tx, rx) = mpsc::channel::<QueuedTurn>();
        let thread = std::thread::Builder::new()
            .name("clawgate-store-commit".into())
            .spawn(move || commit_loop(&writer, &rx))
            .map_err(|e| StoreError::Invalid(format!("cannot start the session store's committer: {e}")))?;
        Ok(Committer { queue: Some(tx), thread: Some(thread) })
    }

    fn submit(&self, q: QueuedTurn) {
        let refused = match &self.queue {
            Some(tx) => tx.send(q).err().map(|e| e.0),
            None => Some(q),
        };
        if let Some(q) = refused {
            (q.reply)(Err(StoreError::Invalid("the session store is closing".into())));
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for QueuedTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueuedTurn")
    }
}

fn commit_loop(writer: &FairMutex<Connection>, rx: &mpsc::Receiver<QueuedTurn>) {
    let mut since_checkpoint = 0u32;
    let mut next = None;
    loop {
        // Block only when there is nothing to do: an idle store costs no wake-ups.
        let first = match next.take() {
            Some(q) => q,
            None => match rx.recv() {
                Ok(q) => q,
                Err(_) => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let (turns, replies): (Vec<TurnWrite>, Vec<TurnReply>) = batch.into_iter().map(|q| (q.turn, q.reply)).unzip();
        let results = commit_batch(&mut lock(writer), &turns);
        for (reply, result) in replies.into_iter().zip(results) {
            reply(result);
        }
        since_checkpoint += 1;
        if since_checkpoint < CHECKPOINT_AFTER_BATCHES {
            continue;
        }
        next = rx.try_recv().ok();
        if next.is_none() || since_checkpoint >= CHECKPOINT_FORCED_AFTER_BATCHES {
            // PASSIVE: copies what no reader still needs, never waits for readers or writers.
            let conn = lock(writer);
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!("session store checkpoint failed (retried after the next batches): {e}");
            }
            since_checkpoint = 0;
        }
    }
}

/// Write `turns` in one transaction; every result is an error if the commit failed. First all
/// of them plainly; if one of them fails, that transaction is rolled back and the batch written
/// again with each turn in its own savepoint, so the failing turn leaves the others whole.
/// (Savepoints on every batch cost a sub-journal copy of each page a turn touches: ~6 % of the
/// gateway's CPU under relay load, for a case that is rare.)
fn commit_batch(conn: &mut Connection, turns: &[TurnWrite]) -> Vec<Result<AppendOutcome, StoreError>> {
    let failed = match write_batch(conn, turns, false) {
        Ok(results) => return results,
        // A lone turn's own error is its result; nothing to isolate.
        Err(e) if turns.len() == 1 => return vec![Err(e)],
        Err(e) => e,
    };
    tracing::debug!("a batch of {} turns failed ({failed}); writing it again turn by turn", turns.len());
    write_batch(conn, turns, true).unwrap_or_else(|e| {
        let why = e.to_string();
        turns.iter().map(|_| Err(StoreError::Invalid(format!("the batch's commit failed: {why}")))).collect()
    })
}

/// `turns` in one transaction. Plainly (`isolate` false) the first turn that fails rolls the
/// whole transaction back (`Err`); with `isolate` each turn is written in its own savepoint, so
/// a failing turn's result is its error and the others commit.
fn write_batch(conn: &mut Connection, turns: &[TurnWrite], isolate: bool) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(turns.len());
    for turn in turns {
        let result = if isolate {
            let sp = tx.savepoint()?;
            let r = append_in(&sp, &turn.session, &turn.entries, turn.response.as_ref());
            if r.is_ok() {
                sp.commit()?;
            }
            r
        } else {
            Ok(append_in(&tx, &turn.session, &turn.entries, turn.response.as_ref())?)
        };
        results.push(result);
    }
    tx.commit()?;
    Ok(results)
}

impl Store {
    /// Append one turn to `session` (created on first use) in ONE transaction: the session row
    /// (timestamps, counters, usage, model, status, title) and every entry, or nothing. Entries
    /// are numbered after the session's last message; their `seq` on input is ignored. Blocks
    /// until the turn is durable.
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
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit_turn(
            session.clone(),
            entries.to_vec(),
            response.cloned(),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or_else(|_| Err(StoreError::Invalid("the session store's committer stopped".into())))
    }

    /// Queue one turn for the committer without waiting: `reply` gets its result once the batch
    /// it joined is durable (or failed). For callers on an async runtime, which must not block.
    pub fn submit_turn(&self, session: SessionMeta, entries: Vec<TranscriptEntry>, response: Option<StoredResponse>, reply: TurnReply) {
        if session.key.is_empty() {
            return reply(Err(StoreError::Invalid("empty session key".into())));
        }
        self.committer.submit(QueuedTurn { turn: TurnWrite { session, entries, response }, reply });
    }
}

/// Write one turn (the session row and its messages, the response) inside the caller's
/// transaction.
pub(super) fn append_in(
    tx: &Connection,
    session: &SessionMeta,
    entries: &[TranscriptEntry],
    response: Option<&StoredResponse>,
) -> Result<AppendOutcome, StoreError> {
    let existing: Option<(i64, i64)> = tx
        .prepare_cached("SELECT last_seq, message_count FROM sessions WHERE key = ?1")?
        .query_row([&session.key], |r| Ok((r.get(0)?, r.get(1)?)))
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
pub(super) fn insert_message(conn: &Connection, key: &str, seq: i64, e: &TranscriptEntry) -> Result<(), StoreError> {
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
