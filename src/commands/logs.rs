//! `meshsim logs UNIT [-f]`: the output of matching units, each line prefixed by its unit when
//! several match.

use std::io::{BufRead, Seek, SeekFrom};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;

use crate::cli::LogsArgs;
use crate::runtime::docker::{selector_matches, DockerRuntime, LogsRequest};
use crate::runtime::local::{LocalRuntime, RunState};

use super::exit;

pub fn run(args: LogsArgs) -> ExitCode {
    super::runtime().block_on(async move {
        // Local runs first: their logs are files.
        if let Ok(local) = LocalRuntime::from_env() {
            let units: Vec<(String, std::path::PathBuf)> = RunState::all(local.state_root())
                .into_iter()
                .flat_map(|r| r.units)
                .filter(|u| selector_matches(&args.unit, &u.unit))
                .map(|u| (u.unit, u.log))
                .collect();
            if !units.is_empty() {
                return follow_files(&units, &args).await;
            }
        }
        let docker = match DockerRuntime::connect().await {
            Ok(d) => d,
            Err(_) => {
                eprintln!(
                    "error: no unit matches `{}`: `meshsim ps` lists the running units",
                    args.unit
                );
                return ExitCode::from(exit::INVALID_INPUT);
            }
        };
        let mut lines = docker.logs(LogsRequest {
            run: None,
            unit: args.unit.clone(),
            follow: args.follow,
            tail: args.tail,
        });
        let mut units_seen = std::collections::BTreeSet::new();
        while let Some(line) = lines.next().await {
            match line {
                Ok(line) => {
                    units_seen.insert(line.unit.clone());
                    println!("{} | {}", line.unit, line.text);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(exit::INVALID_INPUT);
                }
            }
        }
        ExitCode::from(exit::OK)
    })
}

/// Prints local log files (the last `--tail` lines of each), then, with `-f`, whatever they
/// gain until Ctrl-C.
async fn follow_files(units: &[(String, std::path::PathBuf)], args: &LogsArgs) -> ExitCode {
    let mut offsets = Vec::new();
    for (unit, path) in units {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let skip = args
            .tail
            .map_or(0, |n| lines.len().saturating_sub(n as usize));
        for line in &lines[skip..] {
            println!("{unit} | {line}");
        }
        offsets.push(text.len() as u64);
    }
    if !args.follow {
        return ExitCode::from(exit::OK);
    }
    let poll = async {
        loop {
            for ((unit, path), offset) in units.iter().zip(offsets.iter_mut()) {
                let Ok(mut file) = std::fs::File::open(path) else {
                    continue;
                };
                if file.seek(SeekFrom::Start(*offset)).is_err() {
                    continue;
                }
                let mut reader = std::io::BufReader::new(file);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if !line.ends_with('\n') {
                        break; // a partial line: print it once complete
                    }
                    *offset += line.len() as u64;
                    println!("{unit} | {}", line.trim_end_matches('\n'));
                    line.clear();
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        _ = poll => {}
        _ = crate::signals::terminate() => {}
    }
    ExitCode::from(exit::OK)
}
