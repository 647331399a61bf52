//! Secrets operations around SecretRefs (issue 16; the reference's `secrets` CLI docs and the
//! credential-surface matrix): where credentials may sit in a config (`surface`), the read-only
//! `audit`, the team secret store's rules (`store`), and dotenv text (`dotenv`). Resolution
//! itself is `config::secrets`; the shell reads the files and the store.

pub mod audit;
pub mod dotenv;
pub mod plan;
pub mod store;
pub mod surface;
