//! The SSE rendering of a turn ([`ResponsesStream`]).

use serde_json::{Value, json};

use super::*;
use crate::openai::ToolCall;
use crate::openai::turn::{TurnEvent, TurnResult};

/// The SSE encoder of one streamed response (spec §7, `responses-stream-provider-key-disabled`):
/// `event: <type>\ndata: <json with the same type>\n\n` per event, `data: [DONE]\n\n` last.
///
/// [`start`](Self::start) right after the headers: `response.created`, `response.in_progress`,
/// then (as the reference, before any text) the message item's `output_item.added` and
/// `content_part.added`. Then [`on_event`](Self::on_event) per turn event: one
/// `output_text.delta` per text delta; tool calls are collected; on `Finished`:
/// `output_text.done`, `content_part.done`, `output_item.done` (phase `final_answer`, or
/// `commentary` before tool calls), per call `output_item.added` + `output_item.done` (the
/// `function_call` item, `status:"completed"` on done), then `response.completed` (or
/// `response.incomplete`) with the full object and `[DONE]`; on `Failed`: `response.failed` and
/// `[DONE]`.
#[derive(Debug, Clone)]
pub struct ResponsesStream {
    ids: ResponseIds,
    model: String,
    created_at: u64,
    started: bool,
    text: String,
    calls: Vec<ToolCall>,
    response: Option<Value>,
}

pub(super) fn sse(event: Value) -> String {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    format!("event: {kind}\ndata: {event}\n\n")
}

impl ResponsesStream {
    pub fn new(ids: ResponseIds, model: impl Into<String>, created_at: u64) -> ResponsesStream {
        ResponsesStream { ids, model: model.into(), created_at, started: false, text: String::new(), calls: Vec::new(), response: None }
    }

    pub fn ids(&self) -> &ResponseIds {
        &self.ids
    }

    /// The opening events (empty if already sent).
    pub fn start(&mut self) -> String {
        if self.started {
            return String::new();
        }
        self.started = true;
        let initial = envelope(&self.ids, &self.model, self.created_at, "in_progress", Vec::new(), usage(0, 0));
        let mut s = sse(json!({"type": "response.created", "response": initial}));
        s.push_str(&sse(json!({"type": "response.in_progress", "response": initial})));
        let item = json!({"type": "message", "id": self.ids.message_id, "role": "assistant", "content": [], "status": "in_progress"});
        s.push_str(&sse(json!({"type": "response.output_item.added", "output_index": 0, "item": item})));
        s.push_str(&sse(json!({
            "type": "response.content_part.added", "item_id": self.ids.message_id, "output_index": 0, "content_index": 0,
            "part": output_text(""),
        })));
        s
    }

    /// One `response.output_text.delta`, written straight into its SSE event (the same bytes as
    /// [`sse`] of its JSON tree, without building one per delta; issue 17).
    fn delta(&mut self, t: &str) -> String {
        use crate::wire::push_json_str;
        self.text.push_str(t);
        let mut out = String::with_capacity(160 + self.ids.message_id.len() + t.len());
        out.push_str("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":");
        push_json_str(&mut out, &self.ids.message_id);
        out.push_str(",\"output_index\":0,\"content_index\":0,\"delta\":");
        push_json_str(&mut out, t);
        out.push_str("}\n\n");
        out
    }

    /// The SSE text for one turn event (empty when it adds nothing yet, and after the end).
    /// Sends the opening events first if [`start`](Self::start) was not called.
    pub fn on_event(&mut self, ev: &TurnEvent) -> String {
        if self.response.is_some() {
            return String::new();
        }
        let mut s = self.start();
        match ev {
            TurnEvent::Text(t) if !t.is_empty() => s.push_str(&self.delta(t)),
            TurnEvent::Text(_) => {}
            TurnEvent::ToolCallStart { index, id, name } => {
                if self.calls.len() <= *index {
                    self.calls.resize(index.saturating_add(1), ToolCall::default());
                }
                if let Some(c) = self.calls.get_mut(*index) {
                    c.id.clone_from(id);
                    c.name.clone_from(name);
                }
            }
            TurnEvent::ToolCallArgs { index, fragment } => {
                if let Some(c) = self.calls.get_mut(*index) {
                    c.arguments.push_str(fragment);
                }
            }
            TurnEvent::Finished(r) => s.push_str(&self.finished(r)),
            TurnEvent::Failed(e) => {
                let v = failed_object(&self.ids, &self.model, self.created_at, e);
                s.push_str(&sse(json!({"type": "response.failed", "response": v})));
                s.push_str(crate::openai::SSE_DONE);
                self.response = Some(v);
            }
        }
        s
    }

    fn finished(&mut self, r: &TurnResult) -> String {
        let mut s = String::new();
        let calls: Vec<ToolCall> = if r.tool_calls.is_empty() {
            self.calls.iter().filter(|c| !c.name.is_empty()).cloned().collect()
        } else {
            r.tool_calls.clone()
        };
        if self.text.is_empty() {
            // Nothing streamed: send the final text (or the fallback) as one delta.
            let text = if !r.text.is_empty() {
                r.text.clone()
            } else if calls.is_empty() {
                NO_RESPONSE.to_string()
            } else {
                String::new()
            };
            if !text.is_empty() {
                s.push_str(&self.delta(&text));
            }
        }
        let id = self.ids.message_id.clone();
        let text = self.text.clone();
        s.push_str(&sse(json!({"type": "response.output_text.done", "item_id": id, "output_index": 0, "content_index": 0, "text": text})));
        s.push_str(&sse(json!({
            "type": "response.content_part.done", "item_id": id, "output_index": 0, "content_index": 0,
            "part": output_text(&text),
        })));
        let phase = if calls.is_empty() { "final_answer" } else { "commentary" };
        let message = message_item(&id, &text, phase);
        s.push_str(&sse(json!({"type": "response.output_item.done", "output_index": 0, "item": message})));
        let mut output = vec![message];
        for (n, c) in calls.iter().enumerate() {
            let index = n + 1;
            s.push_str(&sse(
                json!({"type": "response.output_item.added", "output_index": index, "item": function_call_item(&self.ids, n, c, None)}),
            ));
            s.push_str(&sse(json!({
                "type": "response.output_item.done", "output_index": index, "item": function_call_item(&self.ids, n, c, Some("completed")),
            })));
            output.push(function_call_item(&self.ids, n, c, None));
        }
        let status = run_status(r);
        let v =
            finish(envelope(&self.ids, &self.model, self.created_at, status, output, usage(r.prompt_tokens, r.completion_tokens)), status);
        let kind = if status == "incomplete" { "response.incomplete" } else { "response.completed" };
        s.push_str(&sse(json!({"type": kind, "response": v})));
        s.push_str(crate::openai::SSE_DONE);
        self.response = Some(v);
        s
    }

    /// The stream has ended (`[DONE]` sent).
    pub fn is_done(&self) -> bool {
        self.response.is_some()
    }

    /// The final response object, once the stream has ended (kept for `GET /v1/responses/{id}`).
    pub fn response(&self) -> Option<&Value> {
        self.response.as_ref()
    }
}

#[cfg(test)]
mod delta_tests {
    use super::*;

    #[test]
    fn a_delta_event_is_the_generic_event_byte_for_byte() {
        let ids = ResponseIds { response_id: "resp_1".into(), message_id: "msg_\"1".into(), seed: "s".into() };
        for t in ["Hello", " wörld\n\t\u{1}\"q\"", ""] {
            let mut s = ResponsesStream::new(ids.clone(), "m", 1);
            let generic = sse(
                json!({"type": "response.output_text.delta", "item_id": ids.message_id, "output_index": 0, "content_index": 0, "delta": t}),
            );
            assert_eq!(s.delta(t), generic, "{t:?}");
        }
    }
}
