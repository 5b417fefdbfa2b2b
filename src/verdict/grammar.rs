//! The little languages inside an expectation's values: thresholds (`>= 99.5%`, `< 50ms`,
//! `>= 190/s`, `== 0`), splits (`even ±10%`, `80/20 ±3%`), windows (`5s..15s`) and status
//! keys (`503`, `5xx`, `timeout`). Pure text → value; every rejection says what was expected
//! and shows a correct example, for the decoder to report with the field's position.

use std::time::Duration;

use super::expect::{Op, Quantity, Split, StatusKey, Threshold};
use crate::traffic::report::Outcome;

/// Why a value was rejected: the message, and a help line with a correct example.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub message: String,
    pub help: String,
}

fn problem(message: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem {
        message: message.into(),
        help: help.into(),
    }
}

/// The kind of value a check compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    Duration,
    Rate,
    Count,
}

impl Unit {
    fn describe(self) -> &'static str {
        match self {
            Unit::Percent => "a percentage such as `99.5%`",
            Unit::Duration => "a duration such as `50ms`, `200us` or `1.5s`",
            Unit::Rate => "a rate such as `190/s`",
            Unit::Count => "a count such as `0` or `1000`",
        }
    }

    fn example(self) -> &'static str {
        match self {
            Unit::Percent => ">= 99.5%",
            Unit::Duration => "< 50ms",
            Unit::Rate => ">= 190/s",
            Unit::Count => "== 0",
        }
    }
}

/// `OP VALUE` where VALUE must be one of `units`; the first unit gives the example.
pub fn threshold(text: &str, units: &[Unit]) -> Result<Threshold, Problem> {
    let text = text.trim();
    let example = format!("write e.g. `\"{}\"`", units[0].example());
    // Longest operators first, so `<=` is not read as `<` followed by `=…`.
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("≤", Op::Le),
        ("≥", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let Some((op, rest)) = ops
        .iter()
        .find_map(|(s, op)| text.strip_prefix(s).map(|rest| (*op, rest.trim())))
    else {
        let hint = if text.starts_with('=') {
            "equality is `==`; ".to_string()
        } else {
            String::new()
        };
        return Err(problem(
            format!("`{text}` does not start with a comparison (<, <=, >, >=, ==, !=)"),
            format!("{hint}{example} (quote it: YAML reads a leading `>` as a block)"),
        ));
    };
    if rest.is_empty() {
        return Err(problem(
            format!("`{text}` has no value after `{op}`"),
            example,
        ));
    }
    let value = quantity(rest).ok_or_else(|| {
        problem(
            format!("`{rest}` is not a value meshsim knows"),
            format!(
                "expected {}; {example}",
                units
                    .iter()
                    .map(|u| u.describe())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )
    })?;
    let unit = match value {
        Quantity::Percent(_) => Unit::Percent,
        Quantity::Duration(_) => Unit::Duration,
        Quantity::Rate(_) => Unit::Rate,
        Quantity::Count(_) => Unit::Count,
    };
    if !units.contains(&unit) {
        let fix = match (units[0], value) {
            (Unit::Percent, Quantity::Count(n)) => format!("a percentage needs `%`: `{op} {n}%`"),
            (Unit::Duration, Quantity::Count(n)) => format!("give a unit: `{op} {n}ms`"),
            (Unit::Rate, Quantity::Count(n)) => format!("a rate is per second: `{op} {n}/s`"),
            _ => example,
        };
        return Err(problem(
            format!(
                "`{rest}` is {}, but this check compares {}",
                article(unit),
                units
                    .iter()
                    .map(|u| u.describe())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            fix,
        ));
    }
    if let Quantity::Percent(p) = value {
        if !(0.0..=100.0).contains(&p) {
            return Err(problem(
                format!("`{rest}` is not between 0% and 100%"),
                example,
            ));
        }
    }
    Ok(Threshold { op, value })
}

fn article(unit: Unit) -> &'static str {
    match unit {
        Unit::Percent => "a percentage",
        Unit::Duration => "a duration",
        Unit::Rate => "a rate",
        Unit::Count => "a plain count",
    }
}

/// `99.5%`, `50ms`, `190/s`, `1000`.
fn quantity(text: &str) -> Option<Quantity> {
    if let Some(n) = text.strip_suffix('%') {
        return number(n).map(Quantity::Percent);
    }
    if let Some(n) = text.strip_suffix("/s") {
        return number(n).map(Quantity::Rate);
    }
    if let Some(d) = duration(text) {
        return Some(Quantity::Duration(d));
    }
    text.parse::<u64>().ok().map(Quantity::Count)
}

fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    // Only plain decimals: `1e3`, `inf` and `NaN` parse as f64 but are not what anyone means.
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    text.parse().ok()
}

/// `200us`, `50ms`, `1.5s`, `2m`: a human duration (the Envoy-style `0.05s` is one too).
pub fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let units: [(&str, f64); 5] = [
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
    ];
    let (n, scale) = units
        .iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, *scale)))?;
    let secs = number(n)? * scale;
    Duration::try_from_secs_f64(secs).ok()
}

/// `5s..15s`.
pub fn window(text: &str) -> Result<(Duration, Duration), Problem> {
    let help = "write `FROM..TO` from the start of traffic, e.g. `window: 5s..15s`";
    let Some((from, to)) = text.split_once("..") else {
        return Err(problem(format!("`{text}` is not a window"), help));
    };
    let (Some(from), Some(to)) = (duration(from), duration(to)) else {
        return Err(problem(
            format!("`{text}`: both ends must be durations"),
            help,
        ));
    };
    if to <= from {
        return Err(problem(
            format!("window `{text}` ends before it starts"),
            help,
        ));
    }
    Ok((from, to))
}

/// `even ±10%` or `80/20 ±3%` (also `+-3%`).
pub fn split(text: &str) -> Result<Split, Problem> {
    let text = text.trim();
    let help = "write `even ±10%` (each share within 10% of the fair share) or `80/20 ±3%` (each share within 3 percentage points of its weight)";
    let (shape, tolerance) = match text.split_once('±').or_else(|| text.split_once("+-")) {
        Some((s, t)) => (s.trim(), t.trim()),
        None => {
            return Err(problem(
                format!("split `{text}` has no tolerance"),
                format!("add one: `{text} ±5%`; {help}"),
            ))
        }
    };
    let Some(tolerance) = tolerance.strip_suffix('%').and_then(number) else {
        return Err(problem(
            format!("the tolerance `{tolerance}` is not a percentage"),
            help,
        ));
    };
    if shape == "even" {
        return Ok(Split::Even { tolerance });
    }
    let weights: Option<Vec<f64>> = shape.split('/').map(number).collect();
    match weights {
        Some(w) if w.len() >= 2 && w.iter().sum::<f64>() > 0.0 => {
            let total: f64 = w.iter().sum();
            Ok(Split::Weights {
                weights: w.iter().map(|x| x * 100.0 / total).collect(),
                tolerance,
            })
        }
        _ => Err(problem(
            format!("`{shape}` is neither `even` nor weights like `80/20`"),
            help,
        )),
    }
}

/// `503`, `5xx`, `grpc:14`, `connect_error`, `timeout`, `reset`, `cancelled`.
pub fn status_key(text: &str) -> Result<StatusKey, Problem> {
    let text = text.trim();
    let help = "use a status (`503`), a class (`5xx`), `grpc:14`, or an outcome: connect_error, timeout, reset, cancelled";
    if let Some(class) = text.strip_suffix("xx") {
        return match class.parse::<u16>() {
            Ok(c @ 1..=5) => Ok(StatusKey::Class(c)),
            _ => Err(problem(format!("unknown status class `{text}`"), help)),
        };
    }
    match text.parse::<Outcome>() {
        Ok(Outcome::Status(s)) if !(100..=599).contains(&s) => Err(problem(
            format!("`{text}` is not an HTTP status (100–599)"),
            help,
        )),
        Ok(o) => Ok(StatusKey::Outcome(o)),
        Err(_) => {
            let known = ["connect_error", "timeout", "reset", "cancelled"];
            let help = match crate::config::diagnostics::did_you_mean(text, &known) {
                Some(k) => format!("did you mean `{k}`?"),
                None => help.to_string(),
            };
            Err(problem(format!("unknown status or outcome `{text}`"), help))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str, units: &[Unit]) -> Threshold {
        threshold(text, units).unwrap()
    }

    #[test]
    fn every_comparator_and_value_kind() {
        use Quantity::*;
        let p = [Unit::Percent];
        assert_eq!(
            t(">= 99.5%", &p),
            Threshold {
                op: Op::Ge,
                value: Percent(99.5)
            }
        );
        assert_eq!(t("<99%", &p).op, Op::Lt);
        assert_eq!(t("<= 1%", &p).op, Op::Le);
        assert_eq!(t("> 1%", &p).op, Op::Gt);
        assert_eq!(t("!= 1%", &p).op, Op::Ne);
        assert_eq!(t("≥ 1%", &p).op, Op::Ge);
        let d = [Unit::Duration];
        assert_eq!(
            t("< 50ms", &d).value,
            Duration(std::time::Duration::from_millis(50))
        );
        assert_eq!(
            t("< 200us", &d).value,
            Duration(std::time::Duration::from_micros(200))
        );
        assert_eq!(
            t("< 1.5s", &d).value,
            Duration(std::time::Duration::from_millis(1500))
        );
        assert_eq!(t(">= 190/s", &[Unit::Rate]).value, Rate(190.0));
        assert_eq!(
            t("== 0", &[Unit::Count]),
            Threshold {
                op: Op::Eq,
                value: Count(0)
            }
        );
        assert_eq!(t("< 1%", &[Unit::Count, Unit::Percent]).value, Percent(1.0));
    }

    #[test]
    fn threshold_mistakes_say_how_to_write_it() {
        let e = threshold("99", &[Unit::Percent]).unwrap_err();
        assert_eq!(
            e.message,
            "`99` does not start with a comparison (<, <=, >, >=, ==, !=)"
        );
        let e = threshold(">= 99", &[Unit::Percent]).unwrap_err();
        assert_eq!(e.help, "a percentage needs `%`: `>= 99%`");
        let e = threshold("< 50", &[Unit::Duration]).unwrap_err();
        assert_eq!(e.help, "give a unit: `< 50ms`");
        let e = threshold("= 0", &[Unit::Count]).unwrap_err();
        assert!(e.help.starts_with("equality is `==`"), "{e:?}");
        let e = threshold("< 50 msec", &[Unit::Duration]).unwrap_err();
        assert!(e.message.contains("not a value"), "{e:?}");
        let e = threshold(">= 120%", &[Unit::Percent]).unwrap_err();
        assert_eq!(e.message, "`120%` is not between 0% and 100%");
        let e = threshold(">= 5%", &[Unit::Count]).unwrap_err();
        assert_eq!(
            e.message,
            "`5%` is a percentage, but this check compares a count such as `0` or `1000`"
        );
        assert!(threshold("<", &[Unit::Count]).is_err());
        assert!(threshold("> 1e3", &[Unit::Count]).is_err());
    }

    #[test]
    fn thresholds_compare_in_their_unit() {
        let th = t("< 50ms", &[Unit::Duration]);
        assert!(th.holds(49.9));
        assert!(!th.holds(50.0));
        assert!(t("== 0", &[Unit::Count]).holds(0.0));
        assert!(t("!= 0", &[Unit::Count]).holds(1.0));
    }

    #[test]
    fn splits() {
        assert_eq!(split("even ±10%").unwrap(), Split::Even { tolerance: 10.0 });
        assert_eq!(
            split("80/20 +-3%").unwrap(),
            Split::Weights {
                weights: vec![80.0, 20.0],
                tolerance: 3.0
            }
        );
        assert_eq!(
            split("1/1/2 ±5%").unwrap(),
            Split::Weights {
                weights: vec![25.0, 25.0, 50.0],
                tolerance: 5.0
            }
        );
        assert_eq!(
            split("50/50").unwrap_err().help.split(';').next(),
            Some("add one: `50/50 ±5%`")
        );
        assert!(split("uneven ±3%").is_err());
        assert!(split("80 ±3%").is_err());
        assert!(split("80/20 ±3").is_err());
    }

    #[test]
    fn windows_and_status_keys() {
        use std::time::Duration as D;
        assert_eq!(
            window("5s..15s").unwrap(),
            (D::from_secs(5), D::from_secs(15))
        );
        assert_eq!(
            window("500ms..1.5s").unwrap(),
            (D::from_millis(500), D::from_millis(1500))
        );
        assert!(window("15s..5s").is_err());
        assert!(window("5s-15s").is_err());
        assert_eq!(status_key("5xx").unwrap(), StatusKey::Class(5));
        assert_eq!(
            status_key("503").unwrap(),
            StatusKey::Outcome(Outcome::Status(503))
        );
        assert_eq!(
            status_key("grpc:14").unwrap(),
            StatusKey::Outcome(Outcome::Grpc(14))
        );
        assert_eq!(
            status_key("timeout").unwrap(),
            StatusKey::Outcome(Outcome::Timeout)
        );
        assert_eq!(
            status_key("7xx").unwrap_err().message,
            "unknown status class `7xx`"
        );
        assert_eq!(
            status_key("timout").unwrap_err().help,
            "did you mean `timeout`?"
        );
        assert!(status_key("42").is_err());
    }
}
