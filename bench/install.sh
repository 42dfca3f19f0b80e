#!/bin/sh
# Installs what bench/run needs besides the Rust toolchain (Debian/Ubuntu, as root):
# the load and target tools, sshd/ssh for the ssh -R peer, openssl for rathole's TLS
# identity, and rathole 0.5 itself.
set -eu

apt-get update
apt-get install -y iperf3 wrk nginx-light openssh-server openssh-client openssl \
    libssl-dev pkg-config

# The packaged nginx and sshd services are left alone: the benchmark starts private
# instances on loopback ports of its own and never touches the system's.

# rathole 0.5.0's Cargo.lock pins time 0.3.29, which no longer compiles with current rustc
# (E0282 in time's format_description), so `--locked` fails: resolve fresh versions instead.
if ! command -v rathole >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/rathole" ]; then
    cargo install rathole --version '^0.5'
fi
