//! `--dev` and `--profile NAME` (config-auth-reload §1.2): a profile is a set of environment
//! defaults applied before anything else reads the environment, so every path and port rule
//! downstream (state dir §1.1, config path, port table A §3.1) sees one consistent answer.

use thiserror::Error;

use crate::config::valid_profile_name;

/// The reference's dev profile port (`--dev` pre-sets `OPENCLAW_GATEWAY_PORT`).
pub const DEV_PORT: u16 = 19001;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProfileError {
    #[error("Invalid --profile (use letters, numbers, \"_\", \"-\" only)")]
    InvalidName,
    #[error("Cannot combine --dev with --profile")]
    DevWithProfile,
}

/// The environment variables a profile sets, in order (a variable already set by the caller
/// is left alone, as the reference's `applyCliProfileEnv` does). `home` is the effective home
/// (`config::resolve_home`). Profile `default` (any case) is no profile.
pub fn profile_env(
    dev: bool,
    profile: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    home: &str,
) -> Result<Vec<(&'static str, String)>, ProfileError> {
    let name = match (dev, profile.map(str::trim)) {
        (true, Some(_)) => return Err(ProfileError::DevWithProfile),
        (true, None) => "dev".to_string(),
        (false, Some(p)) if !valid_profile_name(p) => return Err(ProfileError::InvalidName),
        (false, Some(p)) if p.eq_ignore_ascii_case("default") => return Ok(Vec::new()),
        (false, Some(p)) => p.to_string(),
        (false, None) => return Ok(Vec::new()),
    };
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    let mut out = vec![("OPENCLAW_PROFILE", name.clone())];
    let state_dir = match env("OPENCLAW_STATE_DIR").filter(|v| !v.trim().is_empty()) {
        Some(sd) => sd,
        None => {
            let sd = format!("{home}/.openclaw-{name}");
            out.push(("OPENCLAW_STATE_DIR", sd.clone()));
            sd
        }
    };
    if !set("OPENCLAW_CONFIG_PATH") {
        out.push(("OPENCLAW_CONFIG_PATH", format!("{state_dir}/openclaw.json")));
    }
    if dev && !set("OPENCLAW_GATEWAY_PORT") {
        out.push(("OPENCLAW_GATEWAY_PORT", DEV_PORT.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn dev_gets_its_own_state_dir_config_and_port() {
        let env = profile_env(true, None, none, "/h").unwrap();
        assert_eq!(
            env,
            vec![
                ("OPENCLAW_PROFILE", "dev".into()),
                ("OPENCLAW_STATE_DIR", "/h/.openclaw-dev".into()),
                ("OPENCLAW_CONFIG_PATH", "/h/.openclaw-dev/openclaw.json".into()),
                ("OPENCLAW_GATEWAY_PORT", "19001".into()),
            ]
        );
    }

    #[test]
    fn a_named_profile_keeps_what_the_caller_set() {
        let env = profile_env(false, Some("Work"), |k| (k == "OPENCLAW_STATE_DIR").then(|| "/custom".to_string()), "/h").unwrap();
        assert_eq!(env, vec![("OPENCLAW_PROFILE", "Work".into()), ("OPENCLAW_CONFIG_PATH", "/custom/openclaw.json".into())]);
        assert!(profile_env(false, Some("default"), none, "/h").unwrap().is_empty());
        assert!(profile_env(false, None, none, "/h").unwrap().is_empty());
    }

    #[test]
    fn bad_names_and_dev_with_profile_are_refused_in_the_reference_words() {
        for bad in ["", "-x", "a b", "a/b", "../x", &"a".repeat(65)] {
            let e = profile_env(false, Some(bad), none, "/h").unwrap_err();
            assert_eq!(e.to_string(), "Invalid --profile (use letters, numbers, \"_\", \"-\" only)", "{bad:?}");
        }
        assert_eq!(profile_env(true, Some("x"), none, "/h").unwrap_err().to_string(), "Cannot combine --dev with --profile");
    }
}
