//! clawgate-driver: the IO glue both shells share, written once against a small [`rt::Runtime`]
//! trait. The shells (`clawgate-tokio`, `clawgate-smol`) only implement that trait and `main`.
//!
//! Holds no protocol decision: every rule is in `clawgate-core`; this crate reads sockets and
//! files, feeds the core, writes what it says and sleeps until its deadlines.

pub mod admission;
pub mod agent;
pub mod api;
pub mod calls;
pub mod client;
pub mod commands;
pub mod config;
pub mod cron;
pub mod daemon;
pub mod instance;
pub mod lifecycle;
pub mod logfile;
pub mod net;
pub mod persist;
pub mod rt;
pub mod runner;
pub mod sampler;
pub mod secrets;
pub mod secrets_configure;
pub mod service;
pub mod session;
pub mod state;
pub mod static_files;
pub mod store;
pub mod stream;
pub mod target;
pub mod tls;
pub mod upstream;
pub mod wsio;

use clawgate_core::cli::{Cli, Command};

/// Set up logging: to stderr (text, or JSON lines with `--log-format json` /
/// `CLAWGATE_LOG_FORMAT=json`, for journald and log shippers) and, once the daemon knows where
/// ([`logfile::LogFile::set_target`]), to the log file operators and `logs.tail` read.
/// `RUST_LOG` overrides the level; `verbose` means debug.
pub fn init_logging(verbose: bool, json: bool) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let default = if verbose { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Whatever RUST_LOG asks for: the WebSocket and HTTP libraries log frames and heads at
    // debug/trace level — connect frames with tokens and passwords, Authorization headers.
    // Secrets never reach the log, so their chatter stops at info.
    let filter = ["tungstenite=info", "hyper=info", "hyper_util=info", "h2=info", "rustls=info"]
        .iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, |f, d| f.add_directive(d));
    use std::io::IsTerminal;
    let registry = tracing_subscriber::registry().with(filter).with(logfile::FileLayer);
    let _ = if json {
        registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).with_target(false),
            )
            .try_init()
    };
}

/// What runs before the shell starts its runtime (one thread still): `--dev` / `--profile`
/// become the environment every later rule reads (config-auth-reload §1.2). `Err` is the exit
/// code, the message already printed.
pub fn prepare(cli: &Cli) -> Result<(), i32> {
    instance::apply_profile(cli.dev, cli.profile.as_deref()).map_err(|e| {
        eprintln!("{e}");
        1
    })
}

/// Run one parsed command line; returns the process exit code.
pub async fn main_with<R: rt::Runtime>(rt: R, cli: Cli) -> i32 {
    match cli.command {
        Command::Run(args) => {
            init_logging(args.verbose, args.log_format.as_deref() == Some("json"));
            match daemon::run(rt, args).await {
                Ok(()) => 0,
                Err(e) => {
                    // Printed once, plain: supervisors and users read this line.
                    eprintln!("{}", e.message);
                    e.exit_code
                }
            }
        }
        Command::Call(a) => commands::call(rt, a).await,
        Command::Health(a) => commands::health(rt, a).await,
        Command::Status(a) => commands::status(rt, a).await,
        Command::Probe(a) => commands::probe(rt, a).await,
        Command::Logs(a) => commands::logs(rt, a).await,
        Command::AuthToken => commands::auth_token(),
        Command::Config(clawgate_core::cli::ConfigCommand::Validate { json }) => commands::config_validate(json),
        Command::Secrets(clawgate_core::cli::SecretsCommand::Reload(a)) => commands::secrets_reload(rt, a).await,
        Command::Secrets(clawgate_core::cli::SecretsCommand::Audit(a)) => secrets::audit(a),
        Command::Secrets(clawgate_core::cli::SecretsCommand::Store(c)) => secrets::store(c),
        Command::Secrets(clawgate_core::cli::SecretsCommand::Apply(a)) => secrets::apply(a),
        Command::Secrets(clawgate_core::cli::SecretsCommand::Configure(a)) => secrets_configure::configure(a),
        Command::Install(a) => lifecycle::install(rt, a).await,
        Command::Uninstall(a) => lifecycle::uninstall(rt, a).await,
        Command::Start(a) => lifecycle::start(rt, a).await,
        Command::Stop(a) => lifecycle::stop(rt, a).await,
        Command::Restart(a) => lifecycle::restart(rt, a).await,
        Command::Doctor(a) => lifecycle::doctor(rt, a).await,
        Command::Devices(c) => commands::devices(rt, c).await,
        Command::Cron(c) => commands::cron(rt, *c).await,
    }
}
