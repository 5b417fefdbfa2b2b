//! `meshsim proxy` (and `envoy`): load the config, start the server, serve until SIGINT/SIGTERM
//! or `/quitquitquit`, then drain.

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{Mode, ProxyArgs};
use crate::config::{self, diagnostics::Severity, LoadError};
use crate::proxy::{logging, Server, ServerOptions};

use super::exit;

pub fn run(args: ProxyArgs) -> ExitCode {
    let level = args
        .component_log_level
        .as_deref()
        .and_then(most_verbose_component)
        .filter(|c| verbosity(c) > verbosity(&args.log_level))
        .unwrap_or(args.log_level.clone());
    if logging::tracing_level(&level).is_none() {
        eprintln!(
            "error: invalid --log-level `{level}`; use one of trace, debug, info, warning, error, critical, off"
        );
        return ExitCode::from(exit::INVALID_INPUT);
    }
    logging::init(&level);

    if args.config_path.is_none() && args.config_yaml.is_none() {
        eprintln!("error: no config given; pass -c/--config-path FILE or --config-yaml YAML");
        return ExitCode::from(exit::INVALID_INPUT);
    }
    let loaded = match config::load_with_overlay(
        args.config_path.as_deref(),
        args.config_yaml.as_deref(),
        args.config_base_dir.as_deref(),
    ) {
        Ok(loaded) => loaded,
        Err(LoadError::Invalid(report)) => {
            eprintln!("{report}");
            return ExitCode::from(exit::INVALID_INPUT);
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(exit::INVALID_INPUT);
        }
    };
    if loaded.report.warnings().next().is_some() {
        eprintln!("{}", loaded.report.render(Severity::Warning));
    }
    let label = args
        .config_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "--config-yaml".into());
    if args.mode == Mode::Validate {
        println!("configuration '{label}' OK");
        return ExitCode::from(exit::OK);
    }

    let concurrency = args.concurrency.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let runtime = match worker_runtime(concurrency) {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let options = ServerOptions {
        config_path: args.config_path.clone(),
        config_yaml: args.config_yaml.clone(),
        concurrency,
        log_level: args.log_level.clone(),
        service_cluster: args.service_cluster.clone(),
        service_node: args.service_node.clone(),
        service_zone: args.service_zone.clone(),
        drain_time: Duration::from_secs(args.drain_time_s),
        pod_ip: args.pod_ip,
        dns_resolver: args.dns_resolver,
        config_base_dir: args.config_base_dir.clone(),
        mode: match args.mode {
            Mode::Serve => "Serve",
            Mode::Validate => "Validate",
            Mode::InitOnly => "InitOnly",
        }
        .into(),
    };
    runtime.block_on(async move {
        let server = match Server::start(loaded.bootstrap, options).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(exit::FAILURE);
            }
        };
        for (name, addr) in server.listener_addrs() {
            tracing::info!(listener = %name, address = %addr, "listening");
        }
        if let Some(addr) = server.admin_addr() {
            tracing::info!(address = %addr, "admin listening");
        }
        if args.mode == Mode::InitOnly {
            return ExitCode::from(exit::OK);
        }
        server.run(crate::signals::terminate()).await;
        ExitCode::from(exit::OK)
    })
}

fn verbosity(level: &str) -> u8 {
    match level {
        "trace" => 6,
        "debug" => 5,
        "info" => 4,
        "warning" | "warn" => 3,
        "error" => 2,
        "critical" => 1,
        _ => 0,
    }
}

/// `--component-log-level upstream:debug,connection:trace` → the most verbose level named.
fn most_verbose_component(spec: &str) -> Option<String> {
    spec.split(',')
        .filter_map(|part| part.split_once(':').map(|(_, l)| l.trim().to_string()))
        .max_by_key(|l| verbosity(l))
}

/// Tasks a one-worker runtime runs between two polls for I/O while it has work queued (an idle
/// runtime polls at once). tokio's default is 61. h2c runs a task per stream, so under load the
/// queue is rarely empty; measured against the multi-thread baseline (bench/proxy.sh, h2c):
/// 61 gave −20%, 256 −13%, 1024 −3% (within noise), 4096 −7%; HTTP/1.1 was within noise at
/// 61, 256 and 1024.
const EVENT_INTERVAL: u32 = 1024;

/// The runtime the proxy's workers run on. One worker is one thread running one event loop,
/// as an Envoy worker is: a current-thread runtime, where waking a task is a queue push on the
/// same thread. More workers share a work-stealing pool.
///
/// Against a one-worker multi-thread runtime (bench/proxy.sh, interleaved A/B, same backend):
/// +12% HTTP/1.1 requests/s, and h2c within noise given [`EVENT_INTERVAL`].
fn worker_runtime(concurrency: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if concurrency <= 1 {
        return tokio::runtime::Builder::new_current_thread()
            .event_interval(EVENT_INTERVAL)
            .enable_all()
            .build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(concurrency)
        .thread_name("meshsim-worker")
        .enable_all()
        .build()
}
