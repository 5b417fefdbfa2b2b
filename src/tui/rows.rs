//! Each view as rows of text cells: built from the model, then filtered (`/`) and sorted
//! (`s`) the same way for every view. The drawing code lays these out; the update code uses
//! the same rows to know what the cursor is on, so what is selected is what is seen.

use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

use crate::runtime::{Role, UnitStatus};
use crate::scrape::rates::StatusClasses;
use crate::scrape::ClusterRate;

use super::model::{host_ip, Model, View};

/// What a row is about: what enter drills into and what the action keys act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    None,
    Unit {
        unit: String,
        pod: String,
        service: String,
    },
    Cluster {
        proxy: String,
        cluster: String,
    },
    Endpoint {
        proxy: String,
        cluster: String,
        address: String,
    },
}

/// How a row wants to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Normal,
    /// A tree's group line.
    Header,
    /// Stale, unhealthy, failing.
    Bad,
    /// Not running, no traffic.
    Dim,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<String>,
    /// Filterable fields that are not columns (`proxy`, `cluster`, `upstream`…).
    pub hidden: Vec<(&'static str, String)>,
    pub subject: Subject,
    /// Depth in a tree (0 for tables).
    pub depth: usize,
    pub tone: Tone,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Row>,
    /// Trees keep their order; `s` sorts tables.
    pub tree: bool,
    /// The one section of the view that `s` sorts.
    pub sortable: bool,
    /// Columns a narrow terminal may hide, the first to go first.
    pub droppable: Vec<&'static str>,
}

const UNIT_COLUMNS: [&str; 6] = ["NAME", "REPLICA", "KIND", "STATE", "HEALTH", "UPTIME"];
const TRAFFIC_COLUMNS: [&str; 9] = [
    "PROXY", "CLUSTER", "RPS", "SUCCESS", "P50", "P95", "P99", "ACTIVE", "HISTORY",
];
const CLUSTER_COLUMNS: [&str; 6] = ["ENDPOINT", "SHARE", "RPS", "SUCCESS", "ACTIVE", "HEALTH"];
const ROUTE_COLUMNS: [&str; 7] = ["ROUTE", "CLUSTER", "RPS", "2XX", "3XX", "4XX", "5XX"];
const TAP_COLUMNS: [&str; 10] = [
    "TIME",
    "PROXY",
    "METHOD",
    "AUTHORITY",
    "PATH",
    "STATUS",
    "FLAGS",
    "DURATION",
    "UPSTREAM",
    "CLUSTER",
];
const LOG_COLUMNS: [&str; 1] = ["LINE"];
const EVENT_COLUMNS: [&str; 3] = ["TIME", "KIND", "WHAT"];

/// The columns `s` cycles through in `view`.
pub fn columns(view: View) -> Vec<&'static str> {
    match view {
        View::Overview => TRAFFIC_COLUMNS.to_vec(),
        View::Clusters => CLUSTER_COLUMNS.to_vec(),
        View::Routes => ROUTE_COLUMNS.to_vec(),
        View::Tap => TAP_COLUMNS.to_vec(),
        View::Logs => LOG_COLUMNS.to_vec(),
        View::Events => EVENT_COLUMNS.to_vec(),
    }
}

pub fn sortable(view: View) -> bool {
    !matches!(view, View::Clusters | View::Routes | View::Logs)
}

/// The view's sections, filtered and sorted as the user asked.
pub fn sections(model: &Model, view: View) -> Vec<Section> {
    let mut sections = match view {
        View::Overview => overview(model),
        View::Clusters => vec![clusters(model)],
        View::Routes => vec![routes(model)],
        View::Tap => vec![tap(model)],
        View::Logs => vec![logs(model)],
        View::Events => vec![events(model)],
    };
    let state = model.state(view);
    for section in &mut sections {
        if let Some(filter) = &state.filter {
            let keep: Vec<bool> = section
                .rows
                .iter()
                .map(|row| {
                    let mut fields: Vec<(&str, &str)> = section
                        .columns
                        .iter()
                        .zip(&row.cells)
                        .map(|(c, v)| (*c, v.as_str()))
                        .collect();
                    fields.extend(row.hidden.iter().map(|(k, v)| (*k, v.as_str())));
                    filter.matches(&fields)
                })
                .collect();
            section.rows = keep_with_ancestors(std::mem::take(&mut section.rows), &keep);
        }
        if let (Some((column, descending)), true, false) =
            (state.sort, section.sortable, section.tree)
        {
            section.rows.sort_by(|a, b| {
                let order = compare_cells(
                    a.cells.get(column).map_or("", String::as_str),
                    b.cells.get(column).map_or("", String::as_str),
                );
                if descending {
                    order.reverse()
                } else {
                    order
                }
            });
        }
    }
    sections
}

/// Every row of the view, in display order.
pub fn visible(model: &Model, view: View) -> Vec<Row> {
    sections(model, view)
        .into_iter()
        .flat_map(|s| s.rows)
        .collect()
}

/// Where the cursor is among `len` rows: the last when following, else the remembered one.
pub fn selected_index(model: &Model, view: View, len: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let state = model.state(view);
    Some(if state.following {
        len - 1
    } else {
        state.selected.min(len - 1)
    })
}

/// Filtering a tree keeps each matching row and the rows above it (its cluster, listener…).
fn keep_with_ancestors(rows: Vec<Row>, keep: &[bool]) -> Vec<Row> {
    let mut wanted = keep.to_vec();
    let mut ancestors: Vec<usize> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        ancestors.truncate(row.depth);
        if keep[i] {
            for a in &ancestors {
                wanted[*a] = true;
            }
        }
        ancestors.push(i);
    }
    rows.into_iter()
        .zip(wanted)
        .filter_map(|(row, keep)| keep.then_some(row))
        .collect()
}

/// Numbers as numbers (`12.5ms`, `99.0%`), `-` below everything, text as text.
fn compare_cells(a: &str, b: &str) -> Ordering {
    fn number(s: &str) -> Option<f64> {
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        s[..end].parse().ok()
    }
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

pub fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

pub fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}ms"))
}

fn rate(v: f64) -> String {
    format!("{v:.1}")
}

/// `42s`, `3m07s`, `2h05m`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// `HH:MM:SS` (UTC) of a wall-clock time.
pub fn clock(at: SystemTime) -> String {
    let s = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

fn overview(model: &Model) -> Vec<Section> {
    let units = if model.mesh {
        let mut units: Vec<&UnitStatus> = model.units.iter().collect();
        units.sort_by(|a, b| {
            (&a.service, a.replica, a.role.as_str()).cmp(&(&b.service, b.replica, b.role.as_str()))
        });
        units.into_iter().map(|u| unit_row(model, u)).collect()
    } else {
        // `meshsim top`: the proxies are the units.
        model
            .proxies
            .iter()
            .map(|p| Row {
                cells: vec![
                    p.name.clone(),
                    "-".into(),
                    "proxy".into(),
                    if p.stale.is_some() {
                        "stale".into()
                    } else {
                        "answering".into()
                    },
                    p.stale.clone().unwrap_or_else(|| "live".into()),
                    "-".into(),
                ],
                hidden: Vec::new(),
                subject: Subject::None,
                depth: 0,
                tone: if p.stale.is_some() {
                    Tone::Bad
                } else {
                    Tone::Normal
                },
            })
            .collect()
    };
    let traffic = model
        .proxies
        .iter()
        .flat_map(|p| p.clusters.iter().map(move |c| (p, c)))
        .map(|(proxy, c)| {
            let stale = proxy.stale.is_some();
            let cell = |s: String| if stale { "stale".to_string() } else { s };
            Row {
                cells: vec![
                    proxy.name.clone(),
                    c.cluster.clone(),
                    cell(rate(c.rps)),
                    cell(percent(c.success)),
                    cell(ms(c.latency.p50)),
                    cell(ms(c.latency.p95)),
                    cell(ms(c.latency.p99)),
                    cell(c.active.to_string()),
                    String::new(),
                ],
                hidden: Vec::new(),
                subject: Subject::Cluster {
                    proxy: proxy.name.clone(),
                    cluster: c.cluster.clone(),
                },
                depth: 0,
                tone: if stale || c.success.is_some_and(|s| s < 0.95) {
                    Tone::Bad
                } else if c.rps == 0.0 {
                    Tone::Dim
                } else {
                    Tone::Normal
                },
            }
        })
        .collect();
    vec![
        Section {
            title: "units".into(),
            columns: UNIT_COLUMNS.to_vec(),
            rows: units,
            tree: false,
            sortable: false,
            droppable: Vec::new(),
        },
        Section {
            title: "proxies and their clusters".into(),
            columns: TRAFFIC_COLUMNS.to_vec(),
            rows: traffic,
            tree: false,
            sortable: true,
            droppable: Vec::new(),
        },
    ]
}

fn unit_row(model: &Model, u: &UnitStatus) -> Row {
    let pod = format!("{}#{}", u.service, u.replica);
    let running = u.state == "running";
    let health = if !running {
        "-".to_string()
    } else {
        match u.role {
            Role::Proxy | Role::Sidecar => match model.proxies.iter().find(|p| p.name == pod) {
                Some(p) => p
                    .stale
                    .as_ref()
                    .map_or("live".into(), |why| format!("stale: {why}")),
                None => "-".into(),
            },
            Role::App => app_health(model, u),
        }
    };
    let uptime = match (running, u.started_at) {
        (true, Some(at)) => age(model.now.duration_since(at).unwrap_or_default()),
        _ => "-".into(),
    };
    let bad = !running || health.starts_with("stale") || health.starts_with("unhealthy");
    Row {
        cells: vec![
            u.service.clone(),
            u.replica.to_string(),
            u.role.as_str().into(),
            u.state.clone(),
            health,
            uptime,
        ],
        hidden: vec![("unit", u.unit.clone())],
        subject: Subject::Unit {
            unit: u.unit.clone(),
            pod,
            service: u.service.clone(),
        },
        depth: 0,
        tone: if bad { Tone::Bad } else { Tone::Normal },
    }
}

/// An app is as healthy as the proxies that send to it say: unhealthy if any of them marks
/// its address so (outlier ejection, failed health check).
fn app_health(model: &Model, u: &UnitStatus) -> String {
    let Some(ip) = u.address.map(|a| a.to_string()) else {
        return "-".into();
    };
    let seen: Vec<&crate::scrape::rates::HostRate> = model
        .proxies
        .iter()
        .filter(|p| p.stale.is_none())
        .flat_map(|p| p.clusters.iter().flat_map(|c| &c.hosts))
        .filter(|h| host_ip(&h.address) == ip)
        .collect();
    if seen.is_empty() {
        return "-".into();
    }
    match seen.iter().find(|h| !h.healthy) {
        Some(h) => format!("unhealthy: {}", h.flags.join(",")),
        None => "healthy".into(),
    }
}

fn cluster_health(c: &ClusterRate) -> String {
    let healthy = c.hosts.iter().filter(|h| h.healthy).count();
    let mut text = format!("{healthy}/{} healthy", c.hosts.len());
    if c.ejected > 0 {
        text.push_str(&format!(", {} ejected", c.ejected));
    }
    text
}

/// Each cluster with its endpoints, and each endpoint's share of the requests as a bar.
fn clusters(model: &Model) -> Section {
    let mut rows = Vec::new();
    for proxy in &model.proxies {
        for c in &proxy.clusters {
            let stale = proxy.stale.is_some();
            let hidden = vec![
                ("proxy", proxy.name.clone()),
                ("cluster", c.cluster.clone()),
            ];
            rows.push(Row {
                cells: vec![
                    format!("{} › {}", proxy.name, c.cluster),
                    String::new(),
                    if stale { "stale".into() } else { rate(c.rps) },
                    if stale {
                        "-".into()
                    } else {
                        percent(c.success)
                    },
                    c.active.to_string(),
                    cluster_health(c),
                ],
                hidden: hidden.clone(),
                subject: Subject::Cluster {
                    proxy: proxy.name.clone(),
                    cluster: c.cluster.clone(),
                },
                depth: 0,
                tone: if stale { Tone::Bad } else { Tone::Header },
            });
            let n = c.hosts.len();
            for (i, h) in c.hosts.iter().enumerate() {
                let filled = ((h.share * 20.0).round() as usize).min(20);
                let success = (h.rps > 0.0).then(|| 1.0 - (h.errors / h.rps).min(1.0));
                let mut hidden = hidden.clone();
                hidden.push(("upstream", h.address.clone()));
                rows.push(Row {
                    cells: vec![
                        format!("{} {}", if i + 1 == n { '└' } else { '├' }, h.address),
                        format!(
                            "{}{} {:>3.0}%",
                            "█".repeat(filled),
                            "░".repeat(20 - filled),
                            h.share * 100.0
                        ),
                        rate(h.rps),
                        percent(success),
                        h.active.to_string(),
                        if h.healthy {
                            "healthy".into()
                        } else {
                            h.flags.join(",")
                        },
                    ],
                    hidden,
                    subject: Subject::Endpoint {
                        proxy: proxy.name.clone(),
                        cluster: c.cluster.clone(),
                        address: h.address.clone(),
                    },
                    depth: 1,
                    tone: if h.healthy { Tone::Normal } else { Tone::Bad },
                });
            }
        }
    }
    Section {
        title: "clusters: each endpoint's share of requests".into(),
        columns: CLUSTER_COLUMNS.to_vec(),
        rows,
        tree: true,
        sortable: false,
        droppable: Vec::new(),
    }
}

fn classes(status: &StatusClasses) -> [String; 4] {
    status.0.map(rate)
}

/// listener → virtual host → route → cluster, with the downstream rates of each listener and
/// the rates of each route's cluster.
fn routes(model: &Model) -> Section {
    let mut rows = Vec::new();
    for proxy in &model.proxies {
        let hidden = vec![("proxy", proxy.name.clone())];
        let row = |cells: Vec<String>, depth: usize, subject: Subject, tone: Tone| Row {
            cells,
            hidden: hidden.clone(),
            subject,
            depth,
            tone,
        };
        rows.push(row(
            vec![proxy.name.clone()],
            0,
            Subject::None,
            if proxy.stale.is_some() {
                Tone::Bad
            } else {
                Tone::Header
            },
        ));
        let Some(table) = &proxy.routes else {
            continue;
        };
        for listener in &table.listeners {
            let hcm = listener
                .stat_prefix
                .as_ref()
                .and_then(|p| proxy.hcm.iter().find(|h| &h.stat_prefix == p));
            let mut cells = vec![
                format!("listener {} {}", listener.name, listener.address),
                String::new(),
            ];
            if let Some(h) = hcm {
                cells.push(rate(h.rps));
                cells.extend(classes(&h.status));
            }
            rows.push(row(cells, 1, Subject::None, Tone::Header));
            for vh in &listener.virtual_hosts {
                rows.push(row(
                    vec![format!("  vhost {} [{}]", vh.name, vh.domains.join(", "))],
                    2,
                    Subject::None,
                    Tone::Normal,
                ));
                for route in &vh.routes {
                    let targets = route.action.clusters();
                    let mut cells = vec![format!("    {}", route.matcher), route.action.describe()];
                    // A route's rates are its cluster's (Envoy counts per cluster); with
                    // weighted clusters, the sum.
                    let rates: Vec<&ClusterRate> = proxy
                        .clusters
                        .iter()
                        .filter(|c| targets.contains(&c.cluster.as_str()))
                        .collect();
                    if !rates.is_empty() {
                        cells.push(rate(rates.iter().map(|c| c.rps).sum()));
                        let mut sum = [0.0; 4];
                        for c in &rates {
                            for (s, v) in sum.iter_mut().zip(c.status.0) {
                                *s += v;
                            }
                        }
                        cells.extend(classes(&StatusClasses(sum)));
                    }
                    let subject = match targets.first() {
                        Some(c) => Subject::Cluster {
                            proxy: proxy.name.clone(),
                            cluster: c.to_string(),
                        },
                        None => Subject::None,
                    };
                    let failing = rates.iter().any(|c| c.status.0[3] > 0.0);
                    rows.push(row(
                        cells,
                        3,
                        subject,
                        if failing { Tone::Bad } else { Tone::Normal },
                    ));
                }
            }
        }
    }
    Section {
        title: "routes: listener › virtual host › route › cluster".into(),
        columns: ROUTE_COLUMNS.to_vec(),
        rows,
        tree: true,
        sortable: false,
        droppable: Vec::new(),
    }
}

fn tap(model: &Model) -> Section {
    let rows = model
        .tap
        .iter()
        .map(|e| Row {
            cells: vec![
                e.time.clone(),
                e.proxy.clone(),
                e.method.clone(),
                e.authority.clone(),
                e.path.clone(),
                e.status.to_string(),
                e.flags.clone(),
                e.duration_ms.map_or("-".into(), |d| format!("{d}ms")),
                e.upstream.clone(),
                e.cluster.clone().unwrap_or_else(|| "-".into()),
            ],
            hidden: Vec::new(),
            subject: match &e.cluster {
                Some(cluster) if e.upstream != "-" => Subject::Endpoint {
                    proxy: e.proxy.clone(),
                    cluster: cluster.clone(),
                    address: e.upstream.clone(),
                },
                _ => Subject::None,
            },
            depth: 0,
            tone: if e.status >= 500 || e.status == 0 {
                Tone::Bad
            } else {
                Tone::Normal
            },
        })
        .collect();
    Section {
        title: "tap: requests from the proxies' access logs".into(),
        columns: TAP_COLUMNS.to_vec(),
        rows,
        tree: false,
        sortable: true,
        droppable: vec!["AUTHORITY", "PROXY", "FLAGS"],
    }
}

fn logs(model: &Model) -> Section {
    let unit = model.log_unit.clone().unwrap_or_default();
    let rows = model
        .logs
        .get(&unit)
        .into_iter()
        .flatten()
        .map(|line| Row {
            cells: vec![line.clone()],
            hidden: Vec::new(),
            subject: Subject::None,
            depth: 0,
            tone: if line.contains("ERROR") || line.contains("WARN") {
                Tone::Bad
            } else {
                Tone::Normal
            },
        })
        .collect();
    Section {
        title: format!("logs of {}", if unit.is_empty() { "-" } else { &unit }),
        columns: LOG_COLUMNS.to_vec(),
        rows,
        tree: false,
        sortable: false,
        droppable: Vec::new(),
    }
}

fn events(model: &Model) -> Section {
    let rows = model
        .events
        .iter()
        .map(|e| Row {
            cells: vec![clock(e.at), e.kind.label().into(), e.text.clone()],
            hidden: Vec::new(),
            subject: Subject::None,
            depth: 0,
            tone: match e.kind {
                super::feed::EventKind::Error => Tone::Bad,
                _ => Tone::Normal,
            },
        })
        .collect();
    Section {
        title: "events".into(),
        columns: EVENT_COLUMNS.to_vec(),
        rows,
        tree: false,
        sortable: true,
        droppable: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_as_numbers_and_dashes_first() {
        let mut cells = ["9.5ms", "-", "10.0ms", "2.0ms"];
        cells.sort_by(|a, b| compare_cells(a, b));
        assert_eq!(cells, ["-", "2.0ms", "9.5ms", "10.0ms"]);
    }

    #[test]
    fn ages_and_clocks() {
        assert_eq!(age(Duration::from_secs(42)), "42s");
        assert_eq!(age(Duration::from_secs(187)), "3m07s");
        assert_eq!(age(Duration::from_secs(7500)), "2h05m");
        assert_eq!(
            clock(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 + 3723)),
            "01:02:03"
        );
    }

    fn leaf(name: &str, depth: usize) -> Row {
        Row {
            cells: vec![name.into()],
            hidden: Vec::new(),
            subject: Subject::None,
            depth,
            tone: Tone::Normal,
        }
    }

    #[test]
    fn a_filtered_tree_keeps_the_parents_of_what_matches() {
        let rows = vec![
            leaf("p", 0),
            leaf("l1", 1),
            leaf("r1", 2),
            leaf("l2", 1),
            leaf("r2", 2),
        ];
        let kept = keep_with_ancestors(rows, &[false, false, false, false, true]);
        let names: Vec<&str> = kept.iter().map(|r| r.cells[0].as_str()).collect();
        assert_eq!(names, ["p", "l2", "r2"]);
    }
}
