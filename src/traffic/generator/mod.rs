//! The open-loop load generator: a [`LoadPlan`] in, a [`LoadReport`] out.
//!
//! **Open loop.** Each phase's schedule fixes when every request is due (constant rate or a
//! linear ramp, [`schedule`]) and which template it uses (smooth weighted round robin: exact
//! proportions). A request is sent at its due time if a connection is free, else as soon as one
//! is; its latency runs from the *due* time to the end of its response body, so waiting for a
//! connection counts (no coordinated omission).
//!
//! **Connections.** HTTP/1.1: up to `connections` keep-alive connections, one request in
//! flight on each. h2c and gRPC: `connections` connections, requests multiplexed as streams.
//! Connections open on first use and are replaced when they break or time out.
//!
//! **Outcomes — exactly one per request counted:**
//! - `Status(code)` / `Grpc(code)`: a complete response (body and trailers read). gRPC: a 200
//!   with `grpc-status: 0` is `Status(200)`, another code `Grpc(code)`, a non-200 its status.
//! - `ConnectError`: no connection could be made for it (DNS failure, refused, unreachable, or
//!   no connection within `timeout`).
//! - `Timeout`: no complete response within `timeout` of its actual send — or not sent at all
//!   because no connection became free within `timeout` of its due time (the client gave up
//!   waiting, as a user would; this also bounds the drain after the schedule's end to twice
//!   `timeout`).
//! - `Reset`: the connection or stream closed or reset before a complete response, a broken
//!   body included.
//! - `Cancelled`: in flight when the run was stopped (the stop signal, Ctrl-C). Requests due
//!   but not yet sent at that moment are not sent and not counted: `sent` counts requests that
//!   got an outcome.
//!
//! After the schedule's last request the run waits for what is in flight (each bounded by its
//! own timeout). The generator runs on a thread of its own with a single-threaded runtime, so
//! its counting takes no lock and it does not compete with the caller's runtime.

mod conn;
mod grpc;
mod queue;
mod request;
pub mod schedule;
pub mod tally;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::{JoinSet, LocalSet};
use tokio::time::{timeout, timeout_at, Instant};

use crate::traffic::plan::{LoadPlan, Protocol};
use crate::traffic::report::{LoadReport, Outcome};

use conn::{Broken, Http1, Http2};
use queue::{Job, JobQueue};
use request::Prepared;
use schedule::{Mix, PhaseSchedule};
use tally::Recorder;
pub use tally::{Progress, ProgressSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// The plan cannot be run as written; `field` is its path in the plan (`phases[1].rate`).
    #[error("invalid load plan: `{field}` {problem}")]
    InvalidPlan { field: String, problem: String },
    #[error("cannot start the load generator: {0}")]
    Start(#[source] std::io::Error),
    #[error("the load generator failed: its thread panicked")]
    Panicked,
}

/// Runs `plan` with traffic starting at `start` (request 0 of the first phase is due then),
/// until the schedule is done and every request has its outcome, or until `stop` turns true
/// (then what is in flight is `Cancelled` and the report says `interrupted`). A dropped `stop`
/// sender means "never stop early".
pub async fn run(
    plan: &LoadPlan,
    start: Instant,
    stop: watch::Receiver<bool>,
) -> Result<LoadReport, GeneratorError> {
    run_with_progress(plan, start, stop, Arc::new(Progress::default())).await
}

/// [`run`], keeping `progress` up to date as requests finish (for progress lines).
pub async fn run_with_progress(
    plan: &LoadPlan,
    start: Instant,
    stop: watch::Receiver<bool>,
    progress: Arc<Progress>,
) -> Result<LoadReport, GeneratorError> {
    let templates = request::prepare(plan)?;
    let plan = plan.clone();
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("meshsim-load".into())
        .spawn(move || {
            let mut done_tx = done_tx;
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(GeneratorError::Start)
                .map(|runtime| {
                    // The caller dropping `run` stops the run too.
                    let abandoned = done_tx.closed();
                    LocalSet::new().block_on(
                        &runtime,
                        generate(plan, templates, start, stop, progress, abandoned),
                    )
                });
            let _ = done_tx.send(result);
        })
        .map_err(GeneratorError::Start)?;
    done_rx.await.map_err(|_| GeneratorError::Panicked)?
}

/// What every task of a run shares (all on one thread).
struct Ctx {
    target: String,
    timeout: Duration,
    grpc: bool,
    /// `[phase][template]`.
    templates: Vec<Vec<Prepared>>,
    queue: JobQueue,
    recorder: RefCell<Recorder>,
    progress: Arc<Progress>,
    stopping: Cell<bool>,
    stop_notify: Notify,
}

impl Ctx {
    fn request(&self, job: &Job) -> Request<Full<Bytes>> {
        self.templates[job.slot.phase as usize][job.slot.template as usize].request()
    }

    fn finish(&self, job: &Job, outcome: Outcome) {
        let latency = Instant::now().saturating_duration_since(job.due);
        self.progress.record(outcome);
        self.recorder
            .borrow_mut()
            .record(job.slot, outcome, latency);
    }

    /// No connection became free within the timeout of the request's due time.
    fn waited_too_long(&self, job: &Job) -> bool {
        Instant::now() >= job.due + self.timeout
    }

    /// Resolves once the run is being stopped.
    async fn stopped(&self) {
        loop {
            // Created before looking: a notify_waiters in between still wakes it.
            let notified = self.stop_notify.notified();
            if self.stopping.get() {
                return;
            }
            notified.await;
        }
    }

    fn stop_now(&self) {
        self.stopping.set(true);
        self.stop_notify.notify_waiters();
        self.queue.abandon();
    }
}

async fn generate(
    plan: LoadPlan,
    templates: Vec<Vec<Prepared>>,
    start: Instant,
    stop: watch::Receiver<bool>,
    progress: Arc<Progress>,
    abandoned: impl Future<Output = ()>,
) -> LoadReport {
    let schedules: Vec<PhaseSchedule> = plan
        .phase_starts()
        .into_iter()
        .zip(&plan.phases)
        .map(|(at, phase)| PhaseSchedule::new(at, phase.duration, phase.rate))
        .collect();
    let ctx = Rc::new(Ctx {
        target: plan.target.clone(),
        timeout: plan.timeout,
        grpc: plan.protocol == Protocol::Grpc,
        templates,
        queue: JobQueue::default(),
        recorder: RefCell::new(Recorder::new(&plan)),
        progress,
        stopping: Cell::new(false),
        stop_notify: Notify::new(),
    });
    let workers: Vec<_> = (0..plan.connections)
        .map(|_| match plan.protocol {
            Protocol::Http1 => tokio::task::spawn_local(http1_worker(ctx.clone())),
            Protocol::H2c | Protocol::Grpc => tokio::task::spawn_local(h2_worker(ctx.clone())),
        })
        .collect();

    let stop_signal = async {
        tokio::select! {
            _ = stop_requested(stop) => {}
            _ = abandoned => {}
        }
    };
    tokio::pin!(stop_signal);
    let mut interrupted = tokio::select! {
        _ = dispatch(&ctx, &plan, &schedules, start) => false,
        _ = &mut stop_signal => true,
    };
    if interrupted {
        ctx.stop_now();
    } else {
        ctx.queue.close();
    }
    let drain = futures_util::future::join_all(workers);
    tokio::pin!(drain);
    if !interrupted {
        tokio::select! {
            _ = &mut drain => {}
            _ = &mut stop_signal => {
                interrupted = true;
                ctx.stop_now();
            }
        }
    }
    // Stopped workers finish at once (cancelling what they have in flight).
    drain.await;
    let recorder = ctx.recorder.take();
    recorder.into_report(&plan, &schedules, interrupted)
}

/// Resolves when `stop` turns true; never when its sender is dropped without doing so.
async fn stop_requested(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Pushes every request at its due time. Timers tick in milliseconds, so at high rates one
/// wake-up releases every request that has come due since.
async fn dispatch(ctx: &Ctx, plan: &LoadPlan, schedules: &[PhaseSchedule], start: Instant) {
    for (p, (phase, schedule)) in plan.phases.iter().zip(schedules).enumerate() {
        let mut mix = Mix::new(phase.requests.iter().map(|r| r.weight));
        for i in 0..schedule.count {
            let offset = schedule.due(i);
            let due = start + offset;
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            ctx.queue.push(Job {
                slot: tally::Slot {
                    phase: p as u32,
                    template: mix.next_index() as u32,
                    second: offset.as_secs() as u32,
                },
                due,
            });
        }
    }
}

/// One HTTP/1.1 connection's worth of sending: a request at a time, the connection kept
/// alive between them and replaced when it breaks.
async fn http1_worker(ctx: Rc<Ctx>) {
    let mut conn: Option<Http1> = None;
    while let Some(job) = ctx.queue.pop().await {
        if ctx.waited_too_long(&job) {
            ctx.finish(&job, Outcome::Timeout);
            continue;
        }
        let mut req = ctx.request(&job);
        let mut resent = false;
        let outcome = loop {
            let reusable = match conn.as_mut() {
                Some(c) => timeout(ctx.timeout, c.ready()).await.unwrap_or(false),
                None => false,
            };
            if !reusable {
                conn = None;
                let connect = timeout(ctx.timeout, Http1::connect(&ctx.target));
                let connected = tokio::select! {
                    biased;
                    // Not sent yet: not counted.
                    _ = ctx.stopped() => return,
                    c = connect => c,
                };
                match connected {
                    Ok(Ok(c)) => conn = Some(c),
                    _ => break Outcome::ConnectError,
                }
            }
            let c = conn.as_mut().expect("connected above");
            let deadline = Instant::now() + ctx.timeout;
            let result = tokio::select! {
                biased;
                _ = ctx.stopped() => {
                    ctx.finish(&job, Outcome::Cancelled);
                    return;
                }
                r = timeout_at(deadline, c.exchange(req, ctx.grpc)) => r,
            };
            match result {
                Ok(Ok(outcome)) => break outcome,
                // The peer closed the idle connection just as it was picked: nothing was
                // written, so send it once more on a fresh connection.
                Ok(Err(Broken::NotSent(back))) if !resent => {
                    resent = true;
                    conn = None;
                    req = *back;
                }
                Ok(Err(_)) => {
                    conn = None;
                    break Outcome::Reset;
                }
                Err(_elapsed) => {
                    // The response may still arrive: the connection is no longer usable.
                    conn = None;
                    break Outcome::Timeout;
                }
            }
        };
        ctx.finish(&job, outcome);
    }
}

/// One HTTP/2 connection: requests become streams on it, each its own small task; the
/// connection is replaced when it closes.
async fn h2_worker(ctx: Rc<Ctx>) {
    let mut conn: Option<Http2> = None;
    let mut in_flight = JoinSet::new();
    while let Some(job) = ctx.queue.pop().await {
        while in_flight.try_join_next().is_some() {}
        if ctx.waited_too_long(&job) {
            ctx.finish(&job, Outcome::Timeout);
            continue;
        }
        if conn.as_ref().is_none_or(Http2::is_closed) {
            conn = None;
            let connect = timeout(ctx.timeout, Http2::connect(&ctx.target));
            let connected = tokio::select! {
                biased;
                _ = ctx.stopped() => break,
                c = connect => c,
            };
            match connected {
                Ok(Ok(c)) => conn = Some(c),
                _ => {
                    ctx.finish(&job, Outcome::ConnectError);
                    continue;
                }
            }
        }
        let sender = conn.as_ref().expect("connected above").sender();
        in_flight.spawn_local(h2_request(ctx.clone(), job, sender));
    }
    while in_flight.join_next().await.is_some() {}
}

async fn h2_request(
    ctx: Rc<Ctx>,
    job: Job,
    sender: hyper::client::conn::http2::SendRequest<conn::Body>,
) {
    let req = ctx.request(&job);
    let deadline = Instant::now() + ctx.timeout;
    let outcome = tokio::select! {
        biased;
        _ = ctx.stopped() => Outcome::Cancelled,
        r = timeout_at(deadline, conn::exchange_h2(sender, req, ctx.grpc)) => match r {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Reset,
            Err(_elapsed) => Outcome::Timeout,
        },
    };
    ctx.finish(&job, outcome);
}
