//! `GET /metrics` (operator §4): the gateway's figures in the OpenMetrics text format that
//! Prometheus scrapes, encoded by the `prometheus-client` crate from one read of the hub
//! ([`MetricsFigures`]). Behind the gateway's auth like the other operator routes (read scope).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::gateway::MetricsFigures;

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;

fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g: Gauge<f64, AtomicU64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn labelled<T: Copy>(registry: &mut Registry, name: &str, help: &str, label: &str, values: &[(String, T)], counter: bool)
where
    u64: From<T>,
{
    if counter {
        let family: Family<Labels, Counter> = Family::default();
        for (l, v) in values {
            family.get_or_create(&vec![(label.to_string(), l.clone())]).inc_by(u64::from(*v));
        }
        registry.register(name, help, family);
    } else {
        let family: Family<Labels, Gauge<f64, AtomicU64>> = Family::default();
        for (l, v) in values {
            family.get_or_create(&vec![(label.to_string(), l.clone())]).set(u64::from(*v) as f64);
        }
        registry.register(name, help, family);
    }
}

/// The exposition text for `f`.
pub fn render(f: &MetricsFigures) -> String {
    let mut registry = Registry::with_prefix("clawgate");
    let r = &f.runtime;
    gauge(&mut registry, "uptime_seconds", "Time since the gateway process started.", f.uptime_ms as f64 / 1000.0);
    let conns = [("open".to_string(), f.connections), ("authenticated".to_string(), f.authenticated)];
    labelled(&mut registry, "connections", "WebSocket connections, by state.", "state", &conns, false);
    gauge(&mut registry, "pending_requests", "Requests accepted and not yet answered.", f.pending_requests as f64);
    gauge(&mut registry, "agent_runs_active", "Agent runs executing now.", f.runs_active as f64);
    let finished: Vec<(String, u64)> = f.runs_finished.iter().map(|(k, v)| (k.clone(), *v)).collect();
    labelled(&mut registry, "agent_runs_finished", "Agent runs finished since start, by status.", "status", &finished, true);
    let reloads = [("applied".to_string(), f.config_reloads.0), ("failed".to_string(), f.config_reloads.1)];
    labelled(&mut registry, "config_reloads", "Config file changes evaluated, by outcome.", "outcome", &reloads, true);
    gauge(&mut registry, "store_problems", "Stores that failed to load or write (see health).", f.store_problems as f64);
    let dropped: Counter = Counter::default();
    dropped.inc_by(f.stability_dropped);
    registry.register("stability_events_dropped", "Diagnostic events pushed out of the stability ring.", dropped);
    gauge(&mut registry, "draining", "1 while the gateway drains for shutdown or restart.", if f.draining { 1.0 } else { 0.0 });
    gauge(
        &mut registry,
        "runtime_delay_p99_seconds",
        "Scheduling delay of the runtime's timer, p99 over the last minute.",
        r.delay_p99_ms / 1000.0,
    );
    gauge(
        &mut registry,
        "runtime_delay_max_seconds",
        "Scheduling delay of the runtime's timer, max over the last minute.",
        r.delay_max_ms / 1000.0,
    );
    gauge(&mut registry, "runtime_utilization", "Share of the runtime's worker threads kept busy.", r.utilization);
    gauge(&mut registry, "runtime_worker_threads", "Worker threads of the runtime.", f64::from(r.worker_threads));
    gauge(&mut registry, "process_cpu_core_ratio", "Process CPU time per wall time (cores in use).", r.cpu_core_ratio);
    gauge(&mut registry, "process_resident_memory_bytes", "Resident set size of the process.", r.rss_bytes as f64);
    gauge(&mut registry, "process_peak_resident_memory_bytes", "Peak resident set size of the process.", r.peak_rss_bytes as f64);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_carries_the_figures() {
        let mut f = MetricsFigures { uptime_ms: 1500, connections: 3, authenticated: 2, runs_active: 1, ..MetricsFigures::default() };
        f.runs_finished.insert("ok".into(), 4);
        f.config_reloads = (2, 1);
        f.runtime.rss_bytes = 12_345_678;
        let text = render(&f);
        assert!(text.contains("clawgate_uptime_seconds 1.5"), "{text}");
        assert!(text.contains("clawgate_connections{state=\"authenticated\"} 2"), "{text}");
        assert!(text.contains("clawgate_agent_runs_finished_total{status=\"ok\"} 4"), "{text}");
        assert!(text.contains("clawgate_config_reloads_total{outcome=\"failed\"} 1"), "{text}");
        assert!(text.contains("clawgate_process_resident_memory_bytes 12345678"), "{text}");
        assert!(text.contains("# TYPE clawgate_agent_runs_active gauge"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
