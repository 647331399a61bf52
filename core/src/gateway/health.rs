//! Health (spec §11.1 `health`, §8.2 `health` event): the runtime's load figures from the
//! shell's sampler, stores that failed to load, and the cached snapshot built from them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::config::settings::GatewaySettings;

/// Runtime load figures measured by the shell (our equivalent of Node's event-loop stats).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeStats {
    /// Sampling interval actually observed.
    pub interval_ms: f64,
    /// Scheduling delay of the runtime's timer: p99 and max over the recent window.
    pub delay_p99_ms: f64,
    pub delay_max_ms: f64,
    /// Share of wall time the process spent on CPU, per core (0..=threads).
    pub cpu_core_ratio: f64,
    /// `cpu_core_ratio / worker_threads`: how busy the runtime's workers are.
    pub utilization: f64,
    pub host_utilization: Option<f64>,
    pub host_cpu_count: u32,
    pub worker_threads: u32,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    /// How long collecting these figures took.
    pub probe_duration_ms: u64,
}

/// Thresholds above which the runtime reports itself degraded.
pub const DEGRADED_DELAY_P99_MS: f64 = 1_000.0;
pub const DEGRADED_UTILIZATION: f64 = 0.9;

/// The cached health snapshot, as a tree (for `hello-ok`) and as its serialized text (for the
/// `health` method and event), built together.
#[derive(Debug)]
pub(crate) struct HealthCache {
    at: Instant,
    pub(crate) value: Value,
    pub(crate) json: Arc<str>,
}

/// What health is built from, and the cache.
#[derive(Debug, Default)]
pub(crate) struct Health {
    cache: Option<HealthCache>,
    runtime: RuntimeStats,
    degraded_since_ms: Option<u64>,
    /// Stores that failed to load and were moved aside or recovered (`storeWarnings`).
    store_warnings: BTreeMap<String, Value>,
}

impl Health {
    /// New figures from the sampler; the runtime is degraded since the first sample that was.
    pub(crate) fn set_runtime(&mut self, stats: RuntimeStats, unix_ms: u64) {
        let degraded = !degraded_reasons(&stats).is_empty();
        self.degraded_since_ms = match (degraded, self.degraded_since_ms) {
            (true, None) => Some(unix_ms),
            (true, since) => since,
            (false, _) => None,
        };
        self.runtime = stats;
    }

    pub(crate) fn runtime(&self) -> &RuntimeStats {
        &self.runtime
    }

    pub(crate) fn event_loop_json(&self) -> Value {
        event_loop_json(&self.runtime, self.degraded_since_ms)
    }

    /// A store failed to load (shown until cleared); the snapshot is rebuilt.
    pub(crate) fn report_store_problem(&mut self, key: &str, warning: Value) {
        self.store_warnings.insert(key.to_string(), warning);
        self.cache = None;
    }

    pub(crate) fn clear_store_problem(&mut self, key: &str) {
        if self.store_warnings.remove(key).is_some() {
            self.cache = None;
        }
    }

    pub(crate) fn store_warnings(&self) -> Vec<Value> {
        self.store_warnings.values().cloned().collect()
    }

    /// The cached snapshot, rebuilt when older than `health_interval` or when `force`d.
    pub(crate) fn snapshot(&mut self, settings: &GatewaySettings, now: Instant, unix_ms: u64, force: bool) -> &HealthCache {
        let interval = settings.limits.health_interval;
        let kept = self.cache.take().filter(|h| !force && now.saturating_duration_since(h.at) < interval);
        let cache = kept.unwrap_or_else(|| {
            let value = health_snapshot(settings, &self.runtime, self.degraded_since_ms, &self.store_warnings(), unix_ms);
            HealthCache { at: now, json: Arc::from(value.to_string()), value }
        });
        self.cache.insert(cache)
    }
}

fn degraded_reasons(s: &RuntimeStats) -> Vec<&'static str> {
    let mut r = Vec::new();
    if s.delay_p99_ms >= DEGRADED_DELAY_P99_MS {
        r.push("event_loop_delay");
    }
    if s.utilization >= DEGRADED_UTILIZATION {
        r.push("event_loop_utilization");
    }
    if s.host_utilization.is_some_and(|h| h >= 0.98) && s.cpu_core_ratio >= 0.9 {
        r.push("cpu");
    }
    r
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `eventLoop` object (health, status, readyz).
pub(crate) fn event_loop_json(s: &RuntimeStats, degraded_since_ms: Option<u64>) -> Value {
    let reasons = degraded_reasons(s);
    json!({
        "degraded": !reasons.is_empty(),
        "degradedSinceMs": degraded_since_ms,
        "reasons": reasons,
        "intervalMs": s.interval_ms,
        "delayP99Ms": round3(s.delay_p99_ms),
        "delayMaxMs": round3(s.delay_max_ms),
        "utilization": round3(s.utilization),
        "cpuCoreRatio": round3(s.cpu_core_ratio),
        "cpuBreakdown": {
            "mainThreadCoreRatio": round3(s.cpu_core_ratio),
            "workerCoreRatio": 0,
            "otherThreadsCoreRatio": 0,
            "hostUtilization": round3(s.host_utilization.unwrap_or(0.0).clamp(0.0, 1.0)),
            "hostCpuCount": s.host_cpu_count.max(1),
        },
    })
}

fn agent_sessions() -> Value {
    json!({"path": "", "count": 0, "recent": []})
}

/// The health snapshot (the `health` method result and `health` event payload).
fn health_snapshot(
    settings: &GatewaySettings,
    runtime: &RuntimeStats,
    degraded_since: Option<u64>,
    store_warnings: &[Value],
    unix_ms: u64,
) -> Value {
    let mut v = json!({
        "ok": true,
        "ts": unix_ms,
        // The sampler's own collection time (reading process and host counters) is the cost of
        // a health probe here.
        "durationMs": runtime.probe_duration_ms,
        "plugins": {"loaded": [], "errors": [], "unavailable": []},
        "configReload": {"hotReloadStatus": if settings.hot_reload_active { "active" } else { "disabled" }},
        "channels": {},
        "channelOrder": [],
        "channelLabels": {},
        "heartbeatSeconds": 0,
        "defaultAgentId": "main",
        "agents": [{
            "agentId": "main",
            "isDefault": true,
            "heartbeat": {"enabled": false, "every": "disabled", "everyMs": null, "prompt": "", "target": "none", "ackMaxChars": 0},
            "sessions": agent_sessions(),
        }],
        "sessions": agent_sessions(),
        "modelRuntime": {"degraded": false, "pendingAgents": []},
        "eventLoop": event_loop_json(runtime, degraded_since),
    });
    // Ours (absent while every store loaded): a store that was damaged, moved aside, recovered.
    if !store_warnings.is_empty() {
        v["storeWarnings"] = json!(store_warnings);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_since_holds_while_degraded_and_clears_after() {
        let mut h = Health::default();
        let busy = RuntimeStats { utilization: 0.95, ..Default::default() };
        h.set_runtime(busy.clone(), 10);
        h.set_runtime(busy, 20);
        let el = h.event_loop_json();
        assert_eq!((el["degraded"].as_bool(), el["degradedSinceMs"].as_u64()), (Some(true), Some(10)));
        assert_eq!(el["reasons"], json!(["event_loop_utilization"]));
        h.set_runtime(RuntimeStats { delay_p99_ms: 1_500.0, host_utilization: Some(0.99), cpu_core_ratio: 0.95, ..Default::default() }, 30);
        assert_eq!(h.event_loop_json()["reasons"], json!(["event_loop_delay", "cpu"]));
        h.set_runtime(RuntimeStats::default(), 40);
        assert_eq!(h.event_loop_json()["degradedSinceMs"], Value::Null);
        assert_eq!(h.runtime(), &RuntimeStats::default());
    }
}
