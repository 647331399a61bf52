//! Input items, content parts, media sources, tools and tool choice.

use serde_json::{Map, Value};

use super::*;

/// `input`: `z.union([z.string(), z.array(ItemParam)])`.
pub(super) fn parse_input(iss: &mut Issues, v: Option<&Value>) -> Option<ResponsesInput> {
    match v {
        Some(Value::String(s)) => Some(ResponsesInput::Text(s.clone())),
        Some(Value::Array(items)) => {
            let mut sub = Issues::default();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(x) = parse_item(&mut sub, &at("input", i), item) {
                    out.push(x);
                }
            }
            union_result(iss, "input", sub, Some(ResponsesInput::Items(out)))
        }
        _ => {
            iss.hard("input", "Invalid input");
            None
        }
    }
}

pub(super) const ITEM_STATUS: [&str; 3] = ["in_progress", "completed", "incomplete"];

pub(super) fn parse_item(iss: &mut Issues, path: &str, v: &Value) -> Option<InputItem> {
    let Some(o) = v.as_object() else {
        invalid_type(iss, path, "object", Some(v));
        return None;
    };
    match o.get("type").and_then(Value::as_str) {
        Some("message") => parse_message(iss, path, o),
        None if o.get("type").is_none() && o.contains_key("role") => parse_message(iss, path, o),
        Some("function_call") => parse_function_call(iss, path, o),
        Some("function_call_output") => parse_function_call_output(iss, path, o),
        Some("reasoning") => {
            // Accepted and ignored (not sent upstream); only its shape is checked.
            let mut local = Issues::default();
            opt_string(&mut local, &at(path, "id"), o.get("id"));
            opt_nullable_string(&mut local, &at(path, "encrypted_content"), o.get("encrypted_content"));
            if let Some(s) = o.get("status") {
                one_of(&mut local, &at(path, "status"), Some(s), &ITEM_STATUS);
            }
            strict_keys(&mut local, path, o, &["type", "id", "content", "encrypted_content", "summary", "status"]);
            let ok = local.0.is_empty();
            iss.merge(local);
            ok.then_some(InputItem::Skipped)
        }
        Some("item_reference") => {
            let mut local = Issues::default();
            req_string(&mut local, &at(path, "id"), o.get("id"));
            strict_keys(&mut local, path, o, &["type", "id"]);
            let ok = local.0.is_empty();
            iss.merge(local);
            ok.then_some(InputItem::Skipped)
        }
        _ => {
            iss.hard(&at(path, "type"), "Invalid input");
            None
        }
    }
}

pub(super) fn parse_message(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<InputItem> {
    let mut local = Issues::default();
    opt_string(&mut local, &at(path, "id"), o.get("id"));
    let role = one_of(&mut local, &at(path, "role"), o.get("role"), &["system", "developer", "user", "assistant"]);
    let content = parse_content(&mut local, &at(path, "content"), o.get("content"));
    let phase = match o.get("phase") {
        None | Some(Value::Null) => None,
        v => one_of(&mut local, &at(path, "phase"), v, &["commentary", "final_answer"]),
    };
    if let Some(s) = o.get("status") {
        one_of(&mut local, &at(path, "status"), Some(s), &ITEM_STATUS);
    }
    strict_keys(&mut local, path, o, &["type", "id", "role", "content", "phase", "status"]);
    if !local.aborted() && phase.is_some() && role.as_deref() != Some("assistant") {
        local.soft(&at(path, "phase"), "`phase` is only valid on assistant messages.");
    }
    let ok = local.0.is_empty();
    iss.merge(local);
    if !ok {
        return None;
    }
    let role = match role?.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" => Role::System,
        _ => Role::Developer,
    };
    Some(InputItem::Message { role, content: content? })
}

/// Message `content`: `z.union([z.string(), z.array(ContentPart)])`.
pub(super) fn parse_content(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<Vec<ContentPart>> {
    match v {
        Some(Value::String(s)) => Some(vec![ContentPart::Text(s.clone())]),
        Some(Value::Array(parts)) => {
            let mut sub = Issues::default();
            let mut out = Vec::with_capacity(parts.len());
            for (i, p) in parts.iter().enumerate() {
                if let Some(p) = parse_part(&mut sub, &at(path, i), p) {
                    out.push(p);
                }
            }
            union_result(iss, path, sub, Some(out))
        }
        _ => {
            iss.hard(path, "Invalid input");
            None
        }
    }
}

pub(super) fn parse_part(iss: &mut Issues, path: &str, v: &Value) -> Option<ContentPart> {
    let Some(o) = v.as_object() else {
        invalid_type(iss, path, "object", Some(v));
        return None;
    };
    let mut local = Issues::default();
    let part = match o.get("type").and_then(Value::as_str) {
        Some("input_text") => {
            let t = req_string(&mut local, &at(path, "text"), o.get("text"));
            strict_keys(&mut local, path, o, &["type", "text"]);
            t.map(ContentPart::Text)
        }
        Some("output_text") => {
            let t = req_string(&mut local, &at(path, "text"), o.get("text"));
            for k in ["annotations", "logprobs"] {
                if let Some(x) = o.get(k).filter(|x| !x.is_array()) {
                    invalid_type(&mut local, &at(path, k), "array", Some(x));
                }
            }
            strict_keys(&mut local, path, o, &["type", "text", "annotations", "logprobs"]);
            t.map(ContentPart::Text)
        }
        Some("input_image") => parse_image(&mut local, path, o).map(ContentPart::Image),
        Some("input_file") => parse_file(&mut local, path, o).map(ContentPart::File),
        _ => {
            local.hard(&at(path, "type"), "Invalid input");
            None
        }
    };
    let ok = local.0.is_empty();
    iss.merge(local);
    if ok { part } else { None }
}

/// A URL as `new URL()` would take it: a scheme, a colon, something after.
pub(super) fn looks_like_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
}

pub(super) const IMAGE_MIMES: [&str; 6] = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif"];

/// `input_image`: the reference's `{type, source:{type:"url",url}|{type:"base64",media_type,data}}`,
/// or the OpenAI shape `{type, image_url?, file_id?, detail?}`.
pub(super) fn parse_image(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<ImageSource> {
    if o.contains_key("source") || !(o.contains_key("image_url") || o.contains_key("file_id")) {
        let spath = at(path, "source");
        let src = parse_source(iss, &spath, o.get("source"), true);
        strict_keys(iss, path, o, &["type", "source"]);
        return match src? {
            Source::Url(u) => Some(ImageSource::Url(u)),
            Source::Base64 { media_type, data, .. } => Some(ImageSource::Base64 { media_type: media_type.unwrap_or_default(), data }),
        };
    }
    let url = opt_nullable_string(iss, &at(path, "image_url"), o.get("image_url"));
    let file_id = opt_nullable_string(iss, &at(path, "file_id"), o.get("file_id"));
    opt_nullable_string(iss, &at(path, "detail"), o.get("detail"));
    strict_keys(iss, path, o, &["type", "image_url", "file_id", "detail"]);
    match (url, file_id) {
        (Some(u), _) => Some(ImageSource::Url(u)),
        (None, Some(f)) => Some(ImageSource::FileId(f)),
        (None, None) => {
            iss.hard(&at(path, "image_url"), "Invalid input: expected string, received null");
            None
        }
    }
}

/// `input_file`: the reference's `{type, source}` or the OpenAI shape
/// `{type, file_data?, file_url?, file_id?, filename?}`.
pub(super) fn parse_file(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<FileSource> {
    if o.contains_key("source") || !["file_data", "file_url", "file_id"].iter().any(|k| o.contains_key(*k)) {
        let src = parse_source(iss, &at(path, "source"), o.get("source"), false);
        strict_keys(iss, path, o, &["type", "source"]);
        return match src? {
            Source::Url(u) => Some(FileSource::Url(u)),
            Source::Base64 { media_type, data, filename } => Some(FileSource::Base64 { media_type, data, filename }),
        };
    }
    let data = opt_nullable_string(iss, &at(path, "file_data"), o.get("file_data"));
    let url = opt_nullable_string(iss, &at(path, "file_url"), o.get("file_url"));
    let file_id = opt_nullable_string(iss, &at(path, "file_id"), o.get("file_id"));
    let filename = opt_nullable_string(iss, &at(path, "filename"), o.get("filename"));
    opt_nullable_string(iss, &at(path, "detail"), o.get("detail"));
    strict_keys(iss, path, o, &["type", "file_data", "file_url", "file_id", "filename", "detail"]);
    if let Some(d) = data {
        // `file_data` is a data URL (`data:<mime>;base64,<data>`) or bare base64.
        return Some(match parse_data_url(&d) {
            Some((mime, payload)) => {
                FileSource::Base64 { media_type: Some(mime.to_string()).filter(|m| !m.is_empty()), data: payload.to_string(), filename }
            }
            None => FileSource::Base64 { media_type: None, data: d, filename },
        });
    }
    match (url, file_id) {
        (Some(u), _) => Some(FileSource::Url(u)),
        (None, Some(f)) => Some(FileSource::FileId(f)),
        (None, None) => {
            iss.hard(&at(path, "file_data"), "Invalid input: expected string, received null");
            None
        }
    }
}

pub(super) enum Source {
    Url(String),
    Base64 { media_type: Option<String>, data: String, filename: Option<String> },
}

/// A `source` object (discriminated on `type`; extra keys are stripped, not rejected).
pub(super) fn parse_source(iss: &mut Issues, path: &str, v: Option<&Value>, image: bool) -> Option<Source> {
    let o = req_object(iss, path, v)?;
    match o.get("type").and_then(Value::as_str) {
        Some("url") => {
            let u = req_string(iss, &at(path, "url"), o.get("url"))?;
            if !looks_like_url(&u) {
                iss.soft(&at(path, "url"), "Invalid URL");
                return None;
            }
            Some(Source::Url(u))
        }
        Some("base64") => {
            let mt_path = at(path, "media_type");
            let media_type = if image {
                one_of(iss, &mt_path, o.get("media_type"), &IMAGE_MIMES)
            } else {
                let m = req_string(iss, &mt_path, o.get("media_type"));
                if m.as_deref() == Some("") {
                    iss.soft(&mt_path, "Too small: expected string to have >=1 characters");
                }
                m
            };
            let data = req_string(iss, &at(path, "data"), o.get("data"));
            if data.as_deref() == Some("") {
                iss.soft(&at(path, "data"), "Too small: expected string to have >=1 characters");
            }
            let filename = if image { None } else { opt_string(iss, &at(path, "filename"), o.get("filename")) };
            Some(Source::Base64 { media_type, data: data?, filename })
        }
        _ => {
            iss.hard(&at(path, "type"), "Invalid input");
            None
        }
    }
}

/// `caller`: `{type:"direct"}` or `{type:"program",caller_id}`, nullable.
pub(super) fn check_caller(iss: &mut Issues, path: &str, v: Option<&Value>) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("direct") => strict_keys(iss, path, o, &["type"]),
            Some("program") => {
                req_string(iss, &at(path, "caller_id"), o.get("caller_id"));
                strict_keys(iss, path, o, &["type", "caller_id"]);
            }
            _ => iss.hard(&at(path, "type"), "Invalid input"),
        },
        other => invalid_type(iss, path, "object", other),
    }
}

pub(super) fn parse_function_call(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<InputItem> {
    let mut local = Issues::default();
    let id = opt_string(&mut local, &at(path, "id"), o.get("id"));
    let call_id = opt_string(&mut local, &at(path, "call_id"), o.get("call_id"));
    let name = req_string(&mut local, &at(path, "name"), o.get("name"));
    let arguments = req_string(&mut local, &at(path, "arguments"), o.get("arguments"));
    check_caller(&mut local, &at(path, "caller"), o.get("caller"));
    opt_string(&mut local, &at(path, "namespace"), o.get("namespace"));
    opt_string(&mut local, &at(path, "created_by"), o.get("created_by"));
    if let Some(s) = o.get("status") {
        one_of(&mut local, &at(path, "status"), Some(s), &ITEM_STATUS);
    }
    strict_keys(&mut local, path, o, &["type", "id", "call_id", "name", "arguments", "caller", "namespace", "created_by", "status"]);
    let ok = local.0.is_empty();
    iss.merge(local);
    if !ok {
        return None;
    }
    Some(InputItem::FunctionCall { call_id: call_id.or(id).unwrap_or_default(), name: name?, arguments: arguments? })
}

pub(super) fn parse_function_call_output(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<InputItem> {
    let mut local = Issues::default();
    opt_nullable_string(&mut local, &at(path, "id"), o.get("id"));
    let call_id = req_string(&mut local, &at(path, "call_id"), o.get("call_id"));
    let opath = at(path, "output");
    let output = match o.get("output") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(parts)) => {
            let mut sub = Issues::default();
            let mut texts = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                let ppath = at(&opath, i);
                let Some(po) = p.as_object() else {
                    invalid_type(&mut sub, &ppath, "object", Some(p));
                    continue;
                };
                match po.get("type").and_then(Value::as_str) {
                    Some("input_text") => {
                        if let Some(t) = req_string(&mut sub, &at(&ppath, "text"), po.get("text")) {
                            texts.push(t);
                        }
                    }
                    // Images and files in tool results are accepted but not forwarded.
                    Some("input_image" | "input_file") => {}
                    _ => sub.hard(&at(&ppath, "type"), "Invalid input"),
                }
            }
            union_result(&mut local, &opath, sub, Some(texts.join("\n")))
        }
        _ => {
            local.hard(&opath, "Invalid input");
            None
        }
    };
    check_caller(&mut local, &at(path, "caller"), o.get("caller"));
    opt_string(&mut local, &at(path, "created_by"), o.get("created_by"));
    if let Some(s) = o.get("status").filter(|s| !s.is_null()) {
        one_of(&mut local, &at(path, "status"), Some(s), &ITEM_STATUS);
    }
    strict_keys(&mut local, path, o, &["type", "id", "call_id", "output", "caller", "created_by", "status"]);
    let ok = local.0.is_empty();
    iss.merge(local);
    if !ok {
        return None;
    }
    Some(InputItem::FunctionCallOutput { call_id: call_id?, output: output? })
}

/// One `tools[i]`: strict `{type:"function",name,description?,parameters?,strict?}`.
pub(super) fn parse_tool(iss: &mut Issues, path: &str, v: &Value) -> Option<FunctionTool> {
    let Some(o) = v.as_object() else {
        invalid_type(iss, path, "object", Some(v));
        return None;
    };
    let mut local = Issues::default();
    one_of(&mut local, &at(path, "type"), o.get("type"), &["function"]);
    let name = req_string(&mut local, &at(path, "name"), o.get("name"));
    if name.as_deref() == Some("") {
        local.soft(&at(path, "name"), "Tool name cannot be empty");
    }
    let description = opt_string(&mut local, &at(path, "description"), o.get("description"));
    let parameters = match o.get("parameters") {
        None => None,
        Some(p @ Value::Object(_)) => Some(p.clone()),
        other => {
            invalid_type(&mut local, &at(path, "parameters"), "record", other);
            None
        }
    };
    let strict = opt_bool(&mut local, &at(path, "strict"), o.get("strict"));
    strict_keys(&mut local, path, o, &["type", "name", "description", "parameters", "strict"]);
    let ok = local.0.is_empty();
    iss.merge(local);
    if !ok {
        return None;
    }
    Some(FunctionTool { name: name?, description, parameters, strict })
}

/// `tool_choice`: `"auto" | "none" | "required" | {type:"function",name} | {type:"function",function:{name}}`.
pub(super) fn parse_tool_choice(iss: &mut Issues, v: &Value) -> Option<ToolChoice> {
    const PATH: &str = "tool_choice";
    let o = match v {
        Value::String(s) => {
            return match s.as_str() {
                "auto" => Some(ToolChoice::Auto),
                "none" => Some(ToolChoice::None),
                "required" => Some(ToolChoice::Required),
                _ => {
                    iss.hard(PATH, "Invalid input");
                    None
                }
            };
        }
        Value::Object(o) => o,
        _ => {
            iss.hard(PATH, "Invalid input");
            return None;
        }
    };
    // Option A: {type:"function", name}.
    let mut a = Issues::default();
    one_of(&mut a, &at(PATH, "type"), o.get("type"), &["function"]);
    let name_a = req_string(&mut a, &at(PATH, "name"), o.get("name"));
    if name_a.as_deref() == Some("") {
        a.soft(&at(PATH, "name"), "Too small: expected string to have >=1 characters");
    }
    strict_keys(&mut a, PATH, o, &["type", "name"]);
    if a.0.is_empty() {
        return name_a.map(ToolChoice::Function);
    }
    // Option B: {type:"function", function:{name}}.
    let mut b = Issues::default();
    one_of(&mut b, &at(PATH, "type"), o.get("type"), &["function"]);
    let fpath = at(PATH, "function");
    let name_b = req_object(&mut b, &fpath, o.get("function")).and_then(|f| {
        let n = req_string(&mut b, &at(&fpath, "name"), f.get("name"));
        if n.as_deref() == Some("") {
            b.soft(&at(&fpath, "name"), "Too small: expected string to have >=1 characters");
        }
        n
    });
    strict_keys(&mut b, PATH, o, &["type", "function"]);
    if b.0.is_empty() {
        return name_b.map(ToolChoice::Function);
    }
    // The string literals always abort on an object; an object option whose issues are all
    // checks (not aborting) is the one the union reports.
    match (a.aborted(), b.aborted()) {
        (false, true) => iss.merge(a),
        (true, false) => iss.merge(b),
        _ => iss.hard(PATH, "Invalid input"),
    }
    None
}

/// `text`: `{format?:{type:"text"}}` (other keys stripped).
pub(super) fn parse_text(iss: &mut Issues, v: &Value) -> Option<String> {
    let o = req_object(iss, "text", Some(v))?;
    let f = o.get("format")?;
    let f = req_object(iss, "text.format", Some(f))?;
    one_of(iss, "text.format.type", f.get("type"), &["text"])
}

pub(super) fn parse_reasoning(iss: &mut Issues, v: &Value) -> Option<Reasoning> {
    let o = req_object(iss, "reasoning", Some(v))?;
    let mut local = Issues::default();
    let effort = o
        .get("effort")
        .and_then(|e| one_of(&mut local, "reasoning.effort", Some(e), &["none", "minimal", "low", "medium", "high", "xhigh"]));
    let summary = o.get("summary").and_then(|s| one_of(&mut local, "reasoning.summary", Some(s), &["auto", "concise", "detailed"]));
    let ok = local.0.is_empty();
    iss.merge(local);
    ok.then_some(Reasoning { effort, summary })
}
