//! Flag validation of the gateway binary (`clawgate`; `lite_e2e` runs it against
//! `clawgate-lite`).

use std::process::Command;

use clawgate_tests::clawgate_bin;
use clawgate_tests::process::runtime_under_test;

fn clawgate() -> Command {
    Command::new(clawgate_bin())
}

#[test]
fn version_is_the_crate_version() {
    let out = clawgate().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{} {}", runtime_under_test().0, env!("CARGO_PKG_VERSION")));
}

#[test]
fn invalid_flags_use_the_reference_messages_and_exit_1() {
    let home = std::env::temp_dir().join(format!("clawgate-flags-{}", std::process::id()));
    for (args, msg) in [
        (vec!["run", "--port", "99999"], "Invalid --port. Use a port number from 1 to 65535, for example 18789."),
        (vec!["run", "--port", "abc"], "Invalid --port. Use a port number from 1 to 65535, for example 18789."),
        (vec!["run", "--bind", "bogus"], "Invalid --bind. Use \"loopback\", \"lan\", \"tailnet\", \"auto\", or \"custom\"."),
        (vec!["run", "--auth", "bogus"], "Invalid --auth. Use \"none\", \"token\", \"password\", or \"trusted-proxy\"."),
    ] {
        let out = clawgate().args(&args).env("HOME", &home).env("OPENCLAW_STATE_DIR", &home).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(msg), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn password_mode_without_password_is_a_config_error() {
    let home = std::env::temp_dir().join(format!("clawgate-flags-pw-{}", std::process::id()));
    let out = clawgate()
        .args(["run", "--auth", "password", "--port", "1"])
        .env("HOME", &home)
        .env("OPENCLAW_STATE_DIR", &home)
        .env_remove("OPENCLAW_GATEWAY_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Gateway auth is set to password, but no password is configured."));
}
