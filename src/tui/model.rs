//! The terminal UI's state and how it changes (the Elm architecture: plain data, a pure
//! `update`, a `view` that only reads). Fed by scraper snapshots and the supervisor's updates;
//! never touches the terminal. Actions the user asks for are queued in [`Model::outbox`] for
//! the loop to send, so `update` stays testable.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use crate::runtime::{Role, UnitStatus};
use crate::scrape::{ClusterRate, HcmRate, RouteTable};

use super::feed::{Action, EventKind, MeshEvent, MeshUpdate};
use super::filter::Filter;
use super::rows::{self, Subject};
use super::tap::{self, TapEntry};

/// Points of rps history kept per cluster (the sparkline's width).
pub const HISTORY: usize = 40;
/// Lines kept per unit, requests kept in the tap, events kept.
pub const LOG_LINES: usize = 1000;
pub const TAP_ENTRIES: usize = 1000;
pub const EVENTS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Overview,
    Clusters,
    Routes,
    Tap,
    Logs,
    Events,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Clusters,
        View::Routes,
        View::Tap,
        View::Logs,
        View::Events,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Clusters => "Clusters",
            View::Routes => "Routes",
            View::Tap => "Tap",
            View::Logs => "Logs",
            View::Events => "Events",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    /// Views that show the newest rows last and follow them, like `tail -f`.
    fn follows(self) -> bool {
        matches!(self, View::Tap | View::Logs | View::Events)
    }
}

/// One proxy as the last scrape saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySnapshot {
    pub name: String,
    /// Why it is stale (not answering); its last rates are not shown as current.
    pub stale: Option<String>,
    pub clusters: Vec<ClusterRate>,
    /// Downstream rates per HTTP connection manager.
    pub hcm: Vec<HcmRate>,
    pub routes: Option<RouteTable>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    /// Ctrl-C: quit now, no question (the terminal's usual meaning).
    Interrupt,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Backspace,
    Esc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mouse {
    ScrollUp,
    ScrollDown,
    /// A left click at (column, row) of the terminal.
    Click(u16, u16),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(Key),
    Mouse(Mouse),
    Scraped(Vec<ProxySnapshot>),
    Mesh(MeshUpdate),
    /// The terminal was resized: nothing changes but the drawing.
    Redraw,
}

/// Per view: where the cursor is, how rows are sorted and filtered.
#[derive(Debug, Clone, Default)]
pub struct ViewState {
    pub selected: usize,
    /// Following the newest row (tap, logs, events) until the user moves up.
    pub following: bool,
    /// Column index and descending.
    pub sort: Option<(usize, bool)>,
    pub filter: Option<Filter>,
}

#[derive(Debug)]
pub struct Model {
    pub view: View,
    pub states: HashMap<View, ViewState>,
    /// Where enter came from: esc goes back (and drops a filter the drill-down set).
    pub back: Vec<(View, bool)>,
    pub proxies: Vec<ProxySnapshot>,
    /// rps per (proxy, cluster), newest last.
    pub history: HashMap<(String, String), VecDeque<u64>>,
    /// Units of the run (`meshsim up` only).
    pub units: Vec<UnitStatus>,
    /// A supervisor is attached: actions, logs and unit events are available.
    pub mesh: bool,
    pub events: VecDeque<MeshEvent>,
    pub logs: HashMap<String, VecDeque<String>>,
    /// The unit the Logs view shows.
    pub log_unit: Option<String>,
    pub tap: VecDeque<TapEntry>,
    /// The time the view reads (uptimes, event ages): the last update's, so a snapshot
    /// always draws the same.
    pub now: SystemTime,
    /// While paused, snapshots are dropped: the screen holds still for reading.
    pub paused: bool,
    pub help: bool,
    pub mouse: bool,
    pub quit: bool,
    /// Quitting tears the mesh down (inside `meshsim up`): `q` asks first.
    pub confirm_quit: bool,
    /// The question is on screen: `y` quits, anything else cancels.
    pub asking: bool,
    /// The `/` prompt while typing.
    pub typing: Option<String>,
    /// A one-line message for the key line: what an action asked, why a key did nothing.
    pub notice: Option<String>,
    /// Actions for the supervisor, drained by the loop.
    pub outbox: Vec<Action>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            view: View::Overview,
            states: HashMap::new(),
            back: Vec::new(),
            proxies: Vec::new(),
            history: HashMap::new(),
            units: Vec::new(),
            mesh: false,
            events: VecDeque::new(),
            logs: HashMap::new(),
            log_unit: None,
            tap: VecDeque::new(),
            now: SystemTime::UNIX_EPOCH,
            paused: false,
            help: false,
            mouse: false,
            quit: false,
            confirm_quit: false,
            asking: false,
            typing: None,
            notice: None,
            outbox: Vec::new(),
        }
    }
}

impl Model {
    pub fn state(&self, view: View) -> ViewState {
        self.states
            .get(&view)
            .cloned()
            .unwrap_or_else(|| ViewState {
                following: view.follows(),
                ..ViewState::default()
            })
    }

    fn state_mut(&mut self, view: View) -> &mut ViewState {
        self.states.entry(view).or_insert_with(|| ViewState {
            following: view.follows(),
            ..ViewState::default()
        })
    }

    pub fn history(&self, proxy: &str, cluster: &str) -> Vec<u64> {
        self.history
            .get(&(proxy.to_string(), cluster.to_string()))
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The row under the cursor in the current view, if any.
    pub fn selected_subject(&self) -> Option<Subject> {
        let rows = rows::visible(self, self.view);
        let selected = rows::selected_index(self, self.view, rows.len())?;
        rows.into_iter().nth(selected).map(|r| r.subject)
    }

    /// The pod (`service#replica`) whose address is `ip`.
    pub fn pod_at(&self, ip: &str) -> Option<(String, String)> {
        self.units
            .iter()
            .find(|u| u.address.is_some_and(|a| a.to_string() == ip))
            .map(|u| (format!("{}#{}", u.service, u.replica), u.service.clone()))
    }

    /// The service behind a proxy's cluster: the one whose pods are its endpoints, else the
    /// service of the same name.
    pub fn service_of_cluster(&self, proxy: &str, cluster: &str) -> Option<String> {
        let hosts = self
            .proxies
            .iter()
            .find(|p| p.name == proxy)?
            .clusters
            .iter()
            .find(|c| c.cluster == cluster)?
            .hosts
            .iter()
            .filter_map(|h| self.pod_at(host_ip(&h.address)))
            .map(|(_, service)| service)
            .next();
        hosts.or_else(|| {
            self.units
                .iter()
                .any(|u| u.service == cluster)
                .then(|| cluster.to_string())
        })
    }

    fn push_event(&mut self, kind: EventKind, text: String) {
        self.events.push_back(MeshEvent {
            at: self.now,
            kind,
            text,
        });
        while self.events.len() > EVENTS {
            self.events.pop_front();
        }
    }
}

/// `10.0.0.2:80` → `10.0.0.2`.
pub fn host_ip(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(ip, _)| ip)
}

pub fn update(model: &mut Model, msg: Msg) {
    match msg {
        Msg::Redraw => {}
        Msg::Scraped(proxies) => scraped(model, proxies),
        Msg::Mesh(update) => mesh(model, update),
        Msg::Mouse(mouse) => match mouse {
            Mouse::ScrollUp => move_selection(model, -3),
            Mouse::ScrollDown => move_selection(model, 3),
            Mouse::Click(x, 0) => {
                // The tab bar: each title is "N Name" plus a divider.
                let mut start = 0u16;
                for view in View::ALL {
                    let width = view.title().len() as u16 + 5;
                    if x >= start && x < start + width {
                        switch(model, view);
                    }
                    start += width;
                }
            }
            Mouse::Click(..) => {}
        },
        Msg::Key(key) => keys(model, key),
    }
}

fn scraped(model: &mut Model, proxies: Vec<ProxySnapshot>) {
    if model.paused {
        return;
    }
    if !model.mesh {
        model.now = SystemTime::now();
    }
    for proxy in &proxies {
        let before = model.proxies.iter().find(|p| p.name == proxy.name);
        for text in endpoint_changes(before, proxy) {
            model.push_event(EventKind::Endpoint, text);
        }
        if proxy.stale.is_some() {
            continue; // a gap in the history, not a zero
        }
        for cluster in &proxy.clusters {
            let points = model
                .history
                .entry((proxy.name.clone(), cluster.cluster.clone()))
                .or_default();
            points.push_back(cluster.rps.round() as u64);
            while points.len() > HISTORY {
                points.pop_front();
            }
        }
    }
    model.proxies = proxies;
}

/// What changed between two scrapes of one proxy: endpoints that joined or left a cluster,
/// health changes and ejections, the proxy going quiet or coming back.
fn endpoint_changes(before: Option<&ProxySnapshot>, after: &ProxySnapshot) -> Vec<String> {
    let Some(before) = before else {
        return Vec::new();
    };
    let name = &after.name;
    let mut out = Vec::new();
    match (&before.stale, &after.stale) {
        (None, Some(why)) => out.push(format!("{name} stopped answering ({why})")),
        (Some(_), None) => out.push(format!("{name} answers again")),
        _ => {}
    }
    if after.stale.is_some() {
        return out;
    }
    for cluster in &after.clusters {
        let Some(old) = before
            .clusters
            .iter()
            .find(|c| c.cluster == cluster.cluster)
        else {
            continue;
        };
        let c = &cluster.cluster;
        for host in &cluster.hosts {
            match old.hosts.iter().find(|h| h.address == host.address) {
                None => out.push(format!("{name} › {c}: endpoint {} added", host.address)),
                Some(was) if was.healthy && !host.healthy => out.push(format!(
                    "{name} › {c}: {} unhealthy ({})",
                    host.address,
                    host.flags.join(", ")
                )),
                Some(was) if !was.healthy && host.healthy => {
                    out.push(format!("{name} › {c}: {} healthy again", host.address))
                }
                _ => {}
            }
        }
        for host in &old.hosts {
            if !cluster.hosts.iter().any(|h| h.address == host.address) {
                out.push(format!("{name} › {c}: endpoint {} removed", host.address));
            }
        }
        if cluster.ejected != old.ejected {
            out.push(format!(
                "{name} › {c}: {} endpoint(s) ejected (was {})",
                cluster.ejected, old.ejected
            ));
        }
    }
    out
}

fn mesh(model: &mut Model, update: MeshUpdate) {
    model.mesh = true;
    match update {
        MeshUpdate::Units(units) => {
            model.now = SystemTime::now();
            if !model.paused {
                model.units = units;
            }
        }
        MeshUpdate::Event(event) => {
            model.events.push_back(event);
            while model.events.len() > EVENTS {
                model.events.pop_front();
            }
        }
        MeshUpdate::Log { unit, line } => {
            let is_proxy = model
                .units
                .iter()
                .find(|u| u.unit == unit)
                .is_some_and(|u| matches!(u.role, Role::Proxy | Role::Sidecar));
            if is_proxy && !model.paused {
                let pod = unit.split('/').next().unwrap_or(&unit).to_string();
                if let Some(mut entry) = tap::parse(&pod, &line) {
                    entry.cluster = cluster_of(model, &pod, &entry.upstream);
                    model.tap.push_back(entry);
                    while model.tap.len() > TAP_ENTRIES {
                        model.tap.pop_front();
                    }
                }
            }
            let lines = model.logs.entry(unit).or_default();
            lines.push_back(line);
            while lines.len() > LOG_LINES {
                lines.pop_front();
            }
        }
    }
}

/// The cluster of `proxy` that has `upstream` among its endpoints.
fn cluster_of(model: &Model, proxy: &str, upstream: &str) -> Option<String> {
    model
        .proxies
        .iter()
        .find(|p| p.name == proxy)?
        .clusters
        .iter()
        .find(|c| c.hosts.iter().any(|h| h.address == upstream))
        .map(|c| c.cluster.clone())
}

fn keys(model: &mut Model, key: Key) {
    if model.asking {
        model.asking = false;
        model.quit = matches!(key, Key::Char('y') | Key::Interrupt);
        return;
    }
    if key == Key::Interrupt {
        model.quit = true;
        return;
    }
    if model.help {
        // Any key closes the help overlay.
        model.help = false;
        return;
    }
    if let Some(typed) = model.typing.as_mut() {
        match key {
            Key::Char(c) => typed.push(c),
            Key::Backspace => {
                typed.pop();
            }
            Key::Esc => model.typing = None,
            Key::Enter => {
                let text = model.typing.take().unwrap_or_default();
                set_filter(model, &text);
            }
            _ => {}
        }
        return;
    }
    model.notice = None;
    match key {
        Key::Char('q') if model.confirm_quit => model.asking = true,
        Key::Char('q') => model.quit = true,
        Key::Char('?') => model.help = true,
        Key::Char('p') => model.paused = !model.paused,
        Key::Char('m') => {
            model.mouse = !model.mouse;
            model.notice = Some(if model.mouse {
                "mouse on: wheel scrolls, click a tab; m again to select text".into()
            } else {
                "mouse off: the terminal selects text again".into()
            });
        }
        Key::Char(c @ '1'..='6') => switch(model, View::ALL[c as usize - '1' as usize]),
        Key::Tab => switch(model, View::ALL[(model.view.index() + 1) % View::ALL.len()]),
        Key::BackTab => switch(
            model,
            View::ALL[(model.view.index() + View::ALL.len() - 1) % View::ALL.len()],
        ),
        Key::Down | Key::Char('j') => move_selection(model, 1),
        Key::Up | Key::Char('k') => move_selection(model, -1),
        Key::PageDown => move_selection(model, 20),
        Key::PageUp => move_selection(model, -20),
        Key::Home | Key::Char('g') => move_selection(model, i64::MIN / 2),
        Key::End | Key::Char('G') => move_selection(model, i64::MAX / 2),
        Key::Left | Key::Right if model.view == View::Logs => {
            cycle_log_unit(model, key == Key::Right)
        }
        Key::Char('/') => {
            model.typing = Some(
                model
                    .state(model.view)
                    .filter
                    .map(|f| f.text)
                    .unwrap_or_default(),
            )
        }
        Key::Char('s') => cycle_sort(model),
        Key::Enter => drill_down(model),
        Key::Esc => go_back(model),
        Key::Char('K') => act(model, ActionKey::Kill),
        Key::Char('r') => act(model, ActionKey::Restart),
        Key::Char('+') | Key::Char('=') => act(model, ActionKey::ScaleUp),
        Key::Char('-') => act(model, ActionKey::ScaleDown),
        Key::Char('f') => act(model, ActionKey::Fault),
        _ => {}
    }
}

fn switch(model: &mut Model, view: View) {
    model.view = view;
    if view == View::Logs && model.log_unit.is_none() {
        model.log_unit = model.units.first().map(|u| u.unit.clone());
    }
}

fn set_filter(model: &mut Model, text: &str) {
    let view = model.view;
    if text.trim().is_empty() {
        model.state_mut(view).filter = None;
        return;
    }
    match Filter::parse(text) {
        Ok(filter) => {
            let state = model.state_mut(view);
            state.filter = Some(filter);
            state.selected = 0;
        }
        Err(e) => model.notice = Some(e),
    }
}

fn move_selection(model: &mut Model, by: i64) {
    let view = model.view;
    let len = rows::visible(model, view).len();
    let current = rows::selected_index(model, view, len).unwrap_or(0) as i64;
    let last = len.saturating_sub(1) as i64;
    let next = (current + by).clamp(0, last);
    let state = model.state_mut(view);
    state.selected = next as usize;
    state.following = view.follows() && next == last;
}

fn cycle_log_unit(model: &mut Model, forward: bool) {
    let names: Vec<&String> = model.units.iter().map(|u| &u.unit).collect();
    if names.is_empty() {
        return;
    }
    let at = model
        .log_unit
        .as_ref()
        .and_then(|u| names.iter().position(|n| *n == u));
    let next = match (at, forward) {
        (None, _) => 0,
        (Some(i), true) => (i + 1) % names.len(),
        (Some(i), false) => (i + names.len() - 1) % names.len(),
    };
    model.log_unit = Some(names[next].clone());
    let state = model.state_mut(View::Logs);
    state.following = true;
}

/// `s`: the next sortable column, descending first for numbers; after the last, back to the
/// natural order.
fn cycle_sort(model: &mut Model) {
    let view = model.view;
    let columns = rows::columns(view);
    let sortable = rows::sortable(view);
    if !sortable {
        model.notice = Some(format!(
            "{} keeps its tree order; s sorts the tables",
            view.title()
        ));
        return;
    }
    let state = model.state_mut(view);
    state.sort = match state.sort {
        None => Some((0, false)),
        Some((i, _)) if i + 1 < columns.len() => Some((i + 1, true)),
        Some(_) => None,
    };
    model.notice = Some(match model.state(view).sort {
        Some((i, desc)) => format!("sorted by {} {}", columns[i], if desc { "↓" } else { "↑" }),
        None => "natural order".into(),
    });
}

fn drill_down(model: &mut Model) {
    let Some(subject) = model.selected_subject() else {
        return;
    };
    let from = model.view;
    match subject {
        Subject::Unit { unit, .. } => {
            model.back.push((from, false));
            model.log_unit = Some(unit);
            model.view = View::Logs;
            model.state_mut(View::Logs).following = true;
        }
        Subject::Cluster { proxy, cluster } => {
            model.back.push((from, true));
            model.view = View::Clusters;
            model.state_mut(View::Clusters).filter = Filter::parse(&format!(
                "proxy:^{}$ cluster:^{}$",
                re(&proxy),
                re(&cluster)
            ))
            .ok();
            model.state_mut(View::Clusters).selected = 0;
        }
        Subject::Endpoint { proxy, address, .. } => {
            model.back.push((from, true));
            model.view = View::Tap;
            model.state_mut(View::Tap).filter = Filter::parse(&format!(
                "proxy:^{}$ upstream:^{}$",
                re(&proxy),
                re(&address)
            ))
            .ok();
        }
        Subject::None => {}
    }
}

fn re(text: &str) -> String {
    regex::escape(text)
}

fn go_back(model: &mut Model) {
    match model.back.pop() {
        Some((view, drop_filter)) => {
            if drop_filter {
                model.state_mut(model.view).filter = None;
            }
            model.view = view;
        }
        None => {
            let view = model.view;
            model.state_mut(view).filter = None;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActionKey {
    Kill,
    Restart,
    ScaleUp,
    ScaleDown,
    Fault,
}

/// Turns an action key on the selected row into an [`Action`] for the supervisor, or says
/// why it cannot.
fn act(model: &mut Model, key: ActionKey) {
    if !model.mesh {
        model.notice =
            Some("actions need the supervisor of `meshsim up`; `meshsim top` only watches".into());
        return;
    }
    let subject = model.selected_subject().unwrap_or(Subject::None);
    let (pod, service) = match &subject {
        Subject::Unit { pod, service, .. } => (Some(pod.clone()), Some(service.clone())),
        Subject::Endpoint { address, .. } => match model.pod_at(host_ip(address)) {
            Some((pod, service)) => (Some(pod), Some(service)),
            None => (None, None),
        },
        Subject::Cluster { proxy, cluster } => (None, model.service_of_cluster(proxy, cluster)),
        Subject::None => (None, None),
    };
    let action = match key {
        ActionKey::Kill => pod.map(|pod| Action::Kill { pod }),
        ActionKey::Restart => pod.map(|pod| Action::Restart { pod }),
        ActionKey::Fault => pod.map(|pod| Action::ToggleFault { pod }),
        ActionKey::ScaleUp => service.map(|service| Action::Scale { service, delta: 1 }),
        ActionKey::ScaleDown => service.map(|service| Action::Scale { service, delta: -1 }),
    };
    match action {
        Some(action) => {
            model.notice = Some(format!("asked: {}", describe(&action)));
            model.outbox.push(action);
        }
        None => {
            model.notice = Some(match key {
                ActionKey::ScaleUp | ActionKey::ScaleDown => {
                    "select a unit, a cluster or an endpoint of a service to scale it".into()
                }
                _ => "select a unit (Overview) or an endpoint (Clusters) first".into(),
            })
        }
    }
}

pub fn describe(action: &Action) -> String {
    match action {
        Action::Kill { pod } => format!("kill {pod}"),
        Action::Restart { pod } => format!("restart {pod}"),
        Action::Scale { service, delta } if *delta > 0 => format!("scale {service} up"),
        Action::Scale { service, .. } => format!("scale {service} down"),
        Action::ToggleFault { pod } => format!("toggle a fault on {pod}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scrape::rates::{HostRate, StatusClasses};
    use crate::scrape::sample::Quantiles;

    pub(crate) fn cluster(name: &str, rps: f64) -> ClusterRate {
        ClusterRate {
            cluster: name.into(),
            rps,
            success: Some(1.0),
            latency: Quantiles::default(),
            active: 0,
            status: StatusClasses::default(),
            ejected: 0,
            hosts: Vec::new(),
        }
    }

    pub(crate) fn host(address: &str, share: f64, healthy: bool) -> HostRate {
        HostRate {
            address: address.into(),
            rps: share * 10.0,
            share,
            healthy,
            flags: if healthy {
                Vec::new()
            } else {
                vec!["failed_outlier_check".into()]
            },
            active: 0,
            errors: 0.0,
        }
    }

    pub(crate) fn proxy(name: &str, clusters: Vec<ClusterRate>) -> ProxySnapshot {
        ProxySnapshot {
            name: name.into(),
            stale: None,
            clusters,
            hcm: Vec::new(),
            routes: None,
        }
    }

    fn snapshot(rps: f64, stale: bool) -> Msg {
        Msg::Scraped(vec![ProxySnapshot {
            stale: stale.then(|| "connection refused".into()),
            ..proxy("front#1", vec![cluster("a", rps), cluster("b", 1.0)])
        }])
    }

    pub(crate) fn unit(service: &str, replica: u32, role: Role, ip: &str) -> UnitStatus {
        UnitStatus {
            run: "r1".into(),
            scenario: "s".into(),
            unit: crate::runtime::unit_name(service, replica, role),
            service: service.into(),
            replica,
            role,
            state: "running".into(),
            id: "1".into(),
            address: ip.parse().ok(),
            runtime: "local",
            published: Vec::new(),
            started_at: Some(SystemTime::UNIX_EPOCH),
        }
    }

    #[test]
    fn history_grows_per_cluster_skips_stale_scrapes_and_is_bounded() {
        let mut m = Model::default();
        update(&mut m, snapshot(3.0, false));
        update(&mut m, snapshot(9.0, true));
        update(&mut m, snapshot(5.0, false));
        assert_eq!(m.history("front#1", "a"), [3, 5]);
        for _ in 0..100 {
            update(&mut m, snapshot(1.0, false));
        }
        assert_eq!(m.history("front#1", "a").len(), HISTORY);
    }

    #[test]
    fn keys_switch_views_move_the_selection_pause_and_quit() {
        let mut m = Model::default();
        update(&mut m, snapshot(1.0, false));
        update(&mut m, Msg::Key(Key::Tab));
        assert_eq!(m.view, View::Clusters);
        update(&mut m, Msg::Key(Key::Char('6')));
        assert_eq!(m.view, View::Events);
        update(&mut m, Msg::Key(Key::BackTab));
        assert_eq!(m.view, View::Logs);
        update(&mut m, Msg::Key(Key::Char('1')));
        assert_eq!(m.view, View::Overview);
        for _ in 0..5 {
            update(&mut m, Msg::Key(Key::Char('j')));
        }
        assert_eq!(
            m.state(View::Overview).selected,
            2,
            "the proxy and its two clusters: the selection stops at the last row"
        );
        update(&mut m, Msg::Key(Key::Char('k')));
        assert_eq!(m.state(View::Overview).selected, 1);
        update(&mut m, Msg::Key(Key::Char('p')));
        update(&mut m, snapshot(7.0, false));
        assert_eq!(
            m.history("front#1", "a"),
            [1],
            "paused: the snapshot is dropped"
        );
        update(&mut m, Msg::Key(Key::Char('?')));
        update(&mut m, Msg::Key(Key::Char('q')));
        assert!(!m.quit && !m.help, "the first key closes the help");
        update(&mut m, Msg::Key(Key::Char('q')));
        assert!(m.quit);
    }

    #[test]
    fn quitting_a_running_mesh_asks_first() {
        let mut m = Model {
            confirm_quit: true,
            ..Model::default()
        };
        update(&mut m, Msg::Key(Key::Char('q')));
        assert!(m.asking && !m.quit);
        update(&mut m, Msg::Key(Key::Char('n')));
        assert!(!m.asking && !m.quit);
        update(&mut m, Msg::Key(Key::Char('q')));
        update(&mut m, Msg::Key(Key::Char('y')));
        assert!(m.quit);
    }

    #[test]
    fn endpoint_changes_become_events() {
        let mut m = Model::default();
        let mut c = cluster("service1", 5.0);
        c.hosts = vec![
            host("10.0.0.2:80", 0.5, true),
            host("10.0.0.3:80", 0.5, true),
        ];
        update(
            &mut m,
            Msg::Scraped(vec![proxy("front#1", vec![c.clone()])]),
        );
        assert!(m.events.is_empty(), "the first scrape is the baseline");
        c.hosts = vec![
            host("10.0.0.2:80", 1.0, false),
            host("10.0.0.4:80", 0.0, true),
        ];
        update(&mut m, Msg::Scraped(vec![proxy("front#1", vec![c])]));
        let texts: Vec<&str> = m.events.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "front#1 › service1: 10.0.0.2:80 unhealthy (failed_outlier_check)",
                "front#1 › service1: endpoint 10.0.0.4:80 added",
                "front#1 › service1: endpoint 10.0.0.3:80 removed",
            ]
        );
        update(&mut m, snapshot_named("front#1", true));
        assert!(m.events.back().unwrap().text.contains("stopped answering"));
    }

    fn snapshot_named(name: &str, stale: bool) -> Msg {
        Msg::Scraped(vec![ProxySnapshot {
            stale: stale.then(|| "timed out".into()),
            ..proxy(name, vec![])
        }])
    }

    fn mesh_model() -> Model {
        let mut m = Model::default();
        update(
            &mut m,
            Msg::Mesh(MeshUpdate::Units(vec![
                unit("front-envoy", 1, Role::Proxy, "127.0.3.1"),
                unit("service1", 1, Role::App, "127.0.3.2"),
                unit("service1", 2, Role::App, "127.0.3.3"),
            ])),
        );
        let mut c = cluster("service1", 5.0);
        c.hosts = vec![
            host("127.0.3.2:8000", 0.5, true),
            host("127.0.3.3:8000", 0.5, true),
        ];
        update(&mut m, Msg::Scraped(vec![proxy("front-envoy#1", vec![c])]));
        m
    }

    #[test]
    fn actions_go_to_the_selected_unit_endpoint_or_cluster() {
        let mut m = mesh_model();
        // Overview: units first; the second unit is service1#1.
        update(&mut m, Msg::Key(Key::Char('j')));
        update(&mut m, Msg::Key(Key::Char('K')));
        update(&mut m, Msg::Key(Key::Char('f')));
        update(&mut m, Msg::Key(Key::Char('+')));
        // The cluster row: scaling finds service1 through its endpoints.
        update(&mut m, Msg::Key(Key::End));
        update(&mut m, Msg::Key(Key::Char('-')));
        update(&mut m, Msg::Key(Key::Char('r')));
        assert_eq!(
            m.outbox,
            [
                Action::Kill {
                    pod: "service1#1".into()
                },
                Action::ToggleFault {
                    pod: "service1#1".into()
                },
                Action::Scale {
                    service: "service1".into(),
                    delta: 1
                },
                Action::Scale {
                    service: "service1".into(),
                    delta: -1
                },
            ]
        );
        assert!(
            m.notice.as_deref().unwrap().contains("select a unit"),
            "restart on a cluster row says what to select"
        );
        // Clusters view: the second endpoint.
        m.outbox.clear();
        update(&mut m, Msg::Key(Key::Char('2')));
        update(&mut m, Msg::Key(Key::End));
        update(&mut m, Msg::Key(Key::Char('r')));
        assert_eq!(
            m.outbox,
            [Action::Restart {
                pod: "service1#2".into()
            }]
        );
    }

    #[test]
    fn without_a_supervisor_actions_explain_themselves() {
        let mut m = Model::default();
        update(&mut m, snapshot(1.0, false));
        update(&mut m, Msg::Key(Key::Char('K')));
        assert!(m.outbox.is_empty());
        assert!(m.notice.unwrap().contains("meshsim up"));
    }

    #[test]
    fn proxy_logs_feed_the_tap_with_their_cluster() {
        let mut m = mesh_model();
        let line = r#"[2026-11-21T19:56:31.164Z] "GET /service/1 HTTP/1.1" 200 - 0 82 3 2 "-" "curl" "1" "localhost:8080" "127.0.3.3:8000""#;
        update(
            &mut m,
            Msg::Mesh(MeshUpdate::Log {
                unit: "front-envoy#1/proxy".into(),
                line: line.into(),
            }),
        );
        update(
            &mut m,
            Msg::Mesh(MeshUpdate::Log {
                unit: "service1#1/app".into(),
                line: line.into(),
            }),
        );
        assert_eq!(m.tap.len(), 1, "only proxies' lines are requests");
        assert_eq!(m.tap[0].cluster.as_deref(), Some("service1"));
        assert_eq!(m.logs["service1#1/app"].len(), 1);
    }

    #[test]
    fn filter_sort_drill_down_and_back() {
        let mut m = mesh_model();
        update(&mut m, Msg::Key(Key::Char('/')));
        for c in "kind:app".chars() {
            update(&mut m, Msg::Key(Key::Char(c)));
        }
        update(&mut m, Msg::Key(Key::Enter));
        let rows = rows::visible(&m, View::Overview);
        assert_eq!(rows.len(), 2, "two app units");
        // enter on a unit: its logs; esc: back.
        update(&mut m, Msg::Key(Key::Enter));
        assert_eq!(
            (m.view, m.log_unit.as_deref()),
            (View::Logs, Some("service1#1/app"))
        );
        update(&mut m, Msg::Key(Key::Esc));
        assert_eq!(m.view, View::Overview);
        update(&mut m, Msg::Key(Key::Esc));
        assert!(
            m.state(View::Overview).filter.is_none(),
            "esc clears the filter"
        );
        // A bad regex is reported, not applied.
        update(&mut m, Msg::Key(Key::Char('/')));
        update(&mut m, Msg::Key(Key::Char('(')));
        update(&mut m, Msg::Key(Key::Enter));
        assert!(m.notice.as_deref().unwrap().contains("not a regex"));
        // s: sort the Tap by its columns, then natural order again.
        update(&mut m, Msg::Key(Key::Char('4')));
        update(&mut m, Msg::Key(Key::Char('s')));
        assert_eq!(m.state(View::Tap).sort, Some((0, false)));
        update(&mut m, Msg::Key(Key::Char('s')));
        assert_eq!(m.state(View::Tap).sort, Some((1, true)));
    }
}
