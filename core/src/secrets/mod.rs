//! Secrets operations around SecretRefs (issue 16; the reference's `secrets` CLI docs and the
//! credential-surface matrix): where credentials may sit in a config (`surface`), the read-only
//! `audit`, the team secret store's rules (`store`), dotenv text (`dotenv`), `apply` plans
//! (`plan`) and the interactive planner's decisions (`configure`). Resolution
//! itself is `config::secrets`; the shell reads the files and the store.

pub mod audit;
pub mod configure;
pub mod dotenv;
pub mod plan;
pub mod store;
pub mod surface;
