//! The response object and its ids ([`response_object`], [`response_http_status`]).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;
use crate::openai::turn::TurnResult;
use crate::openai::{ApiError, ToolCall};

/// The ids of one response. The core has no RNG: build them from the shell's randomness,
/// normally with [`ResponseIds::from_seed`] (e.g. the hex of the request's random bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseIds {
    /// `resp_<uuid>`.
    pub response_id: String,
    /// `msg_<uuid>`: the assistant message item.
    pub message_id: String,
    /// Secret-free randomness the function-call ids are derived from.
    pub seed: String,
}

impl ResponseIds {
    /// All ids derived from one random seed (SHA-256; unpredictable if the seed is).
    pub fn from_seed(seed: &str) -> ResponseIds {
        ResponseIds {
            response_id: format!("resp_{}", derived_uuid(seed, "response", 0)),
            message_id: format!("msg_{}", derived_uuid(seed, "message", 0)),
            seed: seed.to_string(),
        }
    }

    /// `call_<uuid>`: the id of the `n`-th function_call output item.
    pub fn call_item_id(&self, n: usize) -> String {
        format!("call_{}", derived_uuid(&self.seed, "call-item", n))
    }

    /// The `call_id` of the `n`-th function call: 9 hex characters, as the reference generates
    /// (the upstream's own call id is not exposed).
    pub fn call_id(&self, n: usize) -> String {
        crate::ids::hex(&derive(&self.seed, "call-id", n)[..5])[..9].to_string()
    }
}

pub(super) fn derive(seed: &str, label: &str, n: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update([0]);
    h.update(label.as_bytes());
    h.update([0]);
    h.update((n as u64).to_le_bytes());
    h.finalize().into()
}

pub(super) fn derived_uuid(seed: &str, label: &str, n: usize) -> String {
    let d = derive(seed, label, n);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    crate::ids::uuid_v4(b)
}

/// Responses-style usage.
pub(super) fn usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input.saturating_add(output),
    })
}

pub(super) fn envelope(ids: &ResponseIds, model: &str, created_at: u64, status: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({"id": ids.response_id, "object": "response", "created_at": created_at, "status": status, "model": model, "output": output, "usage": usage})
}

pub(super) fn message_item(id: &str, text: &str, phase: &str) -> Value {
    json!({"type": "message", "id": id, "role": "assistant", "content": [output_text(text)], "phase": phase, "status": "completed"})
}

pub(super) fn function_call_item(ids: &ResponseIds, n: usize, call: &ToolCall, status: Option<&str>) -> Value {
    let mut v = json!({"type": "function_call", "id": ids.call_item_id(n), "call_id": ids.call_id(n), "name": call.name, "arguments": call.arguments});
    if let (Some(s), Some(o)) = (status, v.as_object_mut()) {
        o.insert("status".into(), json!(s));
    }
    v
}

/// `completed`, or `incomplete` when the output budget ran out (`finish_reason: "length"`).
pub(super) fn run_status(r: &TurnResult) -> &'static str {
    if r.finish_reason == "length" { "incomplete" } else { "completed" }
}

pub(super) fn finish(mut v: Value, status: &str) -> Value {
    if status == "incomplete" {
        if let Some(o) = v.as_object_mut() {
            o.insert("incomplete_details".into(), json!({"reason": "max_output_tokens"}));
        }
    }
    v
}

pub(super) fn failed_object(ids: &ResponseIds, model: &str, created_at: u64, e: &ApiError) -> Value {
    let mut v = envelope(ids, model, created_at, "failed", Vec::new(), usage(0, 0));
    if let Some(o) = v.as_object_mut() {
        o.insert("error".into(), json!({"code": e.kind, "message": e.message}));
    }
    v
}

/// The full response object of a finished or failed turn (`responses-nonstream`,
/// `responses-provider-key-disabled`). A text answer is one `message` item (`phase:
/// "final_answer"`); client tool calls are `function_call` items, after a `commentary` message
/// when the agent also wrote text. A failure is `status:"failed"`, `output:[]` and
/// `error:{code:<type>,message}`.
pub fn response_object(ids: &ResponseIds, model: &str, created_at: u64, outcome: Result<&TurnResult, &ApiError>) -> Value {
    let r = match outcome {
        Ok(r) => r,
        Err(e) => return failed_object(ids, model, created_at, e),
    };
    let mut output = Vec::with_capacity(r.tool_calls.len() + 1);
    if r.tool_calls.is_empty() {
        let text = if r.text.is_empty() { NO_RESPONSE } else { r.text.as_str() };
        output.push(message_item(&ids.message_id, text, "final_answer"));
    } else if !r.text.is_empty() {
        output.push(message_item(&ids.message_id, &r.text, "commentary"));
    }
    output.extend(r.tool_calls.iter().enumerate().map(|(n, c)| function_call_item(ids, n, c, None)));
    let status = run_status(r);
    finish(envelope(ids, model, created_at, status, output, usage(r.prompt_tokens, r.completion_tokens)), status)
}

/// The HTTP status of a failed run: the mapped status of a provider error, else 500.
pub fn failure_status(e: &ApiError) -> u16 {
    if (400..=599).contains(&e.status) { e.status } else { 500 }
}

/// The HTTP status of a non-streamed response: 200, or [`failure_status`].
pub fn response_http_status(outcome: Result<&TurnResult, &ApiError>) -> u16 {
    match outcome {
        Ok(_) => 200,
        Err(e) => failure_status(e),
    }
}

/// An `output_text` content part with the fields of the OpenAI schema: `annotations` and
/// `logprobs` (empty; the reference leaves them out, which strict clients such as the AI SDK
/// reject).
pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}
