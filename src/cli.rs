//! Command-line definitions.
//!
//! One binary, several personalities: `meshsim <command>`, and — when invoked under the name
//! `envoy` (a symlink, or the image's `/usr/local/bin/envoy`) — Envoy's own flags, so a
//! `command: envoy -c /etc/envoy.yaml` copied from a compose file keeps working.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "meshsim",
    version,
    about = "A local-dev service-mesh simulator"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Envoy-compatible data plane on an Envoy config (v3, v2 or v1).
    Proxy(Box<ProxyArgs>),
    /// Check scenario files and Envoy configs: every error with file:line:col, a snippet and a
    /// hint. Exit 2 when any file is invalid.
    Validate(ValidateArgs),
    /// Launch a scenario's mesh, wait until it is ready, and keep it up until Ctrl-C.
    Up(UpArgs),
    /// Run scenarios' traffic, faults and expectations headless: a table per scenario, JSON and
    /// JUnit reports; exit 0 all passed, 1 an expectation failed, 2 invalid input, 3
    /// infrastructure failure.
    Test(TestArgs),
    /// Remove runs (containers, networks, processes) by label, idempotently.
    Down(DownArgs),
    /// List runs and their units with published addresses.
    Ps(PsArgs),
    /// Print (and follow) the output of units.
    Logs(LogsArgs),
    /// Build (or find) the local Docker image that runs meshsim's proxies and samples; print
    /// its tag.
    Image,
    /// Watch proxies live in the terminal: rates, success, latency and the split over endpoints,
    /// from their admin APIs (meshsim's or real Envoy's).
    Top(TopArgs),
    /// Run a sample app (the apps scenarios use).
    Service(Box<sample_services::ServiceArgs>),
    /// Run the open-loop load generator: a JSON load plan in, a JSON report out (or a quick
    /// one-phase run with --target/--rate/--duration and a human summary).
    Load(Box<crate::commands::load::LoadArgs>),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The scenario file (scenarios/*.yaml).
    pub scenario: PathBuf,
    /// Where the pods run: Docker containers, local processes, or Docker when its daemon
    /// answers (else local, saying so).
    #[arg(long, value_enum, default_value = "auto")]
    pub runtime: crate::supervisor::RuntimeChoice,
    /// Return once the mesh is ready, leaving it running (`meshsim down` removes it).
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Publish every `publish:` port on a free host port instead (see `meshsim ps`).
    #[arg(long)]
    pub ephemeral_ports: bool,
    /// Plain summary lines instead of the terminal UI (the default when stdout is not a
    /// terminal).
    #[arg(long)]
    pub no_tui: bool,
    /// Seconds to wait for readiness.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Seconds between the summary lines a foreground run prints (per proxy cluster: rps,
    /// success, p50/p99, the split over endpoints).
    #[arg(long, default_value_t = 5)]
    pub stats_interval: u64,
    /// Seconds between the terminal UI's scrapes of each proxy's admin API.
    #[arg(long, default_value_t = 1)]
    pub scrape_interval: u64,
    /// Internal: supervise a detached local run with this id, touching FILE once ready.
    #[arg(long, hide = true, num_args = 2, value_names = ["RUN", "FILE"])]
    pub supervise: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Scenario files, or directories of them (every `*.yaml` scenario inside).
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,
    /// Write JUnit XML here (one testcase per expectation).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Where the pods run (as for `up`).
    #[arg(long, value_enum, default_value = "auto")]
    pub runtime: crate::supervisor::RuntimeChoice,
    /// Seconds to wait for each mesh to be ready.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// A scenario file or a scenario name; without it, the only running scenario.
    pub scenario: Option<String>,
    /// Every meshsim run, of every scenario.
    #[arg(long, conflicts_with = "scenario")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Admin endpoints: `127.0.0.1:9901` or `http://127.0.0.1:9901`.
    #[arg(required = true, value_name = "ADMIN_URL")]
    pub admin: Vec<String>,
    /// Seconds between scrapes.
    #[arg(long, default_value_t = 1)]
    pub interval: u64,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// A JSON array of units, for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// `service`, `service#2` or `service#2/sidecar`.
    pub unit: String,
    /// Keep printing new output.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N lines of each unit.
    #[arg(long)]
    pub tail: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Config files (YAML or JSON).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Do not print warnings (deprecated forms, ignored fields).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Load the config and serve (the default).
    Serve,
    /// Load and validate the config, then exit 0 (valid) or 2 (invalid).
    Validate,
    /// Load the config and initialise everything, then exit without serving.
    InitOnly,
}

/// The proxy's flags: Envoy's names where Envoy has the flag, so scripts keep working.
#[derive(Debug, Clone, Args)]
pub struct ProxyArgs {
    /// Path to the bootstrap config (YAML or JSON).
    #[arg(short = 'c', long = "config-path", value_name = "FILE")]
    pub config_path: Option<PathBuf>,
    /// Inline YAML, merged over --config-path as Envoy does.
    #[arg(long = "config-yaml", value_name = "YAML")]
    pub config_yaml: Option<String>,
    /// Worker threads (default: the number of CPUs, as Envoy).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// trace, debug, info, warning/warn, error, critical, off.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    pub log_level: String,
    /// Envoy's per-component levels (`upstream:debug,connection:trace`); accepted, applied as a
    /// whole-process level when more verbose than --log-level.
    #[arg(long = "component-log-level")]
    pub component_log_level: Option<String>,
    /// Sets the node's cluster (`x-envoy-downstream-service-cluster`, /server_info).
    #[arg(long = "service-cluster")]
    pub service_cluster: Option<String>,
    /// Sets the node's id.
    #[arg(long = "service-node")]
    pub service_node: Option<String>,
    #[arg(long = "service-zone")]
    pub service_zone: Option<String>,
    #[arg(long, value_enum, default_value = "serve")]
    pub mode: Mode,
    /// Seconds to drain connections on shutdown before closing them.
    #[arg(long = "drain-time-s", default_value_t = 5)]
    pub drain_time_s: u64,
    /// meshsim: act as if this loopback address were the pod's own network namespace. Listeners
    /// on 0.0.0.0/127.0.0.1 bind it instead, and upstreams at 127.0.0.1/localhost dial it, so
    /// sidecar configs saying 127.0.0.1:8080 work unchanged when pods are local processes.
    #[arg(long = "pod-ip", value_name = "IP")]
    pub pod_ip: Option<IpAddr>,
    /// meshsim: resolve cluster DNS names with this name server instead of /etc/resolv.conf.
    #[arg(long = "dns-resolver", value_name = "IP:PORT")]
    pub dns_resolver: Option<SocketAddr>,
    /// meshsim: resolve relative `filename:` paths in the config from this directory instead of
    /// the config file's own (the local runtime runs proxies on a copy of the user's config).
    #[arg(long = "config-base-dir", value_name = "DIR")]
    pub config_base_dir: Option<PathBuf>,

    // Envoy flags accepted for compatibility; they have no effect in a simulator.
    #[arg(long = "base-id", hide = true)]
    pub base_id: Option<u64>,
    #[arg(long = "use-dynamic-base-id", hide = true)]
    pub use_dynamic_base_id: bool,
    #[arg(long = "disable-hot-restart", hide = true)]
    pub disable_hot_restart: bool,
    #[arg(long = "restart-epoch", hide = true)]
    pub restart_epoch: Option<u64>,
    #[arg(long = "parent-shutdown-time-s", hide = true)]
    pub parent_shutdown_time_s: Option<u64>,
    #[arg(long = "drain-strategy", hide = true)]
    pub drain_strategy: Option<String>,
    #[arg(long = "log-format", hide = true)]
    pub log_format: Option<String>,
    #[arg(long = "log-path", hide = true)]
    pub log_path: Option<PathBuf>,
    #[arg(long = "file-flush-interval-msec", hide = true)]
    pub file_flush_interval_msec: Option<u64>,
    #[arg(long = "allow-unknown-static-fields", hide = true)]
    pub allow_unknown_static_fields: bool,
    #[arg(long = "reject-unknown-dynamic-fields", hide = true)]
    pub reject_unknown_dynamic_fields: bool,
    #[arg(long = "ignore-unknown-dynamic-fields", hide = true)]
    pub ignore_unknown_dynamic_fields: bool,
    #[arg(long = "local-address-ip-version", hide = true)]
    pub local_address_ip_version: Option<String>,
    #[arg(long = "cpuset-threads", hide = true)]
    pub cpuset_threads: bool,
}

/// Envoy's personality: `envoy -c FILE …`.
#[derive(Debug, Parser)]
#[command(name = "envoy", version, about = "meshsim's Envoy-compatible proxy")]
pub struct EnvoyCli {
    #[command(flatten)]
    pub proxy: ProxyArgs,
}

/// Is this process running under the name `envoy`?
pub fn invoked_as_envoy(argv0: &OsString) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "envoy")
}

/// Kubernetes manifests often pass `args: ["--config-path /etc/envoy/x.yaml"]` — flag and value
/// in ONE argument (seed 000 does). Envoy copes; so do we: split such an argument at its first
/// space when it is a long flag.
pub fn split_joined_flags(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    for arg in args {
        match arg.to_str() {
            Some(s) if s.starts_with("--") && !s.contains('=') && s.contains(' ') => {
                let (flag, value) = s.split_once(' ').expect("contains a space");
                out.push(OsString::from(flag));
                out.push(OsString::from(value.trim_start()));
            }
            _ => out.push(arg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_flag_and_value_are_split() {
        let args = split_joined_flags(
            ["envoy", "--config-path /etc/envoy/x.yaml", "-l", "debug"].map(OsString::from),
        );
        assert_eq!(
            args,
            ["envoy", "--config-path", "/etc/envoy/x.yaml", "-l", "debug"].map(OsString::from)
        );
    }

    #[test]
    fn envoy_personality_takes_envoy_flags() {
        let cli = EnvoyCli::try_parse_from([
            "envoy",
            "-c",
            "/etc/envoy.yaml",
            "--service-cluster",
            "front-proxy",
            "--concurrency",
            "1",
            "--disable-hot-restart",
        ])
        .unwrap();
        assert_eq!(
            cli.proxy.config_path,
            Some(PathBuf::from("/etc/envoy.yaml"))
        );
        assert_eq!(cli.proxy.service_cluster.as_deref(), Some("front-proxy"));
        assert_eq!(cli.proxy.concurrency, Some(1));
    }

    #[test]
    fn argv0_envoy_is_recognised() {
        assert!(invoked_as_envoy(&OsString::from("/usr/local/bin/envoy")));
        assert!(!invoked_as_envoy(&OsString::from("/usr/local/bin/meshsim")));
    }
}
