//! Wiring SIGINT/SIGTERM (and the first Ctrl-C) to a cancellation token.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Spawns a task that cancels `token` on the first SIGINT or SIGTERM.
///
/// A second signal exits the process at once (status 130), for an operator who does not want to
/// wait for the grace period.
///
/// # Errors
/// Fails when the signal handlers cannot be installed.
pub fn cancel_on_signals(token: CancellationToken) -> std::io::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
        }
        token.cancel();
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        tracing::warn!("second signal: exiting without waiting for open streams");
        std::process::exit(130);
    });
    Ok(())
}
