#!/bin/sh
# Regenerates the THROW-AWAY certificates the example configs point at (see README.md here).
# Their private keys are in a public repository: never use them for a real deployment.
#
#   examples/certs/generate.sh                         # builds and runs frps with cargo
#   FRPS=target/release/frps examples/certs/generate.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
frps=${FRPS:-}
if [ -z "$frps" ]; then
  cargo build --quiet -p frps --manifest-path "$here/../../Cargo.toml"
  frps="$here/../../target/debug/frps"
fi
cd "$here"
rm -f ./*.crt ./*.key
# The CA, and the server certificate the example frps.toml files use.
"$frps" ca init --dir . --name vps.example.com --name localhost
# The client identities the example frpc*.toml files use.
"$frps" ca issue node1 --dir .
"$frps" ca issue kube --dir .
# web.crt: the certificate frps-vhost.toml terminates TLS with, from a second throw-away CA.
web=$(mktemp -d)
"$frps" ca init --dir "$web" --name app.example.com --name grafana.apps.example.com
mv "$web/server.crt" web.crt
mv "$web/server.key" web.key
rm -r "$web"
# Nothing needs the CA key: without it no one can issue more certificates from this CA.
rm ca.key
