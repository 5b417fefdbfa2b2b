//! `envoy.config.core.v3.Address`: only TCP socket addresses are simulated.
//!
//! Listener and admin addresses must be IP literals (Envoy binds them without resolving);
//! cluster endpoints may be DNS names, which the cluster type then decides about.

use std::net::IpAddr;

use super::super::model::SocketAddress;
use super::scalars;
use super::{Decoder, Field, Message};

pub const ADDRESS: Message = Message {
    name: "Address",
    fields: &["socket_address", "pipe", "envoy_internal_address"],
    ignored: &[],
};

pub const SOCKET_ADDRESS: Message = Message {
    name: "SocketAddress",
    fields: &["protocol", "address", "port_value", "named_port"],
    ignored: &["resolver_name", "ipv4_compat", "network_namespace_filepath"],
};

/// What kind of host an address may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// A bind address: must be an IP literal.
    Ip,
    /// An upstream endpoint: an IP or a DNS name.
    IpOrName,
}

pub fn address(d: &mut Decoder, f: &Field, host: Host) -> Option<SocketAddress> {
    let o = d.obj(f, &ADDRESS)?;
    if let Some(p) = o.get("pipe") {
        d.error_help(
            &p,
            "pipe (Unix domain socket) addresses are not supported by meshsim",
            "use `socket_address: {address: 127.0.0.1, port_value: PORT}`",
        );
        return None;
    }
    if let Some(i) = o.get("envoy_internal_address") {
        d.error_help(
            &i,
            "internal listener addresses are not supported by meshsim",
            "use `socket_address: {address: 127.0.0.1, port_value: PORT}`",
        );
        return None;
    }
    match o.get("socket_address") {
        Some(s) => socket_address(d, &s, host),
        None => {
            d.missing(&o, "socket_address");
            None
        }
    }
}

pub fn socket_address(d: &mut Decoder, f: &Field, host: Host) -> Option<SocketAddress> {
    let o = d.obj(f, &SOCKET_ADDRESS)?;
    if let Some(p) = o.get("protocol") {
        if scalars::enum_name(d, &p, "SocketAddress.Protocol", &["TCP", "UDP"]) == Some("UDP") {
            d.error_at_value(
                &p,
                "UDP addresses are not supported by meshsim",
                Some("meshsim simulates TCP (HTTP/1.1 and HTTP/2) only".into()),
            );
        }
    }
    let address = match o.get("address") {
        Some(a) => {
            let text = scalars::string(d, &a)?;
            if host == Host::Ip && text.parse::<IpAddr>().is_err() {
                d.error_at_value(
                    &a,
                    format!("`{text}` is not an IP address"),
                    Some(
                        "a listening address must be an IP: use `0.0.0.0` (all interfaces) or `127.0.0.1`"
                            .into(),
                    ),
                );
                return None;
            }
            if text.is_empty() {
                d.missing(&o, "address");
                return None;
            }
            text
        }
        None => {
            d.missing(&o, "address");
            return None;
        }
    };
    if let Some(n) = o.get("named_port") {
        d.error_help(
            &n,
            "named ports are not supported by meshsim",
            "use `port_value`",
        );
        return None;
    }
    let port = match o.get("port_value") {
        Some(p) if host == Host::Ip => scalars::bind_port(d, &p)?,
        Some(p) => scalars::port(d, &p)?,
        None => {
            d.missing(&o, "port_value");
            return None;
        }
    };
    Some(SocketAddress { address, port })
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str, host: Host) -> (Option<SocketAddress>, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let a = address(&mut d, &f, host);
        (a, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn socket_addresses() {
        let (a, _) = run(
            "address: {socket_address: {address: 0.0.0.0, port_value: \"10000\"}}",
            Host::Ip,
        );
        assert_eq!(
            a,
            Some(SocketAddress {
                address: "0.0.0.0".into(),
                port: 10000
            })
        );
        let (a, _) = run(
            "address: {socket_address: {address: service1, port_value: 80}}",
            Host::IpOrName,
        );
        assert_eq!(a.unwrap().address, "service1");
    }

    #[test]
    fn rejects_names_for_binds_pipes_and_bad_ports() {
        let (_, e) = run(
            "address: {socket_address: {address: localhost, port_value: 80}}",
            Host::Ip,
        );
        assert_eq!(e, ["`localhost` is not an IP address"]);
        let (_, e) = run("address: {pipe: {path: /tmp/s}}", Host::Ip);
        assert_eq!(
            e,
            ["pipe (Unix domain socket) addresses are not supported by meshsim"]
        );
        let (a, e) = run(
            "address: {socket_address: {address: 1.2.3.4, port_value: 0}}",
            Host::Ip,
        );
        assert!(
            e.is_empty(),
            "a bind address may ask for an ephemeral port: {e:?}"
        );
        assert_eq!(a.unwrap().port, 0);
        let (_, e) = run(
            "address: {socket_address: {address: upstream, port_value: 0}}",
            Host::IpOrName,
        );
        assert_eq!(e, ["port 0 is not allowed for an upstream endpoint"]);
    }
}
