//! Signals: what stops the binaries, and what never does.
//!
//! - SIGINT and SIGTERM (Ctrl-C on Windows) cancel a token: the binary drains and exits. A
//!   second one exits at once with status 130.
//! - SIGHUP, SIGUSR1 and SIGUSR2 never end the process (their default action would): each is
//!   handed to a function the binary chooses, as a [`Signal`]. frps rereads its revocation
//!   list on SIGHUP; everything else is logged as ignored with [`log_ignored`]. A binary that
//!   gains a use for one (frpc reloading its config on SIGHUP) changes only its function.
//! - SIGPIPE stays ignored, as Rust's runtime sets it before `main`: a write to a closed
//!   socket or pipe fails with `EPIPE` instead of killing the process. It is deliberately not
//!   caught and logged: its usual source is the reader of our stderr going away, where each
//!   log line would raise it again.
//! - SIGQUIT keeps its default (exit with a core dump), the operator's way to get one.

use std::fmt;

use tokio_util::sync::CancellationToken;

/// A signal the binaries receive without stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: by convention "reload your configuration".
    Hangup,
    /// SIGUSR1.
    User1,
    /// SIGUSR2.
    User2,
}

impl Signal {
    /// The signal's name, `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hangup => "SIGHUP",
            Signal::User1 => "SIGUSR1",
            Signal::User2 => "SIGUSR2",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Logs that `signal` was received and ignored, saying why.
pub fn log_ignored(signal: Signal, why: &str) {
    tracing::info!(signal = signal.name(), why, "signal ignored");
}

/// Spawns a task that cancels `token` on the first SIGINT or SIGTERM (Ctrl-C on Windows).
///
/// A second signal exits the process at once (status 130), for an operator who does not want to
/// wait for the grace period. SIGHUP and the other signals keep their default action: see
/// [`handle_signals`] for a server or client that must survive them.
///
/// # Errors
/// Fails when the signal handlers cannot be installed.
pub fn cancel_on_signals(token: CancellationToken) -> std::io::Result<()> {
    let mut stop = imp::Stop::new()?;
    tokio::spawn(async move {
        let first = stop.recv().await;
        tracing::info!(signal = first, "shutting down");
        token.cancel();
        stop.recv().await;
        tracing::warn!("second signal: exiting without waiting for open streams");
        std::process::exit(130);
    });
    Ok(())
}

/// [`cancel_on_signals`], and every SIGHUP, SIGUSR1 and SIGUSR2 passed to `on_signal` instead
/// of ending the process. Handlers are installed before this returns. On Windows, which has
/// none of those signals, `on_signal` is never called.
///
/// # Errors
/// Fails when the signal handlers cannot be installed.
pub fn handle_signals(
    token: CancellationToken,
    on_signal: impl FnMut(Signal) + Send + 'static,
) -> std::io::Result<()> {
    imp::spawn_others(on_signal)?;
    cancel_on_signals(token)
}

#[cfg(unix)]
mod imp {
    use tokio::signal::unix::{signal, SignalKind};

    use super::Signal;

    /// SIGINT and SIGTERM.
    pub(super) struct Stop {
        int: tokio::signal::unix::Signal,
        term: tokio::signal::unix::Signal,
    }

    impl Stop {
        pub(super) fn new() -> std::io::Result<Self> {
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }

        /// Waits for the next one; returns its name.
        pub(super) async fn recv(&mut self) -> &'static str {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
    }

    /// Installs SIGHUP, SIGUSR1 and SIGUSR2 handlers and a task passing them to `on_signal`.
    pub(super) fn spawn_others(
        mut on_signal: impl FnMut(Signal) + Send + 'static,
    ) -> std::io::Result<()> {
        let mut hup = signal(SignalKind::hangup())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let mut usr2 = signal(SignalKind::user_defined2())?;
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    Some(()) = hup.recv() => Signal::Hangup,
                    Some(()) = usr1.recv() => Signal::User1,
                    Some(()) = usr2.recv() => Signal::User2,
                    else => return,
                };
                on_signal(received);
            }
        });
        Ok(())
    }
}

#[cfg(not(unix))]
mod imp {
    use super::Signal;

    /// Ctrl-C (and Ctrl-Break, closing the console) on Windows.
    pub(super) struct Stop;

    impl Stop {
        pub(super) fn new() -> std::io::Result<Self> {
            Ok(Self)
        }

        /// Waits for the next Ctrl-C; returns its name.
        pub(super) async fn recv(&mut self) -> &'static str {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Windows has no SIGHUP, SIGUSR1 or SIGUSR2.
    pub(super) fn spawn_others(
        _on_signal: impl FnMut(Signal) + Send + 'static,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// A task that runs `reload` each time it is poked (wire the sender to SIGHUP), one at a
/// time: a poke while one runs makes one more run, further pokes are folded into it. An error
/// is logged, never fatal: the running configuration stays. It ends with `stop`.
pub fn reload_on_poke<F, Fut>(stop: CancellationToken, reload: F) -> tokio::sync::mpsc::Sender<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let (poke, mut poked) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                got = poked.recv() => if got.is_none() { break },
            }
            tracing::info!("SIGHUP: rereading the config file");
            if let Err(e) = reload().await {
                tracing::error!(signal = "SIGHUP", error = %e, "config not reloaded; the running one stays");
            }
        }
    });
    poke
}
