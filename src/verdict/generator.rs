//! Checks on what the load generator measured: success rate, latency percentiles, achieved
//! rate, counts by status or outcome.

use super::evaluate::Measured;
use super::expect::{format_latency, trim_number, Quantity, StatusKey, Threshold};
use super::window::LoadSlice;
use crate::traffic::report::Outcome;

/// 2xx (and gRPC OK) among the requests that ended; cancelled ones (still in flight when
/// the run stopped) are neither successes nor failures.
pub fn success_rate(load: &LoadSlice, threshold: &Threshold) -> Result<Measured, String> {
    let counts = &load.tally.counts;
    let ended = counts.total() - counts.get(Outcome::Cancelled);
    if ended == 0 {
        return Err(no_requests(load));
    }
    let ok = counts.successes();
    let rate = ok as f64 * 100.0 / ended as f64;
    Ok(Measured::new(
        threshold.holds(rate),
        format!("{} ({ok}/{ended})", percent(rate)),
    ))
}

pub fn latency(
    load: &LoadSlice,
    percentile: f64,
    threshold: &Threshold,
) -> Result<Measured, String> {
    let Some(at) = load.tally.latency.quantile(percentile / 100.0) else {
        return Err(format!(
            "no request was answered ({} sent), so there is no latency",
            load.tally.counts.total()
        ));
    };
    let ms = at.as_secs_f64() * 1000.0;
    Ok(Measured::new(
        threshold.holds(ms),
        format!(
            "{} (of {} answered)",
            format_latency(at),
            load.tally.latency.count()
        ),
    ))
}

/// Answered requests (any HTTP status or gRPC outcome) per second of the scope.
pub fn rate(load: &LoadSlice, threshold: &Threshold) -> Result<Measured, String> {
    let secs = load.duration.as_secs_f64();
    if secs <= 0.0 {
        return Err("the scope lasted no time".into());
    }
    let answered = answered(load);
    let rate = answered as f64 / secs;
    Ok(Measured::new(
        threshold.holds(rate),
        format!(
            "{}/s ({answered} in {}s)",
            trim_number((rate * 10.0).round() / 10.0),
            trim_number(secs)
        ),
    ))
}

/// A count, or with a percent threshold the share of the requests sent in the scope.
pub fn status(load: &LoadSlice, key: StatusKey, threshold: &Threshold) -> Result<Measured, String> {
    let counts = &load.tally.counts;
    let sent = counts.total();
    if sent == 0 {
        return Err(no_requests(load));
    }
    let n: u64 = counts
        .0
        .iter()
        .filter(|(o, _)| key.matches(**o))
        .map(|(_, n)| n)
        .sum();
    let breakdown: Vec<String> = counts.0.iter().map(|(o, n)| format!("{n}×{o}")).collect();
    let detail = format!("sent {sent} = {}", breakdown.join(" + "));
    Ok(match threshold.value {
        Quantity::Percent(_) => {
            let share = n as f64 * 100.0 / sent as f64;
            Measured::new(
                threshold.holds(share),
                format!("{} ({n}/{sent})", percent(share)),
            )
        }
        _ => Measured::new(threshold.holds(n as f64), format!("{n} (of {sent})")),
    }
    .with_detail(detail))
}

fn answered(load: &LoadSlice) -> u64 {
    load.tally
        .counts
        .0
        .iter()
        .filter(|(o, _)| matches!(o, Outcome::Status(_) | Outcome::Grpc(_)))
        .map(|(_, n)| n)
        .sum()
}

fn no_requests(load: &LoadSlice) -> String {
    format!(
        "no request ended in this scope ({} sent, {} cancelled)",
        load.tally.counts.total(),
        load.tally.counts.get(Outcome::Cancelled)
    )
}

/// `99.82%`: two decimals, so 99.995% does not print as a passing-looking 100%.
pub fn percent(v: f64) -> String {
    format!("{}%", trim_number((v * 100.0).floor() / 100.0))
}
