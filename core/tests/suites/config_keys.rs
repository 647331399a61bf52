//! `core/data/config-keys.json` is the reference's `config.schema` (captured in
//! `testdata/vectors/ws/op-config-schema.jsonl`) reduced to its key tree: this test derives it
//! again from the capture and fails when the two differ. After refreshing the capture:
//! `CLAWGATE_REGENERATE=1 cargo test -p clawgate-core --test suites config_keys::`.

use clawgate_core::config::keys::{REFERENCE_KEY_TREE, key_tree_from_schema};
use serde_json::Value;

const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors/ws/op-config-schema.jsonl");
const TREE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/config-keys.json");

fn captured_schema() -> Value {
    let text = std::fs::read_to_string(CAPTURE).expect("the config.schema capture");
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSONL line");
        if let Some(schema) = v.pointer("/frame/payload/schema") {
            return schema.clone();
        }
    }
    panic!("no config.schema answer in {CAPTURE}");
}

#[test]
fn the_key_tree_is_derived_from_the_captured_schema() {
    let derived = serde_json::to_string(&key_tree_from_schema(&captured_schema())).unwrap();
    if std::env::var_os("CLAWGATE_REGENERATE").is_some() {
        std::fs::write(TREE, &derived).unwrap();
    }
    assert!(derived == REFERENCE_KEY_TREE.trim_end(), "core/data/config-keys.json is stale: run with CLAWGATE_REGENERATE=1");
    let tree: Value = serde_json::from_str(REFERENCE_KEY_TREE).unwrap();
    // The top level of the reference's config is closed and knows the gateway's keys.
    assert_eq!(tree["a"], Value::Bool(false));
    assert!(tree.pointer("/p/gateway/p/port").is_some() && tree.pointer("/p/gateway/p/auth/p/token").is_some());
}
