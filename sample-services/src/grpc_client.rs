//! A tonic gRPC client for the gateway API over one lazily opened, self-healing h2c
//! connection.
//!
//! tonic's own `transport::Channel` would pull in tower's balancing stack; the gateway
//! needs only "one HTTP/2 connection to the sidecar, opened on first use and reopened
//! when it dies", which hyper's client connection gives directly.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use http::Uri;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::dial::Dialer;
use crate::proto::{
    GetStatusRequest, GetStatusResponse, GetUsersByGroupRequest, GetUsersByGroupResponse,
    GET_STATUS_PATH, GET_USERS_BY_GROUP_PATH,
};

/// An h2c connection to one upstream, shared by clones. Nothing is dialled until the
/// first request, so the gateway may start before its sidecar does.
#[derive(Clone)]
pub struct H2Channel {
    inner: Arc<ChannelInner>,
}

struct ChannelInner {
    upstream: Uri,
    dialer: Dialer,
    /// The live connection's handle. An async mutex, held across the connect, so that
    /// concurrent first requests share one new connection instead of racing to open many.
    sender: tokio::sync::Mutex<Option<SendRequest<Body>>>,
}

impl H2Channel {
    pub fn new(upstream: Uri, dialer: Dialer) -> Self {
        H2Channel {
            inner: Arc::new(ChannelInner {
                upstream,
                dialer,
                sender: tokio::sync::Mutex::new(None),
            }),
        }
    }
}

impl ChannelInner {
    /// The open connection, or a new one if there is none or it has closed.
    async fn sender(&self) -> Result<SendRequest<Body>, Status> {
        let mut slot = self.sender.lock().await;
        if let Some(sender) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(sender.clone());
        }
        *slot = None;
        let stream = self
            .dialer
            .connect(&self.upstream)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| Status::unavailable(format!("HTTP/2 handshake failed: {e}")))?;
        // The connection task ends when the peer closes or every handle is dropped; its
        // error surfaces to the requests in flight, so it is not reported again here.
        tokio::spawn(connection);
        *slot = Some(sender.clone());
        Ok(sender)
    }

    async fn send(&self, request: http::Request<Body>) -> Result<http::Response<Incoming>, Status> {
        let unavailable =
            |e: hyper::Error| Status::unavailable(format!("HTTP/2 exchange failed: {e}"));
        let mut sender = self.sender().await?;
        match sender.try_send_request(request).await {
            Ok(response) => Ok(response),
            // The cached connection closed before the request went out (the sidecar
            // restarted, or sent GOAWAY): it is safe to send it once more. The closed
            // handle now reports so, and `sender` opens a new connection (or returns
            // one that a concurrent request has already opened).
            Err(mut e) => match e.take_message() {
                Some(request) => {
                    let mut sender = self.sender().await?;
                    sender.send_request(request).await.map_err(unavailable)
                }
                None => Err(unavailable(e.into_error())),
            },
        }
    }
}

/// The `GrpcService` that tonic's client drives. Errors are `Status`es so that tonic
/// hands them to the caller unchanged (code UNAVAILABLE, with the reason).
impl tower_service::Service<http::Request<Body>> for H2Channel {
    type Response = http::Response<Incoming>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Status>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        // Readiness is settled per request in `send`, which (re)connects as needed.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(request).await })
    }
}

/// Client of `gateway.AliveService` and `gateway.UserService`.
#[derive(Clone)]
pub struct GatewayClient {
    grpc: tonic::client::Grpc<H2Channel>,
}

impl GatewayClient {
    /// `upstream` is an `http://HOST:PORT` URL (a path prefix, if any, is kept).
    pub fn new(upstream: Uri, dialer: Dialer) -> Self {
        let channel = H2Channel::new(upstream.clone(), dialer);
        GatewayClient {
            grpc: tonic::client::Grpc::with_origin(channel, upstream),
        }
    }

    pub async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        self.unary(request, GET_STATUS_PATH).await
    }

    pub async fn get_users_by_group(
        &self,
        request: Request<GetUsersByGroupRequest>,
    ) -> Result<Response<GetUsersByGroupResponse>, Status> {
        self.unary(request, GET_USERS_BY_GROUP_PATH).await
    }

    async fn unary<Req, Res>(
        &self,
        request: Request<Req>,
        path: &'static str,
    ) -> Result<Response<Res>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Res: prost::Message + Default + Send + Sync + 'static,
    {
        // tonic's client needs `&mut`; clones share the one connection.
        let mut grpc = self.grpc.clone();
        grpc.ready().await?;
        grpc.unary(
            request,
            PathAndQuery::from_static(path),
            ProstCodec::<Req, Res>::default(),
        )
        .await
    }
}
