//! Access log sinks: file, stdout, stderr.
//!
//! Design, and why:
//! * The request path must never block on disk or on a lock, so
//!   [`Sink::log`] only does a `try_send` on a bounded `tokio::sync::mpsc`
//!   channel. When the channel is full the line is dropped and counted
//!   ([`Sink::dropped`]): losing a log line beats adding latency or growing
//!   memory without bound when the disk is slow.
//! * One writer task per destination owns the file handle, batches lines into a
//!   buffer, and writes when the buffer is large, at least every
//!   [`FLUSH_INTERVAL`], on [`Sink::flush`], and when the last handle is dropped.
//! * Several loggers that name the same file share one writer (a registry keyed
//!   by the canonical path), so their lines never interleave mid-line and the
//!   file is opened once, as Envoy's `AccessLogManager` does.
//! * Write errors do not stop the writer (the disk may recover); they are
//!   counted ([`Sink::write_errors`]) and reported by the next [`Sink::flush`].

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Lines a sink can queue before [`Sink::log`] starts dropping.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 16 * 1024;
/// The writer flushes buffered lines at least this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// The writer writes as soon as this many bytes are buffered.
const WRITE_THRESHOLD: usize = 64 * 1024;

/// Errors creating or flushing a sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The log file could not be opened (created in append mode).
    #[error("cannot open access log file {}: {source}", path.display())]
    Open {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Sinks spawn their writer on the current tokio runtime.
    #[error(
        "access log sink {target} must be created inside a tokio runtime (it spawns a writer task)"
    )]
    NoRuntime {
        /// `stdout`, `stderr` or the file path.
        target: String,
    },
    /// The writer task is gone (its runtime shut down).
    #[error("access log writer for {target} has stopped")]
    WriterGone {
        /// `stdout`, `stderr` or the file path.
        target: String,
    },
    /// Writing or flushing the destination failed.
    #[error("writing access log {target} failed: {source}")]
    Write {
        /// `stdout`, `stderr` or the file path.
        target: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    File(PathBuf),
    Stdout,
    Stderr,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::File(p) => write!(f, "{}", p.display()),
            Target::Stdout => f.write_str("stdout"),
            Target::Stderr => f.write_str("stderr"),
        }
    }
}

enum Msg {
    Line(String),
    Flush(oneshot::Sender<io::Result<()>>),
}

/// Counters shared with the writer task (which must not hold the sender, or
/// the channel would never close).
#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

struct Shared {
    target: Target,
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
}

type Registry = Mutex<HashMap<Target, Weak<Shared>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A handle to an access log destination. Cheap to clone; all clones (and all
/// sinks created for the same path) share one writer task.
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("target", &self.shared.target)
            .field("dropped", &self.dropped())
            .field("write_errors", &self.write_errors())
            .finish()
    }
}

impl Sink {
    /// A sink appending to `path` (created if missing). Must be called inside a
    /// tokio runtime. Returns the existing writer if one is already open for
    /// the same file.
    pub fn file(path: impl AsRef<Path>) -> Result<Sink, SinkError> {
        Sink::file_with_capacity(path, DEFAULT_CHANNEL_CAPACITY)
    }

    /// Like [`Sink::file`] with a custom queue capacity (in lines). The capacity
    /// only applies when this call creates the writer.
    pub fn file_with_capacity(path: impl AsRef<Path>, capacity: usize) -> Result<Sink, SinkError> {
        let path = path.as_ref();
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SinkError::NoRuntime {
            target: path.display().to_string(),
        })?;
        // Open first: it reports a bad path immediately, and the file must
        // exist for canonicalize to find the registry key.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Open {
                path: path.to_owned(),
                source,
            })?;
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| absolute(path));
        Ok(Sink::get_or_spawn(
            Target::File(key),
            capacity,
            &runtime,
            move || Box::new(tokio::fs::File::from_std(file)),
        ))
    }

    /// A sink writing to the process's standard output (one shared writer).
    pub fn stdout() -> Result<Sink, SinkError> {
        Sink::std_stream(Target::Stdout)
    }

    /// A sink writing to the process's standard error (one shared writer).
    pub fn stderr() -> Result<Sink, SinkError> {
        Sink::std_stream(Target::Stderr)
    }

    fn std_stream(target: Target) -> Result<Sink, SinkError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SinkError::NoRuntime {
            target: target.to_string(),
        })?;
        let is_stdout = target == Target::Stdout;
        Ok(Sink::get_or_spawn(
            target,
            DEFAULT_CHANNEL_CAPACITY,
            &runtime,
            move || -> Box<dyn AsyncWrite + Send + Unpin> {
                if is_stdout {
                    Box::new(tokio::io::stdout())
                } else {
                    Box::new(tokio::io::stderr())
                }
            },
        ))
    }

    fn get_or_spawn(
        target: Target,
        capacity: usize,
        runtime: &tokio::runtime::Handle,
        open: impl FnOnce() -> Box<dyn AsyncWrite + Send + Unpin>,
    ) -> Sink {
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = reg.get(&target).and_then(Weak::upgrade) {
            // A writer whose runtime shut down is closed; replace it.
            if !shared.tx.is_closed() {
                return Sink { shared };
            }
        }
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        runtime.spawn(run_writer(rx, open(), counters.clone()));
        let shared = Arc::new(Shared {
            target: target.clone(),
            tx,
            counters,
        });
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(target, Arc::downgrade(&shared));
        Sink { shared }
    }

    /// Queues one line for writing; never blocks and takes no lock. The line is
    /// written as given (formats carry their own trailing newline). If the queue
    /// is full or the writer is gone, the line is dropped and counted.
    pub fn log(&self, line: String) {
        if line.is_empty() {
            return;
        }
        if self.shared.tx.try_send(Msg::Line(line)).is_err() {
            self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped so far because the queue was full (shared by all handles
    /// of this destination).
    pub fn dropped(&self) -> u64 {
        self.shared.counters.dropped.load(Ordering::Relaxed)
    }

    /// Failed writes/flushes so far (each loses the batch being written).
    pub fn write_errors(&self) -> u64 {
        self.shared.counters.write_errors.load(Ordering::Relaxed)
    }

    /// `stdout`, `stderr` or the canonical file path.
    pub fn target(&self) -> String {
        self.shared.target.to_string()
    }

    /// True when both handles feed the same writer.
    pub fn same_writer(&self, other: &Sink) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Waits until every line queued before this call is written and flushed to
    /// the OS. Use it in tests and on graceful shutdown so nothing is lost.
    pub async fn flush(&self) -> Result<(), SinkError> {
        let gone = || SinkError::WriterGone {
            target: self.target(),
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        self.shared
            .tx
            .send(Msg::Flush(ack_tx))
            .await
            .map_err(|_| gone())?;
        ack_rx
            .await
            .map_err(|_| gone())?
            .map_err(|source| SinkError::Write {
                target: self.target(),
                source,
            })
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_owned())
}

/// The writer task: batches lines, writes on size, on tick, on flush request,
/// and drains everything when the last sender is dropped.
async fn run_writer(
    mut rx: mpsc::Receiver<Msg>,
    mut out: Box<dyn AsyncWrite + Send + Unpin>,
    counters: Arc<Counters>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_THRESHOLD);
    let mut dirty = false;
    // interval_at: the first tick of a plain interval fires immediately, which
    // would hide a missing periodic flush in tests.
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + FLUSH_INTERVAL, FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Line(line)) => {
                    buf.extend_from_slice(line.as_bytes());
                    if buf.len() >= WRITE_THRESHOLD {
                        let _ = write_batch(&mut out, &mut buf, &mut dirty, &counters, false).await;
                    }
                }
                Some(Msg::Flush(ack)) => {
                    let res = write_batch(&mut out, &mut buf, &mut dirty, &counters, true).await;
                    let _ = ack.send(res);
                }
                None => {
                    let _ = write_batch(&mut out, &mut buf, &mut dirty, &counters, true).await;
                    break;
                }
            },
            _ = tick.tick() => {
                let _ = write_batch(&mut out, &mut buf, &mut dirty, &counters, true).await;
            }
        }
    }
}

/// Writes the buffer (if any) and, when `flush` is set and something was
/// written since the last flush, flushes. On error the batch is discarded:
/// retrying it forever would grow memory without bound.
async fn write_batch(
    out: &mut Box<dyn AsyncWrite + Send + Unpin>,
    buf: &mut Vec<u8>,
    dirty: &mut bool,
    counters: &Counters,
    flush: bool,
) -> io::Result<()> {
    if !buf.is_empty() {
        let res = out.write_all(buf).await;
        buf.clear();
        if let Err(e) = res {
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        *dirty = true;
    }
    if flush && std::mem::take(dirty) {
        if let Err(e) = out.flush().await {
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "meshsim-access-log-{}-{}-{}",
            name,
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn file_sink_writes_every_line_in_order() {
        let dir = temp_dir("order");
        let path = dir.join("access.log");
        let sink = Sink::file(&path).unwrap();
        let n = 5_000;
        let mut expected = String::new();
        for i in 0..n {
            let line = format!("line {i} {}\n", "x".repeat(i % 50));
            expected.push_str(&line);
            sink.log(line);
            if i % 1000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        sink.flush().await.unwrap();
        assert_eq!(sink.dropped(), 0);
        assert_eq!(sink.write_errors(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn full_queue_drops_and_counts() {
        let dir = temp_dir("drop");
        let path = dir.join("a.log");
        // current_thread runtime: the writer cannot run until we await, so
        // exactly `capacity` lines fit.
        let sink = Sink::file_with_capacity(&path, 4).unwrap();
        for i in 0..10 {
            sink.log(format!("{i}\n"));
        }
        assert_eq!(sink.dropped(), 6);
        sink.flush().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n1\n2\n3\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn same_path_shares_one_writer() {
        let dir = temp_dir("share");
        let path = dir.join("shared.log");
        let a = Sink::file(&path).unwrap();
        // A different spelling of the same file.
        let b = Sink::file(dir.join(".").join("shared.log")).unwrap();
        assert!(a.same_writer(&b));
        assert_eq!(
            a.target(),
            std::fs::canonicalize(&path).unwrap().display().to_string()
        );
        let other = Sink::file(dir.join("other.log")).unwrap();
        assert!(!a.same_writer(&other));
        a.log("from a\n".into());
        b.log("from b\n".into());
        b.flush().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "from a\nfrom b\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn unopenable_file_names_path_and_os_error() {
        let path = std::env::temp_dir().join("meshsim-no-such-dir-xyz/deeper/access.log");
        let err = Sink::file(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SinkError::Open { .. }));
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("No such file or directory"), "{msg}");
    }

    #[test]
    fn creating_outside_a_runtime_is_an_error() {
        let err = Sink::stdout().unwrap_err();
        assert!(matches!(err, SinkError::NoRuntime { .. }), "{err}");
        assert!(err.to_string().contains("tokio runtime"));
    }

    #[tokio::test]
    async fn periodic_flush_without_explicit_flush_then_explicit_flush() {
        let dir = temp_dir("tick");
        let path = dir.join("tick.log");
        let sink = Sink::file(&path).unwrap();
        let start = tokio::time::Instant::now();
        sink.log("tick\n".into());
        // Small batch, no flush request: nothing is written before the timer.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let deadline = start + FLUSH_INTERVAL * 3;
        while std::fs::read_to_string(&path).unwrap() != "tick\n" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "line not flushed by the timer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(start.elapsed() >= FLUSH_INTERVAL - Duration::from_millis(50));

        sink.log("tock\n".into());
        sink.flush().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "tick\ntock\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn dropping_the_last_handle_drains() {
        let dir = temp_dir("dropdrain");
        let path = dir.join("d.log");
        let sink = Sink::file(&path).unwrap();
        for i in 0..100 {
            sink.log(format!("{i}\n"));
        }
        drop(sink);
        let want: String = (0..100).map(|i| format!("{i}\n")).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap() != want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not drained on drop"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn stdout_and_stderr_are_shared_and_flushable() {
        let a = Sink::stdout().unwrap();
        let b = Sink::stdout().unwrap();
        assert!(a.same_writer(&b));
        assert_eq!(a.target(), "stdout");
        let e = Sink::stderr().unwrap();
        assert!(!a.same_writer(&e));
        assert_eq!(e.target(), "stderr");
        e.log(String::new()); // empty lines are ignored, not counted
        assert_eq!(e.dropped(), 0);
        a.flush().await.unwrap();
        e.flush().await.unwrap();
    }
}
