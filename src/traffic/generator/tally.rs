//! Where every finished request is counted: per phase and template, and per second of the
//! schedule. One recorder per run, owned by the generator's single thread, so recording takes
//! no lock; [`Progress`] mirrors the totals in atomics for whoever prints progress meanwhile.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::traffic::plan::LoadPlan;
use crate::traffic::report::{LoadReport, Outcome, PhaseReport, Tally};

use super::schedule::PhaseSchedule;

/// Which bucket a request lands in: its phase, its template there, and the second of the
/// schedule its intended send time falls in.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub phase: u32,
    pub template: u32,
    pub second: u32,
}

#[derive(Default)]
pub struct Recorder {
    /// `[phase][template]`.
    phases: Vec<Vec<Tally>>,
    /// Every template name of the plan once, in first-seen order: seconds are keyed by name
    /// because a second can straddle two phases that share a name.
    names: Vec<String>,
    /// `[phase][template]` → index in `names`.
    name_index: Vec<Vec<usize>>,
    /// `[second][name]`, created on first use (a histogram is ~26 KiB).
    seconds: Vec<Vec<Option<Tally>>>,
    sent: u64,
}

impl Recorder {
    pub fn new(plan: &LoadPlan) -> Recorder {
        let mut names: Vec<String> = Vec::new();
        let name_index = plan
            .phases
            .iter()
            .map(|p| {
                p.requests
                    .iter()
                    .map(|t| match names.iter().position(|n| *n == t.name) {
                        Some(i) => i,
                        None => {
                            names.push(t.name.clone());
                            names.len() - 1
                        }
                    })
                    .collect()
            })
            .collect();
        let seconds = plan.total_duration().as_secs_f64().ceil() as usize;
        Recorder {
            phases: plan
                .phases
                .iter()
                .map(|p| vec![Tally::default(); p.requests.len()])
                .collect(),
            seconds: vec![vec![None; names.len()]; seconds.max(1)],
            names,
            name_index,
            sent: 0,
        }
    }

    /// Counts one request; `latency` is recorded for answered requests only (status and gRPC
    /// outcomes), as the report promises.
    pub fn record(&mut self, slot: Slot, outcome: Outcome, latency: Duration) {
        let answered = matches!(outcome, Outcome::Status(_) | Outcome::Grpc(_));
        let (p, t) = (slot.phase as usize, slot.template as usize);
        let name = self.name_index[p][t];
        let second = (slot.second as usize).min(self.seconds.len() - 1);
        for tally in [
            &mut self.phases[p][t],
            self.seconds[second][name].get_or_insert_with(Tally::default),
        ] {
            tally.counts.add(outcome, 1);
            if answered {
                tally.latency.record(latency);
            }
        }
        self.sent += 1;
    }

    pub fn into_report(
        self,
        plan: &LoadPlan,
        schedules: &[PhaseSchedule],
        interrupted: bool,
    ) -> LoadReport {
        let names = self.names;
        LoadReport {
            phases: plan
                .phases
                .iter()
                .zip(schedules)
                .zip(self.phases)
                .map(|((phase, schedule), tallies)| PhaseReport {
                    name: phase.name.clone(),
                    start: schedule.start,
                    duration: phase.duration,
                    scheduled: schedule.count,
                    requests: phase
                        .requests
                        .iter()
                        .map(|t| t.name.clone())
                        .zip(tallies)
                        .collect(),
                })
                .collect(),
            seconds: self
                .seconds
                .into_iter()
                .map(|by_name| {
                    by_name
                        .into_iter()
                        .enumerate()
                        .filter_map(|(i, t)| Some((names[i].clone(), t?)))
                        .collect::<BTreeMap<_, _>>()
                })
                .collect(),
            sent: self.sent,
            interrupted,
        }
    }
}

/// Running totals for progress lines, readable from any thread while the run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    sent: AtomicU64,
    success: AtomicU64,
    /// Answered, but not 2xx (or a gRPC error).
    failed: AtomicU64,
    connect_error: AtomicU64,
    timeout: AtomicU64,
    reset: AtomicU64,
    cancelled: AtomicU64,
}

/// A copy of [`Progress`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub sent: u64,
    pub success: u64,
    pub failed: u64,
    pub connect_error: u64,
    pub timeout: u64,
    pub reset: u64,
    pub cancelled: u64,
}

impl Progress {
    pub fn record(&self, outcome: Outcome) {
        let counter = match outcome {
            o if o.is_success() => &self.success,
            Outcome::Status(_) | Outcome::Grpc(_) => &self.failed,
            Outcome::ConnectError => &self.connect_error,
            Outcome::Timeout => &self.timeout,
            Outcome::Reset => &self.reset,
            Outcome::Cancelled => &self.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProgressSnapshot {
            sent: get(&self.sent),
            success: get(&self.success),
            failed: get(&self.failed),
            connect_error: get(&self.connect_error),
            timeout: get(&self.timeout),
            reset: get(&self.reset),
            cancelled: get(&self.cancelled),
        }
    }
}
