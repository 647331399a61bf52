//! clawgate-bench: measure gateways side by side over loopback — handshake latency, `health`
//! round trips, pipelined throughput, memory per idle connection and start-up time — against a
//! bare hyper + tungstenite echo server (`bench-echo`, the physical-limit baseline) and the
//! reference gateway. See `BENCHMARKS.md` at the workspace root for how to run it.

pub mod bench;
pub mod procfs;
pub mod relay;
pub mod report;
pub mod run;
pub mod spawn;
pub mod stats;
pub mod sys;
pub mod ws;
