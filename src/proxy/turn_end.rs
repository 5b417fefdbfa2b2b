//! The end of a worker's turn: the moment every task that was ready has run and the worker is
//! about to look for I/O again. Writes wait for it — answers to clients, and requests from
//! HTTP/1.1 clients to their upstreams — and there, when an HTTP/1.1 answer asks, the worker
//! gives its CPU away if it has held it for a while.
//!
//! Why answers wait: the answers of all connections served in one turn then go out together,
//! so a client woken by the first finds the rest waiting, where answers written as each was
//! ready found it asleep again and again (waking a client on another CPU is paid in the
//! proxy's system time). Measured (README, Benchmark): h2load slept 0.13 times per h2c request
//! (haproxy's answers 0.02) and wrk 0.19 per HTTP/1.1 request; deferred, 0.055 and 0.12, and
//! +6 % h2c, +10 % HTTP/1.1 requests/s.
//!
//! Why upstream requests wait too, the same way: written as each client's request was read,
//! they came one at a time, a few microseconds apart, and an upstream process woke for the
//! first, answered it and went back to sleep before the next arrived; written together at the
//! turn's end, it finds them all when it wakes. Measured (README, Benchmark): HTTP/1.1
//! requests/s +3–7 % in 4 interleaved rounds of one build with and without, the proxy's
//! system time per request 19.1–20.3 → 17.5–18.3 µs. Only on a one-worker runtime
//! ([`turn_end_if_one_worker`]; elsewhere the turn's end comes after the poll for I/O, a
//! delay that was not measured), and only for requests from HTTP/1.x clients: an HTTP/2
//! connection reads at the turn's end already, so its requests would wait for the next turn
//! (h2c −10 % when that was tried). At the turn's end the upstream requests are written
//! before the answers ([`Waiting`] says why).
//!
//! Why the CPU is given away: a busy worker never sleeps, so nothing takes its CPU from it
//! until its time slice runs out and the next scheduler tick (4 ms apart here) notices. Each
//! request it writes upstream wakes an upstream process, and the kernel queues that process on
//! the writer's CPU when the other CPUs are busy, behind the proxy. Every request on that
//! upstream process waited as long: that was meshsim's HTTP/1.1 p99 of about 3 ms against
//! haproxy's 1.5 ms (`perf sched timehist`: the proxy ran 4.25 ms while a backend worker it had
//! woken waited 3.99 ms on the same CPU, the other CPU busy with the client). Yielding the CPU
//! at a turn's end once [`CPU_YIELD_INTERVAL`] has passed lets whoever it woke run: p99
//! 1.2–1.7 ms in `bench/proxy.sh`, level with haproxy's 1.4–1.7 ms, at one system call per
//! interval at most.
//!
//! An HTTP/2 connection does not ask for the yield. With h2load's 320 streams on 32
//! connections the proxy is busy rather than waiting on its upstream, and yielding cost h2c
//! requests/s (lower in 6 of 7 interleaved rounds, median −8 %) for no better mean latency.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};

/// How long a worker keeps its CPU before it yields it at the end of a turn.
pub const CPU_YIELD_INTERVAL: Duration = Duration::from_micros(500);

/// What a task waiting for the end of the turn asks of the worker's CPU there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpu {
    Keep,
    /// Yield it if [`CPU_YIELD_INTERVAL`] has passed since the worker last did.
    YieldIfDue,
}

/// The tasks waiting for the end of a turn, in the order they are woken there: the upstream
/// requests first, then the answers (and HTTP/2 connections).
///
/// Why that order: woken in the order they waited, the two kinds interleaved, and the
/// requests for one upstream process went out spread over the whole turn's writes (each
/// write about 7 µs of system time). A process woken by the first answered it and went back
/// to sleep before the next came, and was woken again. Written first, in one burst, they find
/// each upstream process awake. Measured (`perf record -e sched:sched_wakeup` on the proxy,
/// `wrk -c32`): upstream wake-ups 0.218 → 0.167 per request (haproxy's 0.164), and HTTP/1.1
/// requests/s +7 % in 5 interleaved rounds of one build with and without.
#[derive(Default)]
struct Waiting {
    upstream_requests: Vec<Waker>,
    answers: Vec<Waker>,
}

impl Waiting {
    const fn new() -> Self {
        Waiting {
            upstream_requests: Vec::new(),
            answers: Vec::new(),
        }
    }

    fn list(&mut self, writes: Writes) -> &mut Vec<Waker> {
        match writes {
            Writes::UpstreamRequests => &mut self.upstream_requests,
            Writes::Answers => &mut self.answers,
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.upstream_requests.is_empty() && self.answers.is_empty()
    }
}

/// What a waiting task writes once woken, which decides when it is woken in the turn's end.
#[derive(Debug, Clone, Copy)]
enum Writes {
    UpstreamRequests,
    Answers,
}

thread_local! {
    /// The tasks waiting for the end of this worker's current turn.
    static WAITING: RefCell<Waiting> = const { RefCell::new(Waiting::new()) };
    /// The lists before last, empty, kept for their allocations.
    static SPARE: Cell<Waiting> = const { Cell::new(Waiting::new()) };
    /// Whether the task that wakes them is queued.
    static END_QUEUED: Cell<bool> = const { Cell::new(false) };
    /// Whether one of them asked for the CPU to be yielded ([`Cpu::YieldIfDue`]).
    static YIELD_ASKED: Cell<bool> = const { Cell::new(false) };
    /// When this worker last yielded its CPU.
    static LAST_CPU_YIELD: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Has `cx`'s task polled again at the end of the worker's turn.
///
/// On a one-worker (current-thread) runtime the waker joins this thread's list, and the first
/// to join queues a task behind every task ready now: when it runs, the turn is over, and it
/// wakes them all (before the worker polls for I/O, so the answers go out before more requests
/// are read). On a multi-thread runtime, where a task is not bound to a thread's list, tokio's
/// `yield_now` does it (its tasks run once the worker has looked for I/O).
pub fn wake_at_turn_end(cx: &mut Context<'_>, cpu: Cpu) {
    if !one_worker() {
        if cpu == Cpu::YieldIfDue {
            yield_cpu_if_due(Instant::now());
        }
        let _ = pin!(tokio::task::yield_now()).poll(cx);
        return;
    }
    join_turn_end(cx, Writes::Answers, cpu);
}

/// The one-worker half of [`wake_at_turn_end`]: `cx`'s waker joins this thread's list for
/// `writes`.
fn join_turn_end(cx: &mut Context<'_>, writes: Writes, cpu: Cpu) {
    WAITING.with(|waiting| waiting.borrow_mut().list(writes).push(cx.waker().clone()));
    if cpu == Cpu::YieldIfDue {
        YIELD_ASKED.set(true);
    }
    if !END_QUEUED.replace(true) {
        // The task at the end of the turn. The guard is made here, not in the task, so that it
        // wakes the waiting tasks even if the runtime drops the task unpolled.
        let wake_waiting = WakeWaiting;
        drop(tokio::spawn(async move {
            if YIELD_ASKED.replace(false) {
                yield_cpu_if_due(Instant::now());
            }
            drop(wake_waiting);
        }));
    }
}

/// Whether the current task runs on a one-worker (current-thread) runtime, where the turn's
/// end is this module's own and comes before the next poll for I/O.
fn one_worker() -> bool {
    Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::CurrentThread)
}

/// [`wake_at_turn_end`], awaited.
pub async fn turn_end(cpu: Cpu) {
    wait_once(|cx| wake_at_turn_end(cx, cpu)).await
}

/// The end of the turn on a one-worker runtime; elsewhere nothing is awaited. For upstream
/// requests: on a multi-thread runtime the turn's end comes after the poll for I/O, a delay
/// that was not measured (see the module's doc).
pub async fn turn_end_if_one_worker() {
    if one_worker() {
        wait_once(|cx| join_turn_end(cx, Writes::UpstreamRequests, Cpu::Keep)).await
    }
}

/// Pending once, after `register` has arranged for the task to be woken; then ready.
async fn wait_once(mut register: impl FnMut(&mut Context<'_>)) {
    let mut waited = false;
    poll_fn(|cx| {
        if waited {
            return Poll::Ready(());
        }
        waited = true;
        register(cx);
        Poll::Pending
    })
    .await
}

/// Wakes the waiting tasks when dropped: when the turn ends, and also when the runtime shuts
/// down before it does, so that no waker of a dead runtime stays in the list and the next
/// runtime on this thread queues its own turn end.
struct WakeWaiting;

impl Drop for WakeWaiting {
    fn drop(&mut self) {
        END_QUEUED.set(false);
        YIELD_ASKED.set(false);
        // Swapped out, so that a waker that registers again while being woken joins the next
        // turn's lists, and the lists' allocations come back for that turn.
        let mut waking = SPARE.take();
        WAITING.with(|waiting| std::mem::swap(&mut *waiting.borrow_mut(), &mut waking));
        // Woken tasks run in the order woken: the upstream requests are written first.
        for waker in waking
            .upstream_requests
            .drain(..)
            .chain(waking.answers.drain(..))
        {
            waker.wake();
        }
        SPARE.set(waking);
    }
}

/// Yields this thread's CPU if [`CPU_YIELD_INTERVAL`] has passed since it last did (the
/// first call only starts the clock). When nothing else waits for the CPU, `sched_yield`
/// returns at once.
fn yield_cpu_if_due(now: Instant) {
    let last = LAST_CPU_YIELD.get();
    if cpu_yield_due(last, now) {
        std::thread::yield_now();
        LAST_CPU_YIELD.set(Some(Instant::now()));
    } else if last.is_none() {
        LAST_CPU_YIELD.set(Some(now));
    }
}

fn cpu_yield_due(last: Option<Instant>, now: Instant) -> bool {
    last.is_some_and(|last| now.saturating_duration_since(last) >= CPU_YIELD_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The order in which tasks reached their log entries.
    #[derive(Default)]
    struct Order(Arc<Mutex<Vec<&'static str>>>);

    impl Order {
        /// A closure for a task to call when it gets to `entry`.
        fn logger(&self, entry: &'static str) -> impl FnOnce() + Send + 'static {
            let order = self.0.clone();
            move || order.lock().unwrap().push(entry)
        }

        fn entries(&self) -> Vec<&'static str> {
            self.0.lock().unwrap().clone()
        }
    }

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_waiting_task_runs_after_every_task_ready_before_it_waited() {
        let order = Order::default();
        current_thread().block_on(async {
            let (starts, resumes) = (
                order.logger("waiter starts"),
                order.logger("waiter resumes"),
            );
            let waiter = tokio::spawn(async move {
                starts();
                turn_end(Cpu::Keep).await;
                resumes();
            });
            let others = ["a", "b", "c"].map(|entry| {
                let log = order.logger(entry);
                tokio::spawn(async move { log() })
            });
            waiter.await.unwrap();
            for other in others {
                other.await.unwrap();
            }
        });
        assert_eq!(
            order.entries(),
            ["waiter starts", "a", "b", "c", "waiter resumes"]
        );
    }

    #[test]
    fn the_waiters_of_one_turn_resume_together_after_tasks_woken_meanwhile() {
        let order = Order::default();
        let log = |entry| order.logger(entry);
        current_thread().block_on(async {
            let (w1, w2) = (log("w1"), log("w2"));
            let (x, y) = (log("x"), log("y"));
            let tasks = [
                tokio::spawn(async move {
                    turn_end(Cpu::Keep).await;
                    w1();
                }),
                // Runs between the two waiters and wakes another task (spawns it).
                tokio::spawn(async move {
                    x();
                    tokio::spawn(async move { y() });
                }),
                tokio::spawn(async move {
                    turn_end(Cpu::Keep).await;
                    w2();
                }),
            ];
            for task in tasks {
                task.await.unwrap();
            }
        });
        // Woken one by one (each to the back of the queue as it waited), w1 would have run
        // before y and apart from w2.
        assert_eq!(order.entries(), ["x", "y", "w1", "w2"]);
    }

    #[test]
    fn upstream_requests_are_written_before_the_answers_of_the_same_turn() {
        let order = Order::default();
        let log = |entry| order.logger(entry);
        current_thread().block_on(async {
            let (answer, request, answer_2) = (log("answer"), log("request"), log("answer 2"));
            let tasks = [
                tokio::spawn(async move {
                    turn_end(Cpu::Keep).await;
                    answer();
                }),
                tokio::spawn(async move {
                    turn_end_if_one_worker().await;
                    request();
                }),
                tokio::spawn(async move {
                    turn_end(Cpu::YieldIfDue).await;
                    answer_2();
                }),
            ];
            for task in tasks {
                task.await.unwrap();
            }
        });
        assert_eq!(order.entries(), ["request", "answer", "answer 2"]);
    }

    #[test]
    fn many_waiters_share_one_turn_end_and_all_resume() {
        current_thread().block_on(async {
            let waiters: Vec<_> = (0..100)
                .map(|i| {
                    tokio::spawn(turn_end(if i % 2 == 0 {
                        Cpu::Keep
                    } else {
                        Cpu::YieldIfDue
                    }))
                })
                .collect();
            for waiter in waiters {
                waiter.await.unwrap();
            }
            assert!(!YIELD_ASKED.get());
            // The next turn queues its own end.
            tokio::time::timeout(Duration::from_secs(5), turn_end(Cpu::YieldIfDue))
                .await
                .expect("the next turn's end came");
        });
    }

    #[test]
    fn a_runtime_dropped_mid_turn_leaves_nothing_stuck_for_the_next() {
        let first = current_thread();
        first.block_on(async {
            // A task waits and the turn end is queued, but the runtime goes before it runs.
            let mut waiting = pin!(turn_end(Cpu::YieldIfDue));
            poll_fn(|cx| {
                assert!(waiting.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            assert!(END_QUEUED.get());
        });
        drop(first);
        assert!(!END_QUEUED.get());
        assert!(!YIELD_ASKED.get());
        assert!(WAITING.with(|w| w.borrow().is_empty()));
        current_thread().block_on(async {
            tokio::time::timeout(Duration::from_secs(5), turn_end(Cpu::Keep))
                .await
                .expect("the second runtime's turn end came");
        });
    }

    #[test]
    fn multi_thread_runtimes_fall_back_to_tokio_yield() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap()
            .block_on(async {
                tokio::spawn(turn_end(Cpu::YieldIfDue)).await.unwrap();
            });
        assert!(WAITING.with(|w| w.borrow().is_empty()));
    }

    #[test]
    fn the_cpu_is_yielded_once_the_interval_has_passed_since_the_last_yield() {
        let t0 = Instant::now();
        assert!(
            !cpu_yield_due(None, t0),
            "the first call only starts the clock"
        );
        assert!(!cpu_yield_due(Some(t0), t0));
        assert!(!cpu_yield_due(
            Some(t0),
            t0 + CPU_YIELD_INTERVAL - Duration::from_micros(1)
        ));
        assert!(cpu_yield_due(Some(t0), t0 + CPU_YIELD_INTERVAL));
        assert!(!cpu_yield_due(Some(t0 + Duration::from_secs(1)), t0));
    }
}
