//! Executes agent runs for the shells: asks the core for the run's plan and carries it out.

use std::sync::Arc;
use std::time::Instant;

use clawgate_core::agent::RunSpec;
use clawgate_core::gateway::Hub;
use clawgate_core::methods;

use crate::rt::Runtime;
use crate::session::unix_ms;

/// Run one agent turn to its end. Plans that need no IO (no provider configured) finish here;
/// upstream provider calls are added with the model configuration.
pub async fn execute<R: Runtime>(_rt: R, hub: Arc<Hub>, run: RunSpec) {
    methods::execute_without_io(&hub, &run, Instant::now(), unix_ms());
}
