//! The brokers' network side: one listener per broker (plain TCP or TLS), a task per
//! connection that reads request frames, authenticates (SASL), applies fault rules, dispatches
//! to the handlers and writes responses in order (a connection is served one request at a time,
//! as Kafka brokers do).

mod conn;
pub(crate) mod sasl;
pub(crate) mod scram;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Shared;

/// A running broker listener.
pub(crate) struct BrokerServer {
    pub task: JoinHandle<()>,
    pub stop: watch::Sender<bool>,
}

/// Starts serving broker `id` on `listener`.
pub(crate) fn serve(id: i32, listener: TcpListener, shared: Arc<Shared>) -> BrokerServer {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(id, listener, shared, stopped));
    BrokerServer { task, stop }
}

async fn accept_loop(
    id: i32,
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => {
                let Ok((socket, peer)) = accepted else { continue };
                let _ = socket.set_nodelay(true);
                let shared = shared.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    match shared.tls.clone() {
                        None => conn::serve_connection(id, socket, peer, shared, stopped).await,
                        Some(acceptor) => match acceptor.accept(socket).await {
                            Ok(tls) => conn::serve_connection(id, tls, peer, shared, stopped).await,
                            Err(e) => tracing::debug!(broker = id, %peer, error = %e, "TLS handshake failed"),
                        },
                    }
                });
            }
        }
    }
}
