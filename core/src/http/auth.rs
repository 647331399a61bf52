//! Authentication and scopes of the HTTP API routes (spec http §4): Bearer shared secrets with
//! the failed-auth limiter shared with the WebSocket, identity-bearing callers (`none`,
//! trusted-proxy) with `x-openclaw-scopes` and the browser Origin policy.

use std::net::IpAddr;
use std::time::Instant;

use serde_json::json;

use super::{HttpAction, HttpResponse, RequestHead, bearer};
use crate::auth::ingress::{Attribution, RequestFacts};
use crate::auth::scopes;
use crate::auth::{AuthMode, ClientCredentials, LimitCheck, LimiterSubject, SharedAuth, constant_time_eq};
use crate::gateway::Hub;

/// The full operator set a shared-secret (owner) caller gets on HTTP.
pub(super) const OWNER_SCOPES: [&str; 6] =
    [scopes::ADMIN, scopes::APPROVALS, scopes::PAIRING, scopes::READ, scopes::TALK_SECRETS, scopes::WRITE];

/// Who is calling an API route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCaller {
    pub scopes: Vec<String>,
    /// Authenticated with the gateway's shared secret (an owner).
    pub owner: bool,
    /// The client address (the forwarded client behind a trusted proxy).
    pub client_ip: IpAddr,
    /// A stable name for the authenticated subject (responses continuity is per subject).
    pub subject: String,
}

impl HttpCaller {
    /// 403 with the scope-denied body unless `scope` is granted.
    pub fn require(&self, scope: &str) -> Result<(), HttpResponse> {
        if scopes::satisfies(&self.scopes, scope) {
            return Ok(());
        }
        let body = json!({"ok": false, "error": {"type": "forbidden", "message": format!("missing scope: {scope}"),
            "details": {"code": "MISSING_SCOPE", "missingScope": scope, "requiredScopes": [scope]}}});
        Err(HttpResponse::json(403, body.to_string()))
    }
}

fn unauthorized() -> HttpResponse {
    HttpResponse::json(401, json!({"error": {"message": "Unauthorized", "type": "unauthorized"}}).to_string())
}

fn rate_limited(retry_after_ms: u64) -> HttpResponse {
    let mut r = HttpResponse::json(
        429,
        json!({"error": {"message": "Too many failed authentication attempts. Please try again later.", "type": "rate_limited"}})
            .to_string(),
    );
    r.headers.push(("Retry-After", retry_after_ms.div_ceil(1000).max(1).to_string()));
    r
}

/// Scopes of an identity-bearing caller: `x-openclaw-scopes` when sent (unknown values dropped,
/// so an unknown-only list is empty), else the full default set.
fn identity_scopes(facts: &RequestFacts) -> Vec<String> {
    match &facts.scope_cap {
        Some(list) => list.iter().filter(|s| scopes::OPERATOR_SCOPES.contains(&s.as_str())).cloned().collect(),
        None => OWNER_SCOPES.iter().map(|s| s.to_string()).collect(),
    }
}

/// The browser Origin policy for identity-bearing callers (spec http §4.4); no Origin passes.
fn origin_ok(hub: &Hub, facts: &RequestFacts, attribution: &Attribution) -> bool {
    let Some(origin) = &facts.origin else { return true };
    let s = hub.settings();
    crate::auth::origin::check_origin(
        origin,
        facts.host.as_deref(),
        &s.control_ui_allowed_origins,
        s.host_header_origin_fallback,
        attribution.is_direct_local(),
    )
    .is_ok()
}

/// [`authorize`], also accepting `Bearer <operator device token>` of a paired device (spec http
/// §4.1: plugin routes and Control UI read endpoints); the caller gets the token's scopes.
pub(super) fn authorize_with_device_token(
    hub: &Hub,
    head: &RequestHead<'_>,
    facts: &RequestFacts,
    attribution: &Attribution,
    now: Instant,
) -> Result<HttpCaller, HttpAction> {
    if matches!(hub.settings().auth.mode, AuthMode::Token | AuthMode::Password) {
        let client_ip = attribution.client_ip().unwrap_or(head.remote);
        // A locked-out client gets the 429 from `authorize`, whatever it presents.
        let locked = matches!(hub.shared_lock_check(now, &LimiterSubject::ip(client_ip)), LimitCheck::Locked { .. });
        if let (false, Some(presented)) = (locked, bearer(head)) {
            if let Some((_, scopes)) = hub.device_token_bearer(&presented).filter(|(role, _)| role == "operator") {
                return Ok(HttpCaller { scopes, owner: false, client_ip, subject: "device-token".into() });
            }
        }
    }
    authorize(hub, head, facts, attribution, now)
}

/// Authenticate an API request; on failure, the action to answer with.
pub(super) fn authorize(
    hub: &Hub,
    head: &RequestHead<'_>,
    facts: &RequestFacts,
    attribution: &Attribution,
    now: Instant,
) -> Result<HttpCaller, HttpAction> {
    let settings = hub.settings();
    let client_ip = attribution.client_ip().unwrap_or(head.remote);
    let owner = |subject: &str| HttpCaller {
        scopes: OWNER_SCOPES.iter().map(|s| s.to_string()).collect(),
        owner: true,
        client_ip,
        subject: subject.to_string(),
    };
    let identity = |subject: String| HttpCaller { scopes: identity_scopes(facts), owner: false, client_ip, subject };
    match settings.auth.mode {
        AuthMode::None => {
            if !origin_ok(hub, facts, attribution) {
                return Err(HttpAction::Respond(unauthorized()));
            }
            Ok(identity(format!("anonymous:{client_ip}")))
        }
        AuthMode::TrustedProxy => {
            let tp = settings.trusted_proxy.as_ref();
            let proxied = tp.map(|tp| {
                crate::auth::trusted_proxy_check(
                    head.remote,
                    attribution,
                    facts,
                    tp,
                    &settings.trusted_proxies,
                    settings.local_interfaces.as_deref(),
                )
            });
            match proxied {
                Some(Ok(user)) if origin_ok(hub, facts, attribution) => Ok(identity(format!("user:{user}"))),
                _ => {
                    // A local-direct caller may use the password instead (spec http §4.1).
                    let password = settings.auth.password.as_ref();
                    match (attribution.is_direct_local(), bearer(head), password) {
                        (true, Some(p), Some(want)) if constant_time_eq(p.as_bytes(), want.expose().as_bytes()) => {
                            Ok(owner("shared-secret"))
                        }
                        _ => Err(HttpAction::Respond(unauthorized())),
                    }
                }
            }
        }
        AuthMode::Token | AuthMode::Password => {
            let subject = LimiterSubject::ip(client_ip);
            if let LimitCheck::Locked { retry_after_ms } = hub.shared_lock_check(now, &subject) {
                return Err(HttpAction::Respond(rate_limited(retry_after_ms)));
            }
            // Missing credentials are not counted as failures (spec http §4.6).
            let Some(presented) = bearer(head) else { return Err(HttpAction::Respond(unauthorized())) };
            let creds = match settings.auth.mode {
                AuthMode::Password => ClientCredentials { token: None, password: Some(presented) },
                _ => ClientCredentials { token: Some(presented), password: None },
            };
            match hub.shared_check(now, &creds, &subject, false) {
                SharedAuth::Ok(_) => Ok(owner("shared-secret")),
                SharedAuth::Failed(f) if f.retry_after_ms.is_some() => {
                    Err(HttpAction::Respond(rate_limited(f.retry_after_ms.unwrap_or(1000))))
                }
                _ => match hub.record_shared_failure(now, &subject, false) {
                    Some(delay) => Err(HttpAction::RespondAfter(delay, unauthorized())),
                    None => Err(HttpAction::Respond(unauthorized())),
                },
            }
        }
    }
}
