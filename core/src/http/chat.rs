//! `POST /v1/chat/completions` (spec http §6.3, §7): validation in the reference's order, the
//! agent turn to run, and the rendering of its events as a `chat.completion` or as SSE chunks.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{ApiAction, ApiRequest, Env, HttpResponse};
use crate::agent::upstream_for;
use crate::gateway::Hub;
use crate::openai::turn::{TurnEvent, TurnResult, TurnSpec};
use crate::openai::{self, ApiError, ChatRequest, Completion};
use crate::sessions::{HttpSurface, http_session_key};

/// What a finished exchange adds to its session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionWrite {
    pub key: String,
    pub agent_id: String,
    /// The request's new messages (the trailing user/tool turn), stored before the reply.
    pub input: Vec<Value>,
}

/// An agent turn for a chat completion.
#[derive(Debug)]
pub struct ChatJob {
    pub turn: TurnSpec,
    pub agent_id: String,
    pub stream: bool,
    pub render: ChatRender,
    pub session: SessionWrite,
    /// The request continues a stored session without carrying its conversation (a stable
    /// session — `user` or `x-openclaw-session-key` — and no assistant message in `messages`):
    /// the shell adds the stored history with [`ChatJob::add_history`]. Clients that resend the
    /// whole conversation (most OpenAI clients) are taken as they are.
    pub wants_history: bool,
}

impl ChatJob {
    /// Insert the session's stored conversation after the leading system messages.
    pub fn add_history(&mut self, history: Vec<Value>) {
        let at = self.turn.messages.iter().take_while(|m| m.get("role").and_then(Value::as_str) == Some("system")).count();
        self.turn.messages.splice(at..at, history);
    }
}

/// Renders a turn's events in the chat completions shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRender {
    /// `chatcmpl_<uuid>` (underscore, as the reference).
    pub id: String,
    pub created: u64,
    /// The request's `model`, echoed verbatim.
    pub model: String,
    pub include_usage: bool,
}

impl ChatRender {
    /// The first SSE event: the assistant role chunk.
    pub fn stream_start(&self) -> String {
        openai::chunk(&self.id, self.created, &self.model, json!({"role": "assistant"}), None)
    }

    /// SSE text for one turn event (empty when the event adds nothing to the stream). After a
    /// terminal event the stream is complete (`[DONE]` included).
    pub fn stream_event(&self, ev: &TurnEvent) -> String {
        match ev {
            TurnEvent::Text(t) => openai::content_chunk(&self.id, self.created, &self.model, t),
            TurnEvent::ToolCallStart { index, id, name } => openai::chunk(
                &self.id,
                self.created,
                &self.model,
                json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            ),
            TurnEvent::ToolCallArgs { index, fragment } => openai::chunk(
                &self.id,
                self.created,
                &self.model,
                json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                None,
            ),
            TurnEvent::Finished(r) => {
                let mut s = openai::chunk(&self.id, self.created, &self.model, json!({}), Some(&finish_reason(r)));
                if self.include_usage {
                    s.push_str(&openai::usage_chunk(&self.id, self.created, &self.model, &completion(r)));
                }
                s.push_str(openai::SSE_DONE);
                s
            }
            // Errors after the headers: an error event, then `[DONE]`, no finish chunk (§7).
            TurnEvent::Failed(e) => format!("data: {}\n\n{}", e.body(), openai::SSE_DONE),
        }
    }

    /// The non-streamed answer.
    pub fn complete(&self, outcome: Result<&TurnResult, &ApiError>) -> HttpResponse {
        match outcome {
            Ok(r) => HttpResponse::json(200, openai::chat_completion(&self.id, self.created, &self.model, r, &finish_reason(r))),
            Err(e) => HttpResponse::json(e.status, e.body().to_string()),
        }
    }
}

fn finish_reason(r: &TurnResult) -> String {
    if r.finish_reason.is_empty() { "stop".into() } else { r.finish_reason.clone() }
}

fn completion(r: &TurnResult) -> Completion {
    Completion { finish_reason: finish_reason(r), ..r.clone() }
}

/// The trailing messages of a request that are new to the session: from the last assistant
/// message on (its tool results and the new user turn), or everything when there is none.
fn new_input(messages: &[Value]) -> Vec<Value> {
    let last_assistant = messages.iter().rposition(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    let from = last_assistant.map_or(0, |i| i + 1);
    messages[from..].iter().filter(|m| m.get("role").and_then(Value::as_str) != Some("system")).cloned().collect()
}

fn fail(e: ApiError) -> ApiAction {
    ApiAction::Respond(HttpResponse::json(e.status, e.body().to_string()))
}

/// Validate a chat request and plan its turn.
pub fn handle(hub: &Arc<Hub>, request: &ApiRequest, body: &[u8], env: &Env) -> ApiAction {
    let api = hub.settings().api.clone();
    let req: ChatRequest = match openai::parse_chat_request(body) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let agent_id = match openai::resolve_agent(&api.agents, &req.model, request.headers.agent_id.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let fresh = env.session_uuid(0);
    let key = match http_session_key(
        HttpSurface::ChatCompletions,
        &agent_id,
        req.user.as_deref(),
        request.headers.session_key.as_deref(),
        &fresh,
    ) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    if let Err(e) = openai::check_chat_content(&req) {
        return fail(e);
    }
    let (upstream, model, max_tokens) = match upstream_for(&api, &agent_id, request.headers.model.as_deref()) {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let messages: Vec<Value> = req.messages.to_vec();
    let mut sampling = req.sampling.clone();
    if !sampling.contains_key("max_tokens") && !sampling.contains_key("max_completion_tokens") {
        if let Some(m) = max_tokens {
            sampling.insert("max_completion_tokens".into(), json!(m));
        }
    }
    let stable = request.headers.session_key.as_deref().is_some_and(|h| !h.trim().is_empty())
        || req.user.as_deref().is_some_and(|u| !u.trim().is_empty());
    let carries_conversation = req.messages.iter().any(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    let job = ChatJob {
        turn: TurnSpec {
            upstream,
            model,
            messages,
            tools: req.tools.clone(),
            tool_choice: req.tool_choice.clone(),
            sampling,
            id_seed: crate::ids::hex(&env.random[16..21]),
        },
        agent_id: agent_id.clone(),
        stream: req.stream,
        render: ChatRender {
            id: format!("chatcmpl_{}", env.uuid(16)),
            created: env.unix_ms / 1000,
            model: req.model.clone(),
            include_usage: req.include_usage,
        },
        session: SessionWrite { key, agent_id, input: new_input(&req.messages) },
        wants_history: stable && !carries_conversation,
    };
    ApiAction::Chat(Box::new(job))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_rendering() {
        let r = ChatRender { id: "chatcmpl_x".into(), created: 1, model: "openclaw".into(), include_usage: true };
        assert!(r.stream_start().contains(r#""delta":{"role":"assistant"}"#));
        let done =
            r.stream_event(&TurnEvent::Finished(TurnResult { text: "hi".into(), finish_reason: "stop".into(), ..Default::default() }));
        assert!(done.contains(r#""finish_reason":"stop""#) && done.contains(r#""choices":[]"#) && done.ends_with("data: [DONE]\n\n"));
        let failed = r.stream_event(&TurnEvent::Failed(ApiError::invalid("x")));
        assert!(failed.starts_with("data: {\"error\"") && failed.ends_with("data: [DONE]\n\n"));
    }
}
