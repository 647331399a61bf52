//! When a job fires (operator §6.1 `schedule`): a one-shot time (`at`), a fixed interval from an
//! anchor (`every`), or a cron expression read in a time zone (`cron`). Cron expressions are
//! parsed and searched by `croner` (the Rust port of the library the reference uses), over
//! `jiff` time zones — so daylight-saving gaps and repeats follow Vixie cron: a fixed time in a
//! spring-forward gap fires just after the gap, a fixed time in a fall-back repeat fires once.

use std::cmp::Ordering;

use croner::errors::CronError;
use croner::{CivilDate, CivilDateTime, CivilTime, Cron, CronDateTime, Resolution, Weekday};
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ZonedDateTime as Zoned};
use serde_json::{Value, json};

/// Why a schedule was refused (the reference's texts, operator §6.1 "Schedule errors").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `at` is not an ISO-8601 time (answered without the `invalid … params:` prefix).
    #[error("Invalid schedule.at: expected ISO-8601 timestamp (got {0})")]
    At(String),
    #[error("CronPattern: invalid configuration format ('{0}'), exactly five, six, or seven space separated parts are required.")]
    PartCount(String),
    #[error("CronPattern: {0}")]
    Pattern(String),
    #[error(
        "CronDate: Failed to convert date to timezone '{0}'. This may happen with invalid timezone names or dates. Original error: toTZ: Invalid timezone '{0}' or date. Please provide a valid IANA timezone (e.g., 'America/New_York', 'Europe/Stockholm'). Original error: Invalid time zone specified: {0}"
    )]
    Zone(String),
    /// `on-exit` and `stream` schedules run commands on the gateway host: not hosted.
    #[error("{0} schedules are not supported by clawgate (it runs no host commands)")]
    Unsupported(String),
}

impl ScheduleError {
    /// Whether the reference answers it inside `invalid <method> params: …`.
    pub fn is_params_error(&self) -> bool {
        !matches!(self, ScheduleError::At(_))
    }
}

/// A parsed schedule, ready to search.
#[derive(Debug, Clone)]
pub enum Schedule {
    At {
        at_ms: u64,
    },
    Every {
        every_ms: u64,
        anchor_ms: u64,
    },
    /// The expression is checked when the schedule is parsed and compiled again for each search:
    /// a compiled pattern holds a byte per possible value of each field (5 KB, most of it the
    /// years), too much to keep for every job of a large schedule.
    Cron {
        expr: String,
        zone: TimeZone,
        stagger_ms: u64,
    },
}

/// Time zones by IANA name (the shell's database) and the gateway host's own zone (a cron
/// schedule without `tz` is read in it).
pub struct Zones<'a> {
    pub host: TimeZone,
    pub lookup: &'a dyn Fn(&str) -> Option<TimeZone>,
}

impl Zones<'_> {
    /// UTC only (tests, and a host whose zone database cannot be read).
    pub fn utc_only() -> Zones<'static> {
        Zones { host: TimeZone::UTC, lookup: &|name| (name == "UTC" || name == "Etc/UTC").then_some(TimeZone::UTC) }
    }
}

/// Parse an `at` timestamp: RFC 3339 / ISO 8601 with an offset, or a civil date-time (or date)
/// without one, read as UTC (the reference's rule for offset-less times).
pub fn parse_at(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return u64::try_from(ts.as_millisecond()).ok();
    }
    let civil =
        t.parse::<DateTime>().ok().or_else(|| t.parse::<jiff::civil::Date>().ok().map(|d| d.to_datetime(jiff::civil::Time::midnight())))?;
    let ts = civil.to_zoned_datetime(TimeZone::UTC).ok()?.timestamp();
    u64::try_from(ts.as_millisecond()).ok()
}

impl Schedule {
    /// Parse a schedule object (already validated against the reference's schema). `created_ms`
    /// is the `every` anchor when none is given; `seed` spreads `staggerMs` per job.
    pub fn parse(v: &Value, created_ms: u64, zones: &Zones<'_>) -> Result<Schedule, ScheduleError> {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "at" => {
                let text = v.get("at").and_then(Value::as_str).unwrap_or_default();
                parse_at(text).map(|at_ms| Schedule::At { at_ms }).ok_or_else(|| ScheduleError::At(text.to_string()))
            }
            "every" => Ok(Schedule::Every {
                every_ms: v.get("everyMs").and_then(Value::as_u64).unwrap_or(1).max(1),
                anchor_ms: v.get("anchorMs").and_then(Value::as_u64).unwrap_or(created_ms),
            }),
            "cron" => {
                let expr = v.get("expr").and_then(Value::as_str).unwrap_or_default();
                let zone = match v.get("tz").and_then(Value::as_str).map(str::trim).filter(|z| !z.is_empty()) {
                    Some(name) => (zones.lookup)(name).ok_or_else(|| ScheduleError::Zone(name.to_string()))?,
                    None => zones.host.clone(),
                };
                parse_cron(expr)?;
                Ok(Schedule::Cron { expr: expr.to_string(), zone, stagger_ms: v.get("staggerMs").and_then(Value::as_u64).unwrap_or(0) })
            }
            other => Err(ScheduleError::Unsupported(other.to_string())),
        }
    }

    /// The first fire time strictly after `after_ms` (`None`: never again). `spread` is this
    /// job's offset within a cron `staggerMs` window (stable per job).
    pub fn next_after(&self, after_ms: u64, spread: u64) -> Option<u64> {
        match self {
            Schedule::At { at_ms } => (*at_ms > after_ms).then_some(*at_ms),
            Schedule::Every { every_ms, anchor_ms } => {
                if after_ms < *anchor_ms {
                    return Some(*anchor_ms);
                }
                let steps = (after_ms - anchor_ms) / every_ms + 1;
                anchor_ms.checked_add(steps.checked_mul(*every_ms)?)
            }
            Schedule::Cron { expr, zone, stagger_ms } => {
                let cron = parse_cron(expr).ok()?;
                let offset = if *stagger_ms > 0 { spread % stagger_ms } else { 0 };
                // Search from the slot the offset belongs to, so a staggered fire is found once.
                let base = after_ms.saturating_sub(offset);
                let start = Timestamp::from_millisecond(i64::try_from(base).ok()?).ok()?.to_zoned_datetime(zone.clone());
                let next = cron.find_next_occurrence(&ZonedTime(start), false).ok()?;
                let ms = u64::try_from(next.0.timestamp().as_millisecond()).ok()?;
                ms.checked_add(offset)
            }
        }
    }

    /// The kind name (`cron.list` `scheduleKind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Schedule::At { .. } => "at",
            Schedule::Every { .. } => "every",
            Schedule::Cron { .. } => "cron",
        }
    }

    pub fn is_recurring(&self) -> bool {
        !matches!(self, Schedule::At { .. })
    }
}

/// Parse a 5-, 6- (seconds first) or 7-field (with year) cron expression.
pub fn parse_cron(expr: &str) -> Result<Cron, ScheduleError> {
    let parts = expr.split_whitespace().count();
    if !(5..=7).contains(&parts) {
        return Err(ScheduleError::PartCount(expr.to_string()));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .dom_and_dow(false)
        .build()
        .parse(expr)
        .map_err(|e| ScheduleError::Pattern(e.to_string()))
}

/// The wall-clock reading of a fire time in the job's zone (for logs and `nextRunAt`).
pub fn iso_utc(ms: u64) -> Value {
    match i64::try_from(ms).ok().and_then(|m| Timestamp::from_millisecond(m).ok()) {
        Some(ts) => json!(format!("{}", ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))),
        None => Value::Null,
    }
}

/// `croner`'s view of a `jiff` zoned time (croner's own `jiff` support is for an older jiff).
#[derive(Debug, Clone)]
struct ZonedTime(Zoned);

fn to_civil(d: DateTime) -> CivilDateTime {
    CivilDateTime::new(
        CivilDate::from_parts_unchecked(i32::from(d.year()), d.month() as u32, d.day() as u32),
        CivilTime::from_parts_unchecked(d.hour() as u32, d.minute() as u32, d.second() as u32),
    )
}

impl CronDateTime for ZonedTime {
    fn to_civil(&self) -> CivilDateTime {
        to_civil(self.0.datetime())
    }

    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(self.0.weekday().to_sunday_zero_offset() as u32)
    }

    fn resolve_civil(&self, civil: CivilDateTime) -> Result<Resolution<Self>, CronError> {
        let year = i16::try_from(civil.year()).map_err(|_| CronError::InvalidDate)?;
        let as_i8 = |n: u32| i8::try_from(n).map_err(|_| CronError::InvalidDate);
        let dt = DateTime::new(
            year,
            as_i8(civil.month())?,
            as_i8(civil.day())?,
            as_i8(civil.hour())?,
            as_i8(civil.minute())?,
            as_i8(civil.second())?,
            0,
        )
        .map_err(|_| CronError::InvalidDate)?;
        let ambiguous = self.0.time_zone().to_ambiguous_zoned_datetime(dt);
        Ok(match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { .. } => {
                Resolution::Single(ZonedTime(ambiguous.unambiguous().map_err(|_| CronError::InvalidTime)?))
            }
            AmbiguousOffset::Fold { .. } => {
                let earlier = ambiguous.clone().earlier().map_err(|_| CronError::InvalidTime)?;
                let later = ambiguous.later().map_err(|_| CronError::InvalidTime)?;
                Resolution::Ambiguous(ZonedTime(earlier), ZonedTime(later))
            }
            AmbiguousOffset::Gap { .. } => Resolution::Gap,
        })
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0.checked_add(SignedDuration::from_secs(seconds)).ok().map(ZonedTime)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.timestamp().cmp(&other.0.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u64 {
        parse_at(s).unwrap()
    }

    #[test]
    fn at_accepts_iso_times_and_refuses_the_rest() {
        assert_eq!(parse_at("2026-12-07T10:00:00Z"), Some(1_796_637_600_000));
        assert_eq!(parse_at("2026-12-07T11:00:00+01:00"), Some(1_796_637_600_000));
        assert_eq!(parse_at("2026-12-07T10:00:00"), Some(1_796_637_600_000), "offset-less is UTC");
        assert_eq!(parse_at("tomorrow-ish"), None);
        let e = Schedule::parse(&json!({"kind": "at", "at": "tomorrow-ish"}), 0, &Zones::utc_only()).unwrap_err();
        assert_eq!(e.to_string(), "Invalid schedule.at: expected ISO-8601 timestamp (got tomorrow-ish)");
        assert!(!e.is_params_error());
    }

    #[test]
    fn refusals_use_the_reference_wording() {
        let z = Zones::utc_only();
        let e = Schedule::parse(&json!({"kind": "cron", "expr": "not a cron"}), 0, &z).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CronPattern: invalid configuration format ('not a cron'), exactly five, six, or seven space separated parts are required."
        );
        let e = Schedule::parse(&json!({"kind": "cron", "expr": "0 9 * * *", "tz": "Mars/Base"}), 0, &z).unwrap_err();
        assert!(e.to_string().starts_with("CronDate: Failed to convert date to timezone 'Mars/Base'."), "{e}");
        assert!(Schedule::parse(&json!({"kind": "cron", "expr": "61 * * * *"}), 0, &z).is_err());
    }

    #[test]
    fn every_counts_from_its_anchor() {
        let s = Schedule::Every { every_ms: 1_000, anchor_ms: 10_500 };
        assert_eq!(s.next_after(0, 0), Some(10_500));
        assert_eq!(s.next_after(10_500, 0), Some(11_500));
        assert_eq!(s.next_after(11_499, 0), Some(11_500));
        assert_eq!(Schedule::At { at_ms: 5 }.next_after(5, 0), None);
    }

    #[test]
    fn cron_in_utc_and_with_seconds_and_stagger() {
        let z = Zones::utc_only();
        let s = Schedule::parse(&json!({"kind": "cron", "expr": "0 9 * * 1"}), 0, &z).unwrap();
        // 2026-12-07 is a Monday.
        assert_eq!(s.next_after(ms("2026-12-07T08:00:00Z"), 0), Some(ms("2026-12-07T09:00:00Z")));
        assert_eq!(s.next_after(ms("2026-12-07T09:00:00Z"), 0), Some(ms("2026-12-14T09:00:00Z")));
        let secs = Schedule::parse(&json!({"kind": "cron", "expr": "*/10 * * * * *"}), 0, &z).unwrap();
        assert_eq!(secs.next_after(ms("2026-12-07T08:00:01Z"), 0), Some(ms("2026-12-07T08:00:10Z")));
        let staggered = Schedule::parse(&json!({"kind": "cron", "expr": "0 * * * *", "staggerMs": 60_000}), 0, &z).unwrap();
        let first = staggered.next_after(ms("2026-12-07T08:00:00Z"), 1_234).unwrap();
        assert_eq!(first, ms("2026-12-07T08:00:00Z") + 1_234, "this hour's slot, offset");
        assert_eq!(staggered.next_after(first, 1_234), Some(ms("2026-12-07T09:00:00Z") + 1_234));
    }
}
