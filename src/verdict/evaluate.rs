//! Judging expectations against a run: each [`Expectation`] gives one [`Judgement`] with the
//! measured value, the threshold, the window and the faults active then. Missing data is a
//! failure that says what was missing, never a pass.

use super::accounting;
use super::expect::{Check, Expectation, HealthFlag};
use super::generator;
use super::proxy;
use super::record::RunRecord;
use super::window::{self, Interval};

#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub expectation: Expectation,
    pub passed: bool,
    /// `99.82% (4491/4499)`, or `no data`.
    pub measured: String,
    /// `>= 99%`, `even ±10%`, `within 10s`.
    pub threshold: String,
    /// `phase steady, 2.0s–22.0s`, `5.0s–15.0s`, `whole run`.
    pub window: String,
    /// The faults in effect during the window, as the fault log says them.
    pub faults_active: Vec<String>,
    /// More lines: a split's shares, the accounting's reconciliation, why there was no data.
    pub detail: Option<String>,
}

/// What one check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub passed: bool,
    pub value: String,
    pub detail: Option<String>,
}

impl Measured {
    pub fn new(passed: bool, value: impl Into<String>) -> Measured {
        Measured {
            passed,
            value: value.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Measured {
        self.detail = Some(detail.into());
        self
    }
}

pub fn evaluate(expectations: &[Expectation], record: &RunRecord) -> Vec<Judgement> {
    expectations.iter().map(|e| judge(e, record)).collect()
}

fn judge(e: &Expectation, record: &RunRecord) -> Judgement {
    let threshold = threshold_text(&e.check);
    let (interval, result) = match window::interval(&e.scope, record) {
        Ok(i) => {
            let r = measure(&e.check, &e.scope, &i, record);
            (Some(i), r)
        }
        Err(why) => (None, Err(why)),
    };
    let measured = result.unwrap_or_else(|why| Measured::new(false, "no data").with_detail(why));
    Judgement {
        expectation: e.clone(),
        passed: measured.passed,
        measured: measured.value,
        threshold,
        window: interval
            .as_ref()
            .map(|i| i.label.clone())
            .unwrap_or_else(|| scope_label(e)),
        faults_active: interval
            .as_ref()
            .map(|i| window::faults_active(i, record))
            .unwrap_or_default(),
        detail: measured.detail,
    }
}

fn scope_label(e: &Expectation) -> String {
    match &e.scope {
        super::expect::Scope::Run => "whole run".into(),
        super::expect::Scope::Phase(p) => format!("phase {p}"),
        super::expect::Scope::Window { from, to } => format!(
            "{}–{}",
            super::expect::format_at(*from),
            super::expect::format_at(*to)
        ),
    }
}

fn threshold_text(check: &Check) -> String {
    match check {
        Check::SuccessRate { threshold, .. }
        | Check::Latency { threshold, .. }
        | Check::Rate { threshold, .. }
        | Check::Status { threshold, .. }
        | Check::Retries { threshold, .. }
        | Check::Stat { threshold, .. } => threshold.to_string(),
        Check::EndpointSplit { split, .. } | Check::ClusterSplit { split, .. } => split.to_string(),
        Check::Flagged { flag, within, .. } => format!(
            "{} within {}",
            match flag {
                HealthFlag::Ejected => "ejected",
                HealthFlag::Unhealthy => "unhealthy",
            },
            super::expect::format_latency(*within)
        ),
        Check::Accounting => "every request accounted for".into(),
    }
}

fn measure(
    check: &Check,
    scope: &super::expect::Scope,
    interval: &Interval,
    record: &RunRecord,
) -> Result<Measured, String> {
    match check {
        Check::SuccessRate { route, threshold } => {
            generator::success_rate(&window::load(scope, route.as_deref(), record)?, threshold)
        }
        Check::Latency {
            route,
            percentile,
            threshold,
        } => generator::latency(
            &window::load(scope, route.as_deref(), record)?,
            *percentile,
            threshold,
        ),
        Check::Rate { route, threshold } => {
            generator::rate(&window::load(scope, route.as_deref(), record)?, threshold)
        }
        Check::Status {
            route,
            status,
            threshold,
        } => generator::status(
            &window::load(scope, route.as_deref(), record)?,
            *status,
            threshold,
        ),
        Check::EndpointSplit { cluster, split } => {
            proxy::endpoint_split(record, interval, cluster, split)
        }
        Check::ClusterSplit {
            service,
            clusters,
            split,
        } => proxy::cluster_split(record, interval, service, clusters, split),
        Check::Flagged {
            cluster,
            pod,
            flag,
            within,
        } => proxy::flagged(record, interval, cluster, pod, *flag, *within),
        Check::Retries { cluster, threshold } => {
            proxy::retries(record, interval, cluster, threshold)
        }
        Check::Stat {
            service,
            stat,
            threshold,
        } => proxy::stat(record, interval, service, stat, threshold),
        Check::Accounting => accounting::reconcile(record),
    }
}
