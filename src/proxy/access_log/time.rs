//! UTC timestamp formatting for `%START_TIME%` / `%START_TIME(fmt)%`.
//!
//! No chrono/time crate is allowed, so the calendar math is done here with
//! Howard Hinnant's `civil_from_days` algorithm (exact for the whole proleptic
//! Gregorian calendar, no tables, no leap-second handling — like Envoy, which
//! formats `SystemTime` in UTC through absl).
//!
//! Envoy semantics copied (`source/common/common/utility.cc`, `DateFormatter`):
//! * no argument → `%Y-%m-%dT%H:%M:%E3SZ`, i.e. `2016-04-15T20:17:00.310Z`;
//! * `%s` → seconds since the epoch;
//! * `%f` → the 9 nanosecond digits of the current second, `%1f`..`%9f` → the
//!   first N of those digits (truncated, never rounded);
//! * everything else is absl/strftime; we implement the common subset and
//!   reject the rest at configuration time instead of printing garbage.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Specifiers accepted inside `%START_TIME(...)%`, listed in error messages.
pub(super) const SUPPORTED_SPECIFIERS: &str = "%Y %y %C %m %d %e %j %H %I %M %S %p %a %A %b %h %B \
     %u %w %z %Z %s %f %1f..%9f %E0S..%E9S %E*S %T %F %D %R %t %%";

/// A parsed START_TIME format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TimeFormat {
    /// Envoy's default `%Y-%m-%dT%H:%M:%E3SZ`.
    Default,
    /// A custom strftime-like format, pre-parsed so rendering never fails.
    Custom(Vec<Item>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item {
    Lit(String),
    Year,
    YearShort,
    Century,
    Month,
    Day,
    DaySpacePadded,
    DayOfYear,
    Hour,
    Hour12,
    Minute,
    Second,
    /// `%E#S`: seconds with N fractional digits.
    SecondFrac(u8),
    /// `%E*S`: seconds with as many fractional digits as needed (none when whole).
    SecondFracFull,
    AmPm,
    WeekdayShort,
    WeekdayLong,
    MonthShort,
    MonthLong,
    /// `%u`: 1 (Monday) .. 7 (Sunday).
    WeekdayMon1,
    /// `%w`: 0 (Sunday) .. 6 (Saturday).
    WeekdaySun0,
    TzOffset,
    TzName,
    EpochSeconds,
    /// `%f` (9) or `%Nf`.
    Frac(u8),
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl TimeFormat {
    /// Parses the argument of `START_TIME(...)`. Empty means Envoy's default.
    /// The error is a human sentence naming the bad specifier.
    pub(super) fn parse(fmt: &str) -> Result<TimeFormat, String> {
        if fmt.is_empty() {
            return Ok(TimeFormat::Default);
        }
        let mut items = Vec::new();
        let mut lit = String::new();
        let mut chars = fmt.char_indices().peekable();
        while let Some((pos, c)) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let Some((_, spec)) = chars.next() else {
                return Err(format!("dangling '%' at the end (byte {pos})"));
            };
            let push = |item: Item, lit: &mut String, items: &mut Vec<Item>| {
                if !lit.is_empty() {
                    items.push(Item::Lit(std::mem::take(lit)));
                }
                items.push(item);
            };
            match spec {
                '%' => lit.push('%'),
                't' => lit.push('\t'),
                'n' => {
                    // Envoy refuses %n: the value may end up in a header.
                    return Err("%n (newline) is not allowed".to_owned());
                }
                'Y' => push(Item::Year, &mut lit, &mut items),
                'y' => push(Item::YearShort, &mut lit, &mut items),
                'C' => push(Item::Century, &mut lit, &mut items),
                'm' => push(Item::Month, &mut lit, &mut items),
                'd' => push(Item::Day, &mut lit, &mut items),
                'e' => push(Item::DaySpacePadded, &mut lit, &mut items),
                'j' => push(Item::DayOfYear, &mut lit, &mut items),
                'H' => push(Item::Hour, &mut lit, &mut items),
                'I' => push(Item::Hour12, &mut lit, &mut items),
                'M' => push(Item::Minute, &mut lit, &mut items),
                'S' => push(Item::Second, &mut lit, &mut items),
                'p' => push(Item::AmPm, &mut lit, &mut items),
                'a' => push(Item::WeekdayShort, &mut lit, &mut items),
                'A' => push(Item::WeekdayLong, &mut lit, &mut items),
                'b' | 'h' => push(Item::MonthShort, &mut lit, &mut items),
                'B' => push(Item::MonthLong, &mut lit, &mut items),
                'u' => push(Item::WeekdayMon1, &mut lit, &mut items),
                'w' => push(Item::WeekdaySun0, &mut lit, &mut items),
                'z' => push(Item::TzOffset, &mut lit, &mut items),
                'Z' => push(Item::TzName, &mut lit, &mut items),
                's' => push(Item::EpochSeconds, &mut lit, &mut items),
                'f' => push(Item::Frac(9), &mut lit, &mut items),
                'T' => {
                    push(Item::Hour, &mut lit, &mut items);
                    items.extend([
                        Item::Lit(":".into()),
                        Item::Minute,
                        Item::Lit(":".into()),
                        Item::Second,
                    ]);
                }
                'R' => {
                    push(Item::Hour, &mut lit, &mut items);
                    items.extend([Item::Lit(":".into()), Item::Minute]);
                }
                'F' => {
                    push(Item::Year, &mut lit, &mut items);
                    items.extend([
                        Item::Lit("-".into()),
                        Item::Month,
                        Item::Lit("-".into()),
                        Item::Day,
                    ]);
                }
                'D' => {
                    push(Item::Month, &mut lit, &mut items);
                    items.extend([
                        Item::Lit("/".into()),
                        Item::Day,
                        Item::Lit("/".into()),
                        Item::YearShort,
                    ]);
                }
                '1'..='9' => {
                    // %Nf
                    match chars.next() {
                        Some((_, 'f')) => {
                            push(Item::Frac(spec as u8 - b'0'), &mut lit, &mut items);
                        }
                        _ => {
                            return Err(format!(
                            "unsupported specifier at byte {pos}: only %1f..%9f may take a width"
                        ))
                        }
                    }
                }
                'E' => {
                    // %E#S or %E*S (absl sub-second seconds).
                    let width = chars.next().map(|(_, c)| c);
                    let s = chars.next().map(|(_, c)| c);
                    match (width, s) {
                        (Some(w @ '0'..='9'), Some('S')) => {
                            push(Item::SecondFrac(w as u8 - b'0'), &mut lit, &mut items)
                        }
                        (Some('*'), Some('S')) => push(Item::SecondFracFull, &mut lit, &mut items),
                        _ => {
                            return Err(format!(
                                "unsupported specifier at byte {pos}: only %E0S..%E9S and %E*S are supported"
                            ))
                        }
                    }
                }
                other => return Err(format!("unsupported specifier %{other} at byte {pos}")),
            }
        }
        if !lit.is_empty() {
            items.push(Item::Lit(lit));
        }
        Ok(TimeFormat::Custom(items))
    }

    /// Appends `time` (as UTC) to `out`.
    pub(super) fn render(&self, time: SystemTime, out: &mut String) {
        let c = Civil::from_system_time(time);
        match self {
            TimeFormat::Default => {
                let _ = write!(
                    out,
                    "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    Year(c.year),
                    c.month,
                    c.day,
                    c.hour,
                    c.minute,
                    c.second,
                    c.nanos / 1_000_000
                );
            }
            TimeFormat::Custom(items) => {
                for item in items {
                    render_item(item, &c, out);
                }
            }
        }
    }
}

fn render_item(item: &Item, c: &Civil, out: &mut String) {
    let _ = match item {
        Item::Lit(s) => {
            out.push_str(s);
            Ok(())
        }
        Item::Year => write!(out, "{}", Year(c.year)),
        Item::YearShort => write!(out, "{:02}", c.year.rem_euclid(100)),
        Item::Century => write!(out, "{:02}", c.year.div_euclid(100)),
        Item::Month => write!(out, "{:02}", c.month),
        Item::Day => write!(out, "{:02}", c.day),
        Item::DaySpacePadded => write!(out, "{:2}", c.day),
        Item::DayOfYear => write!(out, "{:03}", c.yday),
        Item::Hour => write!(out, "{:02}", c.hour),
        Item::Hour12 => write!(out, "{:02}", (c.hour + 11) % 12 + 1),
        Item::Minute => write!(out, "{:02}", c.minute),
        Item::Second => write!(out, "{:02}", c.second),
        Item::SecondFrac(n) => {
            let _ = write!(out, "{:02}", c.second);
            if *n > 0 {
                out.push('.');
                push_frac(out, c.nanos, *n);
            }
            Ok(())
        }
        Item::SecondFracFull => {
            let _ = write!(out, "{:02}", c.second);
            if c.nanos > 0 {
                let digits = format!("{:09}", c.nanos);
                out.push('.');
                out.push_str(digits.trim_end_matches('0'));
            }
            Ok(())
        }
        Item::AmPm => {
            out.push_str(if c.hour < 12 { "AM" } else { "PM" });
            Ok(())
        }
        Item::WeekdayShort => {
            out.push_str(&WEEKDAYS[c.wday as usize][..3]);
            Ok(())
        }
        Item::WeekdayLong => {
            out.push_str(WEEKDAYS[c.wday as usize]);
            Ok(())
        }
        Item::MonthShort => {
            out.push_str(&MONTHS[c.month as usize - 1][..3]);
            Ok(())
        }
        Item::MonthLong => {
            out.push_str(MONTHS[c.month as usize - 1]);
            Ok(())
        }
        Item::WeekdayMon1 => write!(out, "{}", if c.wday == 0 { 7 } else { c.wday }),
        Item::WeekdaySun0 => write!(out, "{}", c.wday),
        Item::TzOffset => {
            out.push_str("+0000");
            Ok(())
        }
        Item::TzName => {
            out.push_str("UTC");
            Ok(())
        }
        Item::EpochSeconds => write!(out, "{}", c.epoch_secs),
        Item::Frac(n) => {
            push_frac(out, c.nanos, *n);
            Ok(())
        }
    };
}

/// First `n` (1..=9) digits of the zero-padded 9-digit nanosecond count: Envoy truncates.
fn push_frac(out: &mut String, nanos: u32, n: u8) {
    let digits = format!("{nanos:09}");
    out.push_str(&digits[..n.min(9) as usize]);
}

/// Years print with at least 4 digits (`0999`), negative years with a sign.
struct Year(i64);

impl std::fmt::Display for Year {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 < 0 {
            write!(f, "-{:04}", -self.0)
        } else {
            write!(f, "{:04}", self.0)
        }
    }
}

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    /// 1-based day of the year.
    pub yday: u32,
    /// 0 = Sunday.
    pub wday: u32,
    pub epoch_secs: i64,
}

impl Civil {
    pub(super) fn from_system_time(t: SystemTime) -> Civil {
        let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                // Before 1970: floor towards -inf so the fraction stays positive.
                let d = e.duration();
                let mut secs = -(d.as_secs() as i64);
                let mut nanos = d.subsec_nanos();
                if nanos > 0 {
                    secs -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                (secs, nanos)
            }
        };
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1) + 1) as u32;
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
            nanos,
            yday,
            wday: (days + 4).rem_euclid(7) as u32,
            epoch_secs: secs,
        }
    }
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31). Hinnant's algorithm.
pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01. Inverse of [`civil_from_days`].
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * if m > 2 { m - 3 } else { m + 9 } + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn fmt(f: &str, t: SystemTime) -> String {
        let mut s = String::new();
        TimeFormat::parse(f).unwrap().render(t, &mut s);
        s
    }

    #[test]
    fn default_format_matches_envoy_docs_example() {
        // The docs example: [2016-04-15T20:17:00.310Z]
        assert_eq!(
            fmt("", at(1_460_751_420, 310_999_999)),
            "2016-04-15T20:17:00.310Z"
        );
        assert_eq!(fmt("", UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn civil_round_trips_over_a_wide_range() {
        for days in (-1_000_000i64..1_000_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29)); // leap day of a /400 year
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(
            days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28),
            1
        ); // 2100 not leap
    }

    #[test]
    fn strftime_subset() {
        // 2016-04-15T20:17:00.310123456Z, a Friday, day 106 of a leap year.
        let t = at(1_460_751_420, 310_123_456);
        assert_eq!(
            fmt("%Y/%m/%dT%H:%M:%S%z %s", t),
            "2016/04/15T20:17:00+0000 1460751420"
        );
        assert_eq!(fmt("%s.%3f", t), "1460751420.310");
        assert_eq!(fmt("%s.%6f", t), "1460751420.310123");
        assert_eq!(fmt("%s.%9f", t), "1460751420.310123456");
        assert_eq!(fmt("%f|%1f|%2f", t), "310123456|3|31");
        assert_eq!(fmt("%F %T %Z", t), "2016-04-15 20:17:00 UTC");
        assert_eq!(fmt("%D %R", t), "04/15/16 20:17");
        assert_eq!(fmt("%a %A %b %h %B", t), "Fri Friday Apr Apr April");
        assert_eq!(fmt("%j %u %w %C %y", t), "106 5 5 20 16");
        assert_eq!(fmt("%I%p", t), "08PM");
        assert_eq!(fmt("%E3S|%E0S|%E*S", t), "00.310|00|00.310123456");
        assert_eq!(fmt("%E*S", at(5, 0)), "05");
        assert_eq!(fmt("100%% at%t%e", at(0, 0)), "100% at\t 1");
        assert_eq!(fmt("plain", t), "plain");
    }

    #[test]
    fn sunday_and_midnight_edges() {
        // 2023-01-01T00:00:00Z was a Sunday.
        let t = at(1_672_531_200, 0);
        assert_eq!(fmt("%a %u %w %I%p %j", t), "Sun 7 0 12AM 001");
    }

    #[test]
    fn pre_epoch_times_floor() {
        let t = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(fmt("", t), "1969-12-31T23:59:59.999Z");
        assert_eq!(fmt("%s", t), "-1");
    }

    #[test]
    fn rejects_unknown_and_dangerous_specifiers() {
        let e = TimeFormat::parse("%Q").unwrap_err();
        assert!(e.contains("%Q"), "{e}");
        assert!(TimeFormat::parse("%Y%").unwrap_err().contains("dangling"));
        assert!(TimeFormat::parse("%n").unwrap_err().contains("newline"));
        assert!(TimeFormat::parse("%3x").is_err());
        assert!(TimeFormat::parse("%EXS").is_err());
    }
}
