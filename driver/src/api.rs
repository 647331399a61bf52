//! The API routes' IO: read a request body within its limit and deadline, hand it to the core,
//! and carry out what it decides — answer, or run an agent turn and stream or collect its
//! events into the response.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clawgate_core::http::chat::ChatJob;
use clawgate_core::http::responses::{PreviousResponse, ResponsesJob};
use clawgate_core::http::{
    ApiAction, ApiRequest, BODY_TIMEOUT, Env, HttpCaller, HttpResponse, MethodCall, StoreJob, finish_embeddings, handle_body, method_reply,
    stored_response_found, stored_response_missing,
};
use clawgate_core::openai::ApiError;
use clawgate_core::openai::api_response::BodyError;
use clawgate_core::openai::turn::{Turn, TurnEvent, TurnPolicy, TurnResult};
use clawgate_core::sessions::StoredResponse;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::{Frame, Incoming};
use serde_json::Value;

use crate::daemon::Ctx;
use crate::rt::Runtime;
use crate::service::{Body, to_hyper};
use crate::session::{NoRandomness, os_random, unix_ms};
use crate::stream::StreamQueue;

/// Read the whole request body: at most `limit` bytes (counted as they arrive), within
/// [`BODY_TIMEOUT`].
pub async fn read_body<R: Runtime>(rt: &R, body: Incoming, limit: usize) -> Result<Vec<u8>, BodyError> {
    crate::upstream::read_to_end(rt, body, limit, Instant::now() + BODY_TIMEOUT).await
}

/// The embeddings upstream call (connect, answer and body) must finish within this.
const EMBEDDINGS_TIMEOUT: Duration = Duration::from_secs(60);

fn env() -> Result<Env, NoRandomness> {
    Ok(Env { now: Instant::now(), unix_ms: unix_ms(), random: os_random::<32>()? })
}

/// Answer an API request whose body was read.
pub async fn serve<R: Runtime>(rt: R, ctx: Arc<Ctx>, request: ApiRequest, body: Vec<u8>) -> Response<Body> {
    // Ids (responses, runs, sessions) must be unpredictable: without OS randomness, refuse.
    let Ok(env) = env() else {
        return fail(&request, HttpResponse::text(503, "Service Unavailable"), "OS randomness unavailable");
    };
    match handle_body(&ctx.hub, &request, &body, &env) {
        ApiAction::Respond(r) => to_hyper(r),
        ApiAction::Fail { response, log } => fail(&request, response, &log),
        ApiAction::Chat(job) => chat(rt, ctx, *job, &request, &env).await,
        ApiAction::Responses(job) => responses(rt, ctx, *job, &request, &env).await,
        ApiAction::Embeddings(call) => {
            let upstream = crate::upstream::fetch(
                rt.clone(),
                call.upstream.clone(),
                clawgate_core::openai::embeddings::MAX_UPSTREAM_BODY_BYTES,
                Instant::now() + EMBEDDINGS_TIMEOUT,
            )
            .await;
            match finish_embeddings(&ctx.hub, &call, upstream) {
                ApiAction::Fail { response, log } => fail(&request, response, &log),
                ApiAction::Respond(r) => to_hyper(r),
                _ => to_hyper(HttpResponse::text(500, "Internal Server Error").secured(&ctx.hub)),
            }
        }
        ApiAction::Store(job) => to_hyper(store_job(&rt, &ctx, *job).await),
        ApiAction::Method(call) => to_hyper(method(&rt, &ctx, *call).await),
        ApiAction::StartRun { response, run } => {
            tracing::info!(run_id = %run.run_id, agent = %run.agent_id, session = %run.session_key, "hook agent run started");
            rt.spawn(crate::agent::execute(rt.clone(), ctx.clone(), run));
            to_hyper(response)
        }
        ApiAction::Wake { response, wake } => {
            tracing::info!(agent = %wake.agent_id, session = %wake.session_key, mode = wake.mode.as_str(), chars = wake.text.len(), "hook wake event queued");
            to_hyper(response)
        }
    }
}

/// A failure whose server-side reason is logged, never sent.
fn fail(request: &ApiRequest, response: HttpResponse, log: &str) -> Response<Body> {
    tracing::error!(route = ?request.route, status = response.status, "{log}");
    to_hyper(response)
}

/// Answer from the session store, off the reactor.
pub async fn store_job<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, job: StoreJob) -> HttpResponse {
    let ctx = ctx.clone();
    rt.spawn_blocking(move || {
        let store = ctx.store();
        job.run(&ctx.hub, store.as_deref().map(|s| s as &dyn clawgate_core::sessions::SessionStore), unix_ms())
    })
    .await
}

/// An admin RPC method that needs the shell.
async fn method<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, m: MethodCall) -> HttpResponse {
    let MethodCall { rpc, call, conn_id, permit } = m;
    let (reply, _close) = crate::calls::execute(rt, ctx, call, &conn_id).await;
    drop(permit);
    method_reply(&ctx.hub, &rpc, reply)
}

/// `GET /v1/responses/{id}`.
pub async fn get_response<R: Runtime>(rt: R, ctx: Arc<Ctx>, id: String, caller: HttpCaller) -> Response<Body> {
    let ctx2 = ctx.clone();
    let id2 = id.clone();
    let found = rt.spawn_blocking(move || ctx2.store().and_then(|s| s.get_response(&id2).ok().flatten())).await;
    match found {
        Some(r) if r.owner.as_deref() == Some(caller.subject.as_str()) => to_hyper(stored_response_found(&ctx.hub, &r.body)),
        _ => to_hyper(stored_response_missing(&ctx.hub, &id)),
    }
}

/// The SSE answer: its body is the client's side of the stream queue. When hyper drops the
/// body (the client went away), the queue tells the runner, which aborts the turn at once, even
/// while the provider is still silent.
fn sse_response(body: crate::stream::QueueBody, hub: &clawgate_core::gateway::Hub) -> Response<Body> {
    let stream = futures_util::StreamExt::map(body, |b| Ok::<_, Infallible>(Frame::data(b)));
    let mut head = HttpResponse::routed(200, "text/event-stream; charset=utf-8", Vec::new());
    head.headers.push(("Cache-Control", "no-cache".into()));
    head.headers.push(("Connection", "keep-alive".into()));
    let head = head.secured(hub);
    let mut b = Response::builder().status(200);
    for (k, v) in &head.headers {
        b = b.header(*k, v.as_str());
    }
    b.body(StreamBody::new(stream).boxed_unsync()).unwrap_or_else(|_| to_hyper(HttpResponse::text(500, "Internal Server Error")))
}

type Outcome = Result<TurnResult, ApiError>;

fn internal() -> ApiError {
    ApiError { status: 500, kind: "api_error", message: "internal error".into() }
}

/// Store an exchange (never fails the request): queued for the store's group commit, awaited
/// before the final answer goes out, so a client that continues the conversation right away
/// finds it stored. Returns why it could not be saved: the client is told (a `Warning` header, or
/// an SSE comment on a stream already under way) and `health` shows the store degraded.
async fn record<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, x: crate::persist::Exchange) -> Option<String> {
    let result = match crate::persist::open_store(rt, ctx).await {
        Some(store) => crate::persist::record(&store, x).await,
        None => Err("the session store is not available".to_string()),
    };
    ctx.note_session_write(&result);
    result.err()
}

/// The `Warning` header of an answer whose exchange could not be saved (RFC 7234 §5.5, code
/// 199 "miscellaneous warning"; quotes and line breaks of the reason removed).
fn not_saved_warning(reason: &str) -> String {
    let reason: String = reason.chars().map(|c| if c == '"' || c.is_control() { ' ' } else { c }).take(300).collect();
    format!("199 clawgate \"the exchange was not saved: {reason}; the next turn will not see it\"")
}

/// Stream `turn` into `queue` (backpressure and the slow-client timeout: [`crate::runner::
/// drive_streaming`]), holding the terminal event's text until the exchange is stored.
async fn stream_turn<R: Runtime>(
    rt: R,
    ctx: Arc<Ctx>,
    turn: Turn,
    queue: Arc<StreamQueue>,
    mut render: impl FnMut(&TurnEvent) -> String + Send,
    finish: impl FnOnce(Outcome) -> crate::persist::Exchange,
) {
    let mut outcome = None;
    let mut last = String::new();
    let slow_client = ctx.hub.settings().limits.slow_client_timeout;
    crate::runner::drive_streaming(rt.clone(), turn, &queue, slow_client, |ev| {
        remember(&mut outcome, &ev);
        let text = render(&ev);
        if matches!(ev, TurnEvent::Finished(_) | TurnEvent::Failed(_)) {
            last = text;
            return true;
        }
        queue.push(Bytes::from(text))
    })
    .await;
    if let Some(o) = outcome {
        if let Some(reason) = record(&rt, &ctx, finish(o)).await {
            // The head is gone: an SSE comment (every client ignores it; a person reading the raw
            // stream sees it), before the final events.
            queue.push(Bytes::from(format!(": clawgate-warning: {}\n\n", not_saved_warning(&reason))));
        }
    }
    queue.push(Bytes::from(last));
    queue.finish();
}

/// A stream queue sized by the gateway's limits.
fn queue_for(ctx: &Ctx) -> (Arc<StreamQueue>, crate::stream::QueueBody) {
    crate::stream::stream_queue(ctx.hub.settings().limits.stream_buffer_bytes)
}

struct Meta {
    key: String,
    agent_id: String,
    input: Vec<Value>,
    origin: &'static str,
    channel: Option<String>,
    provider: String,
    model: String,
    session_id: String,
}

impl Meta {
    fn exchange(self, outcome: Outcome, response: Option<StoredResponse>) -> crate::persist::Exchange {
        crate::persist::Exchange {
            key: self.key,
            agent_id: self.agent_id,
            input: self.input,
            outcome,
            origin: self.origin,
            channel: self.channel,
            provider: Some(self.provider),
            model: Some(self.model),
            run_id: None,
            response,
            now_ms: unix_ms(),
            session_id: self.session_id,
            aborted: false,
        }
    }
}

async fn chat<R: Runtime>(rt: R, ctx: Arc<Ctx>, mut job: ChatJob, request: &ApiRequest, env: &Env) -> Response<Body> {
    if job.wants_history {
        let (ctx2, key) = (ctx.clone(), job.session.key.clone());
        let history = rt.spawn_blocking(move || ctx2.store().map(|s| crate::persist::history(&s, &key)).unwrap_or_default()).await;
        job.add_history(history);
    }
    let meta = Meta {
        key: job.session.key.clone(),
        agent_id: job.session.agent_id.clone(),
        input: job.session.input.clone(),
        origin: "openai",
        channel: request.headers.message_channel.clone(),
        provider: job.turn.upstream.provider_id.clone(),
        model: job.turn.model.clone(),
        session_id: env.uuid(16),
    };
    let turn = Turn::new(job.turn, TurnPolicy::for_limits(&ctx.hub.settings().limits), Instant::now());
    if job.stream {
        let (queue, body) = queue_for(&ctx);
        queue.push(Bytes::from(job.render.stream_start()));
        let render = job.render.clone();
        rt.spawn(stream_turn(rt.clone(), ctx.clone(), turn, queue, move |ev| render.stream_event(ev), move |o| meta.exchange(o, None)));
        return sse_response(body, &ctx.hub);
    }
    let outcome = complete_turn(&rt, turn).await;
    let r = job.render.complete(outcome.as_ref());
    let unsaved = record(&rt, &ctx, meta.exchange(outcome, None)).await;
    let mut r = r.secured(&ctx.hub);
    if let Some(reason) = unsaved {
        r.headers.push(("Warning", not_saved_warning(&reason)));
    }
    to_hyper(r)
}

/// Run a non-streamed turn to its end.
async fn complete_turn<R: Runtime>(rt: &R, turn: Turn) -> Outcome {
    let mut outcome = None;
    crate::runner::drive(rt.clone(), turn, |ev| {
        remember(&mut outcome, &ev);
        true
    })
    .await;
    outcome.unwrap_or_else(|| Err(internal()))
}

fn remember(slot: &mut Option<Outcome>, ev: &TurnEvent) {
    match ev {
        TurnEvent::Finished(r) => *slot = Some(Ok(r.clone())),
        TurnEvent::Failed(e) => *slot = Some(Err(e.clone())),
        _ => {}
    }
}

async fn responses<R: Runtime>(rt: R, ctx: Arc<Ctx>, job: ResponsesJob, request: &ApiRequest, env: &Env) -> Response<Body> {
    // `previous_response_id`: the earlier exchange's session, if this caller may continue it.
    let previous = match job.previous_id().map(str::to_string) {
        None => None,
        Some(id) => {
            let (ctx2, agent, owner, header) =
                (ctx.clone(), job.agent_id.clone(), request.caller.subject.clone(), request.headers.session_key.clone());
            rt.spawn_blocking(move || {
                let store = ctx2.store()?;
                let prev = store.get_response(&id).ok().flatten()?;
                if !clawgate_core::sessions::may_continue(&prev, &agent, Some(&owner), header.as_deref()) {
                    return None;
                }
                let messages = crate::persist::history(&store, &prev.session_key);
                Some(PreviousResponse { messages, session_key: Some(prev.session_key), subject: None, agent_id: None })
            })
            .await
        }
    };
    let run = match job.plan(previous) {
        Ok(r) => r,
        Err(resp) => return to_hyper(resp.secured(&ctx.hub)),
    };
    let meta = Meta {
        key: run.session.key.clone(),
        agent_id: run.session.agent_id.clone(),
        input: run.session.input.clone(),
        origin: "openresponses",
        channel: request.headers.message_channel.clone(),
        provider: run.turn.upstream.provider_id.clone(),
        model: run.turn.model.clone(),
        session_id: env.uuid(16),
    };
    let stored = {
        let (key, agent, owner, header) =
            (run.session.key.clone(), run.session.agent_id.clone(), request.caller.subject.clone(), request.headers.session_key.clone());
        let id = run.render.ids.response_id.clone();
        move |body: Value| StoredResponse {
            id,
            session_key: key,
            agent_id: agent,
            owner: Some(owner),
            session_key_header: header,
            created_ms: unix_ms(),
            body,
        }
    };
    let turn = Turn::new(run.turn, TurnPolicy::for_limits(&ctx.hub.settings().limits), Instant::now());
    if run.stream {
        let (queue, body) = queue_for(&ctx);
        let stream = Arc::new(std::sync::Mutex::new(run.render.stream()));
        let start = stream.lock().map(|mut s| s.start()).unwrap_or_default();
        queue.push(Bytes::from(start));
        let s2 = stream.clone();
        let render = move |ev: &TurnEvent| s2.lock().map(|mut s| s.on_event(ev)).unwrap_or_default();
        let finish = move |o: Outcome| {
            let response = stream.lock().ok().and_then(|s| s.response().cloned()).map(stored);
            meta.exchange(o, response)
        };
        rt.spawn(stream_turn(rt.clone(), ctx.clone(), turn, queue, render, finish));
        return sse_response(body, &ctx.hub);
    }
    let outcome = complete_turn(&rt, turn).await;
    let (resp, obj) = run.render.complete(outcome.as_ref());
    let unsaved = record(&rt, &ctx, meta.exchange(outcome, Some(stored(obj)))).await;
    let mut resp = resp.secured(&ctx.hub);
    if let Some(reason) = unsaved {
        resp.headers.push(("Warning", not_saved_warning(&reason)));
    }
    to_hyper(resp)
}
