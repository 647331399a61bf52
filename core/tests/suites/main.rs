//! The core's tests, one test binary (one link instead of one per suite): state machines
//! driven by hand with an explicit `now`, the reference's captured vectors, proptests and the
//! fuzz corpus replay. Run one suite with `cargo test -p clawgate-core --test suites <name>::`.

mod common;
mod http_capture;

mod advertised_methods;
mod agent_runs;
mod client_pair;
mod config_keys;
mod config_schema;
mod config_tables;
mod cron_scheduler;
mod device_vectors;
mod devices;
mod dispatch;
mod events;
mod floors;
mod fuzz_corpus_replay;
mod handshake;
mod hooks_gate;
mod http_api_no_panic;
mod http_vectors_admin_rpc;
mod http_vectors_embeddings;
mod http_vectors_hooks;
mod http_vectors_tools;
mod hub_health;
mod limits_timers;
mod operator_params;
mod proptest_connection;
mod rate_limit;
mod reload;
mod responses_vectors;
mod run_machine;
mod turn;
