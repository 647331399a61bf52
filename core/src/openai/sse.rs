//! The upstream provider's `text/event-stream` body (`openai-completions`, spec http §6.3): events
//! split from bytes in any chunking, each event's `data:` JSON read into [`UpstreamEvent`]s.
//!
//! Every chunk of every relayed answer passes through here (issue 17), so the common shape is
//! read without building a JSON tree: the event is parsed in place in the buffer, and a chunk
//! is deserialized into borrowed typed fields. Anything the typed reading does not accept
//! (an unexpected type anywhere, a duplicate key) is read again through a `Value` with the
//! lenient rules of [`events_from_value`], so both readings give the same events for every
//! input (tested below by property).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::UpstreamEvent;

/// Incremental parser of an upstream `text/event-stream` body (bytes in any chunking).
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for an event end (a search resumes there, so a long
    /// event costs linear time, not quadratic).
    scanned: usize,
    /// Set once an event grew past [`MAX_SSE_EVENT_BYTES`]: the stream is refused.
    overflowed: bool,
}

/// Largest single upstream SSE event buffered while waiting for its end.
pub const MAX_SSE_EVENT_BYTES: usize = 4 * 1024 * 1024;

impl SseParser {
    /// Feed bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<UpstreamEvent> {
        if self.overflowed {
            return Vec::new();
        }
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        // Events are read where they lie; the consumed prefix is dropped once, at the end.
        let mut consumed = 0;
        let mut from = self.scanned.saturating_sub(3);
        while let Some((end, separator)) = find_event_end(&self.buf, from.max(consumed)) {
            event_data(&self.buf[consumed..end], &mut out);
            consumed = end + separator;
            from = consumed;
        }
        self.buf.drain(..consumed);
        self.scanned = self.buf.len();
        if self.buf.len() > MAX_SSE_EVENT_BYTES {
            self.overflowed = true;
            self.buf = Vec::new();
            out.push(UpstreamEvent::Error(format!("an event larger than {MAX_SSE_EVENT_BYTES} bytes")));
        }
        out
    }
}

/// The first event end at or after `from`: a blank line (`\n\n` or `\r\n\r\n`), as (where the
/// event's bytes end, the separator's length).
fn find_event_end(b: &[u8], from: usize) -> Option<(usize, usize)> {
    for nl in memchr::memchr_iter(b'\n', b.get(from..)?).map(|i| i + from) {
        if b.get(nl + 1) == Some(&b'\n') {
            return Some((nl, 2));
        }
        if nl > from && b[nl - 1] == b'\r' && b.get(nl + 1..nl + 3) == Some(b"\r\n") {
            return Some((nl - 1, 4));
        }
    }
    None
}

/// The events of one SSE event: its `data:` lines joined by `\n` (a comment or an event without
/// data yields none).
fn event_data(raw: &[u8], out: &mut Vec<UpstreamEvent>) {
    // Valid UTF-8 (every real provider) is checked by the fast path; only invalid bytes take
    // the lossy replacement.
    let text = match std::str::from_utf8(raw) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(raw),
    };
    let mut data = text.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start);
    let Some(first) = data.next() else { return };
    match data.next() {
        None => parse_chunk(first, out),
        Some(second) => {
            let mut joined = format!("{first}\n{second}");
            for more in data {
                joined.push('\n');
                joined.push_str(more);
            }
            parse_chunk(&joined, out)
        }
    }
}

/// The events of one chunk's `data` (`[DONE]`, or a `chat.completion.chunk` object).
fn parse_chunk(data: &str, out: &mut Vec<UpstreamEvent>) {
    if data.trim() == "[DONE]" {
        return out.push(UpstreamEvent::Done);
    }
    // A JSON array would also fill a struct field by field: only an object is read typed.
    if data.trim_start().starts_with('{') {
        if let Ok(chunk) = serde_json::from_str::<ChunkWire>(data) {
            return chunk.events(out);
        }
    }
    if let Ok(v) = serde_json::from_str::<Value>(data) {
        events_from_value(&v, out);
    }
}

/// The lenient reading: whatever has the expected type is used, anything else is ignored.
fn events_from_value(v: &Value, out: &mut Vec<UpstreamEvent>) {
    if let Some(e) = v.get("error") {
        out.push(error_event(e));
        return;
    }
    if let Some(choice) = v.get("choices").and_then(Value::as_array).and_then(|c| c.first()) {
        let delta = choice.get("delta").or_else(|| choice.get("message"));
        if let Some(t) = delta.and_then(|d| d.get("content")).and_then(Value::as_str).filter(|t| !t.is_empty()) {
            out.push(UpstreamEvent::Text(t.to_string()));
        }
        if let Some(calls) = delta.and_then(|d| d.get("tool_calls")).and_then(Value::as_array) {
            for (n, c) in calls.iter().enumerate() {
                let index = c.get("index").and_then(Value::as_u64).map_or(n, |i| i as usize);
                let name = c.pointer("/function/name").and_then(Value::as_str);
                if let Some(name) = name {
                    let id = c.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                    out.push(UpstreamEvent::ToolStart { index, id, name: name.to_string() });
                }
                if let Some(a) = c.pointer("/function/arguments").and_then(Value::as_str).filter(|a| !a.is_empty()) {
                    out.push(UpstreamEvent::ToolArgs { index, fragment: a.to_string() });
                }
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            out.push(UpstreamEvent::Finish(f.to_string()));
        }
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        out.push(UpstreamEvent::Usage {
            prompt: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
            completion: u.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
        });
    }
}

fn error_event(e: &Value) -> UpstreamEvent {
    UpstreamEvent::Error(e.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| e.to_string()))
}

/// A string borrowed from the chunk when it has no escapes, owned when it had to be unescaped.
#[derive(Debug)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

/// A key that is present, whatever its value (`null` included): `Some(..)` exactly when the
/// lenient reading's `get` would find the key.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// An object, and only an object: a derived struct also accepts a JSON array (its fields by
/// position), which the lenient reading never reads as one.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData)).map(Obj)
    }
}

/// One `chat.completion.chunk`, only the fields the relay reads.
#[derive(Deserialize)]
struct ChunkWire<'a> {
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
    #[serde(borrow, default)]
    choices: Option<Vec<Obj<ChoiceWire<'a>>>>,
    #[serde(default)]
    usage: Option<Obj<UsageWire>>,
}

#[derive(Deserialize)]
struct ChoiceWire<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    delta: Option<Option<Obj<DeltaWire<'a>>>>,
    #[serde(borrow, default, deserialize_with = "present")]
    message: Option<Option<Obj<DeltaWire<'a>>>>,
    #[serde(borrow, default)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct DeltaWire<'a> {
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<Obj<ToolCallWire<'a>>>>,
}

#[derive(Deserialize)]
struct ToolCallWire<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    function: Option<Obj<FunctionWire<'a>>>,
}

#[derive(Deserialize)]
struct FunctionWire<'a> {
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    arguments: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct UsageWire {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl ChunkWire<'_> {
    /// The same events as [`events_from_value`] gives for this chunk.
    fn events(self, out: &mut Vec<UpstreamEvent>) {
        if let Some(e) = &self.error {
            return out.push(error_event(e));
        }
        if let Some(Obj(choice)) = self.choices.and_then(|c| c.into_iter().next()) {
            let delta = match choice.delta {
                Some(delta) => delta,
                None => choice.message.flatten(),
            };
            if let Some(Obj(delta)) = delta {
                if let Some(Text(t)) = delta.content.filter(|t| !t.0.is_empty()) {
                    out.push(UpstreamEvent::Text(t.into_owned()));
                }
                for (n, Obj(c)) in delta.tool_calls.into_iter().flatten().enumerate() {
                    let index = c.index.map_or(n, |i| i as usize);
                    let (name, arguments) = c.function.map_or((None, None), |Obj(f)| (f.name, f.arguments));
                    if let Some(Text(name)) = name {
                        let id = c.id.map(|t| t.0.into_owned()).unwrap_or_default();
                        out.push(UpstreamEvent::ToolStart { index, id, name: name.into_owned() });
                    }
                    if let Some(Text(a)) = arguments.filter(|a| !a.0.is_empty()) {
                        out.push(UpstreamEvent::ToolArgs { index, fragment: a.into_owned() });
                    }
                }
            }
            if let Some(Text(f)) = choice.finish_reason {
                out.push(UpstreamEvent::Finish(f.into_owned()));
            }
        }
        if let Some(Obj(u)) = self.usage {
            out.push(UpstreamEvent::Usage { prompt: u.prompt_tokens.unwrap_or(0), completion: u.completion_tokens.unwrap_or(0) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn lenient(data: &str) -> Vec<UpstreamEvent> {
        let mut out = Vec::new();
        if data.trim() == "[DONE]" {
            out.push(UpstreamEvent::Done);
        } else if let Ok(v) = serde_json::from_str::<Value>(data) {
            events_from_value(&v, &mut out);
        }
        out
    }

    fn typed(data: &str) -> Vec<UpstreamEvent> {
        let mut out = Vec::new();
        parse_chunk(data, &mut out);
        out
    }

    #[test]
    fn typed_and_lenient_readings_agree_on_the_awkward_cases() {
        for data in [
            r#"{"choices":[{"delta":{"content":"a\"b\n"}}]}"#,
            r#"{"choices":[{"delta":null,"message":{"content":"m"}}]}"#,
            r#"{"choices":[{"message":{"content":"m"}}]}"#,
            r#"{"choices":[{"delta":{"content":5}}],"usage":{"prompt_tokens":1}}"#,
            r#"{"choices":{"0":{}},"usage":{"prompt_tokens":2,"completion_tokens":3}}"#,
            r#"{"error":null,"choices":[{"delta":{"content":"x"}}]}"#,
            r#"{"error":{"message":"boom"}}"#,
            r#"{"error":"plain"}"#,
            r#"{"usage":{"prompt_tokens":1.5,"completion_tokens":-1}}"#,
            r#"{"usage":7}"#,
            r#"{"usage":[]}"#,
            r#"{"choices":[[{"content":"by position"}]]}"#,
            r#"{"choices":[{"delta":[["x"]]}]}"#,
            r#"{"choices":[{"delta":{"content":"a"}},7]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f"}},{"index":-1,"function":{"arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"x","function":null}]},"finish_reason":""}]}"#,
            r#"{"choices":[{"delta":{"content":"a"},"delta":{"content":"b"}}]}"#,
            r#"[[{"delta":{"content":"array"}}]]"#,
            r#"{"choices":[]}trailing"#,
            " [DONE] ",
            "",
        ] {
            assert_eq!(typed(data), lenient(data), "{data}");
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "choices",
            "delta",
            "message",
            "content",
            "tool_calls",
            "index",
            "id",
            "function",
            "name",
            "arguments",
            "finish_reason",
            "usage",
            "prompt_tokens",
            "completion_tokens",
            "error",
            "other",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..1000).prop_map(Value::from),
            Just(json!(1.5)),
            "[a-z\"\\\\\n]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn typed_reading_gives_the_lenient_readings_events(v in arb_value()) {
            let data = v.to_string();
            prop_assert_eq!(typed(&data), lenient(&data));
        }

        #[test]
        fn events_do_not_depend_on_how_the_bytes_are_split(cuts in prop::collection::vec(0usize..200, 0..6), crlf in any::<bool>()) {
            let sep = if crlf { "\r\n\r\n" } else { "\n\n" };
            let body = [
                r#"data: {"choices":[{"delta":{"content":"He\"l"}}]}"#,
                ": a comment",
                "event: x\ndata: {\"choices\":[{\"delta\":\ndata: {\"content\":\"lo\"}}]}",
                r#"data: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
                "data: [DONE]",
            ]
            .map(|e| format!("{e}{sep}"))
            .concat();
            let whole = SseParser::default().push(body.as_bytes());
            let mut cuts = cuts.into_iter().map(|c| c.min(body.len())).collect::<Vec<_>>();
            cuts.sort();
            let (mut p, mut events, mut at) = (SseParser::default(), Vec::new(), 0);
            for c in cuts.into_iter().chain([body.len()]) {
                events.extend(p.push(&body.as_bytes()[at..c]));
                at = c;
            }
            prop_assert_eq!(&events, &whole);
            prop_assert_eq!(whole.len(), 5);
        }
    }
}
