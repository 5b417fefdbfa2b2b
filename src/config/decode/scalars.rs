//! Scalar values the way Envoy's proto-JSON loader reads them: integers quoted or not, durations
//! as `"<seconds>s"` strings (or `{seconds, nanos}`), enums by name in either case (Envoy's own
//! v3 examples used `strict_dns`), booleans, ports and percentages.
//!
//! Each function reports its own error against the field and returns `None`, so the caller can
//! simply skip the field and keep decoding.

use std::time::Duration;

use super::super::diagnostics::did_you_mean;
use super::super::node::{parse_bool, Value};
use super::{Decoder, Field};

/// A string value. `null` (an empty YAML value) is the empty string, as in proto JSON.
pub fn string(d: &mut Decoder, f: &Field) -> Option<String> {
    match &f.node.value {
        Value::Scalar { text, .. } => Some(text.clone()),
        Value::Null => Some(String::new()),
        _ => {
            d.error_at_value(
                f,
                format!("`{}` must be a string, found a {}", f.name(), f.node.kind()),
                None,
            );
            None
        }
    }
}

/// A list of strings (a single string is a one-item list).
pub fn strings(d: &mut Decoder, f: &Field) -> Vec<String> {
    d.seq(f).iter().filter_map(|item| string(d, item)).collect()
}

fn scalar_text<'a>(d: &mut Decoder, f: &'a Field, what: &str) -> Option<&'a str> {
    match &f.node.value {
        Value::Scalar { text, .. } => Some(text.trim()),
        _ => {
            d.error_at_value(
                f,
                format!("`{}` must be {what}, found a {}", f.name(), f.node.kind()),
                None,
            );
            None
        }
    }
}

pub fn bool(d: &mut Decoder, f: &Field) -> Option<bool> {
    // BoolValue wrappers are plain booleans in proto JSON; `{value: true}` is accepted too.
    if let Some(inner) = f.node.get("value") {
        let inner = Field {
            node: inner,
            span: inner.span,
            path: format!("{}.value", f.path),
        };
        return bool(d, &inner);
    }
    if matches!(f.node.value, Value::Null) {
        return Some(false);
    }
    let text = scalar_text(d, f, "true or false")?;
    match parse_bool(text) {
        Some(b) => Some(b),
        None => {
            d.error_at_value(
                f,
                format!("`{}` must be true or false, found `{text}`", f.name()),
                None,
            );
            None
        }
    }
}

/// An unsigned integer no larger than `max`.
pub fn uint(d: &mut Decoder, f: &Field, max: u64) -> Option<u64> {
    if let Some(inner) = f.node.get("value") {
        let inner = Field {
            node: inner,
            span: inner.span,
            path: format!("{}.value", f.path),
        };
        return uint(d, &inner, max);
    }
    let text = scalar_text(d, f, "an integer")?;
    match text.parse::<u64>() {
        Ok(v) if v <= max => Some(v),
        Ok(v) => {
            d.error_at_value(
                f,
                format!("`{}` is {v}, more than the maximum {max}", f.name()),
                None,
            );
            None
        }
        Err(_) => {
            d.error_at_value(
                f,
                format!(
                    "`{}` must be a non-negative integer, found `{text}`",
                    f.name()
                ),
                None,
            );
            None
        }
    }
}

pub fn u32(d: &mut Decoder, f: &Field) -> Option<u32> {
    uint(d, f, u64::from(u32::MAX)).map(|v| v as u32)
}

pub fn u64(d: &mut Decoder, f: &Field) -> Option<u64> {
    uint(d, f, u64::MAX)
}

pub fn i64(d: &mut Decoder, f: &Field) -> Option<i64> {
    let text = scalar_text(d, f, "an integer")?;
    match text.parse::<i64>() {
        Ok(v) => Some(v),
        Err(_) => {
            d.error_at_value(
                f,
                format!("`{}` must be an integer, found `{text}`", f.name()),
                None,
            );
            None
        }
    }
}

pub fn f64(d: &mut Decoder, f: &Field) -> Option<f64> {
    let text = scalar_text(d, f, "a number")?;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            d.error_at_value(
                f,
                format!("`{}` must be a number, found `{text}`", f.name()),
                None,
            );
            None
        }
    }
}

/// A TCP port to connect to: 1–65535.
pub fn port(d: &mut Decoder, f: &Field) -> Option<u16> {
    port_in(d, f, false)
}

/// A TCP port to bind: 0–65535, where 0 asks the kernel for a free port (as Envoy allows for
/// listeners and admin; `/listeners` then shows the port chosen).
pub fn bind_port(d: &mut Decoder, f: &Field) -> Option<u16> {
    port_in(d, f, true)
}

fn port_in(d: &mut Decoder, f: &Field, allow_zero: bool) -> Option<u16> {
    let text = scalar_text(d, f, "a port number")?;
    match text.parse::<u64>() {
        Ok(0) if allow_zero => Some(0),
        Ok(0) => {
            d.error_at_value(
                f,
                "port 0 is not allowed for an upstream endpoint",
                Some("use the port the upstream listens on (1–65535)".into()),
            );
            None
        }
        Ok(p) if p <= 65535 => Some(p as u16),
        Ok(p) => {
            d.error_at_value(
                f,
                format!("port {p} is out of range"),
                Some("use a port between 1 and 65535".into()),
            );
            None
        }
        Err(_) => {
            d.error_at_value(
                f,
                format!("`{}` must be a port number, found `{text}`", f.name()),
                None,
            );
            None
        }
    }
}

/// Why a duration string was rejected, with a corrected spelling when one can be inferred.
#[derive(Debug, PartialEq)]
pub enum DurationError {
    Negative,
    Invalid { suggestion: Option<String> },
}

/// Parses a proto-JSON duration: decimal seconds with an `s` suffix (`5s`, `0.25s`, `1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let invalid = || DurationError::Invalid {
        suggestion: suggest_duration(text),
    };
    let number = text.strip_suffix('s').ok_or_else(invalid)?;
    if number.ends_with(['m', 'u', 'n', 'µ']) {
        return Err(invalid());
    }
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let secs = decimal_nanos(number).ok_or_else(invalid)?;
    if negative && secs > 0 {
        return Err(DurationError::Negative);
    }
    Ok(Duration::from_nanos(secs))
}

/// `"1.25"` → 1_250_000_000 ns. At most 9 fractional digits, as in protobuf.
fn decimal_nanos(number: &str) -> Option<u64> {
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 9
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac_nanos: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    whole.checked_mul(1_000_000_000)?.checked_add(frac_nanos)
}

/// What the user probably meant: `250ms` → `0.250s`, `5m` → `300s`, `1` → `1s`.
fn suggest_duration(text: &str) -> Option<String> {
    let units: [(&str, u64); 6] = [
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("", 1_000_000_000),
    ];
    for (suffix, nanos_per_unit) in units {
        if let Some(number) = text.strip_suffix(suffix) {
            if number.is_empty() {
                continue;
            }
            if let Some(n) = decimal_nanos(number) {
                // `n` is the number scaled by 1e9; rescale to the unit.
                let nanos = (n as u128 * nanos_per_unit as u128 / 1_000_000_000) as u64;
                return Some(format_duration(Duration::from_nanos(nanos)));
            }
        }
    }
    None
}

/// Formats a duration the way protobuf prints one in JSON: `5s`, `0.250s`, `0.000001s`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{}s", d.as_secs())
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}.{:03}s", d.as_secs(), nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}.{:06}s", d.as_secs(), nanos / 1_000)
    } else {
        format!("{}.{:09}s", d.as_secs(), nanos)
    }
}

/// A `google.protobuf.Duration`: `"0.25s"` or `{seconds: 1, nanos: 5}`.
pub fn duration(d: &mut Decoder, f: &Field) -> Option<Duration> {
    if let Value::Map(_) = &f.node.value {
        return duration_object(d, f);
    }
    let text = scalar_text(d, f, "a duration such as `5s`")?;
    match parse_duration(text) {
        Ok(v) => Some(v),
        Err(DurationError::Negative) => {
            d.error_at_value(
                f,
                format!("`{}` is negative (`{text}`)", f.name()),
                Some("durations must be zero or more".into()),
            );
            None
        }
        Err(DurationError::Invalid { suggestion }) => {
            let help = match suggestion {
                Some(s) => format!("durations are seconds with an `s` suffix: write `{s}`"),
                None => "durations are seconds with an `s` suffix, e.g. `5s` or `0.250s`".into(),
            };
            d.error_at_value(
                f,
                format!("invalid duration `{text}` for `{}`", f.name()),
                Some(help),
            );
            None
        }
    }
}

fn duration_object(d: &mut Decoder, f: &Field) -> Option<Duration> {
    const DURATION: super::Message = super::Message {
        name: "Duration",
        fields: &["seconds", "nanos"],
        ignored: &[],
    };
    let o = d.obj(f, &DURATION)?;
    let seconds = match o.get("seconds") {
        Some(s) => i64(d, &s)?,
        None => 0,
    };
    let nanos = match o.get("nanos") {
        Some(n) => i64(d, &n)?,
        None => 0,
    };
    if seconds < 0 || nanos < 0 {
        d.error_at_value(
            f,
            format!("`{}` is negative", f.name()),
            Some("durations must be zero or more".into()),
        );
        return None;
    }
    if nanos >= 1_000_000_000 {
        d.error_at_value(
            f,
            format!("`{}`: `nanos` must be below 1000000000", f.name()),
            None,
        );
        return None;
    }
    Some(Duration::new(seconds as u64, nanos as u32))
}

/// An enum value by name, case-insensitively; returns the canonical (upper-case) name.
pub fn enum_name(
    d: &mut Decoder,
    f: &Field,
    type_name: &str,
    names: &[&'static str],
) -> Option<&'static str> {
    let text = scalar_text(d, f, "an enum name")?;
    let upper = text.to_ascii_uppercase();
    if let Some(name) = names.iter().find(|n| **n == upper) {
        return Some(name);
    }
    let valid = names.join(", ");
    let help = match did_you_mean(&upper, names) {
        Some(s) => format!("did you mean `{s}`? (valid: {valid})"),
        None => format!("valid values: {valid}"),
    };
    d.error_at_value(
        f,
        format!("unknown value `{text}` for {type_name}"),
        Some(help),
    );
    None
}

/// `type.v3.Percent` (`{value: 12.5}`), as a percentage 0–100.
pub fn percent(d: &mut Decoder, f: &Field) -> Option<f64> {
    const PERCENT: super::Message = super::Message {
        name: "Percent",
        fields: &["value"],
        ignored: &[],
    };
    let o = d.obj(f, &PERCENT)?;
    let v = match o.get("value") {
        Some(v) => f64(d, &v)?,
        None => 0.0,
    };
    if !(0.0..=100.0).contains(&v) {
        d.error_at_value(f, format!("percentage {v} is not between 0 and 100"), None);
        return None;
    }
    Some(v)
}

/// `type.v3.FractionalPercent` (`{numerator, denominator: HUNDRED|TEN_THOUSAND|MILLION}`), as a
/// percentage 0–100.
pub fn fractional_percent(d: &mut Decoder, f: &Field) -> Option<f64> {
    const FRACTIONAL: super::Message = super::Message {
        name: "FractionalPercent",
        fields: &["numerator", "denominator"],
        ignored: &[],
    };
    let o = d.obj(f, &FRACTIONAL)?;
    let numerator = match o.get("numerator") {
        Some(n) => u32(d, &n)?,
        None => 0,
    };
    let denominator = match o.get("denominator") {
        Some(den) => enum_name(
            d,
            &den,
            "FractionalPercent.DenominatorType",
            &["HUNDRED", "TEN_THOUSAND", "MILLION"],
        )?,
        None => "HUNDRED",
    };
    let scale = match denominator {
        "TEN_THOUSAND" => 10_000.0,
        "MILLION" => 1_000_000.0,
        _ => 100.0,
    };
    Some((f64::from(numerator) / scale * 100.0).min(100.0))
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::super::{Decoder, Field, Mode};
    use super::*;
    use std::path::PathBuf;

    fn with_field<T>(yaml: &str, f: impl FnOnce(&mut Decoder, &Field) -> T) -> (T, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let root = Field::root(&doc);
        let field = root.child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let out = f(&mut d, &field);
        let msgs = d
            .finish()
            .into_iter()
            .map(|d| format!("{}|{}", d.message, d.help.unwrap_or_default()))
            .collect();
        (out, msgs)
    }

    #[test]
    fn durations_in_proto_json_forms() {
        assert_eq!(parse_duration("0.25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("-1s"), Err(DurationError::Negative));
        assert_eq!(
            parse_duration("250ms"),
            Err(DurationError::Invalid {
                suggestion: Some("0.250s".into())
            })
        );
        assert_eq!(
            parse_duration("5m"),
            Err(DurationError::Invalid {
                suggestion: Some("300s".into())
            })
        );
        assert_eq!(
            parse_duration("2"),
            Err(DurationError::Invalid {
                suggestion: Some("2s".into())
            })
        );
        let (v, _) = with_field("t: {seconds: 1, nanos: 500000000}", duration);
        assert_eq!(v, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_duration_reports_a_fix() {
        let (v, msgs) = with_field("connect_timeout: 250ms", duration);
        assert_eq!(v, None);
        assert_eq!(
            msgs,
            ["invalid duration `250ms` for `connect_timeout`|durations are seconds with an `s` suffix: write `0.250s`"]
        );
    }

    #[test]
    fn formats_like_protobuf() {
        assert_eq!(format_duration(Duration::from_millis(250)), "0.250s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "3600s");
        assert_eq!(format_duration(Duration::from_micros(1)), "0.000001s");
    }

    #[test]
    fn enums_in_either_case_with_suggestions() {
        let names = ["STATIC", "STRICT_DNS", "LOGICAL_DNS"];
        let (v, _) = with_field("type: strict_dns", |d, f| enum_name(d, f, "T", &names));
        assert_eq!(v, Some("STRICT_DNS"));
        let (v, msgs) = with_field("type: strict_dsn", |d, f| {
            enum_name(d, f, "Cluster.DiscoveryType", &names)
        });
        assert_eq!(v, None);
        assert_eq!(
            msgs,
            ["unknown value `strict_dsn` for Cluster.DiscoveryType|did you mean `STRICT_DNS`? (valid: STATIC, STRICT_DNS, LOGICAL_DNS)"]
        );
    }

    #[test]
    fn integers_quoted_or_not_and_ports() {
        assert_eq!(with_field("p: \"80\"", port).0, Some(80));
        assert_eq!(with_field("p: 80", u32).0, Some(80));
        assert_eq!(with_field("p: {value: 7}", u32).0, Some(7));
        let (v, msgs) = with_field("p: 70000", port);
        assert_eq!(v, None);
        assert_eq!(
            msgs,
            ["port 70000 is out of range|use a port between 1 and 65535"]
        );
        assert_eq!(with_field("b: True", bool).0, Some(true));
        assert_eq!(with_field("b: yes", bool).0, None);
    }

    #[test]
    fn percentages() {
        let (v, _) = with_field("p: {numerator: 5, denominator: TEN_THOUSAND}", |d, f| {
            fractional_percent(d, f)
        });
        assert_eq!(v, Some(0.05));
        assert_eq!(with_field("p: {value: 12.5}", percent).0, Some(12.5));
    }
}
