//! `clawgate-conformance`: run the suite against a gateway, in memory, or compare runs.
//!
//! ```text
//! clawgate-conformance --url ws://HOST:PORT [--token T | --password P] [--only PATTERN] [--skip-slow] [--json]
//! clawgate-conformance --in-memory [--only PATTERN] [--json]
//! clawgate-conformance --compare REF.json TOKIO.json SMOL.json [--allow-pending]
//! clawgate-conformance --list
//! ```
//! A run prints one line per check (or a JSON array with `--json`) and exits 0 iff no check
//! failed. `--compare` exits 0 iff the two runs of ours agree on every check and neither fails a
//! check the reference passes (checks marked as reference bugs never gate).

use std::process::ExitCode;
use std::time::Duration;

use clawgate_conformance::engine::{Env, Secret};
use clawgate_conformance::{InMemoryRunner, SocketRunner, checks, report};

const USAGE: &str = "usage:
  clawgate-conformance --url ws://HOST:PORT [--token T | --password P] [--only PATTERN[,PATTERN…]] [--skip-slow] [--json] [--json-out FILE] [--serial] [--wide]
  clawgate-conformance --in-memory [--only PATTERN] [--json] [--wide]
  clawgate-conformance --compare REF.json OURS1.json [OURS2.json…] [--names ref,tokio,smol] [--allow-pending]
  clawgate-conformance --list

  --token defaults to $OPENCLAW_GATEWAY_TOKEN; --only keeps checks whose id contains one of the patterns;
  --json prints the JSON array instead of the table; --json-out also writes it to FILE;
  --serial runs slow checks one after the other (default: side by side); --wide keeps long reasons;
  CONFORMANCE_TRACE=1 prints every received frame with its timing to stderr.
  Exit code: 0 iff no check FAILs (runs), or iff the comparison gate holds (--compare).";

struct Args {
    url: Option<String>,
    token: Option<String>,
    password: Option<String>,
    only: Vec<String>,
    skip_slow: bool,
    json: bool,
    json_out: Option<String>,
    in_memory: bool,
    compare: Vec<String>,
    names: Vec<String>,
    allow_pending: bool,
    list: bool,
    serial: bool,
    wide: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        url: None,
        token: None,
        password: None,
        only: vec![],
        skip_slow: false,
        json: false,
        json_out: None,
        in_memory: false,
        compare: vec![],
        names: vec![],
        allow_pending: false,
        list: false,
        serial: false,
        wide: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--url" => a.url = Some(value("--url")?),
            "--token" => a.token = Some(value("--token")?),
            "--password" => a.password = Some(value("--password")?),
            "--only" => a.only.extend(value("--only")?.split(',').filter(|s| !s.is_empty()).map(str::to_string)),
            "--skip-slow" => a.skip_slow = true,
            "--json" => a.json = true,
            "--json-out" => a.json_out = Some(value("--json-out")?),
            "--in-memory" => a.in_memory = true,
            "--names" => a.names = value("--names")?.split(',').map(str::to_string).collect(),
            "--allow-pending" => a.allow_pending = true,
            "--list" => a.list = true,
            "--serial" => a.serial = true,
            "--wide" => a.wide = true,
            "--compare" => {
                a.compare.push(value("--compare")?);
            }
            "-h" | "--help" => return Err(String::new()),
            other if !a.compare.is_empty() && !other.starts_with("--") => a.compare.push(other.to_string()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };

    if !args.compare.is_empty() {
        return compare(&args);
    }

    let mut suite = checks::all();
    if !args.only.is_empty() {
        suite.retain(|c| args.only.iter().any(|p| c.id.contains(p.as_str())));
    }
    if args.list {
        for c in &suite {
            let tags: Vec<&str> = c.tags.iter().map(|t| t.as_str()).collect();
            println!("{:<44} {:<30} [{}] {}", c.id, c.section, tags.join(","), c.title);
        }
        return ExitCode::SUCCESS;
    }

    let (title, results) = if args.in_memory {
        let mut runner = InMemoryRunner::new();
        runner.env.skip_slow = args.skip_slow;
        ("in-memory (clawgate-core, virtual time)".to_string(), runner.run_all(&suite))
    } else {
        let Some(url) = args.url.clone() else {
            eprintln!("error: --url, --in-memory, --compare or --list is required\n{USAGE}");
            return ExitCode::from(2);
        };
        let secret = match (&args.token, &args.password) {
            (Some(_), Some(_)) => {
                eprintln!("error: --token and --password are exclusive");
                return ExitCode::from(2);
            }
            (Some(t), None) => Secret::Token(t.clone()),
            (None, Some(p)) => Secret::Password(p.clone()),
            (None, None) => match std::env::var("OPENCLAW_GATEWAY_TOKEN") {
                Ok(t) if !t.is_empty() => Secret::Token(t),
                _ => {
                    eprintln!("error: --token or --password is required (or OPENCLAW_GATEWAY_TOKEN)");
                    return ExitCode::from(2);
                }
            },
        };
        let env = Env { secret, skip_slow: args.skip_slow, deterministic: false, default_timeout: Duration::from_secs(10) };
        let mut runner = SocketRunner::new(&url, env);
        runner.parallel_slow = !args.serial;
        (url.clone(), runner.run_all(&suite))
    };

    if let Some(path) = &args.json_out {
        let text = serde_json::to_string_pretty(&report::to_json(&results)).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: {path}: {e}");
            return ExitCode::from(2);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report::to_json(&results)).unwrap_or_default());
    } else {
        print!("{}", report::table(&title, &results, args.wide));
    }
    if results.iter().any(|r| r.outcome.is_fail()) { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn compare(args: &Args) -> ExitCode {
    if args.compare.len() < 2 {
        eprintln!("error: --compare needs a reference report and at least one of ours\n{USAGE}");
        return ExitCode::from(2);
    }
    let mut runs = Vec::new();
    for path in &args.compare {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {path}: {e}");
                return ExitCode::from(2);
            }
        };
        let parsed = serde_json::from_str(&text).map_err(|e| e.to_string()).and_then(|v| report::from_json(&v));
        match parsed {
            Ok(r) => runs.push(r),
            Err(e) => {
                eprintln!("error: {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let default_names = ["reference", "tokio", "smol", "ours3", "ours4"];
    let names: Vec<String> = (0..runs.len())
        .map(|i| args.names.get(i).cloned().unwrap_or_else(|| default_names.get(i).unwrap_or(&"ours").to_string()))
        .collect();
    let ours: Vec<(&str, &[clawgate_conformance::CheckResult])> =
        names[1..].iter().map(String::as_str).zip(runs[1..].iter().map(Vec::as_slice)).collect();
    let (text, ok) = report::compare(&runs[0], &ours, args.allow_pending);
    print!("{text}");
    if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
