//! Hot reload: the proxy watches its config file (and reloads on SIGHUP). A new config that
//! loads and validates is applied without dropping a request: clusters whose config did not
//! change are kept as they are (hosts, health, connections, counters), changed and new ones are
//! built and warmed first, then every listener's connection manager (routes, filters, access
//! logs) is swapped atomically. Requests in flight finish on what they started with. A config
//! that does not load is rejected with its errors logged, and the old one stays.
//!
//! What a listener is bound to — its address, TLS, codec, header limits — cannot change
//! without a restart; such a config is rejected, saying so. (Envoy itself cannot reload a
//! file-based config at all: its issue #156.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::config::model::{self, NetworkFilter};
use crate::proxy::access_log::AccessLogger;
use crate::proxy::cluster::discovery::Network;
use crate::proxy::cluster::{ClusterManager, ClusterManagerError};
use crate::proxy::filters::FilterContext;
use crate::proxy::hcm::{HcmError, HttpConnectionManager};
use crate::proxy::stats::Store;

/// How often the config file is looked at.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Load(String),
    #[error("listener `{listener}`: {what} changed; that needs a restart (the old config stays)")]
    ListenerChanged { listener: String, what: String },
    #[error("listeners were added or removed ({0}); that needs a restart (the old config stays)")]
    ListenerSet(String),
    #[error(transparent)]
    Clusters(#[from] ClusterManagerError),
    #[error("listener `{listener}`: {source}")]
    Hcm {
        listener: String,
        #[source]
        source: HcmError,
    },
    #[error("{0}")]
    AccessLog(String),
}

/// What a reload changed, for the log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub clusters_added: usize,
    pub clusters_modified: usize,
    pub clusters_removed: usize,
    pub listeners_modified: usize,
}

/// One listener's reloadable part.
pub struct ReloadableListener {
    pub config: model::Listener,
    pub stat_addr: String,
    pub hcm: HttpConnectionManager,
}

/// Everything a reload needs, built by the server at start.
pub struct Reloader {
    pub store: Store,
    pub net: Network,
    pub shutdown: watch::Receiver<bool>,
    pub filter_context: FilterContext,
    pub service_cluster: String,
    pub listeners: Vec<ReloadableListener>,
    /// One reload at a time.
    pub busy: tokio::sync::Mutex<()>,
}

/// Builds a listener's access loggers (the server's function, passed in to keep one copy).
pub type LoggerBuilder = fn(&[model::AccessLog]) -> Result<Vec<AccessLogger>, String>;

impl Reloader {
    /// Applies `next` over `current`. On success returns the new cluster manager and the new
    /// access loggers (for the final flush); on failure nothing changed.
    pub async fn apply(
        &self,
        current: &model::Bootstrap,
        next: &model::Bootstrap,
        clusters: &ClusterManager,
        loggers: LoggerBuilder,
    ) -> Result<(Arc<ClusterManager>, Vec<AccessLogger>, Summary), ReloadError> {
        let _one = self.busy.lock().await;
        check_listeners(current, next)?;
        let (new_clusters, changes) = clusters
            .rebuild(
                &next.clusters,
                &self.store,
                &self.net,
                self.shutdown.clone(),
            )
            .await?;
        let new_clusters = Arc::new(new_clusters);
        let context = FilterContext {
            clusters: new_clusters.clone(),
            ..self.filter_context.clone()
        };
        // Build every connection manager first, swap them only when all built: a reload
        // applies whole or not at all.
        let mut built = Vec::new();
        let mut all_loggers = Vec::new();
        for held in &self.listeners {
            let Some(listener) = next.listeners.iter().find(|l| l.name == held.config.name) else {
                continue;
            };
            let Some(NetworkFilter::HttpConnectionManager(hcm)) = listener
                .filter_chains
                .first()
                .and_then(|c| c.filters.first())
            else {
                continue;
            };
            let access = loggers(&hcm.access_log).map_err(ReloadError::AccessLog)?;
            all_loggers.extend(access.iter().cloned());
            let shared = held
                .hcm
                .build_shared(
                    hcm,
                    new_clusters.clone(),
                    &self.store,
                    &held.stat_addr,
                    access,
                    &self.service_cluster,
                    &context,
                )
                .map_err(|source| ReloadError::Hcm {
                    listener: held.config.name.clone(),
                    source,
                })?;
            let changed = held.config != *listener;
            built.push((held, shared, changed));
        }
        let mut summary = Summary {
            clusters_added: changes.added,
            clusters_modified: changes.modified,
            clusters_removed: changes.removed,
            listeners_modified: 0,
        };
        for (held, shared, changed) in built {
            held.hcm.replace(shared);
            summary.listeners_modified += usize::from(changed);
        }
        let store = &self.store;
        store
            .counter("cluster_manager.cluster_added")
            .add(summary.clusters_added as u64);
        store
            .counter("cluster_manager.cluster_modified")
            .add(summary.clusters_modified as u64);
        store
            .counter("cluster_manager.cluster_removed")
            .add(summary.clusters_removed as u64);
        store
            .gauge("cluster_manager.active_clusters")
            .set(next.clusters.len() as u64);
        store
            .counter("listener_manager.listener_modified")
            .add(summary.listeners_modified as u64);
        Ok((new_clusters, all_loggers, summary))
    }
}

/// The listeners must be the same set, each bound the same way.
fn check_listeners(current: &model::Bootstrap, next: &model::Bootstrap) -> Result<(), ReloadError> {
    let names = |b: &model::Bootstrap| {
        let mut n: Vec<String> = b.listeners.iter().map(|l| l.name.clone()).collect();
        n.sort();
        n
    };
    let (before, after) = (names(current), names(next));
    if before != after {
        let added: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
        let removed: Vec<&String> = before.iter().filter(|n| !after.contains(n)).collect();
        return Err(ReloadError::ListenerSet(format!(
            "added {added:?}, removed {removed:?}"
        )));
    }
    for old in &current.listeners {
        let Some(new) = next.listeners.iter().find(|l| l.name == old.name) else {
            continue;
        };
        let changed = |what: &str| ReloadError::ListenerChanged {
            listener: old.name.clone(),
            what: what.into(),
        };
        if old.address != new.address {
            return Err(changed("its address"));
        }
        let chain = |l: &model::Listener| l.filter_chains.first().map(|c| c.tls.clone());
        if chain(old) != chain(new) {
            return Err(changed("its TLS context"));
        }
        let hcm =
            |l: &model::Listener| match l.filter_chains.first().and_then(|c| c.filters.first()) {
                Some(NetworkFilter::HttpConnectionManager(h)) => Some((
                    h.codec_type,
                    h.max_headers_count,
                    h.max_request_headers_kb,
                    h.request_headers_timeout,
                )),
                _ => None,
            };
        if hcm(old) != hcm(new) {
            return Err(changed(
                "its codec, header limits, request_headers_timeout or idle_timeout",
            ));
        }
    }
    if current.admin.as_ref().map(|a| &a.address) != next.admin.as_ref().map(|a| &a.address) {
        return Err(ReloadError::ListenerChanged {
            listener: "admin".into(),
            what: "its address".into(),
        });
    }
    Ok(())
}

/// What identifies a version of the file: its modification time and length, then its text.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Calls `on_change` whenever the file at `path` changes (polled every second; editors that
/// replace the file are seen too) or SIGHUP arrives, until `shutdown`.
pub fn watch_file<F, Fut>(path: PathBuf, mut shutdown: watch::Receiver<bool>, mut on_change: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut last = stamp(&path);
        let mut text = std::fs::read(&path).ok();
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let forced = tokio::select! {
                _ = tokio::time::sleep(POLL) => false,
                _ = async {
                    match hangup.as_mut() {
                        Some(h) => { h.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => true,
                _ = shutdown.changed() => return,
            };
            let now = stamp(&path);
            if !forced && now == last {
                continue;
            }
            last = now;
            let new_text = std::fs::read(&path).ok();
            if !forced && new_text == text {
                continue;
            }
            text = new_text;
            on_change().await;
        }
    });
}
