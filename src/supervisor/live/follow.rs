//! Following every unit's output, one task per unit, as `MeshUpdate::Log` lines. Lines are
//! dropped when the UI lags (a log view can miss lines; the action path must never wait).
//!
//! Where a follower starts: units running when the UI opens, from now on (their past is in
//! `meshsim logs`); units that appear later (a restart, a new replica), from their beginning,
//! so their start-up lines show.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::runtime::UnitStatus;
use crate::tui::feed::MeshUpdate;

use super::super::launched::Launched;

/// How often a local unit's log file is read for new lines.
const POLL: Duration = Duration::from_millis(250);
/// At most this much of a log file per read (a unit that floods cannot stall the others).
const MAX_READ: u64 = 1 << 20;

pub struct Followers {
    tx: mpsc::Sender<MeshUpdate>,
    running: HashMap<String, Follower>,
    /// Local units that went (scaled down): where their file was read up to, so the same name
    /// coming back resumes after the old lines (the file is appended to, never truncated).
    read_up_to: HashMap<String, Arc<AtomicU64>>,
    primed: bool,
}

struct Follower {
    id: String,
    task: AbortHandle,
    /// A local unit's position in its log file.
    offset: Option<Arc<AtomicU64>>,
}

impl Followers {
    pub fn new(tx: mpsc::Sender<MeshUpdate>) -> Followers {
        Followers {
            tx,
            running: HashMap::new(),
            read_up_to: HashMap::new(),
            primed: false,
        }
    }

    /// One follower per unit of `units`; those of units that went are stopped.
    pub fn sync(&mut self, launched: &Launched, units: &[UnitStatus]) {
        let from_now = !self.primed;
        self.primed = true;
        for unit in units {
            match self.running.get_mut(&unit.unit) {
                // A restarted local unit writes to the same file: the follower goes on.
                Some(f) if f.id != unit.id && f.offset.is_some() => f.id = unit.id.clone(),
                Some(f) if f.id != unit.id => {
                    f.task.abort();
                    self.running.remove(&unit.unit);
                    self.start(launched, unit, from_now);
                }
                Some(_) => {}
                None => self.start(launched, unit, from_now),
            }
        }
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|name| !units.iter().any(|u| &u.unit == *name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(f) = self.running.remove(&name) {
                f.task.abort();
                if let Some(offset) = f.offset {
                    self.read_up_to.insert(name, offset);
                }
            }
        }
    }

    fn start(&mut self, launched: &Launched, unit: &UnitStatus, from_now: bool) {
        let tx = self.tx.clone();
        let name = unit.unit.clone();
        let (task, offset) = match launched {
            Launched::Docker { runtime, .. } => {
                let lines = runtime.unit_logs(&unit.unit, &unit.id, true, from_now.then_some(0));
                let task = tokio::spawn(async move {
                    let mut lines = lines;
                    while let Some(Ok(line)) = lines.next().await {
                        let _ = tx.try_send(MeshUpdate::Log {
                            unit: line.unit,
                            line: line.text,
                        });
                    }
                });
                (task.abort_handle(), None)
            }
            Launched::Local(run) => {
                let Some(path) = run.log_path(&unit.unit) else {
                    return;
                };
                let offset = match self.read_up_to.remove(&unit.unit) {
                    Some(offset) => offset,
                    None if from_now => Arc::new(AtomicU64::new(file_len(&path))),
                    None => Arc::new(AtomicU64::new(0)),
                };
                let task = tokio::spawn(follow_file(name.clone(), path, offset.clone(), tx));
                (task.abort_handle(), Some(offset))
            }
        };
        self.running.insert(
            name,
            Follower {
                id: unit.id.clone(),
                task,
                offset,
            },
        );
    }

    pub fn stop_all(&mut self) {
        for (_, f) in self.running.drain() {
            f.task.abort();
        }
    }
}

impl Drop for Followers {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn file_len(path: &PathBuf) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Reads what was appended to `path` since `offset`, every [`POLL`], line by line. A line
/// still being written waits for its newline.
async fn follow_file(
    unit: String,
    path: PathBuf,
    offset: Arc<AtomicU64>,
    tx: mpsc::Sender<MeshUpdate>,
) {
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let at = offset.load(Ordering::Relaxed);
        if let Ok(chunk) = read_from(&path, at).await {
            if chunk.is_empty() && file_len(&path) < at {
                // Truncated (not by meshsim): start over.
                offset.store(0, Ordering::Relaxed);
                partial.clear();
            }
            offset.store(at + chunk.len() as u64, Ordering::Relaxed);
            partial.extend_from_slice(&chunk);
            while let Some(nl) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                let _ = tx.try_send(MeshUpdate::Log {
                    unit: unit.clone(),
                    line: text,
                });
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn read_from(path: &PathBuf, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut chunk = Vec::new();
    file.take(MAX_READ).read_to_end(&mut chunk).await?;
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_is_followed_line_by_line_from_its_offset() {
        let dir = std::env::temp_dir().join(format!("meshsim-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("u.log");
        std::fs::write(&path, "old line\n").unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let offset = Arc::new(AtomicU64::new(file_len(&path)));
        let task = tokio::spawn(follow_file("u#1/app".into(), path.clone(), offset, tx));
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"first\nsec").unwrap();
        file.flush().unwrap();
        let line = |u: Option<MeshUpdate>| match u {
            Some(MeshUpdate::Log { unit, line }) => (unit, line),
            other => panic!("not a log line: {other:?}"),
        };
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(line(got.unwrap()), ("u#1/app".into(), "first".into()));
        file.write_all(b"ond\r\n").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(line(got.unwrap()).1, "second");
        task.abort();
        let _ = std::fs::remove_dir_all(dir);
    }
}
