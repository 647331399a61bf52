//! The `http` target.

use super::*;

const PEERS: [[u16; 8]; 4] = [
    [0, 0, 0, 0, 0, 0xffff, 0x7f00, 1],      // ::ffff:127.0.0.1
    [0, 0, 0, 0, 0, 0, 0, 1],                // ::1
    [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0207], // ::ffff:192.0.2.7
    [0x2001, 0xdb8, 0, 0, 0, 0, 0, 7],       // 2001:db8::7
];

/// HTTP routing and ingress on arbitrary request heads (encoding in the module docs). Checks:
/// statuses are valid; an address always belongs to the net parsed from it; refused and dropped
/// upgrades give their pre-auth slot back.
pub fn http(base: Instant, data: &[u8]) {
    let (h, rest) = data.split_first().map_or((0, &[][..]), |(h, r)| (*h, r));
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("GET").trim_end_matches('\r').to_string();
    let path = lines.next().unwrap_or("/").trim_end_matches('\r').to_string();
    let header_lines: Vec<(String, Vec<u8>)> = lines
        .take(32)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim_end_matches('\r').trim_start().as_bytes().to_vec()))
        .collect();
    let headers: Vec<(&str, &[u8])> = header_lines.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();

    let remote = match h & 7 {
        0 => IpAddr::from([127, 0, 0, 1]),
        1 => IpAddr::from([192, 0, 2, 7]),
        2 => IpAddr::from([10, 1, 2, 3]),
        n => IpAddr::from(PEERS[usize::from(n - 3) % PEERS.len()]),
    };
    let mut settings = loopback_token_settings(TOKEN, PORT);
    if h & 8 != 0 {
        settings.trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"].into_iter().filter_map(IpNet::parse).collect();
    }
    settings.allow_real_ip_fallback = h & 16 != 0;
    if h & 32 != 0 {
        settings.auth.mode = AuthMode::Password;
        settings.auth.password = Some(Secret::new(TOKEN));
    }
    settings.control_ui_allowed_origins = vec!["https://control.example".into()];
    settings.host_header_origin_fallback = h & 64 != 0;
    // Every API route on, so their request handlers see the fuzzed bodies.
    let api = serde_json::json!({
        "gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}}}},
        "models": {"providers": {"p": {"baseUrl": "http://127.0.0.1:9/v1", "apiKey": "k", "api": "openai-completions", "models": [{"id": "m"}]}}},
        "agents": {"defaults": {"model": {"primary": "p/m"}}, "entries": if h & 64 != 0 { serde_json::json!({"main": {}, "research": {}}) } else { serde_json::json!({}) }},
        "memory": {"search": {"provider": "openai-compatible", "model": "e", "remote": {"baseUrl": "http://127.0.0.1:9/v1"}}},
        "plugins": {"entries": {"admin-http-rpc": {"enabled": true}}},
        "hooks": {"enabled": true, "token": "hook-token-0123456789"},
    });
    settings.api = std::sync::Arc::new(crate::config::api::ApiConfig::from_config(&api, &Default::default()));
    let hub = Hub::new(test_server_info(base, UNIX0), settings.clone(), base);
    if h & 128 != 0 {
        hub.begin_drain();
    }

    // Ingress pieces on their own.
    let facts = RequestFacts::from_headers(headers.iter().copied());
    let attribution = crate::auth::ingress::attribute(remote, &facts, &settings.trusted_proxies, settings.allow_real_ip_fallback);
    if let Some(ip) = attribution.client_ip() {
        let _ = crate::auth::is_loopback_ip(&ip);
    }
    for (_, v) in &header_lines {
        let s = String::from_utf8_lossy(v);
        for part in s.split(',') {
            if let Some(net) = IpNet::parse(part) {
                let addr = part.trim().split('/').next().unwrap_or("");
                if let Ok(ip) = addr.parse::<IpAddr>() {
                    assert!(net.contains(ip), "{part:?} does not contain its own address");
                }
            }
        }
    }
    if let Some(origin) = &facts.origin {
        for local in [false, true] {
            let _ = crate::auth::origin::check_origin(
                origin,
                facts.host.as_deref(),
                &settings.control_ui_allowed_origins,
                settings.host_header_origin_fallback,
                local,
            );
        }
    }

    // The router.
    let now = base + Duration::from_millis(5);
    let head = crate::http::RequestHead { method: &method, path: &path, query: "", headers: &headers, remote };
    match crate::http::route(&hub, &head, now, unix_at(base, now)) {
        crate::http::HttpAction::Respond(res) | crate::http::HttpAction::RespondAfter(_, res) => {
            assert!((100..600).contains(&res.status), "status {}", res.status)
        }
        crate::http::HttpAction::GetResponse { id, .. } => {
            let r = crate::http::stored_response_missing(&hub, &id);
            assert_eq!(r.status, 404);
        }
        crate::http::HttpAction::Store(job) => {
            let r = job.run(&hub, None, unix_at(base, now));
            assert!((100..600).contains(&r.status));
        }
        crate::http::HttpAction::ReadBody { request, limit } => {
            assert!(limit > 0);
            // Whatever the body, the answer is a decision, never a panic.
            let env = crate::http::Env { now, unix_ms: unix_at(base, now), random: [7; 32] };
            if let crate::http::ApiAction::Respond(r) = crate::http::handle_body(&hub, &request, data, &env) {
                assert!((100..600).contains(&r.status));
            }
        }
        crate::http::HttpAction::ControlUi(job) => {
            // No UI directory in the fuzzer: the decisions that need no file.
            let r = job.unavailable(&crate::http::control_ui::Unavailable::NotConfigured);
            assert!(matches!(r.status, 200 | 404 | 406), "status {}", r.status);
            assert!(!job.target.rel.starts_with('/') && !job.target.rel.split('/').any(|s| s == ".."), "unsafe {:?}", job.target.rel);
            // A UI directory's files are input too: the fuzzed body as `index.html` and as a
            // static file, with the fuzzed conditional headers of the job.
            let html = String::from_utf8_lossy(data);
            let rendered = crate::http::control_ui::render_index(&html, "/openclaw", h & 1 != 0);
            let served = String::from_utf8_lossy(&rendered.body).into_owned();
            assert_eq!(crate::http::control_ui::inline_script_hashes(&served), rendered.script_hashes, "hashes are of the served HTML");
            assert!(!served.contains("<base ") || html.contains("<base "), "a <base> was injected");
            let r = job.index(&rendered);
            assert!((100..600).contains(&r.status));
            let meta = crate::http::control_ui::FileMeta { len: data.len() as u64, mtime_unix_ms: u64::from(h) * 1_000_003 };
            match job.static_file(meta) {
                crate::http::control_ui::StaticPlan::Respond(r) => assert!((100..600).contains(&r.status)),
                crate::http::control_ui::StaticPlan::ReadBody => {
                    let r = job.static_body(meta, data.to_vec());
                    assert!((100..600).contains(&r.status));
                }
            }
        }
        crate::http::HttpAction::Upgrade { accept_key, admission } => {
            assert!(!hub.is_draining(), "upgrade admitted while draining");
            assert!(!accept_key.is_empty());
            let ip = admission.ip;
            assert_eq!(hub.preauth_count(ip), 1);
            drop(admission);
            assert_eq!(hub.preauth_count(ip), 0, "dropped admission kept its pre-auth slot");
        }
    }
}
