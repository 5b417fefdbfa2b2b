//! Finding the daemon: connect, agree on an API version, and prove it answers.

use std::time::Duration;

use bollard::Docker;

use super::error::DockerError;

/// How long the daemon gets to answer `/version` and `/_ping`. `auto` falls back to the local
/// runtime when this passes, so it must be short; a healthy local daemon answers in
/// milliseconds.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// bollard's default when `DOCKER_HOST` is unset (its constant is not exported).
const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// Where bollard connects: `DOCKER_HOST` when set (any scheme), else the default socket.
pub(crate) fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_string())
}

/// Does the daemon share this machine's loopback? Only then does binding a host port here say
/// anything about the daemon's 127.0.0.1.
pub(crate) fn is_local(endpoint: &str) -> bool {
    endpoint.starts_with("unix://")
        || endpoint.contains("://127.0.0.1")
        || endpoint.contains("://localhost")
}

/// Connects to `endpoint` (`unix://…`, `tcp://…`, `http://…`), negotiates the API version
/// and pings.
///
/// bollard speaks API 1.53 unless told otherwise, and an engine 20.10 answers every 1.53 request
/// with 400 "client version is too new": negotiation is not optional.
pub(crate) async fn connect(endpoint: &str) -> Result<Docker, DockerError> {
    let unreachable = |reason: String| DockerError::DaemonUnreachable {
        endpoint: endpoint.to_string(),
        reason,
    };
    // Failing here means the endpoint itself is unusable (no socket file, an unsupported
    // scheme): the same advice applies as for a daemon that does not answer.
    let docker = Docker::connect_with_host(endpoint).map_err(|e| match e {
        bollard::errors::Error::SocketNotFoundError(path) => {
            unreachable(format!("socket {path} does not exist"))
        }
        other => unreachable(other.to_string()),
    })?;
    let handshake = async {
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| DockerError::api(endpoint, "negotiating the Docker API version", e))?;
        docker
            .ping()
            .await
            .map_err(|e| DockerError::api(endpoint, "pinging the Docker daemon", e))?;
        Ok::<_, DockerError>(docker)
    };
    tokio::time::timeout(PING_TIMEOUT, handshake)
        .await
        .map_err(|_| unreachable(format!("no answer within {}s", PING_TIMEOUT.as_secs())))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_socket_is_unreachable() {
        let err = connect("unix:///nonexistent/docker.sock")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DockerError::DaemonUnreachable { endpoint, .. } if endpoint == "unix:///nonexistent/docker.sock"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        // Bind then drop: nothing listens on the port afterwards.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = connect(&format!("tcp://127.0.0.1:{port}"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DockerError::DaemonUnreachable { .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_daemon_is_unreachable_after_the_timeout() {
        // Accepts connections, never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let started = std::time::Instant::now();
        let err = connect(&format!("tcp://127.0.0.1:{port}"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DockerError::DaemonUnreachable { .. }),
            "{err:?}"
        );
        assert!(started.elapsed() < PING_TIMEOUT + std::time::Duration::from_secs(1));
        assert!(is_local("unix:///var/run/docker.sock") && !is_local("tcp://10.0.0.2:2375"));
    }
}
