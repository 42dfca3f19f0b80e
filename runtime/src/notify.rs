//! Readiness for systemd `Type=notify` units (sd_notify).
//!
//! A binary calls [`ready`] once it serves: frps when its QUIC endpoint and public listeners
//! are bound, frpc when its config is loaded and it starts dialing (it reconnects while the
//! server is down, so it does not wait for the server). Outside systemd (`NOTIFY_SOCKET`
//! unset) the calls do nothing; a notification that cannot be sent is logged, never fatal.
//! systemd is Linux-only, so on other systems the calls do nothing at all.

/// Tells the service manager that startup is finished (`READY=1`).
pub fn ready() {
    #[cfg(target_os = "linux")]
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}
