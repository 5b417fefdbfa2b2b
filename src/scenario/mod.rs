//! Scenario files: what `meshsim up` runs.
//!
//! A scenario names services; each is an app (a sample or a local image) with an optional
//! sidecar proxy, or a standalone proxy, with replicas and published ports. Loading decodes the
//! YAML with positions ([`decode`]), then cross-checks it against the Envoy configs it points
//! at ([`check`]); [`plan`] turns the result into the pods a runtime launches.

pub mod check;
mod check_test;
pub mod decode;
pub mod model;
pub mod plan;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::decode::{Decoder, Field, Mode};
use crate::config::diagnostics::{Report, Severity};
use crate::config::{self, LoadError};

pub use check::Configs;
pub use model::*;

/// A scenario that loaded, with its proxy configs and every warning found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub scenario: Scenario,
    pub configs: Configs,
    /// The scenario's own report first, then any proxy config's; warnings only.
    pub warnings: Vec<Report>,
}

#[derive(Debug)]
pub enum ScenarioError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The scenario's report first, then the reports of proxy configs with errors.
    Invalid(Vec<Report>),
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ScenarioError::Invalid(reports) => {
                for report in reports {
                    if report.has_errors() {
                        write!(f, "{report}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ScenarioError {}

impl ScenarioError {
    /// Warnings found alongside the errors, rendered.
    pub fn warnings(&self) -> String {
        match self {
            ScenarioError::Io { .. } => String::new(),
            ScenarioError::Invalid(reports) => render_warnings(reports),
        }
    }
}

pub fn render_warnings(reports: &[Report]) -> String {
    reports
        .iter()
        .filter(|r| r.warnings().next().is_some())
        .map(|r| r.render(Severity::Warning))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Does this file look like a scenario rather than an Envoy config? (`meshsim validate` takes
/// both.) A scenario has top-level `services:`; no Envoy config does.
pub fn looks_like_scenario(text: &str) -> bool {
    config::node::parse(text)
        .ok()
        .is_some_and(|root| root.get("services").is_some())
}

pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let label = path.display().to_string();
    let root = match config::parse(&label, &text) {
        Ok(root) => root,
        Err(LoadError::Invalid(report)) => return Err(ScenarioError::Invalid(vec![report])),
        Err(LoadError::Io { path, source }) => return Err(ScenarioError::Io { path, source }),
    };
    let base_dir = absolute.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut d = Decoder::new(base_dir, Mode::Bootstrap);
    let scenario = decode::scenario(&mut d, &Field::root(&root), &absolute);
    let mut diagnostics = d.finish();
    let mut config_reports = Vec::new();
    let configs = match &scenario {
        // Cross-checks only make sense on a scenario that decoded.
        Some(s) if !diagnostics.iter().any(|d| d.is_error()) => {
            check::check(s, &mut diagnostics, &mut config_reports)
        }
        _ => Configs::new(),
    };
    diagnostics.sort_by_key(|d| (!d.is_error(), d.span.line, d.span.col));
    let own = Report {
        file: label,
        source: text,
        diagnostics,
    };
    let failed = own.has_errors() || config_reports.iter().any(Report::has_errors);
    let mut reports = vec![own];
    reports.extend(config_reports);
    match scenario {
        Some(scenario) if !failed => Ok(Loaded {
            scenario,
            configs,
            warnings: reports,
        }),
        _ => Err(ScenarioError::Invalid(reports)),
    }
}
