//! What the terminal UI is fed, and what it can ask for: the contract between the UI and
//! whoever runs the mesh. `meshsim top` feeds admin endpoints only; `meshsim up` adds a
//! [`MeshLink`] to its supervisor (units, events, logs, and the actions of `k r + - f`).

use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::runtime::UnitStatus;
use crate::scrape::Target;

/// Everything the UI reads.
pub struct Feed {
    /// The proxies to scrape; the supervisor updates it when replicas come and go.
    pub targets: watch::Receiver<Vec<Target>>,
    /// How often the scraper reads each admin API.
    pub interval: Duration,
    /// The supervisor of a running mesh; `None` under `meshsim top`.
    pub mesh: Option<MeshLink>,
}

impl Feed {
    /// A fixed set of admin endpoints and nothing else (`meshsim top`).
    pub fn admin_only(targets: Vec<Target>, interval: Duration) -> Feed {
        let (tx, rx) = watch::channel(targets);
        // The sender may go: the receiver keeps the last value.
        drop(tx);
        Feed {
            targets: rx,
            interval,
            mesh: None,
        }
    }
}

/// Both directions between the UI and a supervisor.
pub struct MeshLink {
    pub updates: mpsc::Receiver<MeshUpdate>,
    pub actions: mpsc::Sender<Action>,
}

/// What a supervisor tells the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum MeshUpdate {
    /// Every unit of the run, about once a second.
    Units(Vec<UnitStatus>),
    /// Something happened: a unit started, died or was restarted, an action's outcome…
    Event(MeshEvent),
    /// One line of a unit's output (stdout or stderr), as it arrives.
    Log { unit: String, line: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MeshEvent {
    pub at: SystemTime,
    pub kind: EventKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A unit started, stopped, died, was removed.
    Unit,
    /// An endpoint joined or left a cluster, or changed health.
    Endpoint,
    /// A fault was applied or cleared.
    Fault,
    /// What an action did (or why it could not).
    Action,
    Error,
}

impl EventKind {
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Unit => "unit",
            EventKind::Endpoint => "endpoint",
            EventKind::Fault => "fault",
            EventKind::Action => "action",
            EventKind::Error => "error",
        }
    }
}

/// What the UI asks the supervisor to do. A pod is `service#replica`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Kill every container/process of the pod (it stays dead; its DNS record goes).
    Kill { pod: String },
    /// Replace the pod by a fresh one of the same replica number.
    Restart { pod: String },
    /// One replica more (`delta` 1) or fewer (`delta` -1).
    Scale { service: String, delta: i32 },
    /// Switch the pod's app between healthy and failing (sample apps: 503 on half the requests).
    ToggleFault { pod: String },
}
