//! The device-pairing methods (`device.pair.list|approve|reject|remove`, spec §5.5): parameter
//! checks with the reference's messages, then the hub's device store does the work (and emits
//! `device.pair.resolved`; the shell persists the store when its generation moves).

use serde_json::{Value, json};

use crate::connection::{Dispatch, Reply};
use crate::gateway::Hub;
use crate::wire::ErrorShape;

fn schema(required: Option<&str>) -> Value {
    match required {
        None => json!({"type": "object", "properties": {}, "additionalProperties": false}),
        Some(field) => json!({
            "type": "object",
            "required": [field],
            "properties": {field: {"type": "string", "minLength": 1}},
            "additionalProperties": false,
        }),
    }
}

fn param(d: &Dispatch, field: Option<&str>) -> Result<String, ErrorShape> {
    crate::methods::validate_params(&d.method, &schema(field), d.params.as_ref())?;
    Ok(field.and_then(|f| d.params.as_ref()?.get(f)?.as_str()).unwrap_or_default().to_string())
}

/// Answer a `device.pair.*` method; `None` for a method this module does not serve.
pub(crate) fn call(hub: &Hub, d: &Dispatch, unix_ms: u64) -> Option<Reply> {
    let result = match d.method.as_str() {
        "device.pair.list" => param(d, None).map(|_| hub.device_pair_list()),
        "device.pair.approve" => param(d, Some("requestId")).and_then(|id| hub.device_pair_approve(&id, &d.caller.scopes, unix_ms)),
        "device.pair.reject" => param(d, Some("requestId")).and_then(|id| hub.device_pair_reject(&id, unix_ms)),
        "device.pair.remove" => param(d, Some("deviceId")).and_then(|id| hub.device_pair_remove(&id, &d.caller.conn_id, &d.caller.scopes)),
        _ => return None,
    };
    Some(match result {
        Ok(v) => Reply::Ok(Some(v)),
        Err(e) => Reply::err(e),
    })
}
