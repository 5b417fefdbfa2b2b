//! Everything a scenario test run observed, in one place, for the expectations to be judged
//! on: the generator's report, the proxies' and apps' counters over time, and the faults.
//! Times are offsets from the start of traffic.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::scrape::ProxySample;
use crate::traffic::report::LoadReport;

#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    pub scenario: String,
    /// `docker` or `local`.
    pub runtime: String,
    pub phases: Vec<PhaseSpan>,
    /// None when the scenario has no `traffic:`.
    pub load: Option<LoadReport>,
    /// In time order: one taken just before traffic starts (`at` zero), about one a second
    /// while it runs, one at every phase boundary, and one once the last request has ended.
    pub snapshots: Vec<Snapshot>,
    pub faults: Vec<FaultLog>,
    /// Endpoint address as the proxies' `/clusters` list it (`172.18.0.5:8080`,
    /// `127.77.0.3:8080`) → the pod it belongs to (`service1#2`), for every pod the run had.
    pub endpoints: BTreeMap<String, String>,
    /// The pod the generator sends to (`front-envoy#1`), whose downstream counters the
    /// accounting reconciles; None when the target is not a proxy.
    pub target_proxy: Option<String>,
    /// The run was cut short (Ctrl-C, or an infrastructure failure mid-run).
    pub interrupted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSpan {
    pub name: String,
    pub start: Duration,
    pub end: Duration,
}

/// The counters of every proxy and sample app that answered, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at: Duration,
    /// By pod (`front-envoy#1`, `service1#2` for a sidecar).
    pub proxies: BTreeMap<String, ProxySample>,
    /// By pod (`service1#2`).
    pub apps: BTreeMap<String, AppCounters>,
}

/// A sample app's `/meshsim/stats`: what it really answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppCounters {
    pub requests_total: u64,
    pub by_path: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
}

/// One fault step as it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultLog {
    pub at: Duration,
    /// When it was undone (its `for:` elapsed, or the end of the run); None if it is not
    /// something that is undone (a kill, a scale).
    pub reverted: Option<Duration>,
    /// What was done, as said in reports: `kill service1#1`.
    pub text: String,
    /// The pod it hit, if one (`service1#1`), so "ejected within 10s" can start its clock.
    pub pod: Option<String>,
    /// Why it could not be done, if it failed.
    pub error: Option<String>,
}
