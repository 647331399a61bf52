//! `core/data/config-schema.json` is the reference's `config.schema` answer (captured in
//! `testdata/vectors/ws/op-config-schema.jsonl`) pruned to the keys clawgate reads: this test
//! derives it again from the capture and fails when the two differ. After changing `USED_KEYS`
//! or refreshing the capture: `CLAWGATE_REGENERATE=1 cargo test -p clawgate-core --test suites config_schema::`.

use clawgate_core::config::keys::USED_KEYS;
use clawgate_core::config::schema::{CLAWGATE_SCHEMA, lookup, schema_from_reference, sensitive_paths};
use clawgate_core::config::settings::{REDACTED, redact};
use serde_json::{Value, json};

const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors/ws/op-config-schema.jsonl");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/config-schema.json");

fn captured() -> Value {
    let text = std::fs::read_to_string(CAPTURE).expect("the config.schema capture");
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSONL line");
        if let Some(p) = v.pointer("/frame/payload").filter(|p| p.get("schema").is_some()) {
            return p.clone();
        }
    }
    panic!("no config.schema answer in {CAPTURE}");
}

#[test]
fn the_schema_is_the_reference_schema_pruned_to_the_keys_clawgate_reads() {
    let reference = captured();
    let derived = serde_json::to_string(&schema_from_reference(&reference["schema"], &reference["uiHints"])).unwrap();
    if std::env::var_os("CLAWGATE_REGENERATE").is_some() {
        std::fs::write(DATA, &derived).unwrap();
    }
    assert!(derived == CLAWGATE_SCHEMA.trim_end(), "core/data/config-schema.json is stale: run with CLAWGATE_REGENERATE=1");
    // Every key clawgate reads can be looked up, with the reference's wording.
    for key in USED_KEYS.iter().filter(|k| !k.starts_with('$')) {
        let found = lookup(key).unwrap_or_else(|e| panic!("{key}: {}", e.message));
        assert_eq!(found["path"], json!(key));
    }
    let port = lookup("gateway.port").unwrap();
    assert_eq!(port["schema"]["type"], "integer");
    assert_eq!(port["hint"]["label"], "Gateway Port");
    assert_eq!(port["reloadKind"], "restart");
}

#[test]
fn every_sensitive_path_is_redacted_by_config_get() {
    // One value at each sensitive path (maps and arrays filled with one entry), then redact.
    let mut config = json!({});
    let paths = sensitive_paths();
    assert!(paths.contains(&"gateway.auth.token") && paths.contains(&"models.providers.*.apiKey"), "{paths:?}");
    for p in &paths {
        let mut slot = &mut config;
        let segs: Vec<String> = p.replace("[]", ".0").split('.').map(|s| if s == "*" { "x".to_string() } else { s.to_string() }).collect();
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            if seg == "0" {
                if !slot.is_array() {
                    *slot = json!([]);
                }
                let a = slot.as_array_mut().unwrap();
                if a.is_empty() {
                    a.push(json!({}));
                }
                slot = &mut a[0];
                if last {
                    *slot = json!("plaintext-secret");
                }
                continue;
            }
            if !slot.is_object() {
                *slot = json!({});
            }
            slot = slot.as_object_mut().unwrap().entry(seg.clone()).or_insert(if last { json!("plaintext-secret") } else { json!({}) });
        }
    }
    let shown = redact(&config).to_string();
    assert!(!shown.contains("plaintext-secret"), "a sensitive value is shown by config.get: {shown}");
    assert!(shown.contains(REDACTED));
}
