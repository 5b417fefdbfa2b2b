//! `publish:` on the local runtime: a TCP forwarder from 127.0.0.1:HOST_PORT to the pod's own
//! loopback address, the role Docker's port mapping plays for containers.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Binds 127.0.0.1:`host_port` (0: any free port); the caller learns the port from the result.
pub async fn bind(host_port: u16) -> io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, host_port)).await
}

/// Accepts until `shutdown` (the run's) or `pod_gone` flips, piping each connection to
/// `target`. A target that refuses (the pod is down) closes the accepted connection at once,
/// as a dead container port does.
pub async fn run(
    listener: TcpListener,
    target: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    mut pod_gone: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = pod_gone.changed() => return,
            accepted = listener.accept() => {
                let Ok((mut inbound, _)) = accepted else {
                    // Out of descriptors, say: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let mut stop = shutdown.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    tokio::select! {
                        _ = stop.changed() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        }
    }
}
