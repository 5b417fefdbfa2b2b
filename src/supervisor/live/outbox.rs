//! The live task's side of the updates channel. It never waits for the UI: unit listings and
//! log lines are dropped when the channel is full (a fresher listing comes within a second),
//! events queue here (up to a bound) until there is room, so an action's outcome is not lost
//! to a burst of log lines.

use std::collections::VecDeque;
use std::time::SystemTime;

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::tui::feed::{EventKind, MeshEvent, MeshUpdate};

/// Events kept while the UI lags; beyond this the oldest go.
const MAX_PENDING_EVENTS: usize = 256;

pub struct Outbox {
    tx: mpsc::Sender<MeshUpdate>,
    pending: VecDeque<MeshUpdate>,
}

impl Outbox {
    pub fn new(tx: mpsc::Sender<MeshUpdate>) -> Outbox {
        Outbox {
            tx,
            pending: VecDeque::new(),
        }
    }

    /// Another handle for the log followers, which send on their own (and drop when full).
    pub fn sender(&self) -> mpsc::Sender<MeshUpdate> {
        self.tx.clone()
    }

    pub fn event(&mut self, kind: EventKind, text: impl Into<String>) {
        if self.pending.len() == MAX_PENDING_EVENTS {
            self.pending.pop_front();
        }
        self.pending.push_back(MeshUpdate::Event(MeshEvent {
            at: SystemTime::now(),
            kind,
            text: text.into(),
        }));
        self.flush();
    }

    /// Sent only once every queued event is, so the UI never sees a listing before the events
    /// that explain it.
    pub fn units(&mut self, units: Vec<crate::runtime::UnitStatus>) {
        self.flush();
        if self.pending.is_empty() {
            let _ = self.tx.try_send(MeshUpdate::Units(units));
        }
    }

    /// Sends queued events while there is room.
    pub fn flush(&mut self) {
        while let Some(update) = self.pending.pop_front() {
            match self.tx.try_send(update) {
                Ok(()) => {}
                Err(TrySendError::Full(update)) => {
                    self.pending.push_front(update);
                    return;
                }
                // The UI is gone: nobody will read them.
                Err(TrySendError::Closed(_)) => {
                    self.pending.clear();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_wait_for_room_and_listings_do_not() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut outbox = Outbox::new(tx);
        outbox.event(EventKind::Unit, "one");
        outbox.event(EventKind::Unit, "two");
        // Full: the listing is dropped, "two" waits.
        outbox.units(Vec::new());
        let text = |u: MeshUpdate| match u {
            MeshUpdate::Event(e) => e.text,
            other => panic!("not an event: {other:?}"),
        };
        assert_eq!(text(rx.recv().await.unwrap()), "one");
        outbox.flush();
        assert_eq!(text(rx.recv().await.unwrap()), "two");
        outbox.units(Vec::new());
        assert_eq!(rx.recv().await.unwrap(), MeshUpdate::Units(Vec::new()));
    }
}
