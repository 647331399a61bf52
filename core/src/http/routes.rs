//! The API routes answered by the pure route modules (spec http §6.5–§6.8): `/v1/embeddings`
//! ([`crate::openai::embeddings`]), `/tools/invoke` ([`crate::tools`]), `/sessions/<key>/history` and
//! `/kill`, `/api/v1/admin/rpc` ([`crate::http::admin_rpc`]) and the hooks ([`crate::http::hooks`]). Each
//! turns a read body into an [`ApiAction`]; the IO they need (the embeddings upstream, the
//! session store, config writes, agent runs) is the shell's.

use std::sync::Arc;

use serde_json::json;

use super::{ApiAction, ApiRequest, Env, HttpResponse};
use crate::agent::RunSpec;
use crate::auth::scopes::{self, Authorization, Role};
use crate::connection::handshake::ClientInfo;
use crate::connection::{Caller, Dispatch, Reply};
use crate::gateway::{Hub, RequestPermit};
use crate::http::admin_rpc::{self, RpcRequest, Step};
use crate::http::hooks::{self, HookDecision, HookIds, HookPolicy, WakeOutcome};
use crate::methods::{self, Call};
use crate::openai::ApiError;
use crate::openai::api_response::ApiResponse;
use crate::openai::embeddings::{EmbeddingsCall, EmbeddingsContext, EmbeddingsError};
use crate::sessions::{self, SessionStore};
use crate::tools::{self, StoreHost, Surface, ToolsContext, ToolsInvokeInput};
use crate::wire::ErrorShape;

/// `GET /sessions/<key>/history` rows when `?limit=` is absent, and its ceiling.
pub(crate) const SESSION_HISTORY_MAX_LIMIT: usize = 1000;

// ---------------------------------------------------------------------------------------------
// /v1/embeddings

/// Validate an embeddings request and build its upstream call.
pub(crate) fn embeddings(hub: &Hub, request: &ApiRequest, body: &[u8]) -> ApiAction {
    let api = hub.settings().api.clone();
    let ctx = EmbeddingsContext {
        agents: &api.agents,
        config: api.embeddings.as_ref(),
        header_agent: request.headers.agent_id.as_deref(),
        header_model: request.headers.model.as_deref(),
    };
    match crate::openai::embeddings::prepare(body, &ctx) {
        Ok(call) => ApiAction::Embeddings(Box::new(call)),
        Err(e) => embeddings_failure(e),
    }
}

fn embeddings_failure(e: EmbeddingsError) -> ApiAction {
    let response = HttpResponse::from(e.response());
    match e.log {
        Some(log) => ApiAction::Fail { response, log },
        None => ApiAction::Respond(response),
    }
}

/// The answer to an embeddings request from the upstream's status and body (`Err`: the
/// request failed below HTTP). Upstream failures are the reference's opaque 500 with the real
/// reason to log ([`ApiAction::Fail`]).
pub fn finish_embeddings(hub: &Hub, call: &EmbeddingsCall, upstream: Result<(u16, Vec<u8>), String>) -> ApiAction {
    let outcome = match upstream {
        Ok((status, body)) => call.respond(status, &body),
        Err(reason) => Err(call.transport_failed(&reason)),
    };
    match outcome {
        Ok(r) => ApiAction::Respond(HttpResponse::from(r)),
        Err(e) => embeddings_failure(e),
    }
    .secured(hub)
}

// ---------------------------------------------------------------------------------------------
// /tools/invoke and /sessions/<key>/…

/// Parse a `/tools/invoke` body; the invocation reads the session store.
pub(crate) fn tools_invoke(body: &[u8]) -> ApiAction {
    match tools::parse_http_body(body) {
        Ok(input) => ApiAction::Store(Box::new(StoreJob::ToolsInvoke(input))),
        Err(e) => ApiAction::Respond(ApiResponse::openai_error(&e).into()),
    }
}

/// `/sessions/<key>/history` → `(key, false)`, `/sessions/<key>/kill` → `(key, true)`; the key
/// percent-decoded and trimmed (`None` when that fails or leaves nothing). `None` for any other
/// path.
pub(crate) fn session_path(path: &str) -> Option<(Option<String>, bool)> {
    let (segment, action) = path.strip_prefix("/sessions/")?.split_once('/')?;
    let kill = match action {
        "history" => false,
        "kill" => true,
        _ => return None,
    };
    if segment.is_empty() {
        return None;
    }
    let key = crate::openai::percent_decode(segment).map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    Some((key, kill))
}

/// `?limit=` of `GET /sessions/<key>/history`: a positive integer, capped; a bad value is 1 (as
/// the reference).
pub(crate) fn history_limit(query: &str) -> Option<usize> {
    let raw = query.split('&').find_map(|pair| pair.strip_prefix("limit="))?.trim();
    if raw.is_empty() {
        return None;
    }
    match raw.parse::<u64>() {
        Ok(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX).min(SESSION_HISTORY_MAX_LIMIT)),
        _ => Some(1),
    }
}

/// A request answered from the session store. Blocking: the shell runs [`StoreJob::run`] off
/// the reactor.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreJob {
    /// `POST /tools/invoke` with a parsed body.
    ToolsInvoke(ToolsInvokeInput),
    /// `GET /sessions/<key>/history`.
    SessionHistory { key: String, limit: Option<usize> },
    /// `POST /sessions/<key>/kill`: abort the session's runs.
    SessionKill { key: String },
}

fn store_unavailable(hub: &Hub) -> HttpResponse {
    let e = ApiError { status: 503, kind: "unavailable", message: "Gateway context is unavailable; retry shortly.".into() };
    HttpResponse::api_error(hub, &e)
}

fn session_not_found(key: &str) -> HttpResponse {
    ApiResponse::json(404, &json!({"ok": false, "error": {"type": "not_found", "message": format!("Session not found: {key}")}})).into()
}

/// A key as stored: agent-scoped keys as they are, plain keys under the default agent (or the
/// first configured one).
fn stored_key(hub: &Hub, key: &str) -> String {
    let agents = &hub.settings().api.agents;
    let agent = sessions::agent_id_of_key(key)
        .or_else(|| agents.default.clone())
        .or_else(|| agents.ids.first().cloned())
        .unwrap_or_else(|| crate::agent::DEFAULT_AGENT_ID.to_string());
    sessions::canonical_session_key(key, &agent)
}

impl StoreJob {
    /// Answer from `store` (`None`: the store could not be opened).
    pub fn run(self, hub: &Hub, store: Option<&dyn SessionStore>, now_ms: u64) -> HttpResponse {
        let r = match self {
            StoreJob::ToolsInvoke(input) => {
                let api = hub.settings().api.clone();
                let version = hub.info().version.clone();
                let ctx = ToolsContext::from_api(&api, &version, now_ms);
                tools::http_response(&tools::invoke(&input, Surface::Http, &ctx, &StoreHost { store, api: &api })).into()
            }
            StoreJob::SessionHistory { key, limit } => {
                let Some(store) = store else { return store_unavailable(hub) };
                let stored = stored_key(hub, &key);
                let limit = limit.unwrap_or(SESSION_HISTORY_MAX_LIMIT);
                match store.session(&stored).and_then(|s| Ok((s, store.history(&stored, limit, 0)?))) {
                    Ok((None, _)) => session_not_found(&key),
                    Ok((Some(_), page)) => {
                        HttpResponse::json(200, sessions::http_session_history_payload(&stored, &page, limit).to_string())
                    }
                    Err(_) => return store_unavailable(hub),
                }
            }
            StoreJob::SessionKill { key } => {
                let stored = stored_key(hub, &key);
                let killed = !hub.abort_runs(&stored, None).is_empty();
                let known = killed || store.is_some_and(|s| s.session(&stored).ok().flatten().is_some());
                if known { HttpResponse::json(200, json!({"ok": true, "killed": killed}).to_string()) } else { session_not_found(&key) }
            }
        };
        r.secured(hub)
    }
}

// ---------------------------------------------------------------------------------------------
// /api/v1/admin/rpc

/// An admin RPC method the shell carries out (a config write, a secrets reload, a session-store
/// read), then answers with [`method_reply`].
#[derive(Debug)]
pub struct MethodCall {
    pub rpc: RpcRequest,
    /// [`Call::ConfigWrite`], [`Call::SecretsReload`] or [`Call::Store`].
    pub call: Call,
    /// The caller's connection id as methods see it (`http:<uuid>`).
    pub conn_id: String,
    /// The request's slot in the start queue, held until the answer.
    pub permit: RequestPermit,
}

/// The admin RPC envelope for a method's reply (`Cache-Control: no-store`).
pub fn method_reply(hub: &Hub, rpc: &RpcRequest, reply: Reply) -> HttpResponse {
    let meta = admin_rpc::reply_meta(&rpc.method, rpc.params.as_ref(), &reply);
    HttpResponse::from(admin_rpc::respond_with_meta(&rpc.id, reply, meta.as_ref())).secured(hub)
}

/// Parse an admin RPC body and run its method as the WS would for a socket with the caller's
/// scopes (a shared-secret caller is an owner).
pub(crate) fn admin_rpc(hub: &Arc<Hub>, request: &ApiRequest, body: &[u8], env: &Env) -> ApiAction {
    let rpc = match admin_rpc::prepare(body, &env.uuid(0)) {
        Step::Respond(r) => return ApiAction::Respond(r.into()),
        Step::Call(rpc) => rpc,
    };
    let scopes = request.caller.scopes.clone();
    if let Authorization::Denied { error, .. } = scopes::authorize(Role::Operator, &scopes, &rpc.method, rpc.params.as_ref()) {
        return ApiAction::Respond(method_reply(hub, &rpc, Reply::err(error)));
    }
    let Some(permit) = hub.try_start_request(body.len()) else {
        return ApiAction::Respond(method_reply(hub, &rpc, Reply::err(ErrorShape::busy())));
    };
    let conn_id = format!("http:{}", env.uuid(16));
    let client = ClientInfo { id: "admin-http-rpc".into(), mode: "backend".into(), ..Default::default() };
    let d = Dispatch {
        request_id: rpc.id.clone(),
        method: rpc.method.clone(),
        params: rpc.params.clone(),
        caller: Caller { conn_id: conn_id.clone(), role: Role::Operator, scopes, client },
        permit,
    };
    match methods::dispatch(hub, &d, env.now, env.unix_ms) {
        Call::Reply(reply) => ApiAction::Respond(method_reply(hub, &rpc, reply)),
        // Runs answer later over a socket: nothing to hold the answer here.
        Call::StartRun { .. } | Call::Later => {
            let e = ErrorShape::unavailable(format!("{} cannot run over the admin HTTP RPC", rpc.method));
            ApiAction::Respond(method_reply(hub, &rpc, Reply::err(e)))
        }
        call => ApiAction::Method(Box::new(MethodCall { rpc, call, conn_id, permit: d.permit })),
    }
}

// ---------------------------------------------------------------------------------------------
// hooks

/// An authorized hook request: `/wake` is queued (the shell logs it), `/agent` starts a run.
pub(crate) fn hook(hub: &Hub, name: &str, body: &[u8], env: &Env) -> ApiAction {
    let settings = hub.settings();
    let policy = HookPolicy::from_config(&settings.config_redacted);
    let (run_id, job_id) = (env.uuid(0), env.uuid(16));
    match hooks::decide(name, body, &settings.api.agents, &policy, HookIds { run_id: &run_id, job_id: &job_id }) {
        HookDecision::Respond(r) => ApiAction::Respond(r.into()),
        HookDecision::Wake(wake) => ApiAction::Wake { response: hooks::wake_response(wake.mode, WakeOutcome::Queued).into(), wake },
        HookDecision::Agent(a) => {
            let spec = RunSpec {
                run_id: a.run_id.clone(),
                agent_id: a.agent_id.clone(),
                session_key: a.session_key.clone(),
                session_id: a.job_id.clone(),
                message: a.message.clone(),
                model: a.model.clone(),
            };
            match hub.start_unowned_run(spec, env.now, env.unix_ms) {
                Ok(run) => ApiAction::StartRun { response: hooks::agent_response(&a.run_id).into(), run },
                Err(_) => ApiAction::Respond(hooks::failure(409, "a run with this id is already known").into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_paths_and_limits() {
        assert_eq!(session_path("/sessions/agent%3Amain%3Amain/history"), Some((Some("agent:main:main".into()), false)));
        assert_eq!(session_path("/sessions/x/kill"), Some((Some("x".into()), true)));
        assert_eq!(session_path("/sessions/%zz/kill"), Some((None, true)));
        assert_eq!(session_path("/sessions/%20/history"), Some((None, false)));
        for p in ["/sessions//history", "/sessions/x/history/", "/sessions/x/other", "/sessions/x", "/sessionsx/y/kill"] {
            assert_eq!(session_path(p), None, "{p}");
        }
        assert_eq!(history_limit(""), None);
        assert_eq!(history_limit("a=1&limit=5"), Some(5));
        assert_eq!(history_limit("limit=0"), Some(1));
        assert_eq!(history_limit("limit=999999"), Some(SESSION_HISTORY_MAX_LIMIT));
    }

    #[test]
    fn api_responses_keep_route_headers() {
        let r = HttpResponse::from(admin_rpc::method_not_allowed());
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["X-Content-Type-Options", "Referrer-Policy", "Permissions-Policy", "Cache-Control", "Allow", "Content-Type"]);
        assert!(HttpResponse::from(crate::openai::api_response::openai_body_error(crate::openai::api_response::BodyError::TooLarge)).close);
    }
}
