//! What the gateway tells about itself beyond `health` (operator §4): the stability ring of
//! typed diagnostic events (`diagnostics.stability`), the host facts the shell samples
//! (`system.info`), the config reloads seen, and the figures `/metrics` exports.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value, json};

/// Events the stability ring keeps (the reference's capacity).
pub const STABILITY_CAPACITY: usize = 1_000;
/// Events `diagnostics.stability` returns without a `limit`.
pub const STABILITY_DEFAULT_LIMIT: usize = 50;

/// Host facts the shell reads (`/proc`, `uname`, `statvfs`), refreshed with the runtime figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    pub hostname: String,
    /// Kernel release (`6.1.0-18-amd64`).
    pub release: String,
    /// `x64`, `arm64`, … (the reference's names).
    pub arch: String,
    /// `linux`, `darwin`, ….
    pub platform: String,
    pub cpu_count: u32,
    pub cpu_model: Option<String>,
    pub memory_total_bytes: u64,
    pub memory_free_bytes: u64,
    pub load_average: Option<[f64; 3]>,
    /// The state directory's file system.
    pub disk_path: String,
    pub disk_total_bytes: Option<u64>,
    pub disk_available_bytes: Option<u64>,
}

/// One diagnostic event.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    seq: u64,
    ts: u64,
    kind: String,
    fields: Map<String, Value>,
}

/// The diagnostics sub-state of the hub.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    ring: VecDeque<Event>,
    next_seq: u64,
    dropped: u64,
    pub(crate) host: Option<HostFacts>,
    /// Config reloads: `(applied, failed)`, and the last one's `{ts, outcome, paths}`.
    pub(crate) reloads: (u64, u64),
    pub(crate) last_reload: Option<Value>,
    /// Agent runs finished, by status (`ok`, `error`, `aborted`, …).
    pub(crate) runs_finished: BTreeMap<String, u64>,
}

impl Diagnostics {
    /// Keep an event (the oldest goes when the ring is full). `fields` that are not an object
    /// are ignored.
    pub(crate) fn record(&mut self, ts: u64, kind: &str, fields: Value) {
        self.next_seq += 1;
        if self.ring.len() == STABILITY_CAPACITY {
            self.ring.pop_front();
            self.dropped += 1;
        }
        let fields = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        self.ring.push_back(Event { seq: self.next_seq, ts, kind: kind.to_string(), fields });
    }

    /// Events pushed out of the full ring.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// A config reload's outcome (`applied`, `restart`, `skipped`, `failed`).
    pub(crate) fn record_reload(&mut self, ts: u64, outcome: &str, paths: &[String]) {
        if matches!(outcome, "skipped" | "failed") {
            self.reloads.1 += 1;
        } else {
            self.reloads.0 += 1;
        }
        let v = json!({"ts": ts, "outcome": outcome, "paths": paths});
        self.last_reload = Some(v);
        self.record(ts, "config.reload", json!({"outcome": outcome, "paths": paths}));
    }

    /// `diagnostics.stability` (operator §4): the newest `limit` events (`type`: only that
    /// kind), oldest first, with the ring's bounds and a count by type.
    pub(crate) fn stability(&self, limit: Option<usize>, kind: Option<&str>, generated_at: &str) -> Value {
        let limit = limit.unwrap_or(STABILITY_DEFAULT_LIMIT).clamp(1, STABILITY_CAPACITY);
        let matching: Vec<&Event> = self.ring.iter().filter(|e| kind.is_none_or(|k| e.kind == k)).collect();
        let events: Vec<Value> = matching[matching.len().saturating_sub(limit)..]
            .iter()
            .map(|e| {
                let mut v = json!({"seq": e.seq, "ts": e.ts, "type": e.kind});
                if let Some(o) = v.as_object_mut() {
                    o.extend(e.fields.clone());
                }
                v
            })
            .collect();
        let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &self.ring {
            *by_type.entry(e.kind.as_str()).or_default() += 1;
        }
        json!({
            "generatedAt": generated_at,
            "capacity": STABILITY_CAPACITY,
            "count": self.ring.len(),
            "dropped": self.dropped,
            "firstSeq": self.ring.front().map(|e| e.seq),
            "lastSeq": self.ring.back().map(|e| e.seq),
            "events": events,
            "summary": {"byType": by_type},
        })
    }
}

/// `diagnostics.stability` params: ignored except `limit` (1…1000) and `type`.
pub fn stability_params(params: Option<&Value>) -> (Option<usize>, Option<String>) {
    let p = params.filter(|p| p.is_object());
    let limit = p.and_then(|p| p.get("limit")).and_then(Value::as_u64).map(|n| n.min(STABILITY_CAPACITY as u64) as usize);
    let kind = p.and_then(|p| p.get("type")).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    (limit, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_and_counts_what_it_dropped() {
        let mut d = Diagnostics::default();
        for i in 0..(STABILITY_CAPACITY as u64 + 5) {
            d.record(i, if i % 2 == 0 { "a" } else { "b" }, json!({"i": i}));
        }
        let v = d.stability(Some(3), None, "t");
        assert_eq!(v["count"], STABILITY_CAPACITY);
        assert_eq!(v["dropped"], 5);
        assert_eq!(v["firstSeq"], 6);
        assert_eq!(v["lastSeq"], STABILITY_CAPACITY as u64 + 5);
        let events = v["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[2]["i"], STABILITY_CAPACITY as u64 + 4, "newest last");
        assert_eq!(v["summary"]["byType"]["a"], 500);
        let only_a = d.stability(None, Some("a"), "t");
        assert!(only_a["events"].as_array().unwrap().iter().all(|e| e["type"] == "a"));
        assert_eq!(only_a["events"].as_array().unwrap().len(), STABILITY_DEFAULT_LIMIT);
    }

    #[test]
    fn reloads_are_counted_and_kept() {
        let mut d = Diagnostics::default();
        d.record_reload(5, "applied", &["gateway.http".to_string()]);
        d.record_reload(6, "skipped", &[]);
        assert_eq!(d.reloads, (1, 1));
        assert_eq!(d.last_reload.as_ref().unwrap()["outcome"], "skipped");
        assert_eq!(d.stability(None, Some("config.reload"), "t")["events"].as_array().unwrap().len(), 2);
    }
}
