//! `clawgate cron …` (issue 14 item 5): each subcommand as the `cron.*` request it sends, with
//! the reference CLI's flag meanings where they exist (`--every`, `--cron`, `--tz`, `--at`,
//! `--message`, `--system-event`, `--session`, …) and clawgate's two job fields (`--overlap`,
//! `--stale-after`).

use serde_json::{Map, Value, json};

use crate::cli::{ClientArgs, CronCommand, CronJobArgs, CronScheduleArgs};
use crate::config::api::parse_duration_ms;

fn duration(flag: &str, text: &str) -> Result<u64, String> {
    parse_duration_ms(text).filter(|ms| *ms > 0).ok_or_else(|| format!("{flag}: not a duration: {text} (like 30s, 5m, 1h, 1d)"))
}

/// The `schedule` object of `--every`/`--cron`/`--at` (`None`: none given). `now_ms` turns a
/// relative `--at 20m` into a time.
pub fn schedule(a: &CronScheduleArgs, now_ms: u64) -> Result<Option<Value>, String> {
    if let Some(e) = &a.every {
        if a.tz.is_some() {
            return Err("--tz goes with --cron (or an offset-less --at), not --every".into());
        }
        return Ok(Some(json!({"kind": "every", "everyMs": duration("--every", e)?})));
    }
    if let Some(expr) = &a.cron {
        let mut s = json!({"kind": "cron", "expr": expr});
        if let Some(tz) = &a.tz {
            s["tz"] = json!(tz);
        }
        return Ok(Some(s));
    }
    if let Some(at) = &a.at {
        if a.tz.is_some() {
            return Err("--tz goes with --cron; give --at an offset (2026-12-24T09:00:00+01:00) instead".into());
        }
        let when = match parse_duration_ms(at) {
            Some(ms) if !at.contains(['-', ':', 'T']) => super::schedule::iso_utc(now_ms.saturating_add(ms)),
            _ => json!(at.trim()),
        };
        return Ok(Some(json!({"kind": "at", "at": when})));
    }
    Ok(None)
}

/// The described fields `args` set (for `cron.add`, or a `cron.update` patch).
fn fields(a: &CronJobArgs, now_ms: u64, adding: bool) -> Result<Map<String, Value>, String> {
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.to_string(), v);
        }
    };
    put("name", a.name.clone().map(Value::from));
    put("description", a.description.clone().map(Value::from));
    put("agentId", a.agent.clone().map(Value::from));
    put("schedule", schedule(&a.schedule, now_ms)?);
    let target = match (&a.session, &a.system_event) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(_)) => Some("main".to_string()),
        (None, None) if a.message.is_some() || adding => Some("isolated".to_string()),
        (None, None) => None,
    };
    put("sessionTarget", target.clone().map(Value::from));
    if let Some(text) = &a.system_event {
        put("payload", Some(json!({"kind": "systemEvent", "text": text})));
    } else if let Some(message) = &a.message {
        let mut p = json!({"kind": "agentTurn", "message": message});
        if let Some(m) = &a.model {
            p["model"] = json!(m);
        }
        if let Some(t) = a.timeout_seconds {
            p["timeoutSeconds"] = json!(t);
        }
        put("payload", Some(p));
    } else if a.model.is_some() || a.timeout_seconds.is_some() {
        return Err("--model and --timeout-seconds go with --message".into());
    }
    if let Some(ov) = &a.overlap {
        if !matches!(ov.as_str(), "skip" | "queue") {
            return Err(format!("--overlap: skip or queue (got {ov})"));
        }
        put("overlap", Some(json!(ov)));
    }
    if let Some(s) = &a.stale_after {
        put("staleAfterMs", Some(json!(duration("--stale-after", s)?)));
    }
    Ok(o)
}

/// The method and params a `clawgate cron` subcommand sends, and its client flags.
pub fn request(c: &CronCommand, now_ms: u64) -> Result<(&'static str, Value, &ClientArgs), String> {
    Ok(match c {
        CronCommand::Status(client) => ("cron.status", json!({}), client),
        CronCommand::List { all, client } => ("cron.list", json!({"includeDisabled": all, "limit": 200}), client),
        CronCommand::Add { job, disabled, delete_after_run, client } => {
            let mut o = fields(job, now_ms, true)?;
            if !o.contains_key("name") {
                return Err("--name is required".into());
            }
            if !o.contains_key("schedule") {
                return Err("one of --every, --cron or --at is required".into());
            }
            if !o.contains_key("payload") {
                return Err("one of --message or --system-event is required".into());
            }
            o.insert("enabled".into(), json!(!disabled));
            if *delete_after_run {
                o.insert("deleteAfterRun".into(), json!(true));
            }
            o.insert("wakeMode".into(), json!("now"));
            ("cron.add", Value::Object(o), client)
        }
        CronCommand::Edit { id, job, client } => {
            let patch = fields(job, now_ms, false)?;
            if patch.is_empty() {
                return Err("nothing to change: give at least one flag".into());
            }
            ("cron.update", json!({"id": id, "patch": patch}), client)
        }
        CronCommand::Rm { id, client } => ("cron.remove", json!({"id": id}), client),
        CronCommand::Run { id, due, client } => ("cron.run", json!({"id": id, "mode": if *due { "due" } else { "force" }}), client),
        CronCommand::Runs { id, limit, client } => {
            let mut p = json!({"limit": (*limit).clamp(1, 200)});
            match id {
                Some(id) => p["id"] = json!(id),
                None => p["scope"] = json!("all"),
            }
            ("cron.runs", p, client)
        }
        CronCommand::Enable { id, client } => ("cron.update", json!({"id": id, "patch": {"enabled": true}}), client),
        CronCommand::Disable { id, client } => ("cron.update", json!({"id": id, "patch": {"enabled": false}}), client),
    })
}

/// `clawgate cron list` as a table.
pub fn list_table(v: &Value) -> String {
    let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        return "No cron jobs.".to_string();
    }
    let mut out = format!("{:<36}  {:<24}  {:<22}  {:<24}  {}\n", "ID", "NAME", "SCHEDULE", "NEXT RUN (UTC)", "LAST");
    for j in jobs {
        let s = &j["schedule"];
        let schedule = match s["kind"].as_str() {
            Some("every") => format!("every {} ms", s["everyMs"]),
            Some("cron") => {
                format!("cron {}{}", s["expr"].as_str().unwrap_or(""), s["tz"].as_str().map(|z| format!(" {z}")).unwrap_or_default())
            }
            Some("at") => format!("at {}", s["at"].as_str().unwrap_or("")),
            other => other.unwrap_or("?").to_string(),
        };
        let next = j["nextRunAtMs"].as_u64().map_or_else(
            || if j["enabled"] == false { "disabled".into() } else { "-".into() },
            |n| super::schedule::iso_utc(n).as_str().unwrap_or_default().to_string(),
        );
        let last = j["state"]["lastRunStatus"].as_str().unwrap_or("-");
        out.push_str(&format!(
            "{:<36}  {:<24}  {:<22}  {:<24}  {}\n",
            j["id"].as_str().unwrap_or(""),
            j["name"].as_str().unwrap_or(""),
            schedule,
            next,
            last
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn parse(args: &[&str]) -> CronCommand {
        let mut argv = vec!["clawgate", "cron"];
        argv.extend(args);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Cron(c) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subcommands_become_cron_requests() {
        let (m, p, _) = request(&parse(&["add", "--name", "n", "--every", "5m", "--message", "hi", "--overlap", "queue"]), 0).unwrap();
        assert_eq!(m, "cron.add");
        assert_eq!(
            p,
            json!({"name": "n", "schedule": {"kind": "every", "everyMs": 300_000}, "sessionTarget": "isolated",
                "payload": {"kind": "agentTurn", "message": "hi"}, "overlap": "queue", "enabled": true, "wakeMode": "now"})
        );
        let (_, p, _) =
            request(&parse(&["add", "--name", "e", "--cron", "0 9 * * 1", "--tz", "Europe/Paris", "--system-event", "ping"]), 0).unwrap();
        assert_eq!(p["schedule"], json!({"kind": "cron", "expr": "0 9 * * 1", "tz": "Europe/Paris"}));
        assert_eq!((p["sessionTarget"].clone(), p["payload"]["kind"].clone()), (json!("main"), json!("systemEvent")));
        let (_, p, _) = request(&parse(&["add", "--name", "o", "--at", "20m", "--message", "x"]), 1_796_637_600_000).unwrap();
        assert_eq!(p["schedule"]["at"], "2026-12-07T10:20:00.000Z");
        let (m, p, _) = request(&parse(&["edit", "abc", "--every", "1h", "--stale-after", "2h"]), 0).unwrap();
        assert_eq!(
            (m, p),
            (
                "cron.update",
                json!({"id": "abc", "patch": {"schedule": {"kind": "every", "everyMs": 3_600_000}, "staleAfterMs": 7_200_000}})
            )
        );
        assert_eq!(request(&parse(&["runs"]), 0).unwrap().1, json!({"limit": 50, "scope": "all"}));
        assert!(request(&parse(&["add", "--name", "n", "--message", "x"]), 0).unwrap_err().contains("--every"));
        assert!(request(&parse(&["edit", "abc"]), 0).unwrap_err().contains("nothing to change"));
        assert!(request(&parse(&["add", "--name", "n", "--every", "soon", "--message", "x"]), 0).unwrap_err().contains("not a duration"));
    }
}
