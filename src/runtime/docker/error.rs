//! The Docker runtime's errors.
//!
//! Few and distinct, because `meshsim up` maps them to distinct exit codes and each one tells
//! the user what to do next. Everything the daemon refuses that has no better name is an
//! [`DockerError::Api`] carrying what we were doing when it happened.

use std::path::PathBuf;

use bollard::errors::Error as BollardError;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No daemon answers at the endpoint (socket missing, connection refused, no answer in time).
    #[error(
        "Cannot connect to the Docker daemon at {endpoint}: {reason}. Is the docker daemon \
         running? Set DOCKER_HOST, or use --runtime local"
    )]
    DaemonUnreachable { endpoint: String, reason: String },

    /// An image the plan needs is not in the daemon, and nothing is ever pulled.
    #[error(
        "image `{image}` (for {unit}) is not present locally, and meshsim uses no registry: \
         `docker build` or `docker load` it first (meshsim's own image: `meshsim image`)"
    )]
    ImageMissing { image: String, unit: String },

    /// A fixed host port the plan publishes is held by something else.
    #[error(
        "127.0.0.1:{host_port} (published by {unit}) is already in use on this host: stop \
         whatever holds it, or publish another port"
    )]
    PortTaken { host_port: u16, unit: String },

    /// `logs` was given a unit selector that matches no container.
    #[error("no unit matches `{selector}`: `meshsim ps` lists the running units")]
    NoMatchingUnit { selector: String },

    /// The binary could not be packaged into an image (unreadable, not ELF, a library missing).
    #[error("cannot package {path} into an image: {reason}")]
    Package { path: PathBuf, reason: String },

    /// The daemon refused or failed a request; `context` says what we were doing.
    #[error("{context}: {source}")]
    Api {
        context: String,
        #[source]
        source: BollardError,
    },
}

impl DockerError {
    /// Wraps a bollard error, turning transport failures into [`DockerError::DaemonUnreachable`]
    /// (the daemon went away mid-run is the same problem as never being there).
    pub(crate) fn api(endpoint: &str, context: impl Into<String>, source: BollardError) -> Self {
        if let Some(reason) = unreachable_reason(&source) {
            return DockerError::DaemonUnreachable {
                endpoint: endpoint.to_string(),
                reason,
            };
        }
        DockerError::Api {
            context: context.into(),
            source,
        }
    }
}

/// Why the daemon cannot be reached, when the error is about reaching it at all.
fn unreachable_reason(err: &BollardError) -> Option<String> {
    match err {
        BollardError::SocketNotFoundError(path) => Some(format!("socket {path} does not exist")),
        BollardError::HyperLegacyError { err } if err.is_connect() => {
            // The io error (ECONNREFUSED, EACCES…) is the useful part; hyper's wrapper says only
            // "client error (Connect)".
            let mut reason = err.to_string();
            let mut cause = std::error::Error::source(err);
            while let Some(c) = cause {
                reason = c.to_string();
                cause = c.source();
            }
            Some(reason)
        }
        _ => None,
    }
}

/// The HTTP status of a daemon refusal, if this is one.
pub(crate) fn status(err: &BollardError) -> Option<u16> {
    match err {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// 404: the thing is already gone (idempotent removal) or absent (image inspect).
pub(crate) fn is_not_found(err: &BollardError) -> bool {
    status(err) == Some(404)
}

/// The daemon's words for "this host port is taken", in any of the forms engines 20.10 to 28
/// use: the userland proxy's bind failure, or the port allocator's own check.
pub(crate) fn port_taken_message(err: &BollardError) -> Option<&str> {
    let BollardError::DockerResponseServerError { message, .. } = err else {
        return None;
    };
    let taken =
        message.contains("port is already allocated") || message.contains("address already in use");
    taken.then_some(message.as_str())
}

/// The host port named in a daemon message such as `Bind for 127.0.0.1:8080 failed: port is
/// already allocated` or `listen tcp4 127.0.0.1:8080: bind: address already in use`.
pub(crate) fn port_in_message(message: &str) -> Option<u16> {
    let after = message.split("127.0.0.1:").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status_code: u16, message: &str) -> BollardError {
        BollardError::DockerResponseServerError {
            status_code,
            message: message.into(),
        }
    }

    #[test]
    fn port_taken_is_recognised_in_both_daemon_wordings() {
        let allocator = refusal(
            500,
            "driver failed programming external connectivity on endpoint x (abc): Bind for \
             127.0.0.1:18080 failed: port is already allocated",
        );
        let proxy = refusal(
            500,
            "driver failed programming external connectivity on endpoint x: Error starting \
             userland proxy: listen tcp4 127.0.0.1:18081: bind: address already in use",
        );
        assert_eq!(
            port_taken_message(&allocator).and_then(port_in_message),
            Some(18080)
        );
        assert_eq!(
            port_taken_message(&proxy).and_then(port_in_message),
            Some(18081)
        );
        assert!(port_taken_message(&refusal(404, "No such image: x")).is_none());
    }

    #[test]
    fn missing_socket_is_unreachable_not_api() {
        let err = DockerError::api(
            "unix:///nope.sock",
            "pinging",
            BollardError::SocketNotFoundError("/nope.sock".into()),
        );
        assert!(matches!(err, DockerError::DaemonUnreachable { .. }));
        let text = err.to_string();
        assert!(text.contains("Cannot connect to the Docker daemon at unix:///nope.sock"));
        assert!(text.contains("--runtime local"), "{text}");
    }

    #[test]
    fn refusals_keep_their_context() {
        let err = DockerError::api("x", "creating container a#1/app", refusal(409, "Conflict"));
        assert!(is_not_found(&refusal(404, "gone")));
        assert!(err.to_string().starts_with("creating container a#1/app: "));
    }
}
