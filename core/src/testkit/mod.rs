//! Fixtures for tests, the conformance suite's in-memory runner and the fuzz targets (feature
//! `testkit`; never in a shell's build).

pub mod fuzzing;
pub mod memory;

use std::time::Instant;

use crate::auth::{AuthMode, AuthSettings, RateLimitPolicy};
use crate::gateway::{GatewaySettings, ListenInfo, ServerInfo};

/// Settings for token auth on loopback.
pub fn loopback_token_settings(token: &str, port: u16) -> GatewaySettings {
    GatewaySettings::new(
        AuthSettings {
            mode: AuthMode::Token,
            token: Some(crate::auth::Secret::new(token)),
            password: None,
            rate_limit: RateLimitPolicy::default(),
        },
        ListenInfo { bind_mode: "loopback".into(), bind_host: "127.0.0.1".into(), port },
    )
}

/// A `ServerInfo` with fixed values (tests, conformance).
pub fn test_server_info(now: Instant, unix_ms: u64) -> ServerInfo {
    ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        build_id: None,
        boot_id: "00000000-0000-4000-8000-000000000000".into(),
        host: "test-host".into(),
        ip: Some("192.0.2.1".into()),
        platform: "linux test".into(),
        device_family: "Linux".into(),
        pid: 1,
        started_at: now,
        started_unix_ms: unix_ms,
        config_path: "/nonexistent/openclaw.json".into(),
        state_dir: "/nonexistent".into(),
        runtime: "test".into(),
        secret_seed: [7; 32],
    }
}
