//! Drawing the model: a tab bar, the current view's sections as tables, a key line; the help
//! overlay and the quit question on top. Reads the model only, so the same model always draws
//! the same screen (snapshot-tested).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Tabs};
use ratatui::Frame;

use super::histogram;
use super::model::{Model, View};
use super::rows::{self, Section, Subject, Tone};

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Height of the latency histogram under the Clusters tree, when there is room.
const HISTOGRAM_HEIGHT: u16 = 10;

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
    frame.render_widget(
        Tabs::new(titles)
            .select(model.view.index())
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        tabs,
    );
    let sections = rows::sections(model, model.view);
    let total: usize = sections.iter().map(|s| s.rows.len()).sum();
    let selected = rows::selected_index(model, model.view, total);
    let mut tables = body;
    if model.view == View::Clusters && body.height >= HISTOGRAM_HEIGHT * 2 {
        let [tree, chart] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(HISTOGRAM_HEIGHT)])
                .areas(body);
        tables = tree;
        latency_histogram(frame, chart, model, &sections, selected);
    }
    draw_sections(frame, tables, model, &sections, selected);
    key_line(frame, keys, model);
    if model.help {
        help(frame, body);
    }
    if model.asking {
        let popup = centered(body, 44, 3);
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new("Stop and remove the mesh?  y / n")
                .block(Block::bordered().title(" quit ")),
            popup,
        );
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Stacks the sections: each gets at least its rows' height when it can, the last takes the
/// rest. The cursor's row is highlighted in whichever section holds it.
fn draw_sections(
    frame: &mut Frame,
    area: Rect,
    model: &Model,
    sections: &[Section],
    selected: Option<usize>,
) {
    let n = sections.len();
    let constraints: Vec<Constraint> = sections
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i + 1 == n {
                Constraint::Fill(1)
            } else {
                // A header, the rows, the title line; at most half the screen.
                Constraint::Length((s.rows.len().max(1) as u16 + 2).min(area.height / 2))
            }
        })
        .collect();
    let areas = Layout::vertical(constraints).split(area);
    let mut offset = 0;
    for (section, area) in sections.iter().zip(areas.iter()) {
        let local = selected
            .and_then(|s| (s >= offset && s < offset + section.rows.len()).then(|| s - offset));
        draw_section(frame, *area, model, section, local);
        offset += section.rows.len();
    }
}

fn title(model: &Model, section: &Section) -> String {
    let state = model.state(model.view);
    let mut title = format!(" {} ", section.title);
    if let Some(filter) = &state.filter {
        title.push_str(&format!("[/{}] ", filter.text));
    }
    if let (Some((column, descending)), true) = (state.sort, section.sortable) {
        if let Some(name) = section.columns.get(column) {
            title.push_str(&format!(
                "[sorted by {name} {}] ",
                if descending { "↓" } else { "↑" }
            ));
        }
    }
    if model.paused {
        title.push_str("[PAUSED] ");
    }
    title
}

fn draw_section(
    frame: &mut Frame,
    area: Rect,
    model: &Model,
    section: &Section,
    selected: Option<usize>,
) {
    let block = Block::new()
        .borders(Borders::TOP)
        .title(title(model, section));
    if section.rows.is_empty() {
        frame.render_widget(
            Paragraph::new(empty_message(model, section)).block(block),
            area,
        );
        return;
    }
    let kept = fit_columns(section, area.width);
    let widths: Vec<Constraint> = {
        let all = column_widths(section);
        let last = kept.len().saturating_sub(1);
        kept.iter()
            .enumerate()
            .map(|(n, i)| {
                if n == last {
                    Constraint::Fill(1)
                } else {
                    all[*i]
                }
            })
            .collect()
    };
    let rows: Vec<Row> = section
        .rows
        .iter()
        .map(|row| {
            let cells: Vec<Cell> = kept
                .iter()
                .map(|i| match (section.columns[*i], &row.subject) {
                    ("HISTORY", Subject::Cluster { proxy, cluster }) => {
                        Cell::from(spark(&model.history(proxy, cluster), 20))
                    }
                    _ => Cell::from(row.cells.get(*i).map_or("", String::as_str)),
                })
                .collect();
            Row::new(cells).style(match row.tone {
                Tone::Normal => Style::new(),
                Tone::Header => Style::new().add_modifier(Modifier::BOLD),
                Tone::Bad => Style::new().fg(Color::Red),
                Tone::Dim => Style::new().add_modifier(Modifier::DIM),
            })
        })
        .collect();
    let header = Row::new(kept.iter().map(|i| section.columns[*i]))
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

/// The columns that fit in `width`: the section's droppable ones go first, in its order, until
/// the rest fits (the last column needs at least a few cells).
fn fit_columns(section: &Section, width: u16) -> Vec<usize> {
    let widths: Vec<u16> = column_widths(section)
        .iter()
        .map(|c| match c {
            Constraint::Length(n) => *n,
            _ => 8,
        })
        .collect();
    let mut kept: Vec<usize> = (0..section.columns.len()).collect();
    let needed = |kept: &[usize]| -> u16 {
        kept.iter()
            .map(|i| widths[*i] + 1)
            .sum::<u16>()
            .saturating_sub(1)
    };
    for name in &section.droppable {
        if needed(&kept) <= width {
            break;
        }
        kept.retain(|i| section.columns[*i] != *name);
    }
    kept
}

/// Each column as wide as its widest cell (capped), the last one takes what is left.
fn column_widths(section: &Section) -> Vec<Constraint> {
    let n = section.columns.len();
    section
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if i + 1 == n {
                return Constraint::Fill(1);
            }
            let widest = section
                .rows
                .iter()
                .filter_map(|r| r.cells.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
                .max(name.len());
            Constraint::Length(widest.min(48) as u16)
        })
        .collect()
}

fn empty_message(model: &Model, section: &Section) -> String {
    let filtered = model.state(model.view).filter.is_some();
    if filtered {
        return "nothing matches the filter (esc clears it)".into();
    }
    match model.view {
        View::Tap | View::Logs if !model.mesh => format!(
            "{} reads the units' output: it needs `meshsim up`; `meshsim top` reads admin endpoints only",
            model.view.title()
        ),
        View::Tap => "no requests yet (the tap shows proxies whose config has an access log)".into(),
        View::Logs => "no output from this unit yet (←/→ picks another unit)".into(),
        View::Events => "nothing has happened yet".into(),
        View::Routes => "no routes yet (read from each proxy's /config_dump)".into(),
        _ if section.title == "units" => "no units yet".into(),
        _ => "no clusters yet".into(),
    }
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

/// The latency distribution of the cluster under the cursor (or its endpoint's cluster).
fn latency_histogram(
    frame: &mut Frame,
    area: Rect,
    model: &Model,
    sections: &[Section],
    selected: Option<usize>,
) {
    let subject = selected.and_then(|i| sections.iter().flat_map(|s| &s.rows).nth(i));
    let (proxy, cluster) = match subject.map(|r| &r.subject) {
        Some(Subject::Cluster { proxy, cluster })
        | Some(Subject::Endpoint { proxy, cluster, .. }) => (proxy.as_str(), cluster.as_str()),
        _ => ("", ""),
    };
    let latency = model
        .proxies
        .iter()
        .find(|p| p.name == proxy)
        .and_then(|p| p.clusters.iter().find(|c| c.cluster == cluster))
        .map(|c| &c.latency);
    let block = Block::new().borders(Borders::TOP).title(format!(
        " latency of {} (last interval) ",
        if cluster.is_empty() {
            "the selected cluster"
        } else {
            cluster
        }
    ));
    let Some(latency) = latency.filter(|l| !l.points.is_empty()) else {
        frame.render_widget(
            Paragraph::new("no latency data yet: select a cluster with traffic").block(block),
            area,
        );
        return;
    };
    let buckets = histogram::buckets(&latency.points, area.height.saturating_sub(1) as usize);
    let bar_width = area.width.saturating_sub(30) as f64;
    let lines: Vec<Line> = buckets
        .iter()
        .map(|b| {
            let filled = (b.share * bar_width).round() as usize;
            Line::from(format!(
                "{:>9} – {:<9} {}{} {:>3.0}%",
                format!("{:.1}ms", b.from),
                format!("{:.1}ms", b.to),
                "█".repeat(filled),
                " ".repeat((bar_width as usize).saturating_sub(filled)),
                b.share * 100.0
            ))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn key_line(frame: &mut Frame, area: Rect, model: &Model) {
    let text = if let Some(typed) = &model.typing {
        format!("/{typed}█   enter apply · esc cancel · column:regex matches one column")
    } else if let Some(notice) = &model.notice {
        notice.clone()
    } else {
        let mut items = vec![
            "? help",
            "q quit",
            "1-6 views",
            "/ filter",
            "s sort",
            "⏎ open",
        ];
        if model.view == View::Logs {
            items.push("←/→ unit");
        }
        if model.mesh {
            items.extend(["K kill", "r restart", "+/- scale", "f fault"]);
        }
        fit_hint(&items, area.width as usize)
    };
    frame.render_widget(Paragraph::new(text), area);
}

/// The key hints that fit: two spaces apart, else one; the ones that still do not fit are left
/// to `?` (listed first).
fn fit_hint(items: &[&str], width: usize) -> String {
    for gap in ["  ", " "] {
        let line = items.join(gap);
        if line.chars().count() <= width {
            return line;
        }
    }
    let mut line = String::new();
    for item in items {
        let next = if line.is_empty() {
            item.to_string()
        } else {
            format!("{line} {item}")
        };
        if next.chars().count() > width {
            break;
        }
        line = next;
    }
    line
}

fn help(frame: &mut Frame, area: Rect) {
    let text: Vec<Line> = [
        "q          quit (inside `meshsim up`: asks, then removes the mesh)",
        "Ctrl-C     quit now",
        "?          this help (any key closes it)",
        "tab 1-6    views: overview clusters routes tap logs events",
        "↑/↓ j/k    move;  g/G home/end;  PgUp/PgDn",
        "enter      open: unit → its logs, cluster → its endpoints,",
        "           endpoint → its requests in the tap",
        "esc        back; again clears the filter",
        "/          filter: regex terms, column:regex (status:^5)",
        "s          sort by the next column (tables)",
        "←/→        logs: previous/next unit",
        "p          pause: hold the screen still",
        "m          mouse capture on/off (off: select text)",
        "K          kill the selected replica (shift: k moves up)",
        "r          restart the selected replica",
        "+ / -      scale the selected service up / down",
        "f          toggle a fault (503 on half the requests)",
    ]
    .into_iter()
    .map(Line::from)
    .collect();
    let popup = centered(area, 72, text.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(" keys ")),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::super::feed::{EventKind, MeshEvent, MeshUpdate};
    use super::super::model::tests::{cluster, host, proxy, unit};
    use super::super::model::{update, Key, Msg, ProxySnapshot};
    use super::*;
    use crate::runtime::Role;
    use crate::scrape::rates::{HcmRate, StatusClasses};
    use crate::scrape::routes::parse_config_dump;
    use crate::scrape::sample::Quantiles;

    const ACCESS: &str = r#"[2026-11-21T19:56:31.164Z] "GET /service/1 HTTP/1.1" 200 - 0 82 3 2 "-" "curl/8.5.0" "4b0c" "localhost:8080" "127.0.3.2:8000""#;
    const FAILED: &str = r#"[2026-11-21T19:56:31.500Z] "GET /service/2 HTTP/1.1" 503 UH 0 19 0 - "-" "curl/8.5.0" "4b0d" "localhost:8080" "-""#;
    const DUMP: &str = r#"{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","static_listeners":[
        {"listener":{"name":"ingress_http","address":{"socket_address":{"address":"0.0.0.0","port_value":8080}},
         "filter_chains":[{"filters":[{"name":"hcm","typed_config":{
           "@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
           "stat_prefix":"ingress_http",
           "route_config":{"virtual_hosts":[{"name":"backend","domains":["*"],"routes":[
             {"match":{"prefix":"/service/1"},"route":{"cluster":"service1"}},
             {"match":{"prefix":"/service/2"},"route":{"cluster":"service2"}}]}]}}}]}]}}]}]}"#;

    /// The front-proxy mesh, fixed: two service1 replicas sharing the load, service2 failing a
    /// quarter of its requests, a stale sidecar, some requests, logs and events.
    fn fixed_model() -> Model {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let mut m = Model::default();
        let mut units = vec![
            unit("front-envoy", 1, Role::Proxy, "127.0.3.1"),
            unit("service1", 1, Role::App, "127.0.3.2"),
            unit("service1", 2, Role::App, "127.0.3.3"),
            unit("service2", 1, Role::App, "127.0.3.4"),
            unit("service2", 1, Role::Sidecar, "127.0.3.4"),
        ];
        for u in &mut units {
            u.started_at = Some(t0 - Duration::from_secs(95));
        }
        units[2].state = "exited".into();
        update(&mut m, Msg::Mesh(MeshUpdate::Units(units)));
        m.now = t0;
        let mut service1 = cluster("service1", 20.3);
        service1.latency = Quantiles {
            p50: Some(2.1),
            p95: Some(3.0),
            p99: Some(4.1),
            points: [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0]
                .into_iter()
                .zip([0.8, 1.5, 2.1, 2.6, 2.9, 3.0, 4.1, 4.5, 5.0, 5.2])
                .collect(),
        };
        service1.active = 1;
        service1.status = StatusClasses([20.3, 0.0, 0.0, 0.0]);
        service1.hosts = vec![
            host("127.0.3.2:8000", 0.49, true),
            host("127.0.3.3:8000", 0.51, true),
        ];
        let mut service2 = cluster("service2", 4.0);
        service2.success = Some(0.75);
        service2.status = StatusClasses([3.0, 0.0, 0.0, 1.0]);
        service2.hosts = vec![host("127.0.3.4:8000", 1.0, false)];
        service2.ejected = 1;
        for rps in [5.0, 10.0, 20.3] {
            let mut s1 = service1.clone();
            s1.rps = rps;
            update(
                &mut m,
                Msg::Scraped(vec![
                    ProxySnapshot {
                        hcm: vec![HcmRate {
                            stat_prefix: "ingress_http".into(),
                            rps: 24.3,
                            status: StatusClasses([23.3, 0.0, 0.0, 1.0]),
                            active: 1,
                        }],
                        routes: parse_config_dump(DUMP).ok(),
                        ..proxy("front-envoy#1", vec![s1, service2.clone()])
                    },
                    ProxySnapshot {
                        stale: Some("connection refused".into()),
                        ..proxy("service2#1", vec![cluster("local_service", 0.0)])
                    },
                ]),
            );
        }
        m.now = t0;
        for line in [ACCESS, FAILED, "2026-11-21T19:56:30Z INFO listening"] {
            update(
                &mut m,
                Msg::Mesh(MeshUpdate::Log {
                    unit: "front-envoy#1/proxy".into(),
                    line: line.into(),
                }),
            );
        }
        for (kind, text) in [
            (EventKind::Unit, "service1#2/app exited (killed)"),
            (EventKind::Action, "killed service1#2"),
            (
                EventKind::Endpoint,
                "front-envoy#1 › service1: endpoint 127.0.3.3:8000 removed",
            ),
        ] {
            update(
                &mut m,
                Msg::Mesh(MeshUpdate::Event(MeshEvent {
                    at: t0,
                    kind,
                    text: text.into(),
                })),
            );
        }
        m
    }

    fn render(model: &Model, width: u16, height: u16) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, model)).unwrap();
        terminal
    }

    fn view(key: char) -> Model {
        let mut m = fixed_model();
        update(&mut m, Msg::Key(Key::Char(key)));
        m
    }

    #[test]
    fn overview() {
        insta::assert_snapshot!(render(&fixed_model(), 100, 18).backend());
    }

    #[test]
    fn clusters_view_with_the_latency_histogram() {
        insta::assert_snapshot!(render(&view('2'), 100, 24).backend());
    }

    #[test]
    fn routes_view() {
        insta::assert_snapshot!(render(&view('3'), 100, 14).backend());
    }

    #[test]
    fn tap_view() {
        insta::assert_snapshot!(render(&view('4'), 120, 8).backend());
    }

    #[test]
    fn tap_view_at_80_columns_drops_authority_and_proxy_first() {
        insta::assert_snapshot!(render(&view('4'), 80, 6).backend());
    }

    #[test]
    fn logs_view() {
        let mut m = view('5');
        // The first unit is front-envoy's proxy.
        assert_eq!(m.log_unit.as_deref(), Some("front-envoy#1/proxy"));
        update(&mut m, Msg::Key(Key::Char('/')));
        update(&mut m, Msg::Key(Key::Char('U')));
        update(&mut m, Msg::Key(Key::Char('H')));
        update(&mut m, Msg::Key(Key::Enter));
        insta::assert_snapshot!(render(&m, 100, 6).backend());
    }

    #[test]
    fn events_view() {
        insta::assert_snapshot!(render(&view('6'), 100, 8).backend());
    }

    #[test]
    fn help_overlay() {
        insta::assert_snapshot!(render(&view('?'), 100, 24).backend());
    }

    #[test]
    fn quit_question() {
        let mut m = fixed_model();
        m.confirm_quit = true;
        update(&mut m, Msg::Key(Key::Char('q')));
        insta::assert_snapshot!(render(&m, 80, 12).backend());
    }

    #[test]
    fn top_without_a_supervisor_says_what_tap_needs() {
        let mut m = Model::default();
        update(
            &mut m,
            Msg::Scraped(vec![proxy("127.0.0.1:9901", vec![cluster("web", 1.0)])]),
        );
        update(&mut m, Msg::Key(Key::Char('4')));
        insta::assert_snapshot!(render(&m, 100, 5).backend());
    }

    #[test]
    fn every_view_fits_80x24_and_a_tiny_terminal_does_not_panic() {
        for key in ['1', '2', '3', '4', '5', '6', '?'] {
            let m = view(key);
            render(&m, 80, 24);
            render(&m, 10, 3);
            render(&m, 1, 1);
        }
    }
}
