//! `meshsim logs`: the output of matching units, split into lines, merged as it arrives.

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};

use super::error::DockerError;
use super::DockerRuntime;

/// One line of one unit's output, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `service#replica/role`.
    pub unit: String,
    /// Written to stderr (the proxy logs there, as Envoy does).
    pub stderr: bool,
    pub text: String,
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    /// Only this run; None: every run on the daemon.
    pub run: Option<String>,
    /// A unit name or a prefix of one that ends at a component boundary: `service1` matches
    /// `service1#2/sidecar` but not `service10#1/app`; `service1#2` and `service1#2/app` narrow.
    pub unit: String,
    /// Keep streaming new output until every unit stops.
    pub follow: bool,
    /// Only the last N lines of each unit (Docker's `--tail`); None: all of them.
    pub tail: Option<u32>,
}

/// Does `selector` name `unit` (or a group of units containing it)?
pub fn selector_matches(selector: &str, unit: &str) -> bool {
    if selector.is_empty() || selector == unit {
        return true;
    }
    match unit.strip_prefix(selector) {
        Some(rest) => {
            selector.ends_with(['#', '/']) || rest.starts_with('#') || rest.starts_with('/')
        }
        None => false,
    }
}

impl DockerRuntime {
    /// Log lines of the units `request` selects, demultiplexed (stdout/stderr), split into
    /// lines and merged across units in arrival order. The stream fails with
    /// [`DockerError::NoMatchingUnit`] when the selector matches nothing.
    pub fn logs(&self, request: LogsRequest) -> BoxStream<'static, Result<LogLine, DockerError>> {
        let runtime = self.clone();
        stream::once(async move {
            let units = runtime.list(request.run.as_deref()).await?;
            let chosen: Vec<_> = units
                .into_iter()
                .filter(|u| selector_matches(&request.unit, &u.unit))
                .collect();
            if chosen.is_empty() {
                return Err(DockerError::NoMatchingUnit {
                    selector: request.unit.clone(),
                });
            }
            let tail = request
                .tail
                .map(|n| n.to_string())
                .unwrap_or_else(|| "all".into());
            let options = LogsOptionsBuilder::new()
                .follow(request.follow)
                .stdout(true)
                .stderr(true)
                .tail(&tail)
                .build();
            let per_unit = chosen.into_iter().map(|u| {
                let raw = runtime.docker.logs(&u.id, Some(options.clone()));
                let context = format!("reading the logs of {}", u.unit);
                let endpoint = runtime.endpoint.clone();
                lines(
                    u.unit,
                    raw.map_err(move |e| DockerError::api(&endpoint, context.clone(), e)),
                )
                .boxed()
            });
            Ok(stream::select_all(per_unit))
        })
        .try_flatten()
        .boxed()
    }
}

impl DockerRuntime {
    /// The output of one container, by id (not by unit name, which a restarted pod reuses),
    /// split into lines: from `tail` lines back (None: all), and, with `follow`, until the
    /// container stops.
    pub fn unit_logs(
        &self,
        unit: &str,
        id: &str,
        follow: bool,
        tail: Option<u32>,
    ) -> BoxStream<'static, Result<LogLine, DockerError>> {
        let tail = tail.map(|n| n.to_string()).unwrap_or_else(|| "all".into());
        let options = LogsOptionsBuilder::new()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .tail(&tail)
            .build();
        let raw = self.docker.logs(id, Some(options));
        let context = format!("reading the logs of {unit}");
        let endpoint = self.endpoint.clone();
        lines(
            unit.to_string(),
            raw.map_err(move |e| DockerError::api(&endpoint, context.clone(), e)),
        )
        .boxed()
    }
}

/// Splits one unit's chunks into lines; chunks are not line-aligned, and a last line without
/// a newline is still a line.
fn lines(
    unit: String,
    chunks: impl futures_util::Stream<Item = Result<LogOutput, DockerError>> + Send + 'static,
) -> impl futures_util::Stream<Item = Result<LogLine, DockerError>> + Send + 'static {
    struct State<S> {
        chunks: S,
        unit: String,
        // Partial lines, per stream: [stdout, stderr].
        partial: [Vec<u8>; 2],
        ready: std::collections::VecDeque<Result<LogLine, DockerError>>,
        ended: bool,
    }
    let state = State {
        chunks: Box::pin(chunks),
        unit,
        partial: [Vec::new(), Vec::new()],
        ready: Default::default(),
        ended: false,
    };
    stream::unfold(state, |mut s| async move {
        loop {
            if let Some(item) = s.ready.pop_front() {
                return Some((item, s));
            }
            if s.ended {
                return None;
            }
            match s.chunks.next().await {
                Some(Ok(output)) => {
                    let (stderr, bytes) = match output {
                        LogOutput::StdErr { message } => (true, message),
                        LogOutput::StdOut { message } | LogOutput::Console { message } => {
                            (false, message)
                        }
                        LogOutput::StdIn { .. } => continue,
                    };
                    let buf = &mut s.partial[usize::from(stderr)];
                    buf.extend_from_slice(&bytes);
                    while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=nl).collect();
                        s.ready.push_back(Ok(line_of(&s.unit, stderr, &line)));
                    }
                }
                Some(Err(e)) => {
                    s.ended = true;
                    s.ready.push_back(Err(e));
                }
                None => {
                    s.ended = true;
                    for stderr in [false, true] {
                        let rest = std::mem::take(&mut s.partial[usize::from(stderr)]);
                        if !rest.is_empty() {
                            s.ready.push_back(Ok(line_of(&s.unit, stderr, &rest)));
                        }
                    }
                }
            }
        }
    })
}

fn line_of(unit: &str, stderr: bool, raw: &[u8]) -> LogLine {
    let text = String::from_utf8_lossy(raw);
    LogLine {
        unit: unit.to_string(),
        stderr,
        text: text.trim_end_matches(['\n', '\r']).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn selectors_stop_at_component_boundaries() {
        assert!(selector_matches("service1", "service1#2/sidecar"));
        assert!(!selector_matches("service1", "service10#1/app"));
        assert!(selector_matches("service1#2", "service1#2/app"));
        assert!(!selector_matches("service1#2", "service1#20/app"));
        assert!(selector_matches("service1#", "service1#20/app"));
        assert!(selector_matches("front#1/proxy", "front#1/proxy"));
        assert!(selector_matches("", "anything#1/app"));
    }

    #[tokio::test]
    async fn chunks_become_lines_per_stream() {
        let out = |t: &'static str| {
            Ok(LogOutput::StdOut {
                message: Bytes::from(t),
            })
        };
        let err = |t: &'static str| {
            Ok(LogOutput::StdErr {
                message: Bytes::from(t),
            })
        };
        let chunks = stream::iter(vec![out("a\nb"), err("x\r\n"), out("c\nd"), err("y")]);
        let got: Vec<LogLine> = lines("u#1/app".into(), chunks).try_collect().await.unwrap();
        let texts: Vec<(bool, &str)> = got.iter().map(|l| (l.stderr, l.text.as_str())).collect();
        assert_eq!(
            texts,
            [
                (false, "a"),
                (true, "x"),
                (false, "bc"),
                (false, "d"),
                (true, "y")
            ]
        );
        assert!(got.iter().all(|l| l.unit == "u#1/app"));
    }
}
