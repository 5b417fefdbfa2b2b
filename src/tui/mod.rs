//! The terminal UI (ratatui): live rates, success, latency and the load-balancing split of every
//! proxy's clusters, from the scraper. `meshsim top ADMIN...` attaches it to any admin
//! endpoints, real Envoy's included.
//!
//! Three actors that never wait on each other: the scraper task sends snapshots, an input
//! thread sends keys, and the loop here applies both to the [`model`] and redraws at most ten
//! times a second. The terminal is restored on quit, on SIGTERM and on panic (ratatui's hook).

pub mod feed;
pub mod filter;
pub mod histogram;
pub mod model;
pub mod rows;
pub mod tap;
pub mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEventKind, KeyModifiers,
    MouseButton, MouseEventKind,
};
use ratatui::crossterm::execute;
use tokio::sync::{mpsc, watch};

use crate::scrape::{self, ProxyState, Target};
use feed::Feed;
use model::{update, Key, Model, Mouse, Msg, ProxySnapshot};

/// Redraws at most this often.
const FRAME: Duration = Duration::from_millis(100);

/// Runs the UI until `q` (confirmed when `confirm_quit`: inside `meshsim up`, quitting removes
/// the mesh), Ctrl-C or SIGTERM.
pub async fn run(feed: Feed, confirm_quit: bool) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Msg>(256);
    let scraper = tokio::spawn(scrape_loop(feed.targets, feed.interval, tx.clone()));
    let (actions, relay) = match feed.mesh {
        Some(link) => {
            let (updates, actions) = (link.updates, link.actions);
            (
                Some(actions),
                Some(tokio::spawn(relay_updates(updates, tx.clone()))),
            )
        }
        None => (None, None),
    };
    let stop_input = Arc::new(AtomicBool::new(false));
    let input = {
        let stop = stop_input.clone();
        std::thread::spawn(move || read_input(tx, stop))
    };

    let mut terminal = ratatui::init();
    let mut model = Model {
        confirm_quit,
        ..Model::default()
    };
    let mut mouse = false;
    let mut dirty = true;
    let mut frame = tokio::time::interval(FRAME);
    let mut terminated = Box::pin(crate::signals::terminate());
    let result = loop {
        tokio::select! {
            Some(msg) = rx.recv() => {
                update(&mut model, msg);
                dirty = true;
            }
            _ = frame.tick() => {
                if dirty {
                    if let Err(e) = terminal.draw(|f| view::draw(f, &model)) {
                        break Err(e);
                    }
                    dirty = false;
                }
            }
            _ = &mut terminated => break Ok(()),
        }
        for action in model.outbox.drain(..) {
            if let Some(actions) = &actions {
                // Never wait on the supervisor: a full queue drops the request, and says so.
                if actions.try_send(action).is_err() {
                    model.notice = Some("the supervisor is busy; try again".into());
                }
            }
        }
        if model.mouse != mouse {
            mouse = model.mouse;
            let _ = if mouse {
                execute!(std::io::stdout(), EnableMouseCapture)
            } else {
                execute!(std::io::stdout(), DisableMouseCapture)
            };
        }
        if model.quit {
            break Ok(());
        }
    };
    if mouse {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    stop_input.store(true, Ordering::Relaxed);
    scraper.abort();
    if let Some(relay) = relay {
        relay.abort();
    }
    let _ = input.join();
    result
}

/// The supervisor's updates, into the UI's one queue.
async fn relay_updates(mut updates: mpsc::Receiver<feed::MeshUpdate>, tx: mpsc::Sender<Msg>) {
    while let Some(update) = updates.recv().await {
        if tx.send(Msg::Mesh(update)).await.is_err() {
            return;
        }
    }
}

async fn scrape_loop(
    mut targets: watch::Receiver<Vec<Target>>,
    interval: Duration,
    tx: mpsc::Sender<Msg>,
) {
    let mut states: Vec<ProxyState> = Vec::new();
    loop {
        // Replicas come and go: keep the state of proxies still there, start new ones fresh.
        let wanted = targets.borrow_and_update().clone();
        states.retain(|s| {
            wanted
                .iter()
                .any(|t| t.name == s.target.name && t.admin == s.target.admin)
        });
        for target in wanted {
            if !states
                .iter()
                .any(|s| s.target.name == target.name && s.target.admin == target.admin)
            {
                states.push(ProxyState::new(target));
            }
        }
        scrape::scrape_all_with(&mut states, true).await;
        let now = Instant::now();
        let snapshot = states
            .iter()
            .map(|s| ProxySnapshot {
                name: s.target.name.clone(),
                stale: s
                    .is_stale(now, interval)
                    .then(|| s.error.clone().unwrap_or_else(|| "no answer yet".into())),
                clusters: s.rates().unwrap_or_default(),
                hcm: s.hcm_rates().unwrap_or_default(),
                routes: s.routes.clone(),
            })
            .collect();
        if tx.send(Msg::Scraped(snapshot)).await.is_err() {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

/// The keys the UI knows. Raw mode turns Ctrl-C into a key: it quits at once, as everywhere
/// else (no question, even inside `meshsim up`).
fn key_of(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Key::Interrupt,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Enter => Key::Enter,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Esc => Key::Esc,
        _ => return None,
    })
}

fn mouse_of(kind: MouseEventKind, column: u16, row: u16) -> Option<Mouse> {
    Some(match kind {
        MouseEventKind::ScrollUp => Mouse::ScrollUp,
        MouseEventKind::ScrollDown => Mouse::ScrollDown,
        MouseEventKind::Down(MouseButton::Left) => Mouse::Click(column, row),
        _ => return None,
    })
}

/// Blocking terminal reads on their own thread, so a slow scrape never delays a key and a key
/// never waits for a scrape.
fn read_input(tx: mpsc::Sender<Msg>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if !event::poll(Duration::from_millis(100)).unwrap_or(false) {
            continue;
        }
        let msg = match event::read() {
            Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => match key_of(k.code, k.modifiers)
            {
                Some(key) => Msg::Key(key),
                None => continue,
            },
            Ok(Event::Mouse(m)) => match mouse_of(m.kind, m.column, m.row) {
                Some(mouse) => Msg::Mouse(mouse),
                None => continue,
            },
            Ok(Event::Resize(..)) => Msg::Redraw,
            _ => continue,
        };
        if tx.blocking_send(msg).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_c_interrupts_and_plain_keys_pass_through() {
        assert_eq!(
            key_of(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Key::Interrupt)
        );
        assert_eq!(
            key_of(KeyCode::Char('c'), KeyModifiers::NONE),
            Some(Key::Char('c'))
        );
        assert_eq!(key_of(KeyCode::Tab, KeyModifiers::NONE), Some(Key::Tab));
        assert_eq!(key_of(KeyCode::F(1), KeyModifiers::NONE), None);
    }
}
