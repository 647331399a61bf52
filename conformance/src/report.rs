//! Reports: the table, the JSON array, and the comparison of several runs.

use serde_json::{Value, json};

use crate::model::{Check, CheckResult, Outcome};

pub fn result_of(check: &Check, outcome: Outcome, duration_ms: u64) -> CheckResult {
    CheckResult {
        id: check.id.to_string(),
        section: check.section.to_string(),
        title: check.title.to_string(),
        tags: check.tags.iter().map(|t| t.as_str().to_string()).collect(),
        reference_bug: check.reference_bug.map(str::to_string),
        outcome,
        duration_ms,
    }
}

fn one_line(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Marks shown next to the status: `ref-bug`, `pending`.
fn marks(r: &CheckResult) -> String {
    let mut m = Vec::new();
    if r.reference_bug.is_some() {
        m.push("ref-bug");
    }
    if crate::PENDING_FEATURES.contains(&r.id.as_str()) {
        m.push("pending");
    }
    m.join(",")
}

/// One line per check: id, section, status, marks, short reason; then a summary line.
pub fn table(title: &str, results: &[CheckResult], wide: bool) -> String {
    let reason_width = if wide { 400 } else { 110 };
    let mut out = String::new();
    out.push_str(&format!("== {title}\n"));
    out.push_str(&format!("{:<44} {:<30} {:<6} {:<12} {}\n", "CHECK", "SECTION", "STATUS", "NOTE", "REASON"));
    for r in results {
        let mut reason = r.outcome.reason().to_string();
        if let (Some(bug), Outcome::Fail(_)) = (&r.reference_bug, &r.outcome) {
            reason = format!("{reason} [reference bug: {bug}]");
        }
        out.push_str(&format!(
            "{:<44} {:<30} {:<6} {:<12} {}\n",
            r.id,
            one_line(&r.section, 30),
            r.outcome.status(),
            marks(r),
            one_line(&reason, reason_width)
        ));
    }
    let count = |s: &str| results.iter().filter(|r| r.outcome.status() == s).count();
    out.push_str(&format!("-- {} checks: {} pass, {} fail, {} skip\n", results.len(), count("PASS"), count("FAIL"), count("SKIP")));
    out
}

pub fn to_json(results: &[CheckResult]) -> Value {
    Value::Array(
        results
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "section": r.section,
                    "title": r.title,
                    "tags": r.tags,
                    "status": r.outcome.status().to_ascii_lowercase(),
                    "reason": r.outcome.reason(),
                    "reference_bug": r.reference_bug,
                    "pending_feature": crate::PENDING_FEATURES.contains(&r.id.as_str()),
                    "duration_ms": r.duration_ms,
                })
            })
            .collect(),
    )
}

/// Parse a `--json` report back.
pub fn from_json(v: &Value) -> Result<Vec<CheckResult>, String> {
    let arr = v.as_array().ok_or("report is not a JSON array")?;
    arr.iter()
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
            let reason = s("reason").unwrap_or_default();
            let outcome = match s("status").as_deref() {
                Some("pass") => Outcome::Pass((!reason.is_empty()).then_some(reason)),
                Some("fail") => Outcome::Fail(reason),
                Some("skip") => Outcome::Skip(reason),
                other => return Err(format!("bad status {other:?}")),
            };
            Ok(CheckResult {
                id: s("id").ok_or("missing id")?,
                section: s("section").unwrap_or_default(),
                title: s("title").unwrap_or_default(),
                tags: r
                    .get("tags")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default(),
                reference_bug: s("reference_bug"),
                outcome,
                duration_ms: r.get("duration_ms").and_then(Value::as_u64).unwrap_or(0),
            })
        })
        .collect()
}

/// Compare a reference run with two runs of ours (tokio, smol). Gate: ours must agree with each
/// other on every check, and neither may FAIL a check the reference passes. Checks marked
/// `reference_bug` are reported but never gate; with `allow_pending`, failures of checks listed
/// in [`crate::PENDING_FEATURES`] are reported but do not gate either.
/// Returns (report text, gate passed).
pub fn compare(reference: &[CheckResult], ours: &[(&str, &[CheckResult])], allow_pending: bool) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let find = |rs: &[CheckResult], id: &str| rs.iter().find(|r| r.id == id).cloned();
    let mut ids: Vec<String> = reference.iter().map(|r| r.id.clone()).collect();
    for (_, rs) in ours {
        for r in rs.iter() {
            if !ids.contains(&r.id) {
                ids.push(r.id.clone());
            }
        }
    }
    out.push_str(&format!("{:<44} {:<10}", "CHECK", "REFERENCE"));
    for (name, _) in ours {
        out.push_str(&format!(" {name:<10}"));
    }
    out.push_str(" VERDICT\n");
    for id in &ids {
        let r = find(reference, id);
        let rows: Vec<Option<CheckResult>> = ours.iter().map(|(_, rs)| find(rs, id)).collect();
        let ref_bug =
            r.as_ref().and_then(|x| x.reference_bug.clone()).or_else(|| rows.iter().flatten().find_map(|x| x.reference_bug.clone()));
        let pending = crate::PENDING_FEATURES.contains(&id.as_str());
        let st = |x: &Option<CheckResult>| x.as_ref().map(|x| x.outcome.status()).unwrap_or("-");
        let mut verdicts = Vec::new();
        // Ours must agree with each other.
        let statuses: Vec<&str> = rows.iter().map(st).collect();
        if statuses.windows(2).any(|w| w[0] != w[1]) {
            verdicts.push("MISMATCH between runtimes".to_string());
            ok = false;
        }
        // Ours must not fail what the reference passes.
        if st(&r) == "PASS" {
            for ((name, _), row) in ours.iter().zip(&rows) {
                if st(row) == "FAIL" {
                    if ref_bug.is_some() {
                        verdicts.push(format!("{name} fails (reference-bug check, not gating)"));
                    } else if pending && allow_pending {
                        verdicts.push(format!("{name} fails (pending feature, not gating)"));
                    } else {
                        verdicts.push(format!("REGRESSION: {name} fails what the reference passes"));
                        ok = false;
                    }
                }
            }
        }
        if st(&r) == "FAIL" {
            match &ref_bug {
                Some(_) => verdicts.push("reference bug".into()),
                None => verdicts.push("reference fails (unmarked)".into()),
            }
        }
        if ref_bug.is_some() && st(&r) == "PASS" {
            verdicts.push("note: marked reference_bug but the reference passes".into());
        }
        out.push_str(&format!("{id:<44} {:<10}", st(&r)));
        for s in &statuses {
            out.push_str(&format!(" {s:<10}"));
        }
        out.push_str(&format!(" {}\n", if verdicts.is_empty() { "ok".to_string() } else { verdicts.join("; ") }));
    }
    let unmarked = ids.iter().filter(|id| find(reference, id).is_some_and(|r| r.outcome.is_fail() && r.reference_bug.is_none())).count();
    if unmarked > 0 {
        out.push_str(&format!(
            "!! WARNING: the reference FAILS {unmarked} check(s) not marked as reference bugs: a new reference bug (mark it) or a broken reference run\n"
        ));
    }
    out.push_str(if ok { "== compare: OK\n" } else { "== compare: FAILED\n" });
    (out, ok)
}
