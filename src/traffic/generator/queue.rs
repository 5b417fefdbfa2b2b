//! Requests that are due and wait for a free connection: the schedule pushes, connection
//! workers pop. Single-threaded (the generator runs on one thread), so a `RefCell` and a
//! `Notify` are all it takes.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::tally::Slot;

/// One due request.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub slot: Slot,
    /// Its intended send time: latency and the wait for a connection count from here.
    pub due: Instant,
}

#[derive(Default)]
pub struct JobQueue {
    jobs: RefCell<VecDeque<Job>>,
    /// No more pushes: workers drain what is left, then stop.
    closed: Cell<bool>,
    /// Stop now: what is left is dropped (never sent, never counted).
    abandoned: Cell<bool>,
    ready: Notify,
}

impl JobQueue {
    pub fn push(&self, job: Job) {
        self.jobs.borrow_mut().push_back(job);
        self.ready.notify_one();
    }

    pub fn close(&self) {
        self.closed.set(true);
        self.ready.notify_waiters();
    }

    pub fn abandon(&self) {
        self.abandoned.set(true);
        self.jobs.borrow_mut().clear();
        self.close();
    }

    /// The next due request; None once closed and empty, or abandoned.
    pub async fn pop(&self) -> Option<Job> {
        loop {
            // Created before looking, so a notify_waiters in between is not missed.
            let ready = self.ready.notified();
            if self.abandoned.get() {
                return None;
            }
            if let Some(job) = self.jobs.borrow_mut().pop_front() {
                return Some(job);
            }
            if self.closed.get() {
                return None;
            }
            ready.await;
        }
    }
}
