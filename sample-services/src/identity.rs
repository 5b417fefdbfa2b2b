//! Who this pod says it is: its hostname and the IP that hostname resolves to.

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

use crate::args::ServiceArgs;

/// The hostname and "resolved hostname" IP that the apps report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub hostname: String,
    pub ip: IpAddr,
}

impl Identity {
    /// Resolve once at startup. May block (a DNS lookup of the hostname is the
    /// next-to-last resort), so async callers run it on a blocking thread.
    pub fn resolve(args: &ServiceArgs) -> Identity {
        let hostname = args
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(os_hostname);
        let ip = args.pod_ip.unwrap_or_else(|| resolve_ip(&hostname));
        Identity { hostname, ip }
    }
}

/// The pod IP is given in local-runtime mode; in Docker, /etc/hosts (bind-mounted into
/// every container) maps the container hostname to its IP, which is what the Flask
/// samples' `socket.gethostbyname(socket.gethostname())` reports.
fn resolve_ip(hostname: &str) -> IpAddr {
    std::fs::read_to_string("/etc/hosts")
        .ok()
        .and_then(|hosts| ip_from_hosts_file(&hosts, hostname))
        .or_else(|| {
            (hostname, 0)
                .to_socket_addrs()
                .ok()?
                .next()
                .map(|addr| addr.ip())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The first address /etc/hosts lists for `hostname` (any of a line's names may match).
pub fn ip_from_hosts_file(contents: &str, hostname: &str) -> Option<IpAddr> {
    contents.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let ip: IpAddr = fields.next()?.parse().ok()?;
        fields
            .any(|name| name.eq_ignore_ascii_case(hostname))
            .then_some(ip)
    })
}

/// The kernel's hostname: gethostname(2), or /proc as a fallback.
pub fn os_hostname() -> String {
    gethostname()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(unix)]
fn gethostname() -> Option<String> {
    // 256 covers HOST_NAME_MAX (64 on Linux, 255 by POSIX) plus the NUL.
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call;
    // gethostname writes at most `len` bytes into it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    // POSIX leaves truncation without a NUL unspecified: take up to the first NUL, or all.
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(not(unix))]
fn gethostname() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
# 10.9.9.9 service1
172.18.0.5\tservice1-abc service1 # compose alias
";

    #[test]
    fn hosts_file_lookup() {
        assert_eq!(
            ip_from_hosts_file(HOSTS, "service1"),
            Some("172.18.0.5".parse().unwrap())
        );
        assert_eq!(
            ip_from_hosts_file(HOSTS, "localhost"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(ip_from_hosts_file(HOSTS, "missing"), None);
    }

    #[test]
    fn flags_win() {
        let mut args = ServiceArgs::new(crate::Kind::Http);
        args.hostname = Some("pod-a".into());
        args.pod_ip = Some("127.0.7.3".parse().unwrap());
        assert_eq!(
            Identity::resolve(&args),
            Identity {
                hostname: "pod-a".into(),
                ip: "127.0.7.3".parse().unwrap()
            }
        );
    }

    #[test]
    fn os_hostname_is_not_empty() {
        assert!(!os_hostname().is_empty());
    }
}
