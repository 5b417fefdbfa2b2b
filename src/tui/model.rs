//! The terminal UI's state and how it changes (the Elm architecture: plain data, a pure
//! `update`, a `view` that only reads). Fed by scraper snapshots; never touches the terminal.

use std::collections::{HashMap, VecDeque};

use crate::scrape::ClusterRate;

/// Points of rps history kept per cluster (the sparkline's width).
pub const HISTORY: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Clusters,
}

impl View {
    pub const ALL: [View; 2] = [View::Overview, View::Clusters];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Clusters => "Clusters",
        }
    }
}

/// One proxy as the last scrape saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySnapshot {
    pub name: String,
    /// Why it is stale (not answering); its last rates are not shown as current.
    pub stale: Option<String>,
    pub clusters: Vec<ClusterRate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    /// Ctrl-C: quit now, no question (the terminal's usual meaning).
    Interrupt,
    Tab,
    Up,
    Down,
    Esc,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(Key),
    Scraped(Vec<ProxySnapshot>),
    /// The terminal was resized: nothing changes but the drawing.
    Redraw,
}

#[derive(Debug, Default)]
pub struct Model {
    pub view: ViewState,
    pub proxies: Vec<ProxySnapshot>,
    /// rps per (proxy, cluster), newest last.
    pub history: HashMap<(String, String), VecDeque<u64>>,
    /// Index into [`Model::rows`].
    pub selected: usize,
    /// While paused, snapshots are dropped: the screen holds still for reading.
    pub paused: bool,
    pub help: bool,
    pub quit: bool,
    /// Quitting tears the mesh down (inside `meshsim up`): `q` asks first.
    pub confirm_quit: bool,
    /// The question is on screen: `y` quits, anything else cancels.
    pub asking: bool,
}

/// `View` with a default, so `Model` can derive one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewState(pub View);

impl Default for ViewState {
    fn default() -> Self {
        ViewState(View::Overview)
    }
}

impl Model {
    pub fn view(&self) -> View {
        self.view.0
    }

    /// Every (proxy, cluster) shown, in display order.
    pub fn rows(&self) -> Vec<(&ProxySnapshot, &ClusterRate)> {
        self.proxies
            .iter()
            .flat_map(|p| p.clusters.iter().map(move |c| (p, c)))
            .collect()
    }

    pub fn history(&self, proxy: &str, cluster: &str) -> Vec<u64> {
        self.history
            .get(&(proxy.to_string(), cluster.to_string()))
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
    }
}

pub fn update(model: &mut Model, msg: Msg) {
    match msg {
        Msg::Redraw => {}
        Msg::Scraped(proxies) => {
            if model.paused {
                return;
            }
            for proxy in &proxies {
                if proxy.stale.is_some() {
                    continue; // a gap, not a zero
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
            let rows = model.rows().len();
            model.selected = model.selected.min(rows.saturating_sub(1));
        }
        Msg::Key(key) => {
            if model.asking {
                model.asking = false;
                model.quit = matches!(key, Key::Char('y') | Key::Interrupt);
                return;
            }
            if model.help {
                // Any key closes the help overlay.
                model.help = false;
                return;
            }
            match key {
                Key::Interrupt => model.quit = true,
                Key::Char('q') if model.confirm_quit => model.asking = true,
                Key::Char('q') => model.quit = true,
                Key::Char('?') => model.help = true,
                Key::Char('p') => model.paused = !model.paused,
                Key::Char('1') => model.view = ViewState(View::Overview),
                Key::Char('2') => model.view = ViewState(View::Clusters),
                Key::Tab => {
                    let i = View::ALL
                        .iter()
                        .position(|v| *v == model.view())
                        .unwrap_or(0);
                    model.view = ViewState(View::ALL[(i + 1) % View::ALL.len()]);
                }
                Key::Down | Key::Char('j') => {
                    let rows = model.rows().len();
                    if model.selected + 1 < rows {
                        model.selected += 1;
                    }
                }
                Key::Up | Key::Char('k') => model.selected = model.selected.saturating_sub(1),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::sample::Quantiles;

    pub(crate) fn cluster(name: &str, rps: f64) -> ClusterRate {
        ClusterRate {
            cluster: name.into(),
            rps,
            success: Some(1.0),
            latency: Quantiles::default(),
            active: 0,
            hosts: Vec::new(),
        }
    }

    fn snapshot(rps: f64, stale: bool) -> Msg {
        Msg::Scraped(vec![ProxySnapshot {
            name: "front#1".into(),
            stale: stale.then(|| "connection refused".into()),
            clusters: vec![cluster("a", rps), cluster("b", 1.0)],
        }])
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
        assert_eq!(m.view(), View::Clusters);
        update(&mut m, Msg::Key(Key::Char('1')));
        assert_eq!(m.view(), View::Overview);
        update(&mut m, Msg::Key(Key::Char('j')));
        update(&mut m, Msg::Key(Key::Char('j')));
        assert_eq!(m.selected, 1, "the selection stops at the last row");
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
}
