//! `channels.*` where clawgate hosts no messaging channel (spec operator §8): the reference's
//! result shapes describing exactly that — no channels, no accounts, no pairing requests — so
//! the Control UI's Channels view and `openclaw channels status` render their empty state, and
//! naming a channel answers the reference's unknown-channel errors. Nothing is invented.

use serde_json::{Value, json};

use super::validate_params;
use crate::gateway::Hub;
use crate::wire::{ErrorShape, Reply};

fn status_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"probe": {"type": "boolean"}, "timeoutMs": {"type": "integer", "minimum": 0}, "channel": {"type": "string", "minLength": 1}},
        "additionalProperties": false,
    })
}

fn pairing_list_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"channel": {"type": "string", "minLength": 1}, "accountId": {"type": "string", "minLength": 1}},
        "additionalProperties": false,
    })
}

/// `channels.status`: no channels (every named one is unknown), with the runtime's real
/// event-loop figures.
pub(crate) fn status(hub: &Hub, params: Option<&Value>, unix_ms: u64) -> Reply {
    if let Err(e) = validate_params("channels.status", &status_schema(), params) {
        return Reply::err(e);
    }
    if let Some(channel) = params.and_then(|p| p.get("channel")).and_then(Value::as_str) {
        return Reply::err(ErrorShape::invalid_request(format!("unknown channel: {channel}")));
    }
    Reply::Ok(Some(json!({
        "ts": unix_ms,
        "channelOrder": [],
        "channelLabels": {},
        "channelDetailLabels": {},
        "channelSystemImages": {},
        "channelMeta": [],
        "eventLoop": hub.event_loop_json(),
        "channels": {},
        "channelAccounts": {},
        "channelDefaultAccountId": {},
        "statusIssues": [],
    })))
}

/// `channels.pairing.list`: no accounts and no requests (a named channel is unknown).
pub(crate) fn pairing_list(params: Option<&Value>) -> Reply {
    if let Err(e) = validate_params("channels.pairing.list", &pairing_list_schema(), params) {
        return Reply::err(e);
    }
    if let Some(channel) = params.and_then(|p| p.get("channel")).and_then(Value::as_str) {
        return Reply::err(ErrorShape::invalid_request(format!("Error: unknown pairing channel: {channel}")));
    }
    Reply::Ok(Some(json!({
        "accounts": [],
        "requests": [],
        "commandOwnerConfigured": false,
        "limits": {"pendingPerAccount": 3, "ttlMs": 3_600_000},
    })))
}
