//! Running the HTTP server: bind, serve, shut down gracefully.

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api;
use crate::config::{Config, Secrets};
use crate::state::AppContext;

/// After a shutdown signal, open requests get this long to finish before the
/// process exits anyway (long-lived connections would otherwise hold it up).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    #[error("server failed: {0}")]
    Io(#[from] io::Error),
    #[error("cannot open the database: {0}")]
    Database(pds_storage::StorageError),
}

/// Serves until SIGTERM or SIGINT, then drains open requests and returns.
pub async fn run(mut config: Config, secrets: Secrets) -> Result<(), ServeError> {
    // Installed before binding: a signal that arrives as soon as the
    // "listening" line is out must already be handled, not kill the process.
    let mut signals = ShutdownSignals::install().map_err(ServeError::Signals)?;

    let addr = config.server.listen_addr();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener.local_addr()?;
    config.server.set_bound_port(bound.port());
    if config.identity.embedded_plc {
        // The embedded directory is this server: reach it on the address just bound.
        config.identity.plc_url = format!("http://{bound}{}", crate::api::EMBEDDED_PLC_PATH);
    }
    let public_url = config.server.public_url.clone();
    let state = AppContext::open(config, secrets)
        .await
        .map_err(ServeError::Database)?;
    let db = state.db.clone();
    let (crawlers, hub) = (state.crawlers.clone(), state.firehose.hub.clone());
    let app = api::app(state);

    // This line is an interface: tests and scripts find the address by the
    // text `listening on http://`, followed by the bound address (`IP:PORT`,
    // IPv6 in brackets), which ends at the first space or quote. Keep it so.
    tracing::info!(%public_url, "listening on http://{bound}");
    // Now that relays can connect back, ask them to.
    crawlers.spawn(hub.clone());

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The peer address reaches handlers (rate limits key on the client IP).
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stopped.await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return result.map_err(ServeError::Io),
        signal = signals.recv() => tracing::info!("received {signal}, shutting down"),
    }
    let _ = stop.send(());
    // Firehose subscriptions are upgraded connections the HTTP server no longer tracks: end
    // them, so subscribers see the stream close and reconnect elsewhere or later.
    hub.close();
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!(
            "requests still open {}s after the shutdown signal; exiting anyway",
            SHUTDOWN_GRACE.as_secs()
        ),
    }
    // Every acknowledged write is already durable; this lets the writer finish the batch in
    // hand and closes the database cleanly.
    db.close();
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (what `docker stop` and systemd send) and SIGINT (Ctrl-C).
#[cfg(unix)]
struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl ShutdownSignals {
    fn install() -> io::Result<ShutdownSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct ShutdownSignals;

#[cfg(not(unix))]
impl ShutdownSignals {
    fn install() -> io::Result<ShutdownSignals> {
        Ok(ShutdownSignals)
    }

    async fn recv(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
