//! The accept loop both servers share.

use std::future::Future;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Accepts connections on `listener` until `shutdown` turns true, each served
/// by `connection` on a task of its own. `server` names it in the logs.
pub(crate) async fn accept_until<F, Fut>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    server: &'static str,
    connection: F,
) where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream));
                }
                Err(error) => tracing::warn!(%error, server, "localnet: accept failed"),
            },
            _ = shutdown.changed() => return,
        }
    }
}
