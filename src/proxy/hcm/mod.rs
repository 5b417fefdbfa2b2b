//! The HTTP connection manager: for each request, the downstream header rules (request id,
//! x-forwarded-*), route selection, then a direct response, a redirect or the upstream leg; and
//! the response rules (server header, header mutations) on the way back.

mod exchange;
mod forward;
mod request;
mod retry;
mod stats;
mod timeouts;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::header::{HeaderValue, CONNECTION, LOCATION, SERVER};
use http::{Request, Response};

use crate::config::model::{self, HttpFilterKind, ServerHeaderTransformation};
use crate::proxy::access_log::{AccessLogger, ResponseFlags};
use crate::proxy::body::{self, Body, Observed};
use crate::proxy::cluster::ClusterManager;
use crate::proxy::filters::{self, Decision, FilterContext, FilterError, Filters};
use crate::proxy::hardening::head as head_check;
use crate::proxy::headers::strip_hop_by_hop;
use crate::proxy::local_reply;
use crate::proxy::router::matcher::RequestView;
use crate::proxy::router::{redirect_location, Action, RouteTable, RouteTableError};
use crate::proxy::stats::Store;

pub use exchange::ConnInfo;
use exchange::Exchange;
pub use stats::HcmStats;

/// What every request on this HCM shares. Immutable except for the route table, which a reload
/// swaps atomically.
pub struct Shared {
    pub config: model::HttpConnectionManager,
    pub routes: ArcSwap<RouteTable>,
    pub clusters: Arc<ClusterManager>,
    pub stats: Arc<HcmStats>,
    pub access_logs: Vec<AccessLogger>,
    pub server_header: HeaderValue,
    pub suppress_envoy_headers: bool,
    /// The router's `dynamic_stats` (default true): when false, a request charges none of the
    /// cluster's per-response stats (`upstream_rq_completed`, `upstream_rq_<code>`,
    /// `upstream_rq_<Nxx>`, `upstream_rq_time`, their `internal.`/`external.` twins) nor a
    /// host's `rq_error`, as Envoy's `chargeUpstreamCode` and `onUpstreamComplete` skip them.
    pub dynamic_stats: bool,
    /// The node's cluster (`--service-cluster`), sent as `x-envoy-downstream-service-cluster`.
    pub service_cluster: Option<HeaderValue>,
    /// The HTTP filters before the router.
    pub filters: Filters,
}

/// A listener's connection manager. Its shared state is swapped whole on a config reload;
/// each request loads it once, so a request in flight finishes on the config it started with.
#[derive(Clone)]
pub struct HttpConnectionManager {
    current: Arc<ArcSwap<Shared>>,
    /// Connection-level stats, fixed for the listener's life (a reload keeps the listener).
    stats: Arc<HcmStats>,
}

#[derive(Debug, thiserror::Error)]
pub enum HcmError {
    #[error(transparent)]
    Routes(#[from] RouteTableError),
    #[error("server_name `{0}` is not a valid header value")]
    ServerName(String),
    #[error(transparent)]
    Filter(#[from] FilterError),
}

impl HttpConnectionManager {
    pub fn new(
        config: &model::HttpConnectionManager,
        clusters: Arc<ClusterManager>,
        store: &Store,
        listener_stat_addr: &str,
        access_logs: Vec<AccessLogger>,
        service_cluster: &str,
        filter_context: &FilterContext,
    ) -> Result<Self, HcmError> {
        let stats = Arc::new(HcmStats::new(
            store,
            &config.stat_prefix,
            listener_stat_addr,
        ));
        let shared = Self::shared_with(
            config,
            clusters,
            store,
            stats.clone(),
            access_logs,
            service_cluster,
            filter_context,
        )?;
        Ok(HttpConnectionManager {
            current: Arc::new(ArcSwap::from_pointee(shared)),
            stats,
        })
    }

    /// The state for `config`, as a reload builds it before swapping it in ([`Self::replace`]).
    #[allow(clippy::too_many_arguments)]
    pub fn build_shared(
        &self,
        config: &model::HttpConnectionManager,
        clusters: Arc<ClusterManager>,
        store: &Store,
        listener_stat_addr: &str,
        access_logs: Vec<AccessLogger>,
        service_cluster: &str,
        filter_context: &FilterContext,
    ) -> Result<Shared, HcmError> {
        // The same stat prefix gives the same counters: keep them; a new one gets its own.
        let stats = if config.stat_prefix == self.current.load().config.stat_prefix {
            self.stats.clone()
        } else {
            Arc::new(HcmStats::new(
                store,
                &config.stat_prefix,
                listener_stat_addr,
            ))
        };
        Self::shared_with(
            config,
            clusters,
            store,
            stats,
            access_logs,
            service_cluster,
            filter_context,
        )
    }

    /// Installs a reloaded state; requests already running keep theirs.
    pub fn replace(&self, shared: Shared) {
        self.current.store(Arc::new(shared));
    }

    fn shared_with(
        config: &model::HttpConnectionManager,
        clusters: Arc<ClusterManager>,
        store: &Store,
        stats: Arc<HcmStats>,
        access_logs: Vec<AccessLogger>,
        service_cluster: &str,
        filter_context: &FilterContext,
    ) -> Result<Shared, HcmError> {
        let routes = RouteTable::build(&config.route_config)?;
        let filters = Filters::build(
            &config.http_filters,
            filter_context,
            store,
            &config.stat_prefix,
        )?;
        let router = config.http_filters.iter().find_map(|f| match &f.kind {
            HttpFilterKind::Router(r) => Some(r),
            _ => None,
        });
        let suppress_envoy_headers = router.is_some_and(|r| r.suppress_envoy_headers);
        let dynamic_stats = router.is_none_or(|r| r.dynamic_stats);
        Ok(Shared {
            server_header: HeaderValue::from_str(&config.server_name)
                .map_err(|_| HcmError::ServerName(config.server_name.clone()))?,
            config: config.clone(),
            routes: ArcSwap::from_pointee(routes),
            clusters,
            stats,
            access_logs,
            suppress_envoy_headers,
            dynamic_stats,
            service_cluster: (!service_cluster.is_empty())
                .then(|| HeaderValue::from_str(service_cluster).ok())
                .flatten(),
            filters,
        })
    }

    pub fn stats(&self) -> &HcmStats {
        &self.stats
    }

    /// The `stream_idle_timeout` of the config in force (`None`: disabled).
    pub fn stream_idle_timeout(&self) -> Option<std::time::Duration> {
        self.current.load().config.stream_idle_timeout
    }

    /// Serves one request. Never fails: every problem becomes Envoy's local reply.
    pub async fn handle(&self, req: Request<Body>, conn: ConnInfo) -> Response<Body> {
        let shared = &self.current.load_full();
        let stats = &shared.stats;
        stats.downstream_rq_total.inc();
        stats.rq_total.inc();
        if req.version() == http::Version::HTTP_2 {
            stats.downstream_rq_http2_total.inc();
        } else {
            stats.downstream_rq_http1_total.inc();
        }
        stats.downstream_rq_active.inc();

        let (mut parts, body) = req.into_parts();
        // Checked on the head as received, before any header is added or removed.
        let rejection = head_check::check(&parts, shared.config.max_headers_count as usize).err();
        let authority_value = request::authority(&parts);
        let authority = authority_value.as_ref().and_then(|v| v.to_str().ok());
        // Hop-by-hop headers belong to the client's connection: drop them before this hop adds
        // its own headers, so a `Connection:` nomination cannot remove what the proxy sets.
        let upgrade = request::take_upgrade(&mut parts.headers);
        strip_hop_by_hop(&mut parts.headers, false);
        let internal = request::apply_downstream_rules(&shared.config, &mut parts, &conn);
        // Body bytes are counted only for access logs (%BYTES_RECEIVED%); otherwise the body
        // passes through unwrapped.
        let bytes_received = (!shared.access_logs.is_empty()).then(|| Arc::new(AtomicU64::new(0)));
        let body = match &bytes_received {
            Some(counter) => body::boxed(Observed::<_, body::NoHook>::new(
                body,
                Some(counter.clone()),
                None,
            )),
            None => body,
        };
        let mut exchange = Exchange::new(shared.clone(), conn, &parts, authority, bytes_received);
        let head = parts.method == http::Method::HEAD;
        if let Some(rejection) = rejection {
            return self.reject(exchange, rejection, parts.version, head);
        }

        let table = shared.routes.load();
        // A Uri clone shares its bytes; path and query are borrowed from it, not copied.
        let uri = parts.uri.clone();
        let (path, query) = (uri.path(), uri.query());
        let scheme = if conn.tls { "https" } else { "http" };
        let view = RequestView {
            method: parts.method.as_str(),
            path,
            query,
            authority: authority.unwrap_or(""),
            scheme,
            headers: &parts.headers,
        };
        let matched = table.route(&view);
        if !shared.filters.is_empty() {
            let cluster = matched.and_then(|(_, r)| match &r.action {
                Action::Forward(f) => f.named_cluster(),
                _ => None,
            });
            let request = filters::Request {
                view,
                cluster,
                head,
            };
            if let Decision::Respond(response, flags, details) = shared
                .filters
                .decode(&request, &mut exchange.response_flags)
                .await
            {
                exchange.response_flags.insert(flags);
                exchange.response_code_details = details;
                return exchange.respond(with_server_header(shared, response));
            }
        }
        let Some((vhost, route)) = matched else {
            stats.no_route.inc();
            exchange
                .response_flags
                .insert(ResponseFlags::NO_ROUTE_FOUND);
            exchange.response_code_details = "route_not_found";
            let response = with_server_header(shared, local_reply::reply(404, "", head));
            return exchange.respond(response);
        };
        exchange.route_name = route.name.clone();

        let mut response = match &route.action {
            Action::Direct { status, body } => {
                stats.rq_direct_response.inc();
                exchange.response_code_details = "direct_response";
                local_reply::reply(*status, body.clone().unwrap_or_default(), head)
            }
            Action::Redirect(r) => {
                stats.rq_redirect.inc();
                exchange.response_code_details = "direct_response";
                let location = redirect_location(
                    r,
                    &route.matcher,
                    scheme,
                    authority.unwrap_or(""),
                    path,
                    query,
                );
                let mut response = local_reply::reply(r.action.response_code, "", head);
                if let Ok(v) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, v);
                }
                response
            }
            Action::Forward(f) => {
                // The stream timeouts watch the request body as it goes upstream.
                let idle = f.idle_timeout.or(shared.config.stream_idle_timeout);
                let deadline = shared
                    .config
                    .request_timeout
                    .map(|t| tokio::time::Instant::from_std(exchange.start) + t);
                // A body already complete (a GET) has nothing left to watch, and nothing to
                // record a timeout in (no allocation for it).
                let watched = (idle.is_some() || deadline.is_some())
                    && !http_body::Body::is_end_stream(&body);
                let fired = watched.then(timeouts::Fired::default);
                let body = match &fired {
                    Some(fired) => body::boxed(timeouts::Watched::new(
                        body,
                        idle,
                        deadline,
                        Some(fired.clone()),
                    )),
                    None => body,
                };
                let leg = forward::Leg {
                    idle,
                    fired: fired.as_ref(),
                    shared,
                    route,
                    forward: f,
                    mutations: [&route.mutations, &vhost.mutations, &table.mutations],
                    internal,
                    upgrade,
                    authority,
                    path,
                    query,
                };
                leg.run(&mut exchange, parts, body).await
            }
        };
        route.mutations.apply_response(response.headers_mut());
        vhost.mutations.apply_response(response.headers_mut());
        table.mutations.apply_response(response.headers_mut());
        let response = with_server_header(shared, response);
        exchange.respond(response)
    }

    /// A request head that fails [`head_check`]: a local reply, and on HTTP/1 the connection
    /// is closed after it, as Envoy does after a codec error (the client is not speaking
    /// HTTP the way this proxy does; what it sends next cannot be trusted).
    fn reject(
        &self,
        mut exchange: Exchange,
        rejection: head_check::HeadRejection,
        version: http::Version,
        head: bool,
    ) -> Response<Body> {
        tracing::debug!(remote = %exchange.conn.remote, %rejection, "request head rejected");
        exchange.response_code_details = rejection.details(version);
        let mut response = local_reply::reply(rejection.status(), "", head);
        if version < http::Version::HTTP_2 {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let response = with_server_header(&exchange.shared, response);
        exchange.respond(response)
    }
}

/// The `server` header rule, applied to every response, local or proxied, by the config the
/// request started with.
fn with_server_header(shared: &Shared, mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    match shared.config.server_header_transformation {
        ServerHeaderTransformation::Overwrite => {
            headers.insert(SERVER, shared.server_header.clone());
        }
        ServerHeaderTransformation::AppendIfAbsent => {
            if !headers.contains_key(SERVER) {
                headers.insert(SERVER, shared.server_header.clone());
            }
        }
        ServerHeaderTransformation::PassThrough => {}
    }
    response
}
