//! Kind `grpc`: the gRPC backend of seed 000, serving `gateway.AliveService` and
//! `gateway.UserService` from one server.
//!
//! The service glue is what tonic-build would generate (match the `:path`, hand the
//! request to `tonic::server::Grpc::unary` with the prost codec), written out so that no
//! code generation is needed. It sits behind the shared hyper server, which is also what
//! lets `/meshsim/stats` be read over plain HTTP/1.1 on the same port.

use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tonic::server::Grpc;
use tonic::Status;
use tonic_prost::ProstCodec;

use crate::proto::{
    GetStatusRequest, GetStatusResponse, GetUsersByGroupRequest, GetUsersByGroupResponse, User,
    GET_STATUS_PATH, GET_USERS_BY_GROUP_PATH,
};
use crate::server::{boxed, text, App, BoxBody};

pub struct GrpcApp;

impl App for GrpcApp {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<BoxBody> {
        let response = match request.uri().path() {
            GET_STATUS_PATH => {
                Grpc::new(ProstCodec::default())
                    .unary(AliveService, request)
                    .await
            }
            GET_USERS_BY_GROUP_PATH => {
                Grpc::new(ProstCodec::default())
                    .unary(UserService, request)
                    .await
            }
            path if is_grpc(&request) => Status::unimplemented(format!("no method {path} here"))
                .into_http::<tonic::body::Body>(),
            _ => return text(StatusCode::NOT_FOUND, "Not Found: this is a gRPC server\n"),
        };
        response.map(boxed)
    }
}

fn is_grpc(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// `AliveService/GetStatus`: the backend is up.
#[derive(Clone, Copy)]
struct AliveService;

impl tower_service::Service<tonic::Request<GetStatusRequest>> for AliveService {
    type Response = tonic::Response<GetStatusResponse>;
    type Error = Status;
    type Future = Ready<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: tonic::Request<GetStatusRequest>) -> Self::Future {
        ready(Ok(tonic::Response::new(GetStatusResponse { status: true })))
    }
}

/// `UserService/GetUsersByGroup`: the sample's fixed user table (seed 000 answers every
/// group with the same two users).
#[derive(Clone, Copy)]
struct UserService;

impl tower_service::Service<tonic::Request<GetUsersByGroupRequest>> for UserService {
    type Response = tonic::Response<GetUsersByGroupResponse>;
    type Error = Status;
    type Future = Ready<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: tonic::Request<GetUsersByGroupRequest>) -> Self::Future {
        let user = |name: &str, age| User {
            name: name.to_owned(),
            age,
        };
        ready(Ok(tonic::Response::new(GetUsersByGroupResponse {
            users: vec![user("Alice", 20), user("Bob", 24)],
        })))
    }
}
