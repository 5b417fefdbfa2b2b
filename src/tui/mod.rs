//! The terminal UI (ratatui): live rates, success, latency and the load-balancing split of every
//! proxy's clusters, from the scraper. `meshsim top ADMIN...` attaches it to any admin
//! endpoints, real Envoy's included.
//!
//! Three actors that never wait on each other: the scraper task sends snapshots, an input
//! thread sends keys, and the loop here applies both to the [`model`] and redraws at most ten
//! times a second. The terminal is restored on quit, on SIGTERM and on panic (ratatui's hook).

pub mod feed;
pub mod model;
pub mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use tokio::sync::{mpsc, watch};

use crate::scrape::{self, ProxyState, Target};
use feed::Feed;
use model::{update, Key, Model, Msg, ProxySnapshot};

/// Redraws at most this often.
const FRAME: Duration = Duration::from_millis(100);

/// Runs the UI until `q` (confirmed when `confirm_quit`: inside `meshsim up`, quitting removes
/// the mesh), Ctrl-C or SIGTERM.
pub async fn run(feed: Feed, confirm_quit: bool) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    let scraper = tokio::spawn(scrape_loop(feed.targets, feed.interval, tx.clone()));
    let stop_input = Arc::new(AtomicBool::new(false));
    let input = {
        let stop = stop_input.clone();
        std::thread::spawn(move || read_keys(tx, stop))
    };

    let mut terminal = ratatui::init();
    let mut model = Model {
        confirm_quit,
        ..Model::default()
    };
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
        if model.quit {
            break Ok(());
        }
    };
    ratatui::restore();
    stop_input.store(true, Ordering::Relaxed);
    scraper.abort();
    let _ = input.join();
    result
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
        scrape::scrape_all(&mut states).await;
        let now = Instant::now();
        let snapshot = states
            .iter()
            .map(|s| ProxySnapshot {
                name: s.target.name.clone(),
                stale: s
                    .is_stale(now, interval)
                    .then(|| s.error.clone().unwrap_or_else(|| "no answer yet".into())),
                clusters: s.rates().unwrap_or_default(),
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
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Esc => Key::Esc,
        _ => return None,
    })
}

/// Blocking key reads on their own thread, so a slow scrape never delays a key and a key never
/// waits for a scrape.
fn read_keys(tx: mpsc::Sender<Msg>, stop: Arc<AtomicBool>) {
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
