//! Opening outgoing TCP connections, with the local-runtime remapping of localhost.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use http::Uri;
use tokio::net::TcpStream;

/// Long enough for a loaded machine, short enough that a dead upstream gives a prompt 502.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, Default)]
pub struct Dialer {
    /// Local-runtime mode: "localhost" means this pod's own loopback address, where its
    /// sidecar listens, not the host's 127.0.0.1 shared by every pod.
    pub pod_ip: Option<IpAddr>,
}

impl Dialer {
    /// Where a URL's authority is actually dialled, as a string for `TcpStream::connect`
    /// (a name is resolved there).
    pub fn target(&self, uri: &Uri) -> (String, u16) {
        let host = uri
            .host()
            .unwrap_or("localhost")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        match self.pod_ip {
            Some(pod_ip) if host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" => {
                (pod_ip.to_string(), port)
            }
            _ => (host.to_owned(), port),
        }
    }

    /// Connect to `uri`'s host and port; the error names the address actually dialled
    /// (after remapping), which is what tells a misrouted local-runtime pod apart.
    pub async fn connect(&self, uri: &Uri) -> io::Result<TcpStream> {
        let (host, port) = self.target(uri);
        let connect = TcpStream::connect((host.as_str(), port));
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let reason = format!("connect to {host}:{port} failed: {e}");
                return Err(io::Error::new(e.kind(), reason));
            }
            Err(_) => {
                let reason = format!("connect to {host}:{port} timed out");
                return Err(io::Error::new(io::ErrorKind::TimedOut, reason));
            }
        };
        // Requests here are small and latency-bound.
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_goes_to_pod_ip() {
        let d = Dialer {
            pod_ip: Some("127.0.7.3".parse().unwrap()),
        };
        let t = |s: &str| d.target(&s.parse().unwrap());
        assert_eq!(t("http://localhost:9000/x"), ("127.0.7.3".into(), 9000));
        assert_eq!(t("http://127.0.0.1:9000"), ("127.0.7.3".into(), 9000));
        assert_eq!(t("http://service2"), ("service2".into(), 80));
        assert_eq!(t("http://[::1]:7"), ("::1".into(), 7));
        let plain = Dialer::default();
        assert_eq!(
            plain.target(&"http://localhost:9000".parse().unwrap()),
            ("localhost".into(), 9000)
        );
    }
}
