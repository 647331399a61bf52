//! Browser `Origin` checks for the WebSocket handshake (config-auth-reload §5.3, decision table H).

use std::net::IpAddr;

use crate::auth::is_loopback_ip;

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
    /// `scheme://host[:port]`, lower-cased: what the origin is compared and keyed by.
    normalized: String,
}

/// Longest `Origin` considered (a browser's is far shorter): anything longer is invalid.
const MAX_ORIGIN_LEN: usize = 1024;

/// Parse an `Origin` as a URL parser would (the reference's `new URL(origin)`): a scheme, a host
/// of DNS characters, an IPv4 or a bracketed IPv6 literal, and an optional numeric port up to
/// 65535 — nothing else (no path, credentials, query or fragment). `http://localhost:<300 000
/// digits>` and `http://127.0.0.1:43691.evil.example` are not origins.
fn parse_origin(origin: &str) -> Option<ParsedOrigin> {
    let o = origin.trim();
    if o.is_empty() || o == "null" || o.len() > MAX_ORIGIN_LEN {
        return None;
    }
    let (scheme, rest) = o.split_once("://")?;
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let host_port = rest.to_ascii_lowercase();
    let (host, port) = match host_port.strip_prefix('[') {
        Some(r) => {
            let (v6, tail) = r.split_once(']')?;
            v6.parse::<std::net::Ipv6Addr>().ok()?;
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':')?),
            };
            (v6.to_string(), port)
        }
        None => match host_port.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (host_port.clone(), None),
        },
    };
    let dns_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').enumerate().all(|(i, label)| {
            (!label.is_empty() || i > 0) && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !host_port.starts_with('[') && !dns_ok {
        return None;
    }
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u32>().ok()? > 65_535 {
            return None;
        }
    }
    let normalized = format!("{}://{host_port}", scheme.to_ascii_lowercase());
    Some(ParsedOrigin { host, host_port, normalized })
}

/// The origin as the failed-auth limiter keys it: normalized, bounded; `None` if it is no origin.
pub fn limiter_key(origin: &str) -> Option<String> {
    parse_origin(origin).map(|p| p.normalized)
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
    let lower = parsed.normalized.as_str();
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

    #[test]
    fn only_real_origins_parse() {
        let long_port = format!("http://localhost:{}", "9".repeat(300_000));
        for bad in [
            long_port.as_str(),
            "http://127.0.0.1:43691.evil.example",
            "http://localhost:",
            "http://localhost:65536",
            "http://localhost:+80",
            "http://[::1",
            "http://[not-v6]:1",
            "http://user@localhost",
            "http://localhost/path",
            "http://local host",
            "http://%6cocalhost",
            "://localhost",
            "1http://localhost",
            "http://",
        ] {
            assert_eq!(check_origin(bad, None, &["*".into()], false, true), Err(OriginDeny::MissingOrInvalid), "{:.80}", bad);
            assert_eq!(limiter_key(bad), None);
        }
        for good in
            ["http://localhost:5173", "https://127.0.0.1", "http://[::1]:18789", "http://LOCALHOST:80/", "chrome-extension://abcdef"]
        {
            assert!(limiter_key(good).is_some(), "{good}");
        }
        assert_eq!(limiter_key("HTTP://LocalHost:80/").as_deref(), Some("http://localhost:80"));
    }
}
