//! Ingress attribution: who is really on the other end of a socket (config-auth-reload §4.6).
//! Drives locality (scope preservation, failure hints, loopback rate-limit exemption), the
//! rate-limiter subject and the proxy-attribution rejection.

use std::net::IpAddr;

use crate::auth::is_loopback_ip;

/// The request headers that matter for attribution and the handshake, already lower-cased.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub origin: Option<String>,
    pub host: Option<String>,
    pub user_agent: Option<String>,
    /// Any of `Forwarded`, `X-Real-IP`, `X-Forwarded-*`.
    pub forwarded: bool,
    /// Any Tailscale identity header (`tailscale-*`).
    pub tailscale: bool,
    pub x_forwarded_for: Option<String>,
    pub x_real_ip: Option<String>,
    /// `X-OpenClaw-Scopes` upgrade header: caps the effective scopes.
    pub scope_cap: Option<Vec<String>>,
    /// Every header (lower-cased name, trimmed value), for the trusted-proxy identity check.
    pub all: Vec<(String, String)>,
}

impl RequestFacts {
    /// A header's value (name lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.all.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

impl RequestFacts {
    /// Collect the facts from header (name, value) pairs; names are matched case-insensitively.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut f = RequestFacts::default();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            let value = String::from_utf8_lossy(value).trim().to_string();
            f.all.push((name.clone(), value.clone()));
            match name.as_str() {
                "origin" => f.origin = Some(value),
                "host" => f.host = Some(value),
                "user-agent" => f.user_agent = Some(value),
                "forwarded" => f.forwarded = true,
                "x-real-ip" => {
                    f.forwarded = true;
                    f.x_real_ip = Some(value);
                }
                "x-forwarded-for" => {
                    f.forwarded = true;
                    f.x_forwarded_for = Some(value);
                }
                "x-openclaw-scopes" => {
                    f.scope_cap = Some(value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                }
                n if n.starts_with("x-forwarded-") => f.forwarded = true,
                n if n.starts_with("tailscale-") => f.tailscale = true,
                _ => {}
            }
        }
        f
    }
}

/// Result of attribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// Loopback peer, no forwarding headers.
    DirectLocal { ip: IpAddr },
    /// Non-loopback peer, no forwarding headers.
    DirectRemote { ip: IpAddr },
    /// A configured trusted proxy forwarded for this client.
    TrustedProxy { proxy: IpAddr, client: IpAddr },
    /// Forwarding headers we cannot trust: the request is refused.
    Unattributable,
}

impl Attribution {
    pub fn client_ip(&self) -> Option<IpAddr> {
        match self {
            Attribution::DirectLocal { ip } | Attribution::DirectRemote { ip } => Some(*ip),
            Attribution::TrustedProxy { client, .. } => Some(*client),
            Attribution::Unattributable => None,
        }
    }
    pub fn is_direct_local(&self) -> bool {
        matches!(self, Attribution::DirectLocal { .. })
    }
}

/// One `gateway.trustedProxies` entry: an address or a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<IpNet> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let addr = normalize_ip(a.parse().ok()?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = p.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = normalize_ip(ip);
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                (u32::from(a) & mask) == (u32::from(b) & mask)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                (u128::from(a) & mask) == (u128::from(b) & mask)
            }
            _ => false,
        }
    }
}

/// Collapse IPv4-mapped IPv6 addresses to IPv4.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(normalize_ip(ip));
    }
    // `[v6]:port` or `v4:port`
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']').and_then(|(a, _)| a.parse().ok()).map(normalize_ip);
    }
    s.rsplit_once(':').and_then(|(a, _)| a.parse().ok()).map(normalize_ip)
}

/// Attribute one request (decision table I; the Tailscale listener rows do not apply here).
pub fn attribute(remote: IpAddr, facts: &RequestFacts, trusted_proxies: &[IpNet], allow_real_ip_fallback: bool) -> Attribution {
    let remote = normalize_ip(remote);
    if is_loopback_ip(&remote) && !facts.forwarded && !facts.tailscale {
        return Attribution::DirectLocal { ip: remote };
    }
    if trusted_proxies.iter().any(|n| n.contains(remote)) {
        let from_xff = facts.x_forwarded_for.as_deref().and_then(|xff| {
            xff.split(',')
                .rev()
                .filter_map(parse_hop)
                .filter(|ip| !is_loopback_ip(ip))
                .find(|ip| !trusted_proxies.iter().any(|n| n.contains(*ip)))
        });
        let client = from_xff.or_else(|| if allow_real_ip_fallback { facts.x_real_ip.as_deref().and_then(parse_hop) } else { None });
        return match client {
            Some(c) if !is_loopback_ip(&c) => Attribution::TrustedProxy { proxy: remote, client: c },
            _ => Attribution::Unattributable,
        };
    }
    if facts.forwarded || facts.tailscale {
        return Attribution::Unattributable;
    }
    Attribution::DirectRemote { ip: remote }
}

/// Body of the 403 sent for unattributable proxied requests (HTTP and WebSocket upgrade).
pub const PROXY_ATTRIBUTION_REQUIRED_BODY: &str = r#"{"error":{"message":"Proxy client attribution is required. Configure gateway.trustedProxies narrowly and make the proxy overwrite or safely rebuild forwarded client headers.","type":"proxy_attribution_required"}}"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(h: &[(&str, &str)]) -> RequestFacts {
        RequestFacts::from_headers(h.iter().map(|(k, v)| (*k, v.as_bytes())))
    }

    #[test]
    fn loopback_with_xff_and_no_trusted_proxy_is_unattributable() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(attribute(lo, &facts(&[]), &[], false), Attribution::DirectLocal { ip: lo });
        assert_eq!(attribute(lo, &facts(&[("X-Forwarded-For", "203.0.113.7")]), &[], false), Attribution::Unattributable);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(attribute(mapped, &facts(&[]), &[], false).is_direct_local());
    }

    #[test]
    fn trusted_proxy_walks_xff_from_the_right() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let tp = vec![IpNet::parse("127.0.0.1").unwrap(), IpNet::parse("10.0.0.0/8").unwrap()];
        let a = attribute(lo, &facts(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.1.2.3")]), &tp, false);
        assert_eq!(a, Attribution::TrustedProxy { proxy: lo, client: "203.0.113.7".parse().unwrap() });
        assert_eq!(attribute(lo, &facts(&[("x-forwarded-for", "127.0.0.1")]), &tp, false), Attribution::Unattributable);
    }
}
