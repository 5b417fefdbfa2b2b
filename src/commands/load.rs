//! `meshsim load`: run the load generator on its own.
//!
//! For `meshsim test` inside a container on a scenario's network: `--plan FILE|-` or
//! `--plan-json TEXT` takes a [`LoadPlan`] as JSON, and the [`LoadReport`] comes out as one
//! line of JSON on stdout. For humans: `--target HOST:PORT --rate R --duration D --path P`
//! builds a one-phase plan and prints a short summary (`--json` for the report instead).
//! Progress goes to stderr, a line a second. SIGINT/SIGTERM stop the run: what is in flight is
//! cancelled and the report (marked `interrupted`) is still printed.
//!
//! Exit codes: 0 when the plan ran (whatever its outcomes), 2 for a bad plan, 3 when the
//! generator could not run at all.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;
use tokio::time::Instant;

use super::exit;
use crate::traffic::generator::{self, GeneratorError, Progress, ProgressSnapshot};
use crate::traffic::plan::{LoadPlan, PhasePlan, Protocol, Rate, RequestTemplate};
use crate::traffic::report::{LoadReport, Tally};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// A load plan as JSON: a file, or `-` for stdin.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["plan_json", "target"])]
    pub plan: Option<PathBuf>,
    /// A load plan as JSON text.
    #[arg(long, value_name = "JSON", conflicts_with = "target")]
    pub plan_json: Option<String>,
    /// Quick plan: the `host:port` to load.
    #[arg(long, value_name = "HOST:PORT", required_unless_present_any = ["plan", "plan_json"])]
    pub target: Option<String>,
    /// Quick plan: requests per second (open loop).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Quick plan: how long to send (`10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = sample_services::parse_duration)]
    pub duration: Duration,
    /// Quick plan: the request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Quick plan: the request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Quick plan: http1, h2c or grpc.
    #[arg(long, default_value = "http1", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// Quick plan: HTTP/1.1 connections (one request in flight on each), or h2c connections.
    #[arg(long, default_value_t = crate::traffic::decode::DEFAULT_CONNECTIONS)]
    pub connections: u32,
    /// Quick plan: a request with no complete response after this long is a timeout.
    #[arg(long, default_value = "5s", value_parser = sample_services::parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON instead of a summary (always so with --plan/--plan-json).
    #[arg(long)]
    pub json: bool,
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    Protocol::from_name(s).ok_or_else(|| format!("`{s}` is not a protocol: use http1, h2c or grpc"))
}

pub fn run(args: LoadArgs) -> ExitCode {
    let json = args.json || args.target.is_none();
    let plan = match read_plan(&args) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("meshsim load: {message}");
            return ExitCode::from(exit::INVALID_INPUT);
        }
    };
    let runtime = super::runtime();
    let started = std::time::Instant::now();
    let result = runtime.block_on(run_with_progress_lines(&plan));
    let elapsed = started.elapsed();
    match result {
        Ok(report) => {
            if json {
                let mut out = std::io::stdout().lock();
                let line = serde_json::to_string(&report).expect("a report serialises");
                let _ = writeln!(out, "{line}");
            } else {
                print!("{}", summary(&plan, &report, elapsed));
            }
            ExitCode::from(exit::OK)
        }
        Err(e @ GeneratorError::InvalidPlan { .. }) => {
            eprintln!("meshsim load: {e}");
            ExitCode::from(exit::INVALID_INPUT)
        }
        Err(e) => {
            eprintln!("meshsim load: {e}");
            ExitCode::from(exit::INFRASTRUCTURE)
        }
    }
}

fn read_plan(args: &LoadArgs) -> Result<LoadPlan, String> {
    let (text, source) = match (&args.plan, &args.plan_json, &args.target) {
        (Some(path), _, _) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read the plan from stdin: {e}"))?;
            (text, "stdin".to_string())
        }
        (Some(path), _, _) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the plan {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        (None, Some(text), _) => (text.clone(), "--plan-json".to_string()),
        (None, None, Some(target)) => return Ok(quick_plan(args, target)),
        (None, None, None) => return Err("give --plan FILE|-, --plan-json TEXT or --target".into()),
    };
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "the plan in {source} is not a load plan: {e} (see src/traffic/plan.rs for the shape)"
        )
    })
}

fn quick_plan(args: &LoadArgs, target: &str) -> LoadPlan {
    LoadPlan {
        target: target.to_string(),
        protocol: args.protocol,
        connections: args.connections,
        timeout: args.timeout,
        phases: vec![PhasePlan {
            name: "load".into(),
            duration: args.duration,
            rate: Rate::Constant(args.rate),
            requests: vec![RequestTemplate {
                name: args.path.clone(),
                weight: 1,
                method: args.method.clone(),
                path: args.path.clone(),
                headers: Vec::new(),
                body: None,
            }],
        }],
    }
}

/// Runs the plan from now, printing a progress line a second on stderr, until it ends or a
/// signal stops it.
async fn run_with_progress_lines(plan: &LoadPlan) -> Result<LoadReport, GeneratorError> {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        crate::signals::terminate().await;
        let _ = stop_tx.send(true);
    });
    let progress = Arc::new(Progress::default());
    let start = Instant::now();
    let printer = tokio::spawn(print_progress(progress.clone(), start));
    let result = generator::run_with_progress(plan, start, stop, progress).await;
    printer.abort();
    result
}

async fn print_progress(progress: Arc<Progress>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = ProgressSnapshot::default();
    loop {
        tick.tick().await;
        let now = progress.snapshot();
        eprintln!(
            "load: {:>4.0}s  done {}  ({}/s)  ok {}  failed {}  connect_error {}  timeout {}  reset {}",
            start.elapsed().as_secs_f64(),
            now.sent,
            now.sent - last.sent,
            now.success,
            now.failed,
            now.connect_error,
            now.timeout,
            now.reset,
        );
        let _ = std::io::stderr().flush();
        last = now;
    }
}

/// The human summary: outcomes, achieved rate, latency percentiles.
fn summary(plan: &LoadPlan, report: &LoadReport, elapsed: Duration) -> String {
    let mut total = Tally::default();
    let mut scheduled = 0;
    for p in &report.phases {
        total.merge(&p.total());
        scheduled += p.scheduled;
    }
    let target_rps = scheduled as f64 / plan.total_duration().as_secs_f64();
    let achieved = report.sent as f64 / elapsed.as_secs_f64();
    let outcomes: Vec<String> = total
        .counts
        .0
        .iter()
        .map(|(o, n)| format!("{o}={n}"))
        .collect();
    let ms = |q: f64| {
        total.latency.quantile(q).map_or("-".to_string(), |d| {
            format!("{:.2}ms", d.as_secs_f64() * 1e3)
        })
    };
    let mut s = format!(
        "target {} ({:?}, {} connections): {} sent of {} scheduled{}\n",
        plan.target,
        plan.protocol,
        plan.connections,
        report.sent,
        scheduled,
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        },
    );
    s += &format!("outcomes: {}\n", outcomes.join(" "));
    s += &format!(
        "rate: target {target_rps:.1}/s, achieved {achieved:.1}/s (ratio {:.4}; sent over wall time, drain included)\n",
        achieved / target_rps
    );
    s += &format!(
        "latency from intended send ({} recorded of {} sent): p50 {} p90 {} p99 {} max {}\n",
        total.latency.count(),
        report.sent,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(1.0),
    );
    s
}
