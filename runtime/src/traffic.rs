//! Bytes moved, counted live by the data path, for the admin API and metrics.
//!
//! A [`Traffic`] belongs to one proxy (or one client, on frpc's side); the splice adds to it
//! per chunk with one relaxed atomic add, so a counter is current while a transfer runs, not
//! only once it ends.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes moved each way between a TCP socket and its QUIC stream.
#[derive(Debug, Default)]
pub struct Traffic {
    tcp_to_quic: AtomicU64,
    quic_to_tcp: AtomicU64,
}

impl Traffic {
    /// Counts `n` bytes read from TCP and written to QUIC.
    pub fn add_tcp_to_quic(&self, n: u64) {
        self.tcp_to_quic.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` bytes read from QUIC and written to TCP.
    pub fn add_quic_to_tcp(&self, n: u64) {
        self.quic_to_tcp.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes read from TCP and written to QUIC so far.
    pub fn tcp_to_quic(&self) -> u64 {
        self.tcp_to_quic.load(Ordering::Relaxed)
    }

    /// Bytes read from QUIC and written to TCP so far.
    pub fn quic_to_tcp(&self) -> u64 {
        self.quic_to_tcp.load(Ordering::Relaxed)
    }
}
