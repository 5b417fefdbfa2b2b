//! Drawing the model: a tab bar, the current view, a key line; the help overlay on top. Reads
//! the model only, so the same snapshot always draws the same screen (snapshot-tested).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, TableState, Tabs};
use ratatui::Frame;

use super::model::{Model, View};

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn draw(frame: &mut Frame, model: &Model) {
    let [tabs, body, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let titles: Vec<String> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()))
        .collect();
    let selected = View::ALL
        .iter()
        .position(|v| *v == model.view())
        .unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        tabs,
    );
    match model.view() {
        View::Overview => overview(frame, body, model),
        View::Clusters => clusters(frame, body, model),
    }
    let mut hint = "q quit  ? help  tab/1-2 views  j/k select  p pause".to_string();
    if model.paused {
        hint.push_str("   [PAUSED]");
    }
    frame.render_widget(Paragraph::new(hint), keys);
    if model.help {
        help(frame, body);
    }
    if model.asking {
        let w = 44.min(body.width);
        let h = 3.min(body.height);
        let popup = Rect::new(
            body.x + (body.width - w) / 2,
            body.y + (body.height - h) / 2,
            w,
            h,
        );
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new("Stop and remove the mesh?  y / n")
                .block(Block::bordered().title(" quit ")),
            popup,
        );
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}ms"))
}

/// A text sparkline of the last `width` points.
fn spark(points: &[u64], width: usize) -> String {
    let points = &points[points.len().saturating_sub(width)..];
    let max = points.iter().copied().max().unwrap_or(0).max(1);
    points
        .iter()
        .map(|p| SPARK[((*p * 7) / max) as usize])
        .collect()
}

/// linkerd-viz columns per proxy cluster, with a sparkline of rps.
fn overview(frame: &mut Frame, area: Rect, model: &Model) {
    let rows: Vec<Row> = model
        .rows()
        .into_iter()
        .map(|(proxy, c)| {
            let stale = proxy.stale.is_some();
            let cell = |s: String| if stale { "stale".to_string() } else { s };
            Row::new(vec![
                proxy.name.clone(),
                c.cluster.clone(),
                cell(format!("{:.1}", c.rps)),
                cell(percent(c.success)),
                cell(ms(c.latency.p50)),
                cell(ms(c.latency.p95)),
                cell(ms(c.latency.p99)),
                cell(c.active.to_string()),
                spark(&model.history(&proxy.name, &c.cluster), 20),
            ])
        })
        .collect();
    let header = Row::new([
        "PROXY",
        "CLUSTER",
        "RPS",
        "SUCCESS",
        "P50",
        "P95",
        "P99",
        "ACTIVE",
        "RPS (history)",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(14),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .block(
        Block::new()
            .borders(Borders::TOP)
            .title(" proxies and their clusters "),
    )
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected((!empty).then_some(model.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

/// Each cluster's endpoints with their share of its requests: the load-balancing split, live.
fn clusters(frame: &mut Frame, area: Rect, model: &Model) {
    let mut lines = Vec::new();
    for (i, (proxy, c)) in model.rows().into_iter().enumerate() {
        let style = if i == model.selected {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        };
        let status = match &proxy.stale {
            Some(why) => format!("stale: {why}"),
            None => format!(
                "{:.1} rps  {} ok  p99 {}",
                c.rps,
                percent(c.success),
                ms(c.latency.p99)
            ),
        };
        lines.push(Line::from(Span::styled(
            format!("{} › {}  {status}", proxy.name, c.cluster),
            style,
        )));
        let n = c.hosts.len();
        for (j, h) in c.hosts.iter().enumerate() {
            let filled = (h.share * 20.0).round() as usize;
            lines.push(Line::from(format!(
                "  {} {:<22} {}{} {:>4.0}%  {:>7.1} rps  {}",
                if j + 1 == n { '└' } else { '├' },
                h.address,
                "█".repeat(filled.min(20)),
                "░".repeat(20 - filled.min(20)),
                h.share * 100.0,
                h.rps,
                if h.healthy { "healthy" } else { "UNHEALTHY" }
            )));
        }
    }
    if lines.is_empty() {
        lines.push(Line::from("no clusters yet"));
    }
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::TOP)
                .title(" endpoints: share of requests "),
        ),
        area,
    );
}

fn help(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::from("q        quit (in `meshsim up`: asks, then removes the mesh)"),
        Line::from("Ctrl-C   quit now"),
        Line::from("?        this help (any key closes it)"),
        Line::from("tab      next view;  1 overview, 2 clusters"),
        Line::from("j/k ↑/↓  select a cluster"),
        Line::from("p        pause: hold the screen still"),
    ];
    let w = 64.min(area.width);
    let h = (text.len() as u16 + 2).min(area.height);
    let popup = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(" keys ")),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::super::model::{update, Key, Msg, ProxySnapshot};
    use super::*;
    use crate::scrape::rates::{ClusterRate, HostRate};
    use crate::scrape::sample::Quantiles;

    fn fixed_model() -> Model {
        let mut m = Model::default();
        let service1 = ClusterRate {
            cluster: "service1".into(),
            rps: 20.3,
            success: Some(1.0),
            latency: Quantiles {
                p50: Some(2.1),
                p95: Some(3.0),
                p99: Some(4.1),
            },
            active: 1,
            hosts: vec![
                HostRate {
                    address: "172.21.0.3:8000".into(),
                    rps: 9.9,
                    share: 0.49,
                    healthy: true,
                },
                HostRate {
                    address: "172.21.0.4:8000".into(),
                    rps: 10.4,
                    share: 0.51,
                    healthy: true,
                },
            ],
        };
        let service2 = ClusterRate {
            cluster: "service2".into(),
            rps: 4.0,
            success: Some(0.75),
            latency: Quantiles {
                p50: Some(1.0),
                p95: None,
                p99: Some(9.0),
            },
            active: 0,
            hosts: vec![HostRate {
                address: "172.21.0.2:8000".into(),
                rps: 4.0,
                share: 1.0,
                healthy: false,
            }],
        };
        for rps in [5.0, 10.0, 20.3] {
            let mut s1 = service1.clone();
            s1.rps = rps;
            update(
                &mut m,
                Msg::Scraped(vec![
                    ProxySnapshot {
                        name: "front-envoy#1".into(),
                        stale: None,
                        clusters: vec![s1, service2.clone()],
                    },
                    ProxySnapshot {
                        name: "service2#1".into(),
                        stale: Some("connection refused".into()),
                        clusters: vec![ClusterRate {
                            hosts: vec![],
                            ..service2.clone()
                        }],
                    },
                ]),
            );
        }
        m
    }

    fn render(model: &Model) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(100, 16)).unwrap();
        terminal.draw(|f| draw(f, model)).unwrap();
        terminal
    }

    #[test]
    fn overview() {
        insta::assert_snapshot!(render(&fixed_model()).backend());
    }

    #[test]
    fn clusters_view() {
        let mut m = fixed_model();
        update(&mut m, Msg::Key(Key::Char('2')));
        insta::assert_snapshot!(render(&m).backend());
    }

    #[test]
    fn help_overlay() {
        let mut m = fixed_model();
        update(&mut m, Msg::Key(Key::Char('?')));
        insta::assert_snapshot!(render(&m).backend());
    }

    #[test]
    fn a_tiny_terminal_does_not_panic() {
        let mut m = fixed_model();
        update(&mut m, Msg::Key(Key::Char('?')));
        let mut terminal = Terminal::new(TestBackend::new(10, 3)).unwrap();
        terminal.draw(|f| draw(f, &m)).unwrap();
    }
}
