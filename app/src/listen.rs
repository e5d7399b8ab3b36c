//! The listeners `amp serve`, `amp proxy` and `amp demo` accept on.

use std::net::SocketAddr;

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};

use crate::error::CliError;

/// A TCP listener whose connections send each write at once
/// (`TCP_NODELAY`). Without it, the last small write of a response (an SSE
/// chunk, a short JSON answer) waits for the peer's delayed ACK, about 40 ms
/// a response on Linux, which the proxies bench measured.
pub async fn bind(address: SocketAddr) -> Result<NoDelay, CliError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| CliError::Io(format!("listening on {address}"), e))?;
    Ok(listener.tap_io(no_delay))
}

/// What [`bind`] returns: an axum listener.
pub type NoDelay = TapIo<TcpListener, fn(&mut TcpStream)>;

fn no_delay(stream: &mut TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
    }
}
