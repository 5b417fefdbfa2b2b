//! Envoy config loading: parse (node), decode v3/v2/v1 into one model, validate, dump as v3.
//!
//! Users paste Envoy configs from blog posts of every era; they must all load into one
//! normalised [`model::Bootstrap`] so the data plane never knows which generation was written.
//! The format is recognised by content:
//!
//! * a top-level `resources:` list is an xDS bundle (a saved DiscoveryResponse, `xds_bundle`);
//! * top-level `listeners` or `cluster_manager.clusters` is v1 JSON (`v1`);
//! * anything else is a v2/v3 bootstrap (`decode`), where v2 spellings are translated with one
//!   deprecation warning per distinct form.
//!
//! Every problem in a file is collected and reported together, compiler-style.

pub mod decode;
pub mod diagnostics;
pub mod dump;
pub mod model;
pub mod node;
pub mod overlay;
pub mod pem;
pub mod v1;
pub mod validate;
pub mod xds_bundle;

use std::path::{Path, PathBuf};

use decode::{Decoder, Field, Mode};
use diagnostics::{Diagnostic, Report};
use node::Node;

/// A loaded config and the warnings found while loading it.
#[derive(Debug)]
pub struct Loaded {
    pub bootstrap: model::Bootstrap,
    /// Warnings only (deprecated forms, ignored fields); empty for a clean v3 config.
    pub report: Report,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every error found in the file, rendered with positions by `Display`.
    #[error("{0}")]
    Invalid(Report),
}

impl LoadError {
    /// The report of an invalid config (`None` for I/O errors).
    pub fn report(&self) -> Option<&Report> {
        match self {
            LoadError::Invalid(r) => Some(r),
            LoadError::Io { .. } => None,
        }
    }
}

pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    let text = read(path)?;
    load_str(&path.display().to_string(), &text, &base_dir_of(path))
}

/// `label` names the source in messages (file path or "--config-yaml"); `base_dir` resolves
/// `filename:` data sources.
pub fn load_str(label: &str, text: &str, base_dir: &Path) -> Result<Loaded, LoadError> {
    let root = parse(label, text)?;
    let (bootstrap, diagnostics) = decode_document(&root, base_dir);
    finish(label, text, bootstrap, diagnostics)
}

/// Envoy's `--config-yaml` is merged over `--config-path` (proto MergeFrom semantics: maps
/// merge recursively, lists append, scalars replace). `base_dir`, when given, resolves
/// `filename:` data sources instead of the config file's directory (a proxy running on a copy
/// of the user's config, see `meshsim proxy --config-base-dir`).
pub fn load_with_overlay(
    path: Option<&Path>,
    yaml: Option<&str>,
    base_dir: Option<&Path>,
) -> Result<Loaded, LoadError> {
    const OVERLAY: &str = "--config-yaml";
    let cwd = PathBuf::from(".");
    let base_of = |p: &Path| base_dir.map_or_else(|| base_dir_of(p), Path::to_path_buf);
    match (path, yaml) {
        (None, None) => {
            let report = Report {
                file: "meshsim".into(),
                source: String::new(),
                diagnostics: vec![Diagnostic::error(
                    "",
                    node::Span {
                        line: 1,
                        col: 1,
                        len: 1,
                    },
                    "no Envoy config: give --config-path or --config-yaml",
                )],
            };
            Err(LoadError::Invalid(report))
        }
        (Some(p), None) => load_str(&p.display().to_string(), &read(p)?, &base_of(p)),
        (None, Some(y)) => load_str(OVERLAY, y, &cwd),
        (Some(p), Some(y)) => {
            let base_text = read(p)?;
            let label = format!("{} + {OVERLAY}", p.display());
            let mut base = parse(&p.display().to_string(), &base_text)?;
            let mut over = parse(OVERLAY, y)?;
            let mut combined = base_text.clone();
            if !combined.is_empty() && !combined.ends_with('\n') {
                combined.push('\n');
            }
            let offset = combined.lines().count();
            combined.push_str(y);
            overlay::shift(&mut over, offset);
            overlay::merge(&mut base, over);
            let (bootstrap, diagnostics) = decode_document(&base, &base_of(p));
            finish(&label, &combined, bootstrap, diagnostics)
        }
    }
}

/// `/config_dump` body: {"configs":[BootstrapConfigDump, ClustersConfigDump,
/// ListenersConfigDump, RoutesConfigDump]} in v3 form with "@type" on each.
pub fn config_dump(b: &model::Bootstrap) -> serde_json::Value {
    dump::config_dump(b)
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn base_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub(crate) fn parse(label: &str, text: &str) -> Result<Node, LoadError> {
    node::parse(text).map_err(|mut e| {
        // An error at end of input ("did not find expected node") is reported just past the
        // last character written, where the snippet can show what is missing.
        let lines: Vec<&str> = text.lines().collect();
        if e.span.line > lines.len() {
            if let Some((i, last)) = lines
                .iter()
                .enumerate()
                .rev()
                .find(|(_, l)| !l.trim().is_empty())
            {
                e.span = node::Span {
                    line: i + 1,
                    col: last.chars().count() + 1,
                    len: 1,
                };
            }
        }
        let diag = if e.message.starts_with("duplicate key") {
            Diagnostic::error("", e.span, e.message)
                .with_help("a key may appear once per mapping; Envoy rejects the file too")
        } else {
            Diagnostic::error("", e.span, format!("syntax error: {}", e.message))
        };
        LoadError::Invalid(Report {
            file: label.to_string(),
            source: text.to_string(),
            diagnostics: vec![diag],
        })
    })
}

/// Decodes a parsed document in whichever format it is written.
fn decode_document(root: &Node, base_dir: &Path) -> (Option<model::Bootstrap>, Vec<Diagnostic>) {
    let field = Field::root(root);
    let bundle = xds_bundle::is_bundle(root);
    let mode = if bundle {
        Mode::Bundle
    } else {
        Mode::Bootstrap
    };
    let mut d = Decoder::new(base_dir.to_path_buf(), mode);
    let bootstrap = if bundle {
        xds_bundle::bundle(&mut d, &field)
    } else if v1::is_v1(root) {
        v1::bootstrap(&mut d, &field)
    } else {
        decode::bootstrap::bootstrap(&mut d, &field)
    };
    validate::validate(&mut d);
    (bootstrap, d.finish())
}

fn finish(
    label: &str,
    text: &str,
    bootstrap: Option<model::Bootstrap>,
    diagnostics: Vec<Diagnostic>,
) -> Result<Loaded, LoadError> {
    let report = Report {
        file: label.to_string(),
        source: text.to_string(),
        diagnostics,
    };
    match bootstrap {
        Some(bootstrap) if !report.has_errors() => Ok(Loaded { bootstrap, report }),
        Some(_) => Err(LoadError::Invalid(report)),
        None => {
            let mut report = report;
            if !report.has_errors() {
                report.diagnostics.push(Diagnostic::error(
                    "",
                    node::Span {
                        line: 1,
                        col: 1,
                        len: 1,
                    },
                    "the document is not an Envoy config",
                ));
            }
            Err(LoadError::Invalid(report))
        }
    }
}
