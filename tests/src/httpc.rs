//! A small blocking HTTP/1.1 client over `std::net::TcpStream` for the API tests: exact control
//! of the request bytes, the raw status and headers back, `Content-Length` and chunked bodies,
//! and SSE event splitting.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// A response: status, headers (names lower-cased), body.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }
    /// SSE `data:` payloads, in order (the `[DONE]` marker included as a string).
    pub fn sse_data(&self) -> Vec<String> {
        self.text()
            .split("\n\n")
            .filter_map(|ev| {
                let data: Vec<&str> = ev.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                (!data.is_empty()).then(|| data.join("\n"))
            })
            .collect()
    }
    /// SSE `event:` names, in order.
    pub fn sse_events(&self) -> Vec<String> {
        self.text().split("\n\n").filter_map(|ev| ev.lines().find_map(|l| l.strip_prefix("event: ")).map(str::to_string)).collect()
    }
}

/// Send one request (`Connection: close`) and read the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let has_length = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding"));
    if !has_length && (!body.is_empty() || method == "POST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    read_response(&mut BufReader::new(s))
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// Read a response (skipping `100 Continue`).
pub fn read_response(r: &mut impl BufRead) -> std::io::Result<Resp> {
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status: u16 =
            line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad(&format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        if status == 100 {
            continue;
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v): &(String, String)| v.clone());
        let mut body = Vec::new();
        if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                r.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).map_err(|_| bad("bad chunk size"))?;
                if n == 0 {
                    let mut end = String::new();
                    r.read_line(&mut end)?;
                    break;
                }
                let mut chunk = vec![0; n];
                r.read_exact(&mut chunk)?;
                body.extend_from_slice(&chunk);
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf)?;
            }
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body = vec![0; n];
            r.read_exact(&mut body)?;
        } else {
            r.read_to_end(&mut body)?;
        }
        return Ok(Resp { status, headers, body });
    }
}
