//! The IO half of finding the gateway a client command talks to: flags, environment, the
//! config file (SecretRefs resolved) and the kept token, handed to the core's
//! [`clawgate_core::connection::client_target`] decision.

use clawgate_core::auth::Secret;
use clawgate_core::cli::ClientArgs;
use clawgate_core::config::secrets::{self, SecretInput};
use clawgate_core::connection::client_target::{self, ClientConfig, ClientInputs, SecretField, Target, TargetError};

use crate::config::{ShellSecretIo, load_file};
use crate::state;

fn env_nonblank(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The config file's path, as `clawgate run` resolves it.
pub fn config_path() -> String {
    state::config_path(&state::state_dir())
}

/// Gather the inputs of the decision. Each configured secret is resolved on its own: one that
/// fails is reported as unresolved (the decision fails closed only when it would be used).
pub fn inputs(a: &ClientArgs) -> ClientInputs {
    let state_dir = state::state_dir();
    let path = state::config_path(&state_dir);
    let (config, config_error) = match load_file(&path) {
        Ok(Some((c, _))) => {
            let providers = secrets::providers(&c.resolved);
            let mut io = ShellSecretIo;
            let mut field = |input: Option<&SecretInput>| match input {
                None => SecretField::Absent,
                Some(input) => match &providers {
                    Err(e) if input.is_ref() => SecretField::Unresolved(e.clone()),
                    Err(_) => secrets::resolve(input, &Default::default(), &mut io)
                        .map_or_else(|e| SecretField::Unresolved(e.0), SecretField::Value),
                    Ok(p) => secrets::resolve(input, p, &mut io).map_or_else(|e| SecretField::Unresolved(e.0), SecretField::Value),
                },
            };
            let g = &c.gateway;
            let cfg = ClientConfig {
                mode: g.mode.clone(),
                port: g.port,
                auth_mode: g.auth_mode,
                remote_url: c.resolved.pointer("/gateway/remote/url").and_then(|v| v.as_str()).map(str::to_string),
                auth_token: field(g.auth_token.as_ref()),
                auth_password: field(g.auth_password.as_ref()),
                remote_token: field(g.remote_token.as_ref()),
                remote_password: field(g.remote_password.as_ref()),
            };
            (Some(cfg), None)
        }
        Ok(None) => (None, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let kept_path = state::token_path(&state_dir).display().to_string();
    ClientInputs {
        url_flag: a.url.clone(),
        port_flag: a.port.clone(),
        token_flag: a.token.clone(),
        password_flag: a.password.clone(),
        env_url: env_nonblank("OPENCLAW_GATEWAY_URL"),
        env_port: env_nonblank("OPENCLAW_GATEWAY_PORT"),
        env_token: env_nonblank("OPENCLAW_GATEWAY_TOKEN"),
        env_password: env_nonblank("OPENCLAW_GATEWAY_PASSWORD"),
        env_profile: env_nonblank("OPENCLAW_PROFILE"),
        config_path: path,
        config,
        config_error,
        running: state::read_run_file(&state_dir).map(|(pid, port)| client_target::RunningGateway {
            pid,
            port,
            path: state::run_file_path(&state_dir).display().to_string(),
        }),
        kept_token: state::read_token(&state_dir).ok().flatten().map(|t| (Secret::new(t), kept_path.clone())),
        kept_token_path: kept_path,
    }
}

/// Decide the target of a client command (the inputs come back for the messages).
pub fn resolve(a: &ClientArgs) -> (ClientInputs, Result<Target, TargetError>) {
    let i = inputs(a);
    let t = client_target::resolve(&i);
    (i, t)
}
