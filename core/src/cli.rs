//! The command line both binaries (`clawgate`, `clawgate-lite`) parse.
//!
//! Values whose errors the reference words in a particular way (`--port`, `--bind`, `--auth`)
//! are taken as strings and checked by [`crate::config`], so the messages and exit codes match.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "clawgate", version, about = "A wire-compatible OpenClaw Gateway: one port for the WebSocket control protocol and HTTP.")]
pub struct Cli {
    /// The dev profile: state dir `~/.openclaw-dev`, port 19001 (config-auth-reload §1.2).
    #[arg(long, global = true)]
    pub dev: bool,
    /// A named profile: state dir `~/.openclaw-<name>`, its own config, unit and port.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parse the process arguments for a binary called `bin` (its `--help`/`--version` name).
    pub fn parse_as(bin: &'static str) -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().name(bin).bin_name(bin).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway in the foreground.
    Run(RunArgs),
    /// Call one gateway method and print its result.
    Call(CallArgs),
    /// Check gateway health (`health` method).
    Health(ClientArgs),
    /// Show gateway status; with --require-rpc, fail unless a read RPC succeeds.
    Status(StatusArgs),
    /// Probe the gateway: reachability, capability, server version.
    Probe(ClientArgs),
    /// Print the gateway token kept in the state dir (created on first run).
    AuthToken,
    /// Show the gateway's log (`logs.tail`); `--follow` keeps polling for new lines.
    Logs(LogsArgs),
    /// Work with the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with SecretRefs.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Device pairing: list requests and paired devices, approve, reject, remove.
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Scheduled agent runs: list, add, edit, remove, run jobs and read their run history.
    #[command(subcommand)]
    Cron(Box<CronCommand>),
    /// Install the gateway as a service: a systemd unit (user, or --system), recording the
    /// effective port and config path; `--platform launchd|windows` writes those definitions.
    Install(InstallArgs),
    /// Stop and remove the installed service.
    Uninstall(ServiceArgs),
    /// Start the installed service.
    Start(ServiceArgs),
    /// Stop the installed service (`--disable`: and do not start it at login/boot).
    Stop(StopArgs),
    /// Restart the installed service through its supervisor (never stop+start by hand).
    Restart(ServiceArgs),
    /// Audit the install: config, state-dir permissions, service drift, token file mode,
    /// stale locks, store integrity; `--fix` repairs what is safe.
    Doctor(DoctorArgs),
}

/// Which service a lifecycle command acts on.
#[derive(Debug, Args, Default, Clone)]
pub struct ServiceArgs {
    /// The system-wide unit (`/etc/systemd/system`) rather than the user's.
    #[arg(long)]
    pub system: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Default, Clone)]
pub struct StopArgs {
    /// Also disable it (not started at login/boot until `start`).
    #[arg(long)]
    pub disable: bool,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Args, Default, Clone)]
pub struct DoctorArgs {
    /// Repair what is safe to repair, and say what changed.
    #[arg(long)]
    pub fix: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Check the system-wide unit rather than the user's.
    #[arg(long)]
    pub system: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the config file (and its SecretRefs) without starting the gateway.
    Validate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// When a job fires (one of).
#[derive(Debug, Args, Clone, Default)]
pub struct CronScheduleArgs {
    /// Every interval: `10s`, `5m`, `1h`, `1d`.
    #[arg(long, conflicts_with_all = ["cron", "at"])]
    pub every: Option<String>,
    /// A cron expression (5 fields, or 6 with seconds first).
    #[arg(long, conflicts_with = "at")]
    pub cron: Option<String>,
    /// One shot: an ISO 8601 time (offset-less is UTC), or a delay from now like `20m`.
    #[arg(long)]
    pub at: Option<String>,
    /// IANA time zone of `--cron` (default: the gateway host's).
    #[arg(long, requires = "cron")]
    pub tz: Option<String>,
}

/// What a job does and how (`cron add` / `cron edit`).
#[derive(Debug, Args, Clone, Default)]
pub struct CronJobArgs {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Agent turn message (an `isolated` job unless --session says otherwise).
    #[arg(long, conflicts_with = "system_event")]
    pub message: Option<String>,
    /// A system event for the agent's main session.
    #[arg(long)]
    pub system_event: Option<String>,
    /// Session target: `isolated`, `main`, or `session:<key>`.
    #[arg(long)]
    pub session: Option<String>,
    /// Model for the agent turn (`provider/model`).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub agent: Option<String>,
    /// Stop a run after this many seconds.
    #[arg(long)]
    pub timeout_seconds: Option<u64>,
    /// A fire due while the previous run is going: `skip` (default) or `queue` (one more run).
    #[arg(long)]
    pub overlap: Option<String>,
    /// Skip a fire missed while the gateway was down when it is older than this (`2h`).
    #[arg(long)]
    pub stale_after: Option<String>,
    #[command(flatten)]
    pub schedule: CronScheduleArgs,
}

#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Scheduler status (`cron.status`).
    Status(ClientArgs),
    /// List jobs (`cron.list`).
    List {
        /// Include disabled jobs.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a job (`cron.add`).
    Add {
        #[command(flatten)]
        job: CronJobArgs,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        /// Delete a one-shot job after it succeeded.
        #[arg(long)]
        delete_after_run: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change a job (`cron.update`).
    Edit {
        id: String,
        #[command(flatten)]
        job: CronJobArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a job and its run history (`cron.remove`).
    Rm {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run a job now (`cron.run`); `--due` only if it is due.
    Run {
        id: String,
        #[arg(long)]
        due: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run history (`cron.runs`), newest first.
    Runs {
        /// One job's runs (default: all jobs').
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Enable a job (`cron.update {enabled:true}`).
    Enable {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Disable a job (`cron.update {enabled:false}`).
    Disable {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// List pending pairing requests and paired devices (`device.pair.list`).
    List(ClientArgs),
    /// Approve a pending pairing request by its exact request id. Without an id (or with
    /// `--latest`) only previews the newest pending request and exits 1.
    Approve {
        /// The `requestId` shown by `devices list` (and by the device's pairing screen).
        request_id: Option<String>,
        /// Preview the newest pending request.
        #[arg(long)]
        latest: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reject a pending pairing request.
    Reject {
        request_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a paired device: its tokens stop working and its open sockets close (4001).
    Remove {
        device_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Rotate a device's token for a role (`device.token.rotate`): the old token stops working
    /// and the device's sockets close (4001); the new one is handed to the device itself only.
    Rotate {
        /// The device id (`devices list`).
        #[arg(long = "device")]
        device_id: String,
        #[arg(long, default_value = "operator")]
        role: String,
        /// Scopes for the new token (repeatable; default: all the pairing approved).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Rotate with an empty scope set.
        #[arg(long, conflicts_with = "scopes")]
        no_scopes: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a device's token for a role (`device.token.revoke`): it stops working and the
    /// device's sockets close (4001); the device stays paired (it can pair again).
    Revoke {
        #[arg(long = "device")]
        device_id: String,
        #[arg(long, default_value = "operator")]
        role: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give a paired device an operator label (`device.pair.rename`).
    Rename {
        #[arg(long = "device")]
        device_id: String,
        /// 1–64 characters (trimmed).
        #[arg(long)]
        label: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Ask the running gateway to re-resolve its SecretRefs (`secrets.reload`).
    Reload(ClientArgs),
    /// Read-only scan for plaintext credentials, unresolved refs and store residue.
    Audit(SecretsAuditArgs),
    /// The gateway-wide team secret store (usable as `{source: "store"}` SecretRefs).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Apply a saved plan (the secrets plan contract): refs into openclaw.json, providers
    /// upserted/deleted, migrated plaintext scrubbed from .env files.
    Apply(SecretsApplyArgs),
    /// Interactive planner (a TTY): provider setup, then credential fields mapped to SecretRefs,
    /// a preflight (the apply dry run), an optional plan file and apply.
    Configure(SecretsConfigureArgs),
}

#[derive(Debug, Args, Default, Clone)]
pub struct SecretsConfigureArgs {
    /// Agent id for auth-profiles targets (default: the configured default agent).
    #[arg(long)]
    pub agent: Option<String>,
    /// Allow exec SecretRef preflight checks (may execute provider commands).
    #[arg(long = "allow-exec")]
    pub allow_exec: bool,
    /// Apply changes immediately after preflight.
    #[arg(long)]
    pub apply: bool,
    /// Output JSON (the prompts go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Write the generated plan JSON to a file (max 16 MiB).
    #[arg(long = "plan-out")]
    pub plan_out: Option<String>,
    /// Configure secrets.providers only, skip credential mapping.
    #[arg(long = "providers-only")]
    pub providers_only: bool,
    /// Skip provider setup and only map credential fields to existing providers.
    #[arg(long = "skip-provider-setup")]
    pub skip_provider_setup: bool,
    /// Skip the apply confirmation prompt (and apply).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args, Default, Clone)]
pub struct SecretsApplyArgs {
    /// The plan file (a regular file of at most 16 MiB).
    #[arg(long)]
    pub from: String,
    /// Validate and preview without writing (exec refs are not run without --allow-exec).
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Allow plans with exec refs/providers (and run them to check resolvability).
    #[arg(long = "allow-exec")]
    pub allow_exec: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Default, Clone)]
pub struct SecretsAuditArgs {
    /// Exit 1 when there are findings (2 for unresolved refs, always).
    #[arg(long)]
    pub check: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run exec providers to check exec refs (skipped otherwise).
    #[arg(long = "allow-exec")]
    pub allow_exec: bool,
}

/// `secrets store …` (exit 2: refused input or disclosure; 3: no such name).
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// List entries (secret values never shown).
    List {
        #[arg(long)]
        json: bool,
        /// Tab-separated: name, kind, env value, allowed hosts.
        #[arg(long)]
        plain: bool,
        #[arg(long, default_value = "team")]
        scope: String,
    },
    /// Create or update one entry. A secret's value comes from stdin, --value-file or the
    /// no-echo prompt, never from --value.
    Set {
        name: String,
        /// `secret` or `env` (default: from the name; `_API_KEY`, `_TOKEN`, `_PASSWORD`,
        /// `_PRIVATE_KEY`, `_SECRET` make a secret).
        #[arg(long)]
        kind: Option<String>,
        /// Literal value (env kind only).
        #[arg(long)]
        value: Option<String>,
        /// Read the value from a file; `-` for stdin.
        #[arg(long = "value-file")]
        value_file: Option<String>,
        /// Allow substitution only for this exact host (repeatable).
        #[arg(long = "allow-host")]
        allow_host: Vec<String>,
        /// Remove all allowed hosts.
        #[arg(long = "clear-allowed-hosts")]
        clear_allowed_hosts: bool,
        #[arg(long = "dry-run")]
        dry_run: bool,
        #[arg(long, default_value = "team")]
        scope: String,
    },
    /// Print an env entry's value (secret entries are write-only).
    Get {
        name: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        plain: bool,
        #[arg(long, default_value = "team")]
        scope: String,
    },
    /// Remove entries (a missing name is not an error).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long)]
        yes: bool,
        #[arg(long = "dry-run")]
        dry_run: bool,
        #[arg(long, default_value = "team")]
        scope: String,
    },
    /// Import dotenv assignments from a file or stdin.
    Import {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        yes: bool,
        #[arg(long = "dry-run")]
        dry_run: bool,
        #[arg(long, default_value = "team")]
        scope: String,
    },
}

#[derive(Debug, Args, Default, Clone)]
pub struct InstallArgs {
    /// Replace an existing definition (after a port or config path change).
    #[arg(long)]
    pub force: bool,
    /// A system-wide service (systemd system unit, LaunchDaemon, boot task) instead of the user's.
    #[arg(long)]
    pub system: bool,
    /// The account a --system service runs as (default: the invoking user).
    #[arg(long, requires = "system")]
    pub user: Option<String>,
    /// Port to record (default: the gateway's resolved port: OPENCLAW_GATEWAY_PORT, gateway.port,
    /// the profile's, 18789).
    #[arg(long)]
    pub port: Option<String>,
    /// `systemd` (default on Linux), `launchd` (a plist) or `windows` (a Task Scheduler XML).
    #[arg(long, value_parser = ["systemd", "launchd", "windows"])]
    pub platform: Option<String>,
    /// Write the definition here instead of the platform's place.
    #[arg(long)]
    pub unit_path: Option<String>,
    /// Print the definition instead of writing it.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Args, Default, Clone)]
pub struct RunArgs {
    /// Port to listen on (default: OPENCLAW_GATEWAY_PORT, gateway.port, 18789).
    #[arg(long)]
    pub port: Option<String>,
    /// loopback | lan | tailnet | auto | custom.
    #[arg(long)]
    pub bind: Option<String>,
    /// IPv4 address for --bind custom.
    #[arg(long = "custom-bind-host")]
    pub custom_bind_host: Option<String>,
    /// none | token | password | trusted-proxy.
    #[arg(long)]
    pub auth: Option<String>,
    /// Shared token (default: OPENCLAW_GATEWAY_TOKEN, or the token kept in the state dir).
    #[arg(long)]
    pub token: Option<String>,
    /// Shared password (default: OPENCLAW_GATEWAY_PASSWORD).
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from this file.
    #[arg(long = "password-file")]
    pub password_file: Option<String>,
    /// Start even though the config file does not say `gateway.mode: "local"` (without this, an
    /// existing config that lacks it, or says "remote", is refused with exit 78). With no
    /// config file at all the gateway starts on its defaults either way.
    #[arg(long = "allow-unconfigured")]
    pub allow_unconfigured: bool,
    /// Running under a supervisor (systemd sets INVOCATION_ID): a restart exits 0 so the
    /// supervisor starts the new process.
    #[arg(long)]
    pub supervised: bool,
    /// Log more (same as RUST_LOG=debug).
    #[arg(long, short)]
    pub verbose: bool,
    /// Console log format: `text` (default) or `json` (one JSON object per line, for journald
    /// and log shippers). The log file is always JSON lines (spec operator §1.1).
    #[arg(long = "log-format", env = "CLAWGATE_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

/// How a client command finds the gateway (the reference CLI's rules): `--url` (with
/// `--token`/`--password`), else `--port` (local), else `OPENCLAW_GATEWAY_URL`, else
/// `gateway.remote.url` when `gateway.mode` is `remote`, else the local gateway on
/// `OPENCLAW_GATEWAY_PORT` / `gateway.port` / 18789 with the config's credentials.
#[derive(Debug, Args, Default, Clone)]
pub struct ClientArgs {
    /// Gateway WebSocket URL (ws:// or wss://); implicit credentials are never sent to it, so
    /// pass --token or --password too.
    #[arg(long)]
    pub url: Option<String>,
    /// Port of a gateway on this host (ws://127.0.0.1:PORT), with the local config's credentials.
    #[arg(long)]
    pub port: Option<String>,
    /// Shared token (default: gateway.auth.token, OPENCLAW_GATEWAY_TOKEN, gateway.remote.token,
    /// then the token `clawgate run` keeps in the state dir).
    #[arg(long)]
    pub token: Option<String>,
    /// Shared password (default: gateway.auth.password, OPENCLAW_GATEWAY_PASSWORD,
    /// gateway.remote.password).
    #[arg(long)]
    pub password: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Timeout in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout: u64,
}

#[derive(Debug, Args, Clone)]
pub struct CallArgs {
    /// Method name, e.g. `health`.
    pub method: String,
    /// Params as a JSON value.
    #[arg(long)]
    pub params: Option<String>,
    /// Wait for the final response of an accepted-then-final method.
    #[arg(long = "expect-final")]
    pub expect_final: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args, Clone)]
pub struct LogsArgs {
    /// Keep polling for new lines (one connection per poll, as `openclaw logs --follow`).
    #[arg(long, short)]
    pub follow: bool,
    /// Lines to show (1–5000).
    #[arg(long, default_value_t = 200)]
    pub limit: u64,
    /// Bytes to read at most per poll (1–1000000).
    #[arg(long = "max-bytes", default_value_t = 250_000)]
    pub max_bytes: u64,
    /// Poll interval with --follow, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    pub interval: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// Exit non-zero unless a read RPC (`status`) succeeds.
    #[arg(long = "require-rpc")]
    pub require_rpc: bool,
    /// Also scan the host for other gateway-like services and stale installs.
    #[arg(long)]
    pub deep: bool,
    /// Inspect the system-wide unit rather than the user's.
    #[arg(long)]
    pub system: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["clawgate", "call", "health", "--json", "--params", "{}"]).unwrap();
        match c.command {
            Command::Call(a) => {
                assert_eq!(a.method, "health");
                assert!(a.client.json);
            }
            _ => panic!("wrong subcommand"),
        }
    }
}
