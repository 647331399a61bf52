//! Browser `Origin` checks for the WebSocket handshake (config-auth-reload §5.3, decision table H).

use std::net::IpAddr;

use crate::auth::is_loopback_ip;
use crate::gateway::{Admission, GatewaySettings};

/// Why an origin was allowed (for logs) — or `None` when denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginAllow {
    Allowlist,
    HostHeaderFallback,
    PrivateSameOrigin,
    LocalLoopback,
}

/// Parsed `scheme://host[:port]`.
struct ParsedOrigin {
    host: String,
    host_port: String,
}

fn parse_origin(origin: &str) -> Option<ParsedOrigin> {
    let o = origin.trim();
    if o.is_empty() || o == "null" {
        return None;
    }
    let (scheme, rest) = o.split_once("://")?;
    if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains('/') || rest.contains('@') || rest.contains('?') || rest.contains('#') {
        return None;
    }
    let host_port = rest.to_ascii_lowercase();
    let host = if let Some(r) = host_port.strip_prefix('[') {
        r.split_once(']')?.0.to_string()
    } else {
        host_port.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_else(|| host_port.clone())
    };
    Some(ParsedOrigin { host, host_port })
}

fn is_loopback_name(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| is_loopback_ip(&ip))
}

fn is_private_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            v6.is_loopback() || (seg0 & 0xfe00) == 0xfc00 || (seg0 & 0xffc0) == 0xfe80
        }
    }
}

/// Why an origin was refused (`details.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginDeny {
    MissingOrInvalid,
    NotAllowed,
}

impl OriginDeny {
    pub fn as_str(self) -> &'static str {
        match self {
            OriginDeny::MissingOrInvalid => "origin missing or invalid",
            OriginDeny::NotAllowed => "origin not allowed",
        }
    }
}

/// Decision table H.
pub fn check_origin(
    origin: &str,
    host_header: Option<&str>,
    allowlist: &[String],
    host_fallback: bool,
    is_local_client: bool,
) -> Result<OriginAllow, OriginDeny> {
    let parsed = parse_origin(origin).ok_or(OriginDeny::MissingOrInvalid)?;
    let lower = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if allowlist.iter().map(|a| a.trim().to_ascii_lowercase()).any(|a| a == "*" || a.trim_end_matches('/') == lower) {
        return Ok(OriginAllow::Allowlist);
    }
    let host = host_header.map(|h| h.trim().to_ascii_lowercase());
    let same_host = host.as_deref() == Some(parsed.host_port.as_str());
    if host_fallback && same_host {
        return Ok(OriginAllow::HostHeaderFallback);
    }
    if same_host {
        let name = parsed.host.as_str();
        let trusted = (is_loopback_name(name) && is_local_client)
            || name.parse::<IpAddr>().is_ok_and(|ip| is_private_ip(&ip))
            || name.ends_with(".local")
            || name.ends_with(".ts.net");
        if trusted {
            return Ok(OriginAllow::PrivateSameOrigin);
        }
    }
    if is_local_client && is_loopback_name(&parsed.host) {
        return Ok(OriginAllow::LocalLoopback);
    }
    Err(OriginDeny::NotAllowed)
}

/// Is this socket's `Origin` acceptable?
pub(crate) fn origin_verdict(origin: &str, admission: &Admission, settings: &GatewaySettings) -> Result<OriginAllow, OriginDeny> {
    check_origin(
        origin,
        admission.facts.host.as_deref(),
        &settings.control_ui_allowed_origins,
        settings.host_header_origin_fallback,
        admission.attribution.is_direct_local(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_h() {
        assert_eq!(check_origin("http://localhost:5173", Some("127.0.0.1:18789"), &[], false, true), Ok(OriginAllow::LocalLoopback));
        assert_eq!(check_origin("http://evil.example", Some("127.0.0.1:18789"), &[], false, true), Err(OriginDeny::NotAllowed));
        assert_eq!(check_origin("https://a.example", None, &["https://a.example".into()], false, false), Ok(OriginAllow::Allowlist));
        assert_eq!(
            check_origin("http://192.168.1.5:18789", Some("192.168.1.5:18789"), &[], false, false),
            Ok(OriginAllow::PrivateSameOrigin)
        );
        assert_eq!(check_origin("null", None, &["*".into()], false, true), Err(OriginDeny::MissingOrInvalid));
        assert_eq!(check_origin("http://x.example:1", Some("x.example:1"), &[], true, false), Ok(OriginAllow::HostHeaderFallback));
    }
}
