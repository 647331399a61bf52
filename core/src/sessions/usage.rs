//! Token usage and cost from the session store (operator §3): `usage.cost`, `sessions.usage`,
//! `sessions.usage.timeseries`, `sessions.usage.logs`, and what a reply stores for them.
//!
//! Every assistant reply keeps `{api, provider, model, usage, stopReason}` beside its content
//! ([`reply_meta`]); usage is summed from those rows, bucketed by calendar day in the caller's
//! time zone, and priced with `models.providers.*.models[].cost` (USD per million tokens). A
//! model without a price counts its tokens and adds to `missingCostEntries`.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use serde_json::{Value, json};

use crate::config::api::{ApiConfig, ModelCost};
use crate::wire::ErrorShape;

use super::SessionSummary;

/// Longest window `days` asks for (the reference's cap).
pub const MAX_USAGE_DAYS: i64 = 36_600;

/// The transcript's `stopReason` for an upstream `finish_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "tool_calls" => "toolUse",
        "length" => "length",
        _ => "stop",
    }
}

/// What an assistant reply keeps beside its content: `{api, provider, model, usage, stopReason}`.
pub fn reply_meta(provider: Option<&str>, model: Option<&str>, r: &crate::openai::turn::TurnResult) -> Value {
    let (input, output) = (r.prompt_tokens, r.completion_tokens);
    json!({
        "api": "openai-completions", "provider": provider, "model": model,
        "usage": {"input": input, "output": output, "totalTokens": input + output, "cacheRead": 0, "cacheWrite": 0},
        "stopReason": stop_reason(&r.finish_reason),
    })
}

/// One stored transcript row, as usage reads it (no content).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub session_key: String,
    pub agent_id: String,
    pub role: String,
    pub ts_ms: u64,
    /// Tool calls the row makes (assistant rows).
    pub tool_calls: u64,
    /// The reply's metadata ([`reply_meta`]).
    pub meta: Option<Value>,
}

/// Which calendar the days are counted in (`mode`, `timeZone`, `utcOffset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayZone {
    Utc,
    /// The gateway host's own zone.
    Gateway,
    /// An IANA zone; when it does not exist the offset (if any) is used.
    Named {
        name: String,
        fallback_offset_minutes: Option<i32>,
    },
    Offset {
        minutes: i32,
    },
}

/// Which days (`startDate`/`endDate`, `range`, `days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaySpan {
    Between(Date, Date),
    Last(i64),
    /// Since the first recorded usage.
    All,
}

/// Whose usage (`agentId`, `agentScope: "all"`; neither: the default agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentFilter {
    Default,
    One(String),
    All,
}

/// A usage window: its days in a calendar, and the calendar's rules once the shell resolved
/// the zone ([`UsageWindow::resolve_zone`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageWindow {
    pub zone: DayZone,
    pub span: DaySpan,
    pub tz: Option<TimeZone>,
}

impl UsageWindow {
    /// Resolve the zone: `system` is the gateway's zone, `lookup` finds an IANA zone (both
    /// IO, done by the shell). Unresolvable names fall back to their offset, else stay unset
    /// and [`UsageWindow::bounds`] refuses them.
    pub fn resolve_zone(&mut self, system: &TimeZone, lookup: &dyn Fn(&str) -> Option<TimeZone>) {
        self.tz = match &self.zone {
            DayZone::Utc => Some(TimeZone::UTC),
            DayZone::Gateway => Some(system.clone()),
            DayZone::Offset { minutes } => fixed(*minutes),
            DayZone::Named { name, fallback_offset_minutes } => lookup(name).or_else(|| fallback_offset_minutes.and_then(fixed)),
        };
    }

    /// The zone, or the error for an unknown IANA name. Unresolved (no shell) reads as UTC.
    fn tz(&self) -> Result<TimeZone, ErrorShape> {
        match (&self.tz, &self.zone) {
            (Some(tz), _) => Ok(tz.clone()),
            (None, DayZone::Named { .. }) => Err(ErrorShape::invalid_request("invalid timeZone: expected a valid IANA time zone")),
            (None, DayZone::Offset { minutes }) => fixed(*minutes).ok_or_else(bad_offset),
            (None, _) => Ok(TimeZone::UTC),
        }
    }

    /// `[start_ms, end_ms]` of the window at `now_ms` (`All` starts at 0), and its days (for
    /// `All`: filled in from the rows by [`UsageWindow::days`]).
    pub fn bounds(&self, now_ms: u64) -> Result<(u64, u64), ErrorShape> {
        let tz = self.tz()?;
        let today = day_of(now_ms, &tz);
        let (first, last) = match self.span {
            DaySpan::Between(a, b) => (a, b),
            DaySpan::Last(n) => (today.checked_sub(jiff::Span::new().days(n.clamp(1, MAX_USAGE_DAYS) - 1)).unwrap_or(Date::MIN), today),
            DaySpan::All => return Ok((0, day_end_ms(today, &tz)?)),
        };
        if first > last {
            return Err(ErrorShape::invalid_request("startDate must not be after endDate"));
        }
        Ok((day_start_ms(first, &tz)?, day_end_ms(last, &tz)?))
    }

    /// The days of the window, oldest first (`All`: from the first row's day, at most
    /// [`MAX_USAGE_DAYS`]).
    pub fn days(&self, now_ms: u64, rows: &[UsageRow]) -> Vec<Date> {
        let Ok(tz) = self.tz() else { return Vec::new() };
        let today = day_of(now_ms, &tz);
        let (mut d, last) = match self.span {
            DaySpan::Between(a, b) => (a, b),
            DaySpan::Last(n) => (today.checked_sub(jiff::Span::new().days(n.clamp(1, MAX_USAGE_DAYS) - 1)).unwrap_or(Date::MIN), today),
            DaySpan::All => (rows.iter().map(|r| day_of(r.ts_ms, &tz)).min().unwrap_or(today), today),
        };
        let mut out = Vec::new();
        while d <= last && out.len() < MAX_USAGE_DAYS as usize {
            out.push(d);
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        out
    }

    fn label(&self, ts_ms: u64) -> String {
        day_of(ts_ms, &self.tz().unwrap_or(TimeZone::UTC)).to_string()
    }
}

fn fixed(minutes: i32) -> Option<TimeZone> {
    Offset::from_seconds(minutes * 60).ok().map(TimeZone::fixed)
}

fn bad_offset() -> ErrorShape {
    ErrorShape::invalid_request("invalid utcOffset: expected UTC-12:00 through UTC+14:00")
}

fn no_such_day() -> ErrorShape {
    ErrorShape::invalid_request("calendar day does not exist in requested time zone")
}

fn day_of(ms: u64, tz: &TimeZone) -> Date {
    let ts = Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or(Timestamp::UNIX_EPOCH);
    ts.to_zoned_datetime(tz.clone()).date()
}

fn day_start_ms(d: Date, tz: &TimeZone) -> Result<u64, ErrorShape> {
    let z = d.to_zoned_datetime(tz.clone()).map_err(|_| no_such_day())?;
    Ok(u64::try_from(z.timestamp().as_millisecond()).unwrap_or(0))
}

fn day_end_ms(d: Date, tz: &TimeZone) -> Result<u64, ErrorShape> {
    let next = d.tomorrow().map_err(|_| no_such_day())?;
    Ok(day_start_ms(next, tz)?.saturating_sub(1))
}

/// `UTC+H`, `UTC-HH`, `UTC+H:MM` → minutes east, within −12:00…+14:00.
pub fn parse_utc_offset(raw: &str) -> Option<i32> {
    let rest = raw.trim().strip_prefix("UTC")?;
    let (sign, rest) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h, m.parse::<i32>().ok().filter(|m| *m < 60)?),
        Some(_) => return None,
        None => (rest, 0),
    };
    if h.is_empty() || h.len() > 2 || !h.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let total = sign * (h.parse::<i32>().ok()? * 60 + m);
    (-720..=840).contains(&total).then_some(total)
}

/// A `YYYY-MM-DD` calendar date.
fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i16>().ok();
    Date::new(n(0..4)?, i8::try_from(n(5..7)?).ok()?, i8::try_from(n(8..10)?).ok()?).ok()
}

fn str_param<'a>(p: &'a Value, k: &str) -> Option<&'a str> {
    p.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// The window of `usage.cost` / `sessions.usage` params (the reference's order of checks).
fn parse_window(p: &Value) -> Result<UsageWindow, ErrorShape> {
    for field in ["startDate", "endDate"] {
        if let Some(raw) = str_param(p, field) {
            if parse_date(raw).is_none() {
                return Err(ErrorShape::invalid_request(format!("invalid {field}: expected a valid YYYY-MM-DD calendar date")));
            }
        }
    }
    let zone = match p.get("mode").and_then(Value::as_str) {
        Some("gateway") => DayZone::Gateway,
        Some("specific") => {
            let offset = p.get("utcOffset").and_then(Value::as_str).and_then(parse_utc_offset);
            match (p.get("timeZone").filter(|v| !v.is_null()), offset) {
                (Some(tz), _) => match tz.as_str().map(str::trim).filter(|s| !s.is_empty()) {
                    Some(name) => DayZone::Named { name: name.to_string(), fallback_offset_minutes: offset },
                    None => match offset {
                        Some(minutes) => DayZone::Offset { minutes },
                        None => return Err(ErrorShape::invalid_request("invalid timeZone: expected a valid IANA time zone")),
                    },
                },
                (None, Some(minutes)) => DayZone::Offset { minutes },
                (None, None) => match p.get("utcOffset") {
                    None | Some(Value::Null) => DayZone::Utc,
                    Some(Value::String(s)) if s.trim().is_empty() => DayZone::Utc,
                    Some(_) => return Err(bad_offset()),
                },
            }
        }
        _ => DayZone::Utc,
    };
    let start = str_param(p, "startDate").and_then(parse_date);
    let end = str_param(p, "endDate").and_then(parse_date);
    let span = match (start, end) {
        (Some(a), Some(b)) => {
            if a > b {
                return Err(ErrorShape::invalid_request("startDate must not be after endDate"));
            }
            DaySpan::Between(a, b)
        }
        (None, None) => match p.get("range").and_then(Value::as_str) {
            Some("all") => DaySpan::All,
            Some("7d") => DaySpan::Last(7),
            Some("30d") => DaySpan::Last(30),
            Some("90d") => DaySpan::Last(90),
            Some("1y") => DaySpan::Last(365),
            _ => {
                let days = match p.get("days") {
                    Some(Value::Number(n)) => n.as_f64(),
                    Some(Value::String(s)) if !s.trim().is_empty() => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                let days = days.filter(|d| d.is_finite()).map(|d| (d.floor() as i64).min(MAX_USAGE_DAYS)).unwrap_or(30);
                DaySpan::Last(days.max(1))
            }
        },
        _ => return Err(ErrorShape::invalid_request("startDate and endDate must be provided together")),
    };
    Ok(UsageWindow { zone, span, tz: None })
}

/// `usage.cost` params: ad hoc (unknown keys ignored), the reference's checks and messages.
#[derive(Debug, Clone, PartialEq)]
pub struct CostQuery {
    pub window: UsageWindow,
    pub agent: AgentFilter,
}

pub fn parse_cost_params(params: Option<&Value>) -> Result<CostQuery, ErrorShape> {
    let empty = json!({});
    let p = params.filter(|p| p.is_object()).unwrap_or(&empty);
    let window = parse_window(p)?;
    let all = p.get("agentScope").and_then(Value::as_str) == Some("all");
    let agent = match (all, str_param(p, "agentId")) {
        (true, Some(_)) => return Err(ErrorShape::invalid_request("agentScope=all cannot be combined with agentId")),
        (true, None) => AgentFilter::All,
        (false, Some(id)) => AgentFilter::One(id.to_ascii_lowercase()),
        (false, None) => AgentFilter::Default,
    };
    Ok(CostQuery { window, agent })
}

/// `sessions.usage` params (closed schema, operator-schemas.json).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionsUsageQuery {
    pub window: UsageWindow,
    pub agent: AgentFilter,
    pub key: Option<String>,
    pub limit: usize,
}

pub fn parse_sessions_usage_params(params: Option<&Value>) -> Result<SessionsUsageQuery, ErrorShape> {
    let schema = json!({"type": "object", "properties": {
        "key": {"type": "string", "minLength": 1}, "agentId": {"type": "string", "minLength": 1},
        "agentScope": {"type": "string", "const": "all"}, "creatorKey": {"type": "string", "minLength": 1},
        "startDate": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"}, "endDate": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
        "mode": {"anyOf": [{"type": "string", "const": "utc"}, {"type": "string", "const": "gateway"}, {"type": "string", "const": "specific"}]},
        "range": {"anyOf": [{"type": "string", "const": "7d"}, {"type": "string", "const": "30d"}, {"type": "string", "const": "90d"}, {"type": "string", "const": "1y"}, {"type": "string", "const": "all"}]},
        "groupBy": {"anyOf": [{"type": "string", "const": "instance"}, {"type": "string", "const": "family"}]},
        "includeHistorical": {"type": "boolean"}, "utcOffset": {"type": "string"}, "timeZone": {"type": "string", "minLength": 1},
        "limit": {"type": "integer", "minimum": 1}, "includeContextWeight": {"type": "boolean"}},
        "additionalProperties": false});
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&schema, p).map_err(|d| ErrorShape::invalid_request(format!("invalid sessions.usage params: {d}")))?;
    let all = p.get("agentScope").and_then(Value::as_str) == Some("all");
    let key = str_param(p, "key").map(str::to_string);
    let agent_id = str_param(p, "agentId");
    if all && (key.is_some() || agent_id.is_some()) {
        return Err(ErrorShape::invalid_request("agentScope=all cannot be combined with key or agentId"));
    }
    let window = parse_window(p)?;
    let agent = match (all, agent_id) {
        (true, _) => AgentFilter::All,
        (false, Some(id)) => AgentFilter::One(id.to_ascii_lowercase()),
        (false, None) => AgentFilter::Default,
    };
    let limit = p.get("limit").and_then(Value::as_u64).unwrap_or(50).min(1000) as usize;
    Ok(SessionsUsageQuery { window, agent, key, limit })
}

/// Token and cost totals (the reference's `CostUsageTotals`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub total_tokens: u64,
    pub input_cost: f64,
    pub output_cost: f64,
    pub cache_read_cost: f64,
    pub cache_write_cost: f64,
    pub missing_cost_entries: u64,
}

impl Totals {
    pub fn total_cost(&self) -> f64 {
        self.input_cost + self.output_cost + self.cache_read_cost + self.cache_write_cost
    }

    fn add(&mut self, o: &Totals) {
        self.input += o.input;
        self.output += o.output;
        self.cache_read += o.cache_read;
        self.cache_write += o.cache_write;
        self.total_tokens += o.total_tokens;
        self.input_cost += o.input_cost;
        self.output_cost += o.output_cost;
        self.cache_read_cost += o.cache_read_cost;
        self.cache_write_cost += o.cache_write_cost;
        self.missing_cost_entries += o.missing_cost_entries;
    }

    pub fn to_json(&self) -> Value {
        json!({
            "input": self.input, "output": self.output, "cacheRead": self.cache_read, "cacheWrite": self.cache_write,
            "totalTokens": self.total_tokens, "totalCost": round_cost(self.total_cost()),
            "inputCost": round_cost(self.input_cost), "outputCost": round_cost(self.output_cost),
            "cacheReadCost": round_cost(self.cache_read_cost), "cacheWriteCost": round_cost(self.cache_write_cost),
            "missingCostEntries": self.missing_cost_entries,
        })
    }
}

/// Costs to a millionth of a dollar (no float noise in the answer).
fn round_cost(c: f64) -> f64 {
    (c * 1e6).round() / 1e6
}

/// The usage and price of one reply row (`None`: the row reports no usage).
pub fn row_totals(meta: &Value, api: &ApiConfig) -> Option<Totals> {
    let u = meta.get("usage").filter(|u| u.is_object())?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (input, output, cache_read, cache_write) = (n("input"), n("output"), n("cacheRead"), n("cacheWrite"));
    let total = u.get("totalTokens").and_then(Value::as_u64).unwrap_or(input + output + cache_read + cache_write);
    let mut t = Totals { input, output, cache_read, cache_write, total_tokens: total, ..Totals::default() };
    let price: Option<ModelCost> = match (meta.get("provider").and_then(Value::as_str), meta.get("model").and_then(Value::as_str)) {
        (Some(p), Some(m)) => api.providers.get(p).and_then(|p| p.costs.get(m).copied()),
        _ => None,
    };
    match price {
        Some(c) => {
            let per = |tokens: u64, rate: f64| tokens as f64 * rate / 1_000_000.0;
            t.input_cost = per(input, c.input);
            t.output_cost = per(output, c.output);
            t.cache_read_cost = per(cache_read, c.cache_read);
            t.cache_write_cost = per(cache_write, c.cache_write);
        }
        None if total > 0 => t.missing_cost_entries = 1,
        None => {}
    }
    Some(t)
}

fn agent_matches(filter: &AgentFilter, agent_id: &str, api: &ApiConfig) -> bool {
    match filter {
        AgentFilter::All => true,
        AgentFilter::One(id) => agent_id.eq_ignore_ascii_case(id),
        AgentFilter::Default => agent_id.eq_ignore_ascii_case(&api.agents.default_agent()),
    }
}

/// The `usage.cost` result: one entry per day of the window (zeros included) and the totals.
pub fn cost_result(q: &CostQuery, rows: &[UsageRow], api: &ApiConfig, now_ms: u64) -> Result<Value, ErrorShape> {
    let (start, end) = q.window.bounds(now_ms)?;
    let days = q.window.days(now_ms, rows);
    let mut by_day: std::collections::BTreeMap<String, Totals> = days.iter().map(|d| (d.to_string(), Totals::default())).collect();
    let mut totals = Totals::default();
    for r in rows.iter().filter(|r| r.ts_ms >= start && r.ts_ms <= end && agent_matches(&q.agent, &r.agent_id, api)) {
        let Some(t) = r.meta.as_ref().and_then(|m| row_totals(m, api)) else { continue };
        if let Some(day) = by_day.get_mut(&q.window.label(r.ts_ms)) {
            day.add(&t);
            totals.add(&t);
        }
    }
    let daily: Vec<Value> = by_day
        .iter()
        .map(|(date, t)| {
            let mut v = json!({"date": date});
            merge(&mut v, t.to_json());
            v
        })
        .collect();
    Ok(json!({"updatedAt": now_ms, "days": daily.len(), "daily": daily, "totals": totals.to_json()}))
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

/// Message counts of a set of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    total: u64,
    user: u64,
    assistant: u64,
    tool_calls: u64,
    tool_results: u64,
    errors: u64,
}

impl Counts {
    fn add(&mut self, r: &UsageRow) {
        self.total += 1;
        match r.role.as_str() {
            "user" => self.user += 1,
            "assistant" => self.assistant += 1,
            "tool" => self.tool_results += 1,
            _ => {}
        }
        self.tool_calls += r.tool_calls;
        if r.meta.as_ref().and_then(|m| m.get("stopReason")).and_then(Value::as_str) == Some("error") {
            self.errors += 1;
        }
    }
    fn merge(&mut self, o: &Counts) {
        let Counts { total, user, assistant, tool_calls, tool_results, errors } = *o;
        *self = Counts {
            total: self.total + total,
            user: self.user + user,
            assistant: self.assistant + assistant,
            tool_calls: self.tool_calls + tool_calls,
            tool_results: self.tool_results + tool_results,
            errors: self.errors + errors,
        };
    }
    fn to_json(self) -> Value {
        json!({"total": self.total, "user": self.user, "assistant": self.assistant, "toolCalls": self.tool_calls,
            "toolResults": self.tool_results, "errors": self.errors})
    }
}

/// The `sessions.usage` result, answered fresh from the store (`cacheStatus.status: "fresh"`).
pub fn sessions_usage_result(
    q: &SessionsUsageQuery,
    rows: &[UsageRow],
    sessions: &[SessionSummary],
    api: &ApiConfig,
    now_ms: u64,
) -> Result<Value, ErrorShape> {
    use std::collections::BTreeMap;
    let (start, end) = q.window.bounds(now_ms)?;
    let days = q.window.days(now_ms, rows);
    // The window's rows by session, in one pass (up to 200 000 rows against 1 000 sessions).
    let mut by_session: BTreeMap<&str, Vec<&UsageRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.ts_ms >= start && r.ts_ms <= end) {
        by_session.entry(r.session_key.as_str()).or_default().push(r);
    }
    let mut picked: Vec<&SessionSummary> = sessions
        .iter()
        .filter(|s| match &q.key {
            Some(k) => s.key == *k || s.session_id == *k,
            None => agent_matches(&q.agent, &s.agent_id, api),
        })
        .collect();
    picked.sort_by_key(|s| std::cmp::Reverse(s.updated_ms));
    picked.truncate(q.limit);
    let mut totals = Totals::default();
    let mut counts = Counts::default();
    let mut by_model: BTreeMap<(String, String), (u64, Totals)> = BTreeMap::new();
    let mut by_provider: BTreeMap<String, (u64, Totals)> = BTreeMap::new();
    let mut by_agent: BTreeMap<String, Totals> = BTreeMap::new();
    let mut daily: BTreeMap<String, (Totals, Counts)> = days.iter().map(|d| (d.to_string(), Default::default())).collect();
    let mut out_sessions = Vec::new();
    let mut active = 0u64;
    for s in &picked {
        let mine: Vec<&UsageRow> = by_session.remove(s.key.as_str()).unwrap_or_default();
        let mut st = Totals::default();
        let mut sc = Counts::default();
        let mut day_rows: BTreeMap<String, Totals> = BTreeMap::new();
        let mut models: BTreeMap<(String, String), (u64, Totals)> = BTreeMap::new();
        for r in &mine {
            sc.add(r);
            let label = q.window.label(r.ts_ms);
            if let Some(d) = daily.get_mut(&label) {
                d.1.add(r);
            }
            let Some(t) = r.meta.as_ref().and_then(|m| row_totals(m, api)) else { continue };
            st.add(&t);
            day_rows.entry(label.clone()).or_default().add(&t);
            if let Some(d) = daily.get_mut(&label) {
                d.0.add(&t);
            }
            let meta = r.meta.as_ref();
            let provider = meta.and_then(|m| m.get("provider")).and_then(Value::as_str).unwrap_or("unknown").to_string();
            let model = meta.and_then(|m| m.get("model")).and_then(Value::as_str).unwrap_or("unknown").to_string();
            let e = models.entry((provider.clone(), model.clone())).or_default();
            e.0 += 1;
            e.1.add(&t);
            let e = by_model.entry((provider.clone(), model)).or_default();
            e.0 += 1;
            e.1.add(&t);
            let e = by_provider.entry(provider).or_default();
            e.0 += 1;
            e.1.add(&t);
        }
        totals.add(&st);
        counts.merge(&sc);
        by_agent.entry(s.agent_id.clone()).or_default().add(&st);
        let usage = if mine.is_empty() {
            Value::Null
        } else {
            active += 1;
            let first = mine.iter().map(|r| r.ts_ms).min().unwrap_or(0);
            let last = mine.iter().map(|r| r.ts_ms).max().unwrap_or(0);
            let mut u = st.to_json();
            merge(
                &mut u,
                json!({
                    "messageCounts": sc.to_json(),
                    "firstActivity": first,
                    "lastActivity": last,
                    "durationMs": last.saturating_sub(first),
                    "activityDates": day_rows.keys().collect::<Vec<_>>(),
                    "dailyBreakdown": day_rows.iter().map(|(d, t)| json!({"date": d, "tokens": t.total_tokens, "cost": round_cost(t.total_cost())})).collect::<Vec<_>>(),
                    "toolUsage": {"totalCalls": sc.tool_calls, "uniqueTools": 0, "tools": []},
                    "modelUsage": models.iter().map(|((p, m), (n, t))| json!({"provider": p, "model": m, "count": n, "totals": t.to_json()})).collect::<Vec<_>>(),
                }),
            );
            u
        };
        out_sessions.push(json!({
            "key": s.key, "label": s.label.clone().or_else(|| s.display_name.clone()).unwrap_or_else(|| s.key.rsplit(':').next().unwrap_or_default().to_string()), "sessionId": s.session_id,
            "scope": "instance", "updatedAt": s.updated_ms, "agentId": s.agent_id, "creatorKey": "[\"unknown\"]",
            "modelProvider": s.last_model_provider, "model": s.last_model, "usage": usage, "hasContextWeight": false,
        }));
    }
    let (first_day, last_day) = match (days.first(), days.last()) {
        (Some(a), Some(b)) => (a.to_string(), b.to_string()),
        _ => (String::new(), String::new()),
    };
    let named = |(k, (n, t)): (&String, &(u64, Totals))| json!({"provider": k, "count": n, "totals": t.to_json()});
    Ok(json!({
        "updatedAt": now_ms,
        "startDate": first_day,
        "endDate": last_day,
        "sessions": out_sessions,
        "totals": totals.to_json(),
        "aggregates": {
            "sessionCount": active,
            "messages": counts.to_json(),
            "tools": {"totalCalls": counts.tool_calls, "uniqueTools": 0, "tools": []},
            "byModel": by_model.iter().map(|((p, m), (n, t))| json!({"provider": p, "model": m, "count": n, "totals": t.to_json()})).collect::<Vec<_>>(),
            "byProvider": by_provider.iter().map(named).collect::<Vec<_>>(),
            "byAgent": by_agent.iter().map(|(a, t)| json!({"agentId": a, "totals": t.to_json()})).collect::<Vec<_>>(),
            "byChannel": [],
            "byCreator": [],
            "costDaily": daily.iter().map(|(d, (t, _))| json!({"date": d, "totalCost": round_cost(t.total_cost()), "totalTokens": t.total_tokens})).collect::<Vec<_>>(),
            "dailyLatency": [],
            "modelDaily": [],
            "daily": daily.iter().map(|(d, (t, c))| json!({"date": d, "tokens": t.total_tokens, "cost": round_cost(t.total_cost()),
                "messages": c.total, "toolCalls": c.tool_calls, "errors": c.errors})).collect::<Vec<_>>(),
        },
        "creatorOptions": [{"key": "[\"unknown\"]"}],
        "cacheStatus": {"status": "fresh", "cachedFiles": 0, "pendingFiles": 0, "staleFiles": 0},
    }))
}

/// `sessions.usage.timeseries {key}` → `{sessionId, points}`: one point per reply with usage,
/// with running sums.
pub fn timeseries_result(session_id: &str, rows: &[UsageRow], api: &ApiConfig) -> Value {
    let (mut tokens, mut cost) = (0u64, 0f64);
    let points: Vec<Value> = rows
        .iter()
        .filter_map(|r| Some((r.ts_ms, row_totals(r.meta.as_ref()?, api)?)))
        .map(|(ts, t)| {
            tokens += t.total_tokens;
            cost += t.total_cost();
            json!({"timestamp": ts, "input": t.input, "output": t.output, "cacheRead": t.cache_read, "cacheWrite": t.cache_write,
                "totalTokens": t.total_tokens, "cost": round_cost(t.total_cost()), "cumulativeTokens": tokens, "cumulativeCost": round_cost(cost)})
        })
        .collect();
    json!({"sessionId": session_id, "points": points})
}

/// `{key}` params of `sessions.usage.timeseries` / `.logs`.
pub fn parse_key_param(method: &str, params: Option<&Value>) -> Result<String, ErrorShape> {
    params
        .and_then(|p| str_param(p, "key"))
        .map(str::to_string)
        .ok_or_else(|| ErrorShape::invalid_request(format!("invalid {method} params: must have required property 'key'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, ts: u64, input: u64, output: u64) -> UsageRow {
        UsageRow {
            session_key: key.into(),
            agent_id: "main".into(),
            role: "assistant".into(),
            ts_ms: ts,
            tool_calls: 0,
            meta: Some(
                json!({"provider": "fake", "model": "m", "usage": {"input": input, "output": output, "totalTokens": input + output}}),
            ),
        }
    }

    #[test]
    fn offsets_parse_as_the_reference_reads_them() {
        assert_eq!(parse_utc_offset("UTC+5:30"), Some(330));
        assert_eq!(parse_utc_offset("UTC-8"), Some(-480));
        assert_eq!(parse_utc_offset("UTC+14"), Some(840));
        assert_eq!(parse_utc_offset("UTC+15"), None);
        assert_eq!(parse_utc_offset("UTC+5:60"), None);
        assert_eq!(parse_utc_offset("GMT+1"), None);
    }

    #[test]
    fn params_are_checked_in_the_reference_order() {
        let e = |p: Value| parse_cost_params(Some(&p)).unwrap_err().message;
        assert_eq!(e(json!({"startDate": "2026-12-01"})), "startDate and endDate must be provided together");
        assert_eq!(e(json!({"startDate": "2026-12-09", "endDate": "2026-12-01"})), "startDate must not be after endDate");
        assert_eq!(
            e(json!({"startDate": "2026-02-30", "endDate": "2026-03-01"})),
            "invalid startDate: expected a valid YYYY-MM-DD calendar date"
        );
        assert_eq!(e(json!({"agentScope": "all", "agentId": "main"})), "agentScope=all cannot be combined with agentId");
        assert_eq!(parse_cost_params(Some(&json!({"days": "7"}))).unwrap().window.span, DaySpan::Last(7));
        assert_eq!(parse_cost_params(Some(&json!({"bogus": 1}))).unwrap().window.span, DaySpan::Last(30));
    }

    #[test]
    fn days_are_counted_in_the_callers_calendar() {
        // 2026-12-06T23:30Z is already the 7th in UTC+1.
        let ts = 1_796_599_800_000; // 2026-12-06T23:30:00Z
        let mut w = UsageWindow { zone: DayZone::Offset { minutes: 60 }, span: DaySpan::Last(2), tz: None };
        w.resolve_zone(&TimeZone::UTC, &|_| None);
        assert_eq!(w.label(ts), "2026-12-07");
        let days: Vec<String> = w.days(ts, &[]).iter().map(ToString::to_string).collect();
        assert_eq!(days, ["2026-12-06", "2026-12-07"]);
        let q = CostQuery { window: UsageWindow { zone: DayZone::Utc, span: DaySpan::Last(2), tz: None }, agent: AgentFilter::All };
        let api = ApiConfig::default();
        let v = cost_result(&q, &[row("k", ts, 3, 4), row("k", ts - 86_400_000 * 5, 100, 100)], &api, ts).unwrap();
        assert_eq!(v["days"], 2);
        assert_eq!(v["daily"][1]["date"], "2026-12-06");
        assert_eq!(v["daily"][1]["totalTokens"], 7);
        assert_eq!(v["totals"]["totalTokens"], 7, "the row outside the window is not counted");
        assert_eq!(v["totals"]["missingCostEntries"], 1, "no price configured");
        let mut bad =
            UsageWindow { zone: DayZone::Named { name: "Mars/Base".into(), fallback_offset_minutes: None }, span: DaySpan::All, tz: None };
        bad.resolve_zone(&TimeZone::UTC, &|_| None);
        assert_eq!(bad.bounds(ts).unwrap_err().message, "invalid timeZone: expected a valid IANA time zone");
    }

    #[test]
    fn prices_are_per_million_tokens() {
        let mut api = ApiConfig::default();
        let mut p = crate::config::api::ProviderConfig::default();
        p.costs.insert("m".into(), ModelCost { input: 2.0, output: 10.0, cache_read: 0.0, cache_write: 0.0 });
        api.providers.insert("fake".into(), p);
        let t = row_totals(row("k", 0, 1_000, 500).meta.as_ref().unwrap(), &api).unwrap();
        assert_eq!(t.input_cost, 0.002);
        assert_eq!(t.output_cost, 0.005);
        assert_eq!(t.missing_cost_entries, 0);
        assert_eq!(t.to_json()["totalCost"], 0.007);
    }
}
