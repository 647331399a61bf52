//! The cron scheduler's rows: jobs and their run history (schema v6).

use super::*;

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
