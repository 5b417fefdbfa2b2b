//! The units table `up` prints when ready and `ps` prints on demand.

use crate::runtime::{PortPurpose, UnitStatus};

pub fn render(units: &[UnitStatus]) -> String {
    let rows: Vec<[String; 6]> = units
        .iter()
        .map(|u| {
            [
                u.scenario.clone(),
                u.unit.clone(),
                u.state.clone(),
                u.runtime.to_string(),
                u.address
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".into()),
                published(u),
            ]
        })
        .collect();
    let header = ["SCENARIO", "UNIT", "STATE", "RUNTIME", "ADDRESS", "PORTS"].map(str::to_string);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `127.0.0.1:8080->8080, 127.0.0.1:49153->8001 (admin)`.
fn published(u: &UnitStatus) -> String {
    if u.published.is_empty() {
        return "-".into();
    }
    u.published
        .iter()
        .map(|p| {
            let what = match p.purpose {
                PortPurpose::Publish => String::new(),
                other => format!(" ({})", other.as_str()),
            };
            format!("{}:{}->{}{what}", p.host_ip, p.host_port, p.container_port)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The URLs a user will want first: every `publish:` port, as http://127.0.0.1:PORT.
pub fn published_urls(units: &[UnitStatus]) -> Vec<String> {
    let mut urls: Vec<String> = units
        .iter()
        .flat_map(|u| {
            u.published
                .iter()
                .filter(|p| p.purpose == PortPurpose::Publish)
                .map(move |p| {
                    format!(
                        "{} port {}: http://{}:{}",
                        u.service, p.container_port, p.host_ip, p.host_port
                    )
                })
        })
        .collect();
    // Every unit of a pod lists the pod's ports (a sidecar shares its app's network).
    urls.dedup();
    urls
}
