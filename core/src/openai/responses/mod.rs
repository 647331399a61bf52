//! `POST /v1/responses` (spec http §6.4, §7): the OpenAI Responses API over one agent turn, sans-IO.
//!
//! The HTTP handler drives it in this order (each step's errors are `400 invalid_request_error`
//! unless said otherwise):
//!
//! 1. [`parse_responses_request`]: the strict request schema, with zod-like messages in the
//!    reference's issue order (`model: Invalid input: expected string, received undefined`,
//!    `": Unrecognized key: \"parallel_tool_calls\""`, …).
//! 2. agent and session resolution (`openai::resolve_agent`, `http::chat::session_key` with the
//!    `openresponses` prefix), then the stored conversation of `previous_response_id`, if any.
//! 3. [`prepare_turn`]: input files/images (`invalid request`), tools (`invalid tool
//!    configuration`), then `Missing user message in `input`.`; yields the chat `messages`,
//!    `tools`, `tool_choice` and sampling of the upstream turn.
//! 4. the turn's events rendered by [`response_object`] + [`response_http_status`]
//!    (non-stream) or by a [`ResponsesStream`] (SSE).
//! 5. what the gateway keeps ([`crate::sessions::Exchange::records`], the response object) for
//!    `GET /v1/responses/{id}` and for the next request's
//!    `previous_response_id`.
//!
//! Ids and timestamps come from the caller ([`ResponseIds`], `created_at`): no clock, no RNG.

mod items;
mod prepare;
mod render;
mod request;
mod stream;
mod zod;

use items::*;
pub use prepare::*;
pub use render::*;
pub use request::*;
pub use stream::*;
use zod::*;

/// The text of an answer when the agent produced none (as chat completions).
pub use crate::openai::NO_RESPONSE;
/// No user message and no `function_call_output` item (`responses-empty-input`).
pub const MISSING_USER_MESSAGE: &str = "Missing user message in `input`.";
/// A `tool_choice` that the tools cannot satisfy (spec §6.4).
pub const INVALID_TOOL_CONFIG: &str = "invalid tool configuration";
/// An input file or image that cannot be used (spec §6.4).
pub const INVALID_MEDIA: &str = "invalid request";

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use base64::Engine as _;

    use crate::openai::turn::{TurnEvent, TurnResult};
    use crate::openai::{ApiError, ToolCall};

    fn err(body: &str) -> String {
        parse_responses_request(body.as_bytes()).unwrap_err().message
    }

    fn ok(body: &str) -> ResponsesRequest {
        parse_responses_request(body.as_bytes()).unwrap()
    }

    #[test]
    fn schema_messages() {
        assert_eq!(err(""), "model: Invalid input: expected string, received undefined");
        assert_eq!(err("  \n"), "model: Invalid input: expected string, received undefined");
        assert_eq!(err("[]"), ": Invalid input: expected object, received array");
        assert_eq!(err("null"), ": Invalid input: expected object, received null");
        assert_eq!(err(r#"{"model":1,"input":"x"}"#), "model: Invalid input: expected string, received number");
        assert_eq!(err(r#"{"model":"m"}"#), "input: Invalid input");
        assert_eq!(err(r#"{"model":"m","input":5}"#), "input: Invalid input");
        assert_eq!(err(r#"{"model":"m","input":"hi","temperature":5}"#), "temperature: Too big: expected number to be <=2");
        assert_eq!(err(r#"{"model":"m","input":"hi","temperature":-1}"#), "temperature: Too small: expected number to be >=0");
        assert_eq!(err(r#"{"model":"m","input":"hi","temperature":null}"#), "temperature: Invalid input: expected number, received null");
        assert_eq!(err(r#"{"model":"m","input":"hi","top_p":1.5}"#), "top_p: Too big: expected number to be <=1");
        assert_eq!(err(r#"{"model":"m","input":"hi","max_output_tokens":0}"#), "max_output_tokens: Too small: expected number to be >0");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","max_output_tokens":1.5}"#),
            "max_output_tokens: Invalid input: expected int, received number"
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","stream":"yes"}"#), "stream: Invalid input: expected boolean, received string");
        assert_eq!(err(r#"{"model":"m","input":"hi","bogus_field":true}"#), ": Unrecognized key: \"bogus_field\"");
        // Ours: OpenAI keys the reference rejects are accepted (and honoured where they can be).
        let ok = parse_responses_request(
            br#"{"model":"m","input":"hi","include":[],"parallel_tool_calls":false,"stream_options":{},"service_tier":"auto"}"#,
        )
        .unwrap();
        assert_eq!(ok.parallel_tool_calls, Some(false));
        assert_eq!(
            err(r#"{"model":"m","input":"hi","background":true}"#),
            "background: background responses are not supported by this gateway"
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","include":"x"}"#), "include: Invalid input: expected array, received string");
        assert_eq!(err(r#"{"model":"m","input":"hi","a":1,"b":2}"#), ": Unrecognized keys: \"a\", \"b\"");
        // Field issues come before unknown keys, in schema order.
        assert_eq!(err(r#"{"zz":1,"input":"hi"}"#), "model: Invalid input: expected string, received undefined");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","truncation":"x"}"#),
            "truncation: Invalid option: expected one of \"auto\"|\"disabled\""
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","metadata":{"a":1}}"#), "metadata.a: Invalid input: expected string, received number");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","text":{"format":{"type":"json_object"}}}"#),
            "text.format.type: Invalid input: expected \"text\""
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","reasoning":{"effort":"max"}}"#).split(':').next(), Some("reasoning.effort"));
    }

    #[test]
    fn schema_tools_and_choice() {
        assert_eq!(
            err(r#"{"model":"m","input":"hi","tools":[{"type":"web_search"}]}"#),
            "tools.0.type: Invalid input: expected \"function\""
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","tools":[{"type":"function","name":""}]}"#), "tools.0.name: Tool name cannot be empty");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","tools":[{"type":"function","name":"f","parameters":"x"}]}"#),
            "tools.0.parameters: Invalid input: expected record, received string"
        );
        assert_eq!(
            err(r#"{"model":"m","input":"hi","tools":[{"type":"function","function":{"name":"f"}}]}"#),
            "tools.0.name: Invalid input: expected string, received undefined"
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","tool_choice":"any"}"#), "tool_choice: Invalid input");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","tool_choice":{"type":"function","name":""}}"#),
            "tool_choice.name: Too small: expected string to have >=1 characters"
        );
        let r = ok(r#"{"model":"m","input":"hi","tool_choice":{"type":"function","function":{"name":"f"}}}"#);
        assert_eq!(r.tool_choice, Some(ToolChoice::Function("f".into())));
        let r = ok(r#"{"model":"m","input":"hi","tool_choice":{"type":"function","name":"g"}}"#);
        assert_eq!(r.tool_choice, Some(ToolChoice::Function("g".into())));
    }

    #[test]
    fn schema_items() {
        assert_eq!(err(r#"{"model":"m","input":[{"type":"bogus"}]}"#), "input: Invalid input");
        assert_eq!(err(r#"{"model":"m","input":[{"type":"message","role":"user","content":"x","extra":1}]}"#), "input: Invalid input");
        // Only non-aborting checks inside the array: they surface with their own path.
        assert_eq!(
            err(r#"{"model":"m","input":[{"type":"message","role":"user","content":"x","phase":"commentary"}]}"#),
            "input.0.phase: `phase` is only valid on assistant messages."
        );
        assert_eq!(
            err(
                r#"{"model":"m","input":[{"type":"message","role":"user","content":[{"type":"input_image","source":{"type":"base64","media_type":"image/png","data":""}}]}]}"#
            ),
            "input.0.content.0.source.data: Too small: expected string to have >=1 characters"
        );
        let r = ok(
            r#"{"model":"m","input":[{"role":"user","content":"easy"},{"type":"reasoning","summary":[]},{"type":"item_reference","id":"x"}]}"#,
        );
        assert_eq!(
            r.input,
            ResponsesInput::Items(vec![
                InputItem::Message { role: Role::User, content: vec![ContentPart::Text("easy".into())] },
                InputItem::Skipped,
                InputItem::Skipped
            ])
        );
    }

    #[test]
    fn bad_json() {
        let e = parse_responses_request(br#"{"model":"openclaw/main","input":["#).unwrap_err();
        assert_eq!((e.status, e.kind, e.message.as_str()), (400, "invalid_request_error", "Unexpected end of JSON input"));
        let e = parse_responses_request(b"{nope}").unwrap_err();
        assert_eq!((e.status, e.kind), (400, "invalid_request_error"));
        assert!(e.message.starts_with("Invalid JSON body: "));
        assert_eq!(parse_responses_request(&[0xff, 0xfe]).unwrap_err().status, 400);
    }

    #[test]
    fn conversion_to_chat_messages() {
        let r = ok(r#"{"model":"m","instructions":"Be terse.","input":[
            {"type":"message","role":"developer","content":"Dev rule."},
            {"type":"message","role":"user","content":[{"type":"input_text","text":"What is"},{"type":"input_text","text":"the weather?"}]},
            {"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
            {"type":"function_call_output","call_id":"c1","output":"{\"t\":\"72F\"}"},
            {"type":"message","role":"assistant","content":[{"type":"output_text","text":"72F."}]},
            {"type":"message","role":"user","content":"thanks"}
        ],"temperature":0.5,"top_p":1,"max_output_tokens":100}"#);
        let t = prepare_turn(&r, &[], &InputLimits::default()).unwrap();
        assert_eq!(
            Value::Array(t.messages.clone()),
            json!([
                {"role": "system", "content": "Be terse.\n\nDev rule."},
                {"role": "user", "content": "What is\nthe weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "{\"t\":\"72F\"}"},
                {"role": "assistant", "content": "72F."},
                {"role": "user", "content": "thanks"},
            ])
        );
        assert_eq!(t.conversation.len(), 5);
        assert_eq!(Value::Object(t.sampling), json!({"temperature": 0.5, "top_p": 1, "max_completion_tokens": 100}));
        assert_eq!((t.tools, t.tool_choice), (None, None));
    }

    #[test]
    fn history_and_tool_pairing() {
        let history = vec![
            json!({"role": "user", "content": "weather?"}),
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "abc123def", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}),
        ];
        let r = ok(
            r#"{"model":"m","previous_response_id":"resp_x","input":[{"type":"function_call_output","call_id":"abc123def","output":"sunny"}]}"#,
        );
        let t = prepare_turn(&r, &history, &InputLimits::default()).unwrap();
        assert_eq!(t.messages.len(), 3);
        assert_eq!(t.messages[2], json!({"role": "tool", "tool_call_id": "abc123def", "content": "sunny"}));
        // A new user turn instead of the tool result: the unanswered call is dropped.
        let r = ok(r#"{"model":"m","input":"never mind"}"#);
        let t = prepare_turn(&r, &history, &InputLimits::default()).unwrap();
        assert_eq!(Value::Array(t.messages), json!([{"role": "user", "content": "weather?"}, {"role": "user", "content": "never mind"}]));
        // A result for an unknown call is kept as text.
        let r = ok(r#"{"model":"m","input":[{"type":"function_call_output","call_id":"zz","output":"42"}]}"#);
        let t = prepare_turn(&r, &[], &InputLimits::default()).unwrap();
        assert_eq!(Value::Array(t.messages), json!([{"role": "user", "content": "Tool:zz: 42"}]));
    }

    #[test]
    fn missing_user_message() {
        for body in [
            r#"{"model":"m","input":[]}"#,
            r#"{"model":"m","input":""}"#,
            r#"{"model":"m","input":[{"type":"message","role":"assistant","content":"hi"}]}"#,
            r#"{"model":"m","input":[{"type":"message","role":"user","content":"   "}]}"#,
            r#"{"model":"m","input":[{"type":"message","role":"system","content":"rules"}]}"#,
        ] {
            let e = prepare_turn(&ok(body), &[json!({"role": "user", "content": "earlier"})], &InputLimits::default()).unwrap_err();
            assert_eq!((e.status, e.kind, e.message.as_str()), (400, "invalid_request_error", MISSING_USER_MESSAGE), "{body}");
        }
    }

    #[test]
    fn tools_mapping() {
        let tools = r#""tools":[{"type":"function","name":"get_weather","description":"Get weather","parameters":{"type":"object"},"strict":true},{"type":"function","name":"other"}]"#;
        let t = prepare_turn(&ok(&format!(r#"{{"model":"m","input":"hi",{tools}}}"#)), &[], &InputLimits::default()).unwrap();
        assert_eq!(
            t.tools.unwrap()[0],
            json!({"type": "function", "function": {"name": "get_weather", "description": "Get weather", "parameters": {"type": "object"}, "strict": true}})
        );
        assert_eq!(t.tool_choice, None);
        let t = prepare_turn(
            &ok(&format!(r#"{{"model":"m","input":"hi",{tools},"tool_choice":{{"type":"function","name":"other"}}}}"#)),
            &[],
            &InputLimits::default(),
        )
        .unwrap();
        assert_eq!(t.tools.unwrap(), vec![json!({"type": "function", "function": {"name": "other"}})]);
        assert_eq!(t.tool_choice, Some(json!({"type": "function", "function": {"name": "other"}})));
        let t =
            prepare_turn(&ok(&format!(r#"{{"model":"m","input":"hi",{tools},"tool_choice":"required"}}"#)), &[], &InputLimits::default())
                .unwrap();
        assert_eq!(t.tool_choice, Some(json!("required")));
        for body in [
            r#"{"model":"m","input":"hi","tool_choice":"required"}"#.to_string(),
            format!(r#"{{"model":"m","input":"hi",{tools},"tool_choice":{{"type":"function","name":"nope"}}}}"#),
            r#"{"model":"m","input":"hi","tools":[{"type":"function","name":"a"},{"type":"function","name":"a"}]}"#.to_string(),
        ] {
            assert_eq!(prepare_turn(&ok(&body), &[], &InputLimits::default()).unwrap_err().message, INVALID_TOOL_CONFIG, "{body}");
        }
        // The tool check comes before the user-message check.
        assert_eq!(
            prepare_turn(&ok(r#"{"model":"m","input":[],"tool_choice":"required"}"#), &[], &InputLimits::default()).unwrap_err().message,
            INVALID_TOOL_CONFIG
        );
    }

    #[test]
    fn media() {
        let png = base64::engine::general_purpose::STANDARD.encode([0x89, b'P', b'N', b'G']);
        let body = format!(
            r#"{{"model":"m","input":[{{"type":"message","role":"user","content":[{{"type":"input_text","text":"look"}},{{"type":"input_image","source":{{"type":"base64","media_type":"image/png","data":"{png}"}}}},{{"type":"input_image","image_url":"https://example.com/a.png"}},{{"type":"input_file","source":{{"type":"base64","media_type":"text/plain","data":"aGVsbG8=","filename":"a.txt"}}}}]}}]}}"#
        );
        let t = prepare_turn(&ok(&body), &[], &InputLimits::default()).unwrap();
        assert_eq!(t.messages[0], json!({"role": "system", "content": "<file name=\"a.txt\">\nhello\n</file>"}));
        assert_eq!(
            t.messages[1],
            json!({"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ]})
        );
        let bad = [
            r#"{"type":"input_image","source":{"type":"base64","media_type":"image/png","data":"!!!"}}"#,
            r#"{"type":"input_image","file_id":"file_1"}"#,
            r#"{"type":"input_file","source":{"type":"url","url":"https://example.com/a.pdf"}}"#,
            r#"{"type":"input_file","source":{"type":"base64","media_type":"application/pdf","data":"aGVsbG8="}}"#,
        ];
        for part in bad {
            let body = format!(
                r#"{{"model":"m","input":[{{"type":"message","role":"user","content":[{{"type":"input_text","text":"x"}},{part}]}}]}}"#
            );
            assert_eq!(prepare_turn(&ok(&body), &[], &InputLimits::default()).unwrap_err().message, INVALID_MEDIA, "{part}");
        }
        let no_urls = InputLimits { allow_image_urls: false, ..InputLimits::default() };
        let body = r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"https://example.com/a.png"}]}]}"#;
        assert_eq!(prepare_turn(&ok(body), &[], &no_urls).unwrap_err().message, INVALID_MEDIA);
    }

    fn ids() -> ResponseIds {
        ResponseIds::from_seed("00112233445566778899aabbccddeeff")
    }

    #[test]
    fn ids_shape() {
        let i = ids();
        assert!(i.response_id.starts_with("resp_") && i.response_id.len() == 41);
        assert!(i.message_id.starts_with("msg_") && i.message_id.len() == 40);
        assert_ne!(i.call_item_id(0), i.call_item_id(1));
        assert_eq!(i.call_id(0).len(), 9);
        assert!(i.call_id(0).chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(i, ids(), "deterministic from the seed");
    }

    fn result(text: &str, calls: Vec<ToolCall>, finish: &str) -> TurnResult {
        TurnResult { text: text.into(), tool_calls: calls, finish_reason: finish.into(), prompt_tokens: 11, completion_tokens: 4 }
    }

    #[test]
    fn nonstream_objects() {
        let i = ids();
        let v = response_object(&i, "openclaw/main", 7, Ok(&result("Hello", vec![], "stop")));
        assert_eq!(v["status"], "completed");
        assert_eq!(v["output"][0]["phase"], "final_answer");
        assert!(v.get("error").is_none() && v.get("incomplete_details").is_none());
        let v = response_object(&i, "m", 7, Ok(&result("", vec![], "stop")));
        assert_eq!(v["output"][0]["content"][0]["text"], NO_RESPONSE);
        let v = response_object(&i, "m", 7, Ok(&result("partial", vec![], "length")));
        assert_eq!((v["status"].as_str(), &v["incomplete_details"]), (Some("incomplete"), &json!({"reason": "max_output_tokens"})));
        let call = ToolCall { id: "up1".into(), name: "get_weather".into(), arguments: "{\"city\":\"Paris\"}".into() };
        let v = response_object(&i, "m", 7, Ok(&result("", vec![call.clone()], "tool_calls")));
        assert_eq!(
            v["output"],
            json!([{"type": "function_call", "id": i.call_item_id(0), "call_id": i.call_id(0), "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}])
        );
        assert_eq!(v["status"], "completed");
        let v = response_object(&i, "m", 7, Ok(&result("Checking.", vec![call], "tool_calls")));
        assert_eq!((v["output"][0]["phase"].as_str(), v["output"][1]["type"].as_str()), (Some("commentary"), Some("function_call")));
        let e = ApiError { status: 401, kind: "authentication_error", message: "bad key".into() };
        assert_eq!(response_http_status(Err(&e)), 401);
        assert_eq!(response_object(&i, "m", 7, Err(&e))["error"], json!({"code": "authentication_error", "message": "bad key"}));
        assert_eq!(failure_status(&ApiError { status: 200, kind: "api_error", message: String::new() }), 500);
        assert_eq!(response_http_status(Ok(&TurnResult::default())), 200);
    }

    fn events(sse: &str) -> Vec<(String, Value)> {
        sse.split("\n\n")
            .filter(|b| !b.is_empty())
            .map(|b| match b.strip_prefix("event: ") {
                Some(rest) => {
                    let (kind, data) = rest.split_once("\ndata: ").unwrap();
                    (kind.to_string(), serde_json::from_str(data).unwrap())
                }
                None => ("".into(), json!(b)),
            })
            .collect()
    }

    #[test]
    fn stream_text() {
        let mut s = ResponsesStream::new(ids(), "openclaw/main", 5);
        let mut out = s.start();
        for t in ["Hello", " from", " fake", " upstream"] {
            out.push_str(&s.on_event(&TurnEvent::Text(t.into())));
        }
        out.push_str(&s.on_event(&TurnEvent::Finished(result("Hello from fake upstream", vec![], "stop"))));
        assert!(s.is_done() && out.ends_with("data: [DONE]\n\n"));
        assert_eq!(s.on_event(&TurnEvent::Text("late".into())), "");
        let ev = events(&out);
        for (kind, data) in &ev[..ev.len() - 1] {
            assert_eq!(data["type"].as_str(), Some(kind.as_str()));
        }
        let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
                ""
            ]
        );
        let done = &ev[11].1["response"];
        assert_eq!(done, &response_object(&ids(), "openclaw/main", 5, Ok(&result("Hello from fake upstream", vec![], "stop"))));
        assert_eq!(s.response(), Some(done));
    }

    #[test]
    fn stream_tool_calls() {
        let i = ids();
        let mut s = ResponsesStream::new(i.clone(), "m", 5);
        let mut out = s.on_event(&TurnEvent::ToolCallStart { index: 0, id: "up".into(), name: "get_weather".into() });
        out.push_str(&s.on_event(&TurnEvent::ToolCallArgs { index: 0, fragment: "{\"city\":".into() }));
        out.push_str(&s.on_event(&TurnEvent::ToolCallArgs { index: 0, fragment: "\"Paris\"}".into() }));
        out.push_str(&s.on_event(&TurnEvent::Finished(TurnResult { finish_reason: "tool_calls".into(), ..Default::default() })));
        let ev = events(&out);
        let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            &kinds[4..],
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.output_item.done",
                "response.completed",
                ""
            ]
        );
        assert_eq!(ev[6].1["item"]["phase"], "commentary");
        let call = json!({"type": "function_call", "id": i.call_item_id(0), "call_id": i.call_id(0), "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"});
        assert_eq!(ev[7].1, json!({"type": "response.output_item.added", "output_index": 1, "item": call}));
        assert_eq!(ev[8].1["item"]["status"], "completed");
        assert_eq!(ev[9].1["response"]["output"][1], call);
    }

    #[test]
    fn stream_failure_and_incomplete() {
        let mut s = ResponsesStream::new(ids(), "m", 5);
        s.start();
        let out = s.on_event(&TurnEvent::Failed(ApiError { status: 500, kind: "api_error", message: "internal error".into() }));
        let ev = events(&out);
        assert_eq!(ev[0].0, "response.failed");
        assert_eq!(ev[0].1["response"]["error"], json!({"code": "api_error", "message": "internal error"}));
        assert_eq!(ev[0].1["response"]["output"], json!([]));
        assert_eq!(ev[1].0, "");
        let mut s = ResponsesStream::new(ids(), "m", 5);
        let out = s.on_event(&TurnEvent::Finished(result("cut", vec![], "length")));
        let ev = events(&out);
        assert_eq!(ev[4].1["delta"], "cut", "text never streamed is sent as one delta");
        assert_eq!(ev[ev.len() - 2].0, "response.incomplete");
        assert_eq!(ev[ev.len() - 2].1["response"]["incomplete_details"]["reason"], "max_output_tokens");
    }

    #[test]
    fn no_panics_on_odd_input() {
        for body in [
            "1",
            "\"s\"",
            "{\"model\":\"m\",\"input\":[null,1,\"x\",[],{}]}",
            "{\"model\":\"m\",\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":[null,{\"type\":\"input_image\"},{\"type\":\"input_file\"}]}]}",
            "{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{}}",
            "{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":1e300}",
            "{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":-0.0}",
        ] {
            let _ = parse_responses_request(body.as_bytes()).map(|r| prepare_turn(&r, &[], &InputLimits::default()));
        }
        let mut s = ResponsesStream::new(ids(), "m", 0);
        let _ = s.on_event(&TurnEvent::ToolCallArgs { index: 5, fragment: "x".into() });
        let _ = s.on_event(&TurnEvent::ToolCallStart { index: 3, id: "a".into(), name: "f".into() });
        let out = s.on_event(&TurnEvent::Finished(TurnResult::default()));
        assert!(out.contains("\"output_index\":1"));
    }
}
