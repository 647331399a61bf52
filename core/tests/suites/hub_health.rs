//! The hub's health cache (`gateway::health`) on virtual time: the snapshot is cached for
//! `health_interval`, rebuilt when forced, when stale, and when a store problem is reported or
//! cleared (spec §11.1).

use crate::common;

use common::Gw;
use serde_json::json;

#[test]
fn the_snapshot_is_cached_for_the_interval_and_rebuilt_by_a_store_problem() {
    let gw = Gw::new();
    let interval = gw.hub.settings().limits.health_interval;
    let t0 = gw.t0;
    assert_eq!(gw.hub.health(t0, 100, false)["ts"], 100);
    assert_eq!(gw.hub.health(t0 + interval / 2, 200, false)["ts"], 100, "cached");
    assert_eq!(gw.hub.health(t0 + interval / 2, 300, true)["ts"], 300, "forced");
    gw.hub.report_store_problem("devices", json!({"store": "devices"}));
    let snap = gw.hub.health(t0 + interval / 2, 400, false);
    assert_eq!((snap["ts"].as_u64(), snap["storeWarnings"][0]["store"].as_str()), (Some(400), Some("devices")));
    assert_eq!(gw.hub.health_json(t0 + interval / 2, 401, false).as_ref(), snap.to_string(), "the text is the tree");
    gw.hub.clear_store_problem("devices");
    assert!(gw.hub.health(t0 + interval / 2, 500, false).get("storeWarnings").is_none());
    assert_eq!(gw.hub.health(t0 + interval / 2 + interval, 600, false)["ts"], 600, "stale after the interval");
}
