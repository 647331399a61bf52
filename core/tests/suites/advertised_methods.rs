//! `hello-ok.features.methods` is exactly the implemented set (issue 6; control-ui.md §0 item 7:
//! an advertised method that fails shows the user an error, a hidden one is never called).

use crate::common;

use std::time::Instant;

use clawgate_core::auth::scopes::{self, Role};
use clawgate_core::connection::handshake::ClientInfo;
use clawgate_core::connection::{Caller, Dispatch, Reply};
use clawgate_core::gateway::{Hub, RequestPermit};
use clawgate_core::methods::{ADVERTISED_METHODS, Call, dispatch};
use clawgate_core::testkit::{loopback_token_settings, test_server_info};
use clawgate_core::wire::ErrorShape;
use serde_json::{Value, json};

fn run(hub: &Hub, now: Instant, method: &str, params: Option<Value>) -> Option<ErrorShape> {
    let caller = Caller {
        conn_id: "c1".into(),
        role: Role::Operator,
        scopes: scopes::OPERATOR_SCOPES.iter().map(|s| s.to_string()).collect(),
        client: ClientInfo::default(),
    };
    let d = Dispatch { request_id: "1".into(), method: method.into(), params, caller, permit: RequestPermit::unmetered() };
    match dispatch(hub, &d, now, 1) {
        Call::Reply(Reply::Err { error, .. }) => Some(error),
        _ => None,
    }
}

fn unknown(e: &Option<ErrorShape>) -> bool {
    e.as_ref().is_some_and(|e| e.message.starts_with("unknown method"))
}

/// `hello-ok.features.methods` lists exactly what is implemented: every advertised method
/// dispatches to a handler, and every method of the reference's table we answer is advertised.
#[test]
fn advertised_methods_are_exactly_the_implemented_ones() {
    let now = common::t0();
    let hub = Hub::new(test_server_info(now, 1), loopback_token_settings("t", 1), now);
    for m in ADVERTISED_METHODS {
        for params in [None, Some(json!({}))] {
            assert!(!unknown(&run(&hub, now, m, params)), "advertised but not implemented: {m}");
        }
    }
    let table: Value = serde_json::from_str(include_str!("../../data/method-scopes.json")).unwrap();
    let names: Vec<&String> = table["core"].as_object().unwrap().keys().collect();
    assert!(names.len() > 100);
    for m in names {
        if m == "connect" {
            continue;
        }
        let e = run(&hub, now, m, Some(json!({})));
        if !unknown(&e) {
            assert!(ADVERTISED_METHODS.contains(&m.as_str()), "implemented but not advertised: {m} ({e:?})");
        }
    }
    let mut seen = std::collections::HashSet::new();
    assert!(ADVERTISED_METHODS.iter().all(|m| seen.insert(*m)), "advertised twice");
}
