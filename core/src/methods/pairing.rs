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

/// `device.token.rotate|revoke` and `device.pair.rename` params (operator-schemas.json).
fn token_params(d: &Dispatch) -> Result<(String, String, Option<Vec<String>>), ErrorShape> {
    let ne = json!({"type": "string", "minLength": 1});
    let schema = match d.method.as_str() {
        "device.token.rotate" => json!({"type": "object", "required": ["deviceId", "role"],
            "properties": {"deviceId": ne, "role": ne, "scopes": {"type": "array", "items": ne}}, "additionalProperties": false}),
        "device.token.revoke" => json!({"type": "object", "required": ["deviceId", "role"],
            "properties": {"deviceId": ne, "role": ne}, "additionalProperties": false}),
        _ => json!({"type": "object", "required": ["deviceId", "label"],
            "properties": {"deviceId": ne, "label": {"type": "string", "minLength": 1, "maxLength": 64}}, "additionalProperties": false}),
    };
    crate::methods::validate_params(&d.method, &schema, d.params.as_ref())?;
    let p = d.params.clone().unwrap_or_default();
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let scopes = p.get("scopes").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
    let second = if d.method == "device.pair.rename" { s("label") } else { s("role") };
    Ok((s("deviceId"), second, scopes))
}

/// The close owed to the caller's own socket after its answer (its device's tokens changed).
pub(crate) type CloseAfter = Option<(u16, &'static str)>;

/// Answer a `device.pair.*` / `device.token.*` method, with the close owed to the caller's
/// socket; `None` for a method this module does not serve.
pub(crate) fn call(hub: &Hub, d: &Dispatch, unix_ms: u64) -> Option<(Reply, CloseAfter)> {
    let (conn, scopes) = (&d.caller.conn_id, &d.caller.scopes);
    let no_close = |v: Value| (v, false);
    let result = match d.method.as_str() {
        "device.pair.list" => param(d, None).map(|_| no_close(hub.device_pair_list())),
        "device.pair.approve" => param(d, Some("requestId")).and_then(|id| hub.device_pair_approve(&id, scopes, unix_ms)).map(no_close),
        "device.pair.reject" => param(d, Some("requestId")).and_then(|id| hub.device_pair_reject(&id, unix_ms)).map(no_close),
        "device.pair.remove" => param(d, Some("deviceId")).and_then(|id| hub.device_pair_remove(&id, conn, scopes)),
        "device.pair.rename" => token_params(d).and_then(|(id, label, _)| hub.device_pair_rename(&id, &label)).map(no_close),
        "device.token.rotate" => {
            token_params(d).and_then(|(id, role, requested)| hub.device_token_rotate(&id, &role, requested.as_deref(), conn, unix_ms))
        }
        "device.token.revoke" => token_params(d).and_then(|(id, role, _)| hub.device_token_revoke(&id, &role, conn, unix_ms)),
        _ => return None,
    };
    Some(match result {
        Ok((v, close)) => {
            let close = close.then_some((crate::wire::close_code::CLIENT_INVALIDATED, crate::wire::msg::DEVICE_REMOVED));
            (Reply::Ok(Some(v)), close)
        }
        Err(e) => (Reply::err(e), None),
    })
}
