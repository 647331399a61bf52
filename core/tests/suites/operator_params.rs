//! `core/data/operator-params.json` holds params schemas copied verbatim from the reference's
//! (`testdata/operator-schemas.json`, captured from openclaw 2026.9.6): this test fails when a
//! copy drifts from the capture.

use clawgate_core::methods::absent::OPERATOR_PARAMS;
use serde_json::Value;

const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/operator-schemas.json");

#[test]
fn the_copied_params_schemas_match_the_capture() {
    let captured: Value = serde_json::from_str(&std::fs::read_to_string(CAPTURE).unwrap()).unwrap();
    let ours: Value = serde_json::from_str(OPERATOR_PARAMS).unwrap();
    let ours = ours.as_object().unwrap();
    assert!(ours.len() >= 5);
    for (method, schema) in ours {
        assert_eq!(Some(schema), captured["methods"].get(method), "{method} differs from testdata/operator-schemas.json");
    }
}
