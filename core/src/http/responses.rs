//! `POST /v1/responses` and `GET /v1/responses/{id}` (spec http §6.4, §7): the request checks
//! ([`crate::openai::responses`]), the turn to run, and what to keep. Two steps, because a
//! `previous_response_id` needs the stored conversation (the shell's database): [`handle`]
//! validates and resolves; [`ResponsesJob::plan`] takes the history and builds the turn.

use std::sync::Arc;

use serde_json::{Value, json};

use super::chat::SessionWrite;
use super::{ApiAction, ApiRequest, Env, HttpResponse};
use crate::agent::upstream_for;
use crate::gateway::Hub;
use crate::openai::responses::{self, InputLimits, ResponseIds, ResponsesRequest, ResponsesStream};
use crate::openai::turn::{TurnEvent, TurnResult, TurnSpec, Upstream};
use crate::openai::{self, ApiError};
use crate::sessions::{HttpSurface, http_session_key};

/// A validated Responses request, waiting for its history.
#[derive(Debug)]
pub struct ResponsesJob {
    pub request: ResponsesRequest,
    pub agent_id: String,
    /// The session key this request would use on its own (a `previous_response_id` may point
    /// at another session: the stored one wins).
    pub session_key: String,
    pub upstream: Upstream,
    pub model: String,
    pub max_tokens: Option<u64>,
    pub ids: ResponseIds,
    pub created_at: u64,
    /// The authenticated subject (continuity is per subject).
    pub subject: String,
}

/// A planned Responses turn.
#[derive(Debug)]
pub struct ResponsesRun {
    pub turn: TurnSpec,
    pub stream: bool,
    pub render: ResponsesRender,
    pub session: SessionWrite,
    /// The conversation to store with the response (for later `previous_response_id`).
    pub conversation: Vec<Value>,
}

/// What a stored response carries besides the response object.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousResponse {
    pub messages: Vec<Value>,
    pub session_key: Option<String>,
    pub subject: Option<String>,
    pub agent_id: Option<String>,
}

impl ResponsesJob {
    /// The stored response `previous_response_id` names, if any.
    pub fn previous_id(&self) -> Option<&str> {
        self.request.previous_response_id.as_deref().filter(|s| !s.is_empty())
    }

    /// Build the turn. `previous`: what the shell found for [`Self::previous_id`] (`None` when
    /// there is no such response, or it belongs to another caller or agent).
    pub fn plan(self, previous: Option<PreviousResponse>) -> Result<ResponsesRun, HttpResponse> {
        let fail = |e: ApiError| HttpResponse::json(e.status, e.body().to_string());
        let (history, key) = match (self.previous_id(), previous) {
            (None, _) => (Vec::new(), self.session_key.clone()),
            (Some(id), None) => {
                return Err(fail(ApiError {
                    status: 404,
                    kind: "invalid_request_error",
                    message: format!("Previous response with id '{id}' not found."),
                }));
            }
            (Some(id), Some(p)) => {
                let foreign =
                    p.subject.as_deref().is_some_and(|s| s != self.subject) || p.agent_id.as_deref().is_some_and(|a| a != self.agent_id);
                if foreign {
                    return Err(fail(ApiError {
                        status: 404,
                        kind: "invalid_request_error",
                        message: format!("Previous response with id '{id}' not found."),
                    }));
                }
                (p.messages, p.session_key.unwrap_or_else(|| self.session_key.clone()))
            }
        };
        let input = responses::prepare_turn(&self.request, &history, &InputLimits::default()).map_err(fail)?;
        let messages: Vec<Value> = input.messages.to_vec();
        let mut sampling = input.sampling.clone();
        if !sampling.contains_key("max_completion_tokens") {
            if let Some(m) = self.max_tokens {
                sampling.insert("max_completion_tokens".into(), json!(m));
            }
        }
        let new_input: Vec<Value> = input.conversation[history.len().min(input.conversation.len())..].to_vec();
        Ok(ResponsesRun {
            turn: TurnSpec {
                upstream: self.upstream,
                model: self.model,
                messages,
                tools: input.tools.clone(),
                tool_choice: input.tool_choice.clone(),
                sampling,
                id_seed: self.ids.seed.chars().take(10).collect(),
            },
            stream: self.request.stream,
            render: ResponsesRender { ids: self.ids, model: self.request.model.clone(), created_at: self.created_at },
            session: SessionWrite { key, agent_id: self.agent_id, input: new_input },
            conversation: input.conversation,
        })
    }
}

/// Renders a turn in the Responses shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRender {
    pub ids: ResponseIds,
    pub model: String,
    pub created_at: u64,
}

impl ResponsesRender {
    pub fn stream(&self) -> ResponsesStream {
        ResponsesStream::new(self.ids.clone(), self.model.clone(), self.created_at)
    }

    /// The non-streamed answer and the final response object.
    pub fn complete(&self, outcome: Result<&TurnResult, &ApiError>) -> (HttpResponse, Value) {
        let obj = responses::response_object(&self.ids, &self.model, self.created_at, outcome);
        (HttpResponse::json(responses::response_http_status(outcome), obj.to_string()), obj)
    }
}

/// Events that end a stream (the stream's final object is then ready).
pub fn is_terminal(ev: &TurnEvent) -> bool {
    matches!(ev, TurnEvent::Finished(_) | TurnEvent::Failed(_))
}

fn fail(e: ApiError) -> ApiAction {
    ApiAction::Respond(HttpResponse::json(e.status, e.body().to_string()))
}

/// Validate a Responses request and resolve its agent and provider.
pub fn handle(hub: &Arc<Hub>, request: &ApiRequest, body: &[u8], env: &Env) -> ApiAction {
    let api = hub.settings().api.clone();
    let req = match responses::parse_responses_request(body) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let agent_id = match openai::resolve_agent(&api.agents, &req.model, request.headers.agent_id.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let key = match http_session_key(
        HttpSurface::Responses,
        &agent_id,
        req.user.as_deref(),
        request.headers.session_key.as_deref(),
        &env.session_uuid(0),
    ) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let (upstream, model, max_tokens) = match upstream_for(&api, &agent_id, request.headers.model.as_deref()) {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let job = ResponsesJob {
        request: req,
        agent_id,
        session_key: key,
        upstream,
        model,
        max_tokens,
        ids: ResponseIds::from_seed(&crate::ids::hex(&env.random)),
        created_at: env.unix_ms / 1000,
        subject: request.caller.subject.clone(),
    };
    ApiAction::Responses(Box::new(job))
}
