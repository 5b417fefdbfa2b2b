//! Kind `gateway`: the REST gateway of seed 000, translating `GET /alive` and
//! `GET /user` into gRPC calls to the backend through the pod's sidecar.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use serde::Serialize;
use tonic::metadata::MetadataMap;
use tonic::{Extensions, Status};

use crate::faults::query_pairs;
use crate::grpc_client::GatewayClient;
use crate::next_hop::trace_headers;
use crate::proto::{
    GetStatusRequest, GetUsersByGroupRequest, GET_STATUS_PATH, GET_USERS_BY_GROUP_PATH,
};
use crate::server::{json, App, BoxBody};

/// Per-call deadline, sent as `grpc-timeout` and enforced locally too, so a hung
/// upstream turns into a 502 rather than a request that never ends.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct GatewayApp {
    pub upstream: Uri,
    pub client: GatewayClient,
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl App for GatewayApp {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<BoxBody> {
        let path = request.uri().path();
        if path != "/alive" && path != "/user" {
            return error(StatusCode::NOT_FOUND, "not found".to_owned());
        }
        if request.method() != Method::GET {
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "only GET".to_owned());
            response
                .headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
            return response;
        }
        // Passing on the request id and tracing headers is what joins the REST call and
        // the gRPC call into one trace at the proxies.
        let metadata = MetadataMap::from_headers(trace_headers(request.headers()));
        if path == "/alive" {
            let call = grpc_request(metadata, GetStatusRequest {});
            match self.within_deadline(self.client.get_status(call)).await {
                Ok(response) => json(StatusCode::OK, response.get_ref()),
                Err(status) => self.upstream_failed(GET_STATUS_PATH, &status),
            }
        } else {
            // `?group=` is passed on as the group asked for (the backend's fixed table
            // answers every group alike).
            let group = query_pairs(request.uri().query().unwrap_or(""))
                .find(|(k, _)| k == "group")
                .map(|(_, v)| v)
                .unwrap_or_default();
            let call = grpc_request(metadata, GetUsersByGroupRequest { group });
            match self
                .within_deadline(self.client.get_users_by_group(call))
                .await
            {
                Ok(response) => json(StatusCode::OK, response.get_ref()),
                Err(status) => self.upstream_failed(GET_USERS_BY_GROUP_PATH, &status),
            }
        }
    }
}

impl GatewayApp {
    async fn within_deadline<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "no answer within {CALL_TIMEOUT:?}"
                )))
            })
    }

    fn upstream_failed(&self, method: &str, status: &Status) -> Response<BoxBody> {
        let reason = format!(
            "upstream {} {method} failed: gRPC status {:?}: {}",
            url_label(&self.upstream),
            status.code(),
            status.message()
        );
        error(StatusCode::BAD_GATEWAY, reason)
    }
}

fn grpc_request<T>(metadata: MetadataMap, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::from_parts(metadata, Extensions::default(), message);
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// `http://host:port` without the lone `/` path that `Uri`'s Display adds.
fn url_label(uri: &Uri) -> String {
    match uri.path_and_query().map(|pq| pq.as_str()) {
        None | Some("/") => format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map_or("", |a| a.as_str())
        ),
        Some(_) => uri.to_string(),
    }
}

fn error(status: StatusCode, error: String) -> Response<BoxBody> {
    json(status, &ErrorBody { error })
}
