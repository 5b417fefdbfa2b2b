//! The proxy server: builds clusters, listeners and the admin endpoint from a bootstrap, serves
//! until shutdown, then drains (mini-redis style: the caller owns the shutdown signal, and
//! `start` binds every socket first so a test can bind port 0 and ask for the address).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::config::model::{self, AccessLogFormat, AccessLogSink, NetworkFilter};
use crate::dns::Resolver;
use crate::proxy::access_log::{self, AccessLogger, Format, Sink};
use crate::proxy::admin;
use crate::proxy::cluster::discovery::{is_pod_self, Network};
use crate::proxy::cluster::{ClusterManager, ClusterManagerError};
use crate::proxy::filters::FilterContext;
use crate::proxy::hcm::{HcmError, HttpConnectionManager};
use crate::proxy::listener::{Listener, ListenerStats};
use crate::proxy::reload::{ReloadError, ReloadableListener, Reloader, Summary};
use crate::proxy::runtime::Runtime;
use crate::proxy::stats::Store;
use arc_swap::ArcSwap;

/// Envoy's `ServerInfo.State` numbers, which the `server.state` gauge reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ServerState {
    Live = 0,
    Draining = 1,
    PreInitializing = 2,
    Initializing = 3,
}

impl ServerState {
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Live => "LIVE",
            ServerState::Draining => "DRAINING",
            ServerState::PreInitializing => "PRE_INITIALIZING",
            ServerState::Initializing => "INITIALIZING",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => ServerState::Live,
            1 => ServerState::Draining,
            2 => ServerState::PreInitializing,
            _ => ServerState::Initializing,
        }
    }
}

/// How the process was started, for `/server_info` and the node identity.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    pub config_path: Option<PathBuf>,
    pub config_yaml: Option<String>,
    pub concurrency: usize,
    pub log_level: String,
    pub service_cluster: Option<String>,
    pub service_node: Option<String>,
    pub service_zone: Option<String>,
    pub drain_time: Duration,
    pub pod_ip: Option<IpAddr>,
    pub dns_resolver: Option<SocketAddr>,
    /// Where relative `filename:` paths resolve from on a reload (`--config-base-dir`).
    pub config_base_dir: Option<PathBuf>,
    pub mode: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listener `{listener}`: cannot bind {address}: {source}{hint}")]
    Bind {
        listener: String,
        address: SocketAddr,
        #[source]
        source: io::Error,
        hint: &'static str,
    },
    #[error("listener `{listener}`: address `{address}` is not an IP address")]
    ListenerAddress { listener: String, address: String },
    #[error("listener `{listener}`: {source}")]
    Hcm {
        listener: String,
        #[source]
        source: HcmError,
    },
    #[error("listener `{listener}`: TLS: {source}")]
    Tls {
        listener: String,
        #[source]
        source: crate::proxy::tls::TlsError,
    },
    #[error(transparent)]
    Clusters(#[from] ClusterManagerError),
    #[error("access log `{path}`: {source}")]
    AccessLog {
        path: String,
        #[source]
        source: access_log::SinkError,
    },
    #[error("access log format: {0}")]
    AccessLogFormat(#[from] access_log::FormatError),
    #[error("DNS resolver: {0}")]
    Dns(#[from] crate::dns::DnsError),
}

/// What the admin API and the data plane share about the running server.
pub struct Shared {
    /// The config in force (a reload swaps it).
    pub bootstrap: ArcSwap<model::Bootstrap>,
    pub options: ServerOptions,
    pub store: Store,
    pub clusters: ArcSwap<ClusterManager>,
    pub started: Instant,
    pub started_at: std::time::SystemTime,
    state: AtomicU8,
    /// Set by POST /healthcheck/fail, cleared by /healthcheck/ok; the health_check filter
    /// reads it too.
    healthcheck_failed: Arc<AtomicBool>,
    /// Runtime values: static layers and the admin layer (`/runtime`, `/runtime_modify`).
    pub runtime: Arc<Runtime>,
    /// What a config reload needs, and the access loggers every config so far opened (all
    /// flushed at shutdown).
    reloader: Reloader,
    loggers: std::sync::Mutex<Vec<AccessLogger>>,
    /// `(name, bound address)` of every listener, for `/listeners`.
    pub listener_addrs: Vec<(String, SocketAddr)>,
    /// Flipped to stop accepting and drain (`/drain_listeners`, shutdown).
    drain: watch::Sender<bool>,
    /// Woken by `/quitquitquit`.
    pub quit: Notify,
    pub node: model::NodeInfo,
}

impl Shared {
    /// A failed health check (`POST /healthcheck/fail`) reports DRAINING, as in Envoy.
    pub fn state(&self) -> ServerState {
        if self.healthcheck_failed.load(Ordering::Relaxed) {
            return ServerState::Draining;
        }
        ServerState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Applies a new config (see [`crate::proxy::reload`]): the whole of it, or nothing.
    pub async fn reload(&self, next: model::Bootstrap) -> Result<Summary, ReloadError> {
        let current = self.bootstrap.load_full();
        let clusters = self.clusters.load_full();
        let (new_clusters, loggers, summary) = self
            .reloader
            .apply(&current, &next, &clusters, |c| {
                access_loggers(c).map_err(|e| e.to_string())
            })
            .await?;
        self.clusters.store(new_clusters);
        self.bootstrap.store(Arc::new(next));
        self.loggers.lock().expect("loggers lock").extend(loggers);
        Ok(summary)
    }

    /// `/healthcheck/fail` and `/healthcheck/ok`.
    pub fn set_healthcheck_failed(&self, failed: bool) {
        self.healthcheck_failed.store(failed, Ordering::Relaxed);
        let state = self.state();
        self.store.gauge("server.state").set(state as u64);
        self.store
            .gauge("server.live")
            .set(u64::from(state == ServerState::Live));
    }

    fn set_state(&self, state: ServerState) {
        self.state.store(state as u8, Ordering::Relaxed);
        self.store.gauge("server.state").set(state as u64);
        self.store
            .gauge("server.live")
            .set(u64::from(state == ServerState::Live));
    }

    /// Stops accepting on every listener (Envoy's /drain_listeners) and reports DRAINING.
    pub fn drain_listeners(&self) {
        self.set_state(ServerState::Draining);
        self.drain.send_replace(true);
    }

    /// Refreshes gauges that are computed rather than counted, before stats are read.
    pub fn refresh_gauges(&self) {
        self.store
            .gauge("server.uptime")
            .set(self.started.elapsed().as_secs());
        if let Some(rss) = resident_memory_bytes() {
            self.store.gauge("server.memory_allocated").set(rss);
            self.store.gauge("server.memory_heap_size").set(rss);
        }
    }
}

/// The process's resident set size, from /proc (Linux); Envoy reports tcmalloc's numbers, the
/// closest honest equivalent here.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<Listener>,
    admin: Option<(TcpListener, Vec<AccessLogger>)>,
    drain_rx: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
}

impl Server {
    /// Builds everything and binds every socket; nothing is served until [`Server::run`].
    pub async fn start(
        bootstrap: model::Bootstrap,
        options: ServerOptions,
    ) -> Result<Self, ServerError> {
        let init_started = Instant::now();
        let store = Store::new();
        let resolver = match options.dns_resolver {
            Some(addr) => Resolver::with_nameserver(addr)?,
            None => Resolver::from_system_conf()?,
        };
        let net = Network {
            resolver,
            pod_ip: options.pod_ip,
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let clusters =
            Arc::new(ClusterManager::build(&bootstrap.clusters, &store, &net, shutdown_rx).await?);

        let node = model::NodeInfo {
            id: options
                .service_node
                .clone()
                .unwrap_or_else(|| bootstrap.node.id.clone()),
            cluster: options
                .service_cluster
                .clone()
                .unwrap_or_else(|| bootstrap.node.cluster.clone()),
        };

        // What the HTTP filters read: runtime values (`/runtime_modify` writes them) and the
        // health-check failing flag (`/healthcheck/fail` sets it).
        let filter_context = FilterContext {
            runtime: Arc::new(Runtime::new(&bootstrap.runtime_layers)),
            failing: Arc::new(AtomicBool::new(false)),
            clusters: clusters.clone(),
        };
        let mut listeners = Vec::new();
        let mut listener_addrs = Vec::new();
        let mut all_loggers = Vec::new();
        let mut reloadable = Vec::new();
        for l in &bootstrap.listeners {
            let ip: IpAddr =
                l.address
                    .address
                    .parse()
                    .map_err(|_| ServerError::ListenerAddress {
                        listener: l.name.clone(),
                        address: l.address.address.clone(),
                    })?;
            let bind_addr = SocketAddr::new(localize_bind(ip, options.pod_ip), l.address.port);
            let socket = bind(&l.name, bind_addr).await?;
            let local_addr = socket.local_addr().map_err(|source| ServerError::Bind {
                listener: l.name.clone(),
                address: bind_addr,
                source,
                hint: "",
            })?;
            // Stats name the listener by its configured address (scripts grep for
            // `listener.0.0.0.0_8080.`), with the real port when the config asked for port 0.
            let stat_addr = SocketAddr::new(ip, local_addr.port())
                .to_string()
                .replace(':', "_");
            let chain = l.filter_chains.first();
            if l.filter_chains.len() > 1 {
                tracing::warn!(
                    listener = %l.name,
                    "only the first filter chain is served (filter_chain_match is not simulated)"
                );
            }
            let tls = match chain.and_then(|c| c.tls.as_ref()) {
                Some(t) => Some(
                    crate::proxy::tls::server::Acceptor::new(
                        t,
                        &store,
                        &format!("listener.{stat_addr}."),
                    )
                    .map_err(|source| ServerError::Tls {
                        listener: l.name.clone(),
                        source,
                    })?,
                ),
                None => None,
            };
            let Some(NetworkFilter::HttpConnectionManager(hcm_config)) =
                chain.and_then(|c| c.filters.first())
            else {
                continue;
            };
            let loggers = access_loggers(&hcm_config.access_log)?;
            all_loggers.extend(loggers.iter().cloned());
            let hcm = HttpConnectionManager::new(
                hcm_config,
                clusters.clone(),
                &store,
                &stat_addr,
                loggers,
                &node.cluster,
                &filter_context,
            )
            .map_err(|source| ServerError::Hcm {
                listener: l.name.clone(),
                source,
            })?;
            listener_addrs.push((l.name.clone(), local_addr));
            reloadable.push(ReloadableListener {
                config: l.clone(),
                stat_addr: stat_addr.clone(),
                hcm: hcm.clone(),
            });
            listeners.push(Listener {
                name: l.name.clone(),
                socket,
                local_addr,
                codec: hcm_config.codec_type,
                stats: ListenerStats::new(&store, &stat_addr),
                max_headers: hcm_config.max_headers_count as usize,
                max_header_list_size: hcm_config.max_request_headers_kb * 1024,
                request_headers_timeout: Some(
                    hcm_config
                        .request_headers_timeout
                        .unwrap_or(crate::proxy::hardening::DEFAULT_REQUEST_HEADERS_TIMEOUT),
                ),
                idle_timeout: hcm_config.idle_timeout,
                tls,
                hcm,
            });
        }

        let admin = match &bootstrap.admin {
            Some(a) => {
                let ip: IpAddr =
                    a.address
                        .address
                        .parse()
                        .map_err(|_| ServerError::ListenerAddress {
                            listener: "admin".into(),
                            address: a.address.address.clone(),
                        })?;
                let addr = SocketAddr::new(localize_bind(ip, options.pod_ip), a.address.port);
                let loggers = access_loggers(&a.access_log)?;
                all_loggers.extend(loggers.iter().cloned());
                Some((bind("admin", addr).await?, loggers))
            }
            None => None,
        };

        let gauge = |n: &str, v: u64| store.gauge(n).set(v);
        gauge("server.concurrency", options.concurrency as u64);
        gauge(
            "listener_manager.total_listeners_active",
            listeners.len() as u64,
        );
        gauge("listener_manager.total_listeners_warming", 0);
        gauge("listener_manager.total_listeners_draining", 0);
        gauge("listener_manager.workers_started", 1);
        store
            .counter("listener_manager.listener_added")
            .add(listeners.len() as u64);
        store
            .counter("listener_manager.listener_create_success")
            .add(listeners.len() as u64);
        store
            .histogram("server.initialization_time_ms")
            .record(init_started.elapsed().as_millis() as u64);
        store.gauge("server.version").set(0);
        store
            .text_readout("server.version_text_readout")
            .set(crate::proxy::admin::version_string());

        let (drain, drain_rx) = watch::channel(false);
        let reloader = Reloader {
            store: store.clone(),
            net: net.clone(),
            shutdown: shutdown_tx.subscribe(),
            filter_context: filter_context.clone(),
            service_cluster: node.cluster.clone(),
            listeners: reloadable,
            busy: tokio::sync::Mutex::new(()),
        };
        let shared = Arc::new(Shared {
            bootstrap: ArcSwap::from_pointee(bootstrap),
            options,
            store,
            clusters: ArcSwap::from(clusters),
            reloader,
            loggers: std::sync::Mutex::new(all_loggers),
            started: Instant::now(),
            started_at: std::time::SystemTime::now(),
            state: AtomicU8::new(ServerState::Initializing as u8),
            healthcheck_failed: filter_context.failing.clone(),
            runtime: filter_context.runtime.clone(),
            listener_addrs,
            drain,
            quit: Notify::new(),
            node,
        });
        shared.set_state(ServerState::Live);
        shared.refresh_gauges();
        Ok(Server {
            shared,
            listeners,
            admin,
            drain_rx,
            shutdown_tx,
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// `(name, address)` of each listener as bound.
    pub fn listener_addrs(&self) -> &[(String, SocketAddr)] {
        &self.shared.listener_addrs
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes or `/quitquitquit` is posted, then drains.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let Server {
            shared,
            listeners,
            admin,
            drain_rx,
            shutdown_tx,
        } = self;
        if let Some(path) = shared.options.config_path.clone() {
            spawn_config_watch(shared.clone(), path, shutdown_tx.subscribe());
        }
        let drain_time = shared.options.drain_time;
        let mut tasks = tokio::task::JoinSet::new();
        for l in listeners {
            tasks.spawn(l.serve(drain_rx.clone(), drain_time));
        }
        let mut admin_shutdown = shutdown_tx.subscribe();
        if let Some((socket, loggers)) = admin {
            let shared = shared.clone();
            tokio::spawn(async move {
                admin::serve(socket, shared, loggers, async move {
                    let _ = admin_shutdown.changed().await;
                })
                .await;
            });
        }
        let flusher = {
            let shared = shared.clone();
            let mut stop = shutdown_tx.subscribe();
            let interval = shared
                .bootstrap
                .load()
                .stats_flush_interval
                .max(Duration::from_millis(100));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            shared.refresh_gauges();
                            shared.store.flush();
                        }
                        _ = stop.changed() => return,
                    }
                }
            })
        };

        tokio::select! {
            _ = shutdown => tracing::info!("shutdown requested; draining listeners"),
            _ = shared.quit.notified() => tracing::info!("/quitquitquit; draining listeners"),
        }
        shared.drain_listeners();
        while tasks.join_next().await.is_some() {}
        let _ = shutdown_tx.send(true);
        let _ = flusher.await;
        // Every access logger any config opened, held until this flush: the sink registry keeps
        // only weak references, so lines still queued would otherwise be lost.
        let loggers: Vec<AccessLogger> = shared.loggers.lock().expect("loggers lock").clone();
        for logger in &loggers {
            if let Err(error) = logger.sink().flush().await {
                tracing::warn!(%error, "flushing an access log failed");
            }
        }
    }
}

/// Reloads the config when its file changes or SIGHUP arrives; a config that does not load or
/// cannot be applied is logged and the running one kept.
fn spawn_config_watch(shared: Arc<Shared>, path: PathBuf, shutdown: watch::Receiver<bool>) {
    let file = path.clone();
    crate::proxy::reload::watch_file(path, shutdown, move || {
        let (shared, file) = (shared.clone(), file.clone());
        async move {
            // The same load as at start: the file, with any --config-yaml overlay on top.
            let overlay = shared.options.config_yaml.clone();
            let base_dir = shared.options.config_base_dir.as_deref();
            match crate::config::load_with_overlay(Some(&file), overlay.as_deref(), base_dir) {
                Err(e) => {
                    tracing::error!("config reload rejected; the running config stays:\n{e}")
                }
                Ok(loaded) => match shared.reload(loaded.bootstrap).await {
                    Ok(summary) => tracing::info!(
                        file = %file.display(),
                        clusters_added = summary.clusters_added,
                        clusters_modified = summary.clusters_modified,
                        clusters_removed = summary.clusters_removed,
                        listeners_modified = summary.listeners_modified,
                        "config reloaded"
                    ),
                    Err(e) => tracing::error!("config reload rejected: {e}"),
                },
            }
        }
    });
}

/// Inside a simulated pod, "all interfaces" and "loopback" mean the pod's own address.
fn localize_bind(ip: IpAddr, pod_ip: Option<IpAddr>) -> IpAddr {
    match pod_ip {
        Some(pod) if ip.is_unspecified() || is_pod_self(ip) => pod,
        _ => ip,
    }
}

async fn bind(name: &str, address: SocketAddr) -> Result<TcpListener, ServerError> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    let result = socket.and_then(|s| {
        s.set_reuseaddr(true)?;
        s.bind(address)?;
        s.listen(1024)
    });
    result.map_err(|source| {
        let hint = match source.kind() {
            io::ErrorKind::PermissionDenied => {
                " — ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, grant the capability (setcap cap_net_bind_service=+ep), or change port_value"
            }
            io::ErrorKind::AddrInUse => {
                " — another process (or another listener in this config) already uses it; stop it or change port_value"
            }
            io::ErrorKind::AddrNotAvailable => {
                " — this machine has no such address; use 0.0.0.0 or one of its own addresses"
            }
            _ => "",
        };
        ServerError::Bind {
            listener: name.to_string(),
            address,
            source,
            hint,
        }
    })
}

fn access_loggers(configs: &[model::AccessLog]) -> Result<Vec<AccessLogger>, ServerError> {
    configs
        .iter()
        .map(|c| {
            let format = match &c.format {
                AccessLogFormat::Default => Format::envoy_default(),
                AccessLogFormat::Text(t) => Format::parse_text(t)?,
                AccessLogFormat::Json(map) => Format::json(map.clone())?,
            };
            let (sink, path) = match &c.sink {
                AccessLogSink::File(path) => (Sink::file(path), path.clone()),
                AccessLogSink::Stdout => (Sink::stdout(), "/dev/stdout".to_string()),
                AccessLogSink::Stderr => (Sink::stderr(), "/dev/stderr".to_string()),
            };
            let sink = sink.map_err(|source| ServerError::AccessLog { path, source })?;
            Ok(AccessLogger::new(format, sink))
        })
        .collect()
}
