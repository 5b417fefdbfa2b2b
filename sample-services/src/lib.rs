//! The sample apps that meshsim runs inside its pods (Docker containers or local
//! processes): `meshsim service --kind http|grpc|gateway ...`.
//!
//! - `http`: Envoy's front-proxy sample app and seed 003's Flask app, over HTTP/1.1 and
//!   h2c, with fault knobs and an echo.
//! - `grpc`: seed 000's gRPC backend (`proto/gateway.proto`).
//! - `gateway`: seed 000's REST gateway in front of it.
//!
//! Every app counts what it answered (`GET /meshsim/stats`, `POST /meshsim/stats/reset`)
//! and marks every response with `x-served-by: <hostname>`. The http app's faults can be
//! changed while it runs (`POST`/`DELETE /meshsim/fault`), for a supervisor's fault toggle.

mod args;
mod counters;
mod dial;
mod faults;
mod gateway_app;
mod grpc_app;
pub mod grpc_client;
mod http_app;
mod identity;
mod next_hop;
pub mod proto;
mod server;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use args::{Kind, ServiceArgs};
pub use dial::Dialer;
pub use faults::{parse_duration, FaultControl, Faults, StatusFault};
pub use identity::Identity;
pub use next_hop::TRACE_HEADERS;

use crate::gateway_app::GatewayApp;
use crate::grpc_app::GrpcApp;
use crate::grpc_client::GatewayClient;
use crate::http_app::HttpApp;
use crate::next_hop::NextHop;
use crate::server::{serve_app, Common};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("cannot install the {signal} handler: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("invalid setting: {0}")]
    InvalidArgument(String),
}

/// Run the app of `args.kind` until SIGINT or SIGTERM; 0 on a clean stop, 1 (with the
/// reason on stderr) when it cannot start.
pub fn run(args: ServiceArgs) -> ExitCode {
    let kind = args.kind.as_str();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServiceError::Runtime)
        .and_then(|runtime| runtime.block_on(run_until_signalled(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshsim service ({kind}): {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_until_signalled(args: ServiceArgs) -> Result<(), ServiceError> {
    // Handlers first: as PID 1 in a FROM-scratch container the process has no default
    // action for SIGTERM, so until these exist a `docker stop` would be ignored.
    let shutdown = shutdown_signal()?;
    let listener = bind(&args).await?;
    if let Ok(addr) = listener.local_addr() {
        eprintln!(
            "meshsim service ({}): listening on {addr}",
            args.kind.as_str()
        );
    }
    serve(args, listener, shutdown).await
}

/// Bind the address the app should listen on ([`ServiceArgs::bind_addr`]: the flag or
/// the kind's default, remapped to the pod IP in local-runtime mode).
pub async fn bind(args: &ServiceArgs) -> Result<TcpListener, ServiceError> {
    let addr = args.bind_addr();
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServiceError::Bind { addr, source })
}

/// Serve the app of `args.kind` on an already-bound listener until `shutdown`
/// completes. `args.listen` is not used (the listener is given); everything else is.
pub async fn serve(
    args: ServiceArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let identity = {
        let args = args.clone();
        // May do a DNS lookup of the hostname: keep it off the async workers.
        tokio::task::spawn_blocking(move || Identity::resolve(&args))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    };
    let common = Arc::new(Common::new(identity, args.effective_service_name())?);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let dialer = Dialer {
        pod_ip: args.pod_ip,
    };
    match args.kind {
        Kind::Http => {
            let app = HttpApp {
                common: common.clone(),
                next_hop: args.next_hop.clone().map(|url| NextHop { url, dialer }),
                faults: FaultControl::new(Faults {
                    delay: args.fault_delay,
                    status: args.fault_status,
                }),
            };
            serve_app(Arc::new(app), common, listener, tls, shutdown).await
        }
        Kind::Grpc => serve_app(Arc::new(GrpcApp), common, listener, tls, shutdown).await,
        Kind::Gateway => {
            let upstream = args.effective_upstream();
            let app = GatewayApp {
                client: GatewayClient::new(upstream.clone(), dialer),
                upstream,
            };
            serve_app(Arc::new(app), common, listener, tls, shutdown).await
        }
    }
}

/// Completes on the first SIGINT or SIGTERM (Ctrl-C elsewhere).
fn shutdown_signal() -> Result<impl Future<Output = ()>, ServiceError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|source| ServiceError::Signal {
                signal: name,
                source,
            })
        };
        let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
        let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
