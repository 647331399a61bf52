//! Turn appends and their group commit: a turn queues itself; whoever holds the writer next
//! commits every queued turn in one transaction (one fsync), each in its own savepoint, and a
//! turn is acknowledged only after its batch's commit returned (issue 17).

use super::*;

/// One turn append queued for a group commit; its result is published only once the batch's
/// commit returned (so a turn is acknowledged only when it is durable).
pub(super) struct PendingAppend {
    turn: std::sync::Mutex<Option<TurnWrite>>,
    result: std::sync::Mutex<Option<Result<AppendOutcome, StoreError>>>,
}

impl std::fmt::Debug for PendingAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingAppend")
    }
}

/// What one turn append writes.
pub(super) struct TurnWrite {
    session: SessionMeta,
    entries: Vec<TranscriptEntry>,
    response: Option<StoredResponse>,
}

impl Store {
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
