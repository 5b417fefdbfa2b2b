//! Where an expectation looks: its scope as an interval of the run, the generator's tallies
//! inside it, and the faults that were active during it.

use std::time::Duration;

use super::expect::{format_at, Scope};
use super::record::RunRecord;
use crate::traffic::report::Tally;

/// A scope made concrete: from–to (offsets from the start of traffic) and how reports name it.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub from: Duration,
    pub to: Duration,
    /// `whole run`, `phase steady, 2.0s–22.0s`, `5.0s–15.0s`.
    pub label: String,
}

/// Resolves a scope against the run; Err says why it cannot be (an unknown or unreached phase).
pub fn interval(scope: &Scope, record: &RunRecord) -> Result<Interval, String> {
    match scope {
        Scope::Run => {
            let end = record
                .phases
                .iter()
                .map(|p| p.end)
                .max()
                .or_else(|| record.snapshots.last().map(|s| s.at))
                .unwrap_or_default();
            Ok(Interval {
                from: Duration::ZERO,
                to: end,
                label: "whole run".into(),
            })
        }
        Scope::Phase(name) => {
            let spans: Vec<_> = record.phases.iter().filter(|p| &p.name == name).collect();
            let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
                let why = if record.interrupted {
                    " (the run was interrupted before it)"
                } else {
                    ""
                };
                return Err(format!("the run has no phase `{name}`{why}"));
            };
            Ok(Interval {
                from: first.start,
                to: last.end,
                label: format!(
                    "phase {name}, {}–{}",
                    format_at(first.start),
                    format_at(last.end)
                ),
            })
        }
        Scope::Window { from, to } => Ok(Interval {
            from: *from,
            to: *to,
            label: format!("{}–{}", format_at(*from), format_at(*to)),
        }),
    }
}

/// What the generator measured in a scope, for one route or all, and over how long.
#[derive(Debug, Clone)]
pub struct LoadSlice {
    pub tally: Tally,
    pub duration: Duration,
}

/// The generator's tally for `scope` (a window: its whole seconds), optionally one route's.
/// Err says why there is nothing to judge.
pub fn load(scope: &Scope, route: Option<&str>, record: &RunRecord) -> Result<LoadSlice, String> {
    let Some(load) = &record.load else {
        return Err("the scenario sent no traffic (no `traffic:` block), so there is nothing the generator measured".into());
    };
    let wanted = |name: &str| route.is_none_or(|r| r == name);
    let mut tally = Tally::default();
    let mut found_route = false;
    let duration;
    match scope {
        Scope::Run | Scope::Phase(_) => {
            let phases: Vec<_> = load
                .phases
                .iter()
                .filter(|p| match scope {
                    Scope::Phase(name) => &p.name == name,
                    _ => true,
                })
                .collect();
            if phases.is_empty() {
                return Err(match scope {
                    Scope::Phase(name) => format!("the generator has no report for phase `{name}`"),
                    _ => "the generator reported no phases".into(),
                });
            }
            duration = phases.iter().map(|p| p.duration).sum();
            for (name, t) in phases.iter().flat_map(|p| &p.requests) {
                if wanted(name) {
                    found_route = true;
                    tally.merge(t);
                }
            }
        }
        Scope::Window { from, to } => {
            let first = from.as_secs() as usize;
            let end = (to.as_secs_f64().ceil() as usize).min(load.seconds.len());
            if end <= first {
                return Err(format!(
                    "the schedule has {} s; the window starts after it",
                    load.seconds.len()
                ));
            }
            duration = Duration::from_secs((end - first) as u64);
            for second in &load.seconds[first..end] {
                for (name, t) in second {
                    if wanted(name) {
                        found_route = true;
                        tally.merge(t);
                    }
                }
            }
        }
    }
    if let (Some(r), false) = (route, found_route) {
        return Err(format!("no request named `{r}` was sent in this scope"));
    }
    Ok(LoadSlice { tally, duration })
}

/// The faults that were in effect at some point of `interval`, as reports say them. A fault
/// that is not undone (a kill) stays in effect from when it happened.
pub fn faults_active(interval: &Interval, record: &RunRecord) -> Vec<String> {
    record
        .faults
        .iter()
        .filter(|f| f.at <= interval.to && f.reverted.is_none_or(|r| r >= interval.from))
        .map(|f| {
            let when = match f.reverted {
                Some(r) => format!("{}–{}", format_at(f.at), format_at(r)),
                None => format!("at {}", format_at(f.at)),
            };
            match &f.error {
                Some(e) => format!("{} {when} (failed: {e})", f.text),
                None => format!("{} {when}", f.text),
            }
        })
        .collect()
}
