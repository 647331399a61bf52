//! `system-presence` (spec §8.2): the gateway's own row, the rows of connected clients that
//! report presence, and the `disconnect` rows that linger for the presence TTL.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::ServerInfo;

#[derive(Debug, Clone)]
struct PresenceRow<T> {
    entry: Value,
    ts: u64,
    /// Set when the client disconnected: the row goes at this instant.
    expires: Option<T>,
}

/// Presence rows by connection id. `T` is the monotonic time the hub runs on (`Instant`); the
/// rows only compare instants, so the unit tests drive them on plain numbers.
#[derive(Debug)]
pub(crate) struct Presence<T = Instant> {
    rows: HashMap<String, PresenceRow<T>>,
}

impl<T> Default for Presence<T> {
    fn default() -> Self {
        Presence { rows: HashMap::new() }
    }
}

impl<T: Copy + Ord> Presence<T> {
    /// A client connected and reports presence.
    pub(crate) fn connect(&mut self, conn_id: &str, entry: Value, unix_ms: u64) {
        self.rows.insert(conn_id.to_string(), PresenceRow { entry, ts: unix_ms, expires: None });
    }

    /// The client left: its row turns into a `disconnect` row until `expires` (now + the
    /// presence TTL). `false` when the connection had no row (nothing changed).
    pub(crate) fn disconnect(&mut self, conn_id: &str, expires: T, unix_ms: u64) -> bool {
        let Some(row) = self.rows.get_mut(conn_id) else { return false };
        row.entry["reason"] = json!("disconnect");
        row.entry["ts"] = json!(unix_ms);
        row.ts = unix_ms;
        row.expires = Some(expires);
        true
    }

    /// The list as clients see it: the gateway's own row first, then the newest rows, at most
    /// `max` in all. Expired rows are dropped.
    pub(crate) fn list(&mut self, own: Value, now: T, max: usize) -> Vec<Value> {
        self.rows.retain(|_, r| r.expires.is_none_or(|e| now < e));
        let mut rows: Vec<&PresenceRow<T>> = self.rows.values().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.ts));
        let mut out = vec![own];
        out.extend(rows.into_iter().take(max.saturating_sub(1)).map(|r| r.entry.clone()));
        out
    }
}

/// The gateway's own presence row (`reason: self`).
pub(crate) fn own_row(i: &ServerInfo, unix_ms: u64) -> Value {
    let ip = i.ip.clone().unwrap_or_else(|| "127.0.0.1".into());
    json!({
        "host": i.host,
        "ip": ip,
        "version": i.version,
        "platform": i.platform,
        "deviceFamily": i.device_family,
        "mode": "gateway",
        "reason": "self",
        "instanceId": i.boot_id,
        "text": format!("Gateway: {} ({}) · app {} · mode gateway · reason self", i.host, ip, i.version),
        "ts": unix_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_row_first_newest_next_disconnects_linger_for_the_ttl() {
        // Virtual time in seconds.
        let (t0, ttl) = (1_000u64, 300u64);
        let mut p: Presence<u64> = Presence::default();
        p.connect("c1", json!({"id": "one"}), 10);
        p.connect("c2", json!({"id": "two"}), 20);
        p.connect("c3", json!({"id": "three"}), 30);
        let ids = |l: Vec<Value>| l.iter().map(|v| v["id"].as_str().unwrap_or("self").to_string()).collect::<Vec<_>>();
        assert_eq!(ids(p.list(json!({}), t0, 10)), ["self", "three", "two", "one"]);
        assert_eq!(ids(p.list(json!({}), t0, 3)), ["self", "three", "two"], "capped at max, own row included");
        assert!(p.disconnect("c1", t0 + ttl, 40));
        assert!(!p.disconnect("nobody", t0 + ttl, 40));
        let l = p.list(json!({}), t0 + 299, 10);
        assert_eq!((l[1]["id"].as_str(), l[1]["reason"].as_str(), l[1]["ts"].as_u64()), (Some("one"), Some("disconnect"), Some(40)));
        assert_eq!(ids(p.list(json!({}), t0 + ttl, 10)), ["self", "three", "two"], "gone after the TTL");
    }
}
