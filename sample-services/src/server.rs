//! What every app shares: the accept loop (HTTP/1.1 and h2c prior knowledge on one
//! port), graceful shutdown, the `/meshsim/*` counter endpoints, and the `x-served-by`
//! header.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::counters::Counters;
use crate::identity::Identity;
use crate::ServiceError;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// One response body type for plain answers and tonic's gRPC bodies alike.
pub type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

pub const X_SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");

/// How long in-flight requests may take to finish after a shutdown signal. Kept short:
/// pods are stopped by a supervisor that escalates to SIGKILL anyway.
const GRACE_PERIOD: Duration = Duration::from_secs(5);

/// One app: answers every request outside `/meshsim/`.
pub trait App: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<BoxBody>> + Send;

    /// The app's own control routes under `/meshsim/` (`rest` is the path after it), tried
    /// before the common ones; like them, never counted. `None`: not one of the app's.
    fn control(
        &self,
        _method: &Method,
        _rest: &str,
        _query: Option<&str>,
    ) -> Option<Response<BoxBody>> {
        None
    }
}

/// Who is answering, and what it has answered.
#[derive(Debug)]
pub struct Common {
    pub identity: Identity,
    pub service_name: String,
    pub counters: Counters,
    served_by: HeaderValue,
}

impl Common {
    pub fn new(identity: Identity, service_name: String) -> Result<Common, ServiceError> {
        let served_by = HeaderValue::from_str(&identity.hostname).map_err(|_| {
            ServiceError::InvalidArgument(format!(
                "hostname {:?} cannot be sent in a header",
                identity.hostname
            ))
        })?;
        Ok(Common {
            identity,
            service_name,
            counters: Counters::default(),
            served_by,
        })
    }

    /// `GET /meshsim/stats` and `POST /meshsim/stats/reset`; `rest` is the path after
    /// `/meshsim/`.
    fn meshsim_route(&self, method: &Method, rest: &str) -> Response<BoxBody> {
        match (rest, method) {
            ("stats", &Method::GET) => {
                let snapshot = self
                    .counters
                    .snapshot(&self.identity.hostname, &self.service_name);
                json(StatusCode::OK, &snapshot)
            }
            ("stats/reset", &Method::POST) => {
                self.counters.reset();
                text(StatusCode::OK, "counters reset\n")
            }
            ("stats", _) => method_not_allowed("GET"),
            ("stats/reset", _) => method_not_allowed("POST"),
            _ => text(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    }
}

/// Serve `app` on `listener` until `shutdown` completes, then let in-flight requests
/// finish (up to a grace period).
pub async fn serve_app<A: App>(
    app: Arc<A>,
    common: Arc<Common>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    // auto: HTTP/1.1, or HTTP/2 when the connection opens with the h2 preface — Envoy
    // clusters with http2_protocol_options (and every gRPC client) speak h2c that way.
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let local_addr = listener
        .local_addr()
        .map_or_else(|_| "its socket".to_owned(), |a| a.to_string());

    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Accept errors are per connection (reset before accept) or transient
                    // (out of file descriptors): keep serving, without spinning.
                    eprintln!("accept on {local_addr} failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small request/response exchanges: don't let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let (app, common) = (app.clone(), common.clone());
        if let Some(acceptor) = &tls {
            // The handshake runs in the connection's task, never in the accept loop.
            let (acceptor, builder, watcher) =
                (acceptor.clone(), builder.clone(), graceful.watcher());
            tokio::spawn(async move {
                let Some((stream, info)) = crate::tls::accept(&acceptor, stream).await else {
                    return;
                };
                let service = service_fn(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(info.clone());
                    dispatch(app.clone(), common.clone(), request)
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let _ = watcher.watch(connection.into_owned()).await;
            });
            continue;
        }
        let service = service_fn(move |request| dispatch(app.clone(), common.clone(), request));
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        // A connection's error is the peer's business (reset, malformed request): the
        // server goes on.
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }

    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(GRACE_PERIOD) => {}
    }
    Ok(())
}

async fn dispatch<A: App>(
    app: Arc<A>,
    common: Arc<Common>,
    request: Request<Incoming>,
) -> Result<Response<BoxBody>, Infallible> {
    let mut response = match request.uri().path().strip_prefix("/meshsim/") {
        // The control endpoints are not counted: reading them must not change them.
        Some(rest) => app
            .control(request.method(), rest, request.uri().query())
            .unwrap_or_else(|| common.meshsim_route(request.method(), rest)),
        None => {
            let path = request.uri().path().to_owned();
            let response = app.handle(request).await;
            common.counters.record(&path, response.status());
            response
        }
    };
    response
        .headers_mut()
        .insert(X_SERVED_BY, common.served_by.clone());
    Ok(response)
}

pub fn boxed<B>(body: B) -> BoxBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<BoxBody> {
    let mut response = Response::new(boxed(Full::new(body.into())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<BoxBody> {
    full(status, "text/plain; charset=utf-8", body)
}

/// Compact JSON, as the gateway's clients compare it byte for byte.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<BoxBody> {
    let body = serde_json::to_vec(value).expect("plain data always serializes");
    full(status, "application/json", body)
}

pub fn method_not_allowed(allow: &'static str) -> Response<BoxBody> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}
