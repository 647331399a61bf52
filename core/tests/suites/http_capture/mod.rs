//! Reading the reference gateway's raw HTTP captures (`testdata/vectors/http/*.txt`): the curl
//! command that produced the request and the final response (status, headers, body).

#![allow(dead_code)]

use serde_json::Value;

/// Directory of the captures.
pub fn dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors/http").to_string()
}

/// One capture file.
#[derive(Debug, Clone)]
pub struct Capture {
    pub name: String,
    /// The request, from the `$ curl …` line (when there is one).
    pub request: Option<CurlRequest>,
    /// Final response (a `100 Continue` before it is skipped).
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Capture {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.name, self.body))
    }
    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or_default()
    }
    pub fn req(&self) -> &CurlRequest {
        self.request.as_ref().unwrap_or_else(|| panic!("{}: no curl command", self.name))
    }
}

/// A request rebuilt from a curl command line.
#[derive(Debug, Clone, Default)]
pub struct CurlRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    /// `-d` body; `None` for no body or `--data-binary @file`.
    pub body: Option<String>,
    /// `--data-binary @file`.
    pub data_file: Option<String>,
}

impl CurlRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn body_bytes(&self) -> Vec<u8> {
        self.body.clone().unwrap_or_default().into_bytes()
    }
}

/// Split a shell command line on unescaped spaces, removing backslash escapes.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    let mut any = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            ' ' => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

pub fn parse_curl(line: &str) -> CurlRequest {
    let words = shell_words(line.trim_start_matches('$').trim());
    let mut r = CurlRequest::default();
    let mut explicit_method = None;
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        let next = words.get(i + 1).cloned().unwrap_or_default();
        match w.as_str() {
            "-H" => {
                if let Some((k, v)) = next.split_once(':') {
                    r.headers.push((k.trim().to_string(), v.trim().to_string()));
                }
                i += 2;
            }
            "-d" | "--data" => {
                r.body = Some(next);
                i += 2;
            }
            "--data-binary" => {
                r.data_file = next.strip_prefix('@').map(str::to_string);
                i += 2;
            }
            "-X" => {
                explicit_method = Some(next);
                i += 2;
            }
            u if u.starts_with("http://") || u.starts_with("https://") => {
                let after = u.split_once("://").map(|(_, a)| a).unwrap_or_default();
                let path_q = after.find('/').map(|p| &after[p..]).unwrap_or("/");
                match path_q.split_once('?') {
                    Some((p, q)) => {
                        r.path = p.to_string();
                        r.query = Some(q.to_string());
                    }
                    None => r.path = path_q.to_string(),
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    let has_body = r.body.is_some() || r.data_file.is_some();
    r.method = explicit_method.unwrap_or_else(|| if has_body { "POST".into() } else { "GET".into() });
    r
}

/// Load and parse one capture.
pub fn load(name: &str) -> Capture {
    let path = format!("{}/{name}", dir());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let request = text.lines().find(|l| l.starts_with("$ curl")).map(parse_curl);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("HTTP/1.1 ") && !l.starts_with("HTTP/1.1 100"))
        .map(|(i, _)| i)
        .next_back()
        .unwrap_or_else(|| panic!("{name}: no status line"));
    let status: u16 =
        lines[start].split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{name}: bad status line"));
    let mut headers = Vec::new();
    let mut i = start + 1;
    while i < lines.len() && !lines[i].trim().is_empty() {
        if let Some((k, v)) = lines[i].split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        i += 1;
    }
    let body = lines.get(i + 1..).map(|b| b.join("\n")).unwrap_or_default().trim_end().to_string();
    Capture { name: name.to_string(), request, status, headers, body }
}

/// Every capture whose file name starts with one of the prefixes, sorted.
pub fn names(prefixes: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir())
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect::<Vec<String>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|n: &String| n.ends_with(".txt") && prefixes.iter().any(|p| n.starts_with(p)))
        .collect();
    v.sort();
    v
}

/// An upstream log entry (`upstream-*.txt`): the `content-length`, `body (other fields)` and
/// `body.input` lines of the first request.
#[derive(Debug, Clone)]
pub struct UpstreamLog {
    pub method_path: String,
    pub content_length: Option<usize>,
    pub other_fields: Value,
    pub input: Value,
    pub headers: Vec<(String, String)>,
}

pub fn load_upstream(name: &str) -> UpstreamLog {
    let path = format!("{}/{name}", dir());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let method_path = lines.next().unwrap_or_default().to_string();
    let mut log = UpstreamLog { method_path, content_length: None, other_fields: Value::Null, input: Value::Null, headers: Vec::new() };
    for l in lines {
        if !l.starts_with("  ") {
            break;
        }
        let l = l.trim();
        if let Some(v) = l.strip_prefix("body (other fields): ") {
            log.other_fields = serde_json::from_str(v).unwrap_or(Value::Null);
        } else if let Some(v) = l.strip_prefix("body.input: ") {
            log.input = serde_json::from_str(v).unwrap_or(Value::Null);
        } else if let Some((k, v)) = l.split_once(": ") {
            if k == "content-length" {
                log.content_length = v.parse().ok();
            }
            log.headers.push((k.to_string(), v.to_string()));
        }
    }
    log
}
