# frp-quic: frps and frpc in one minimal image.
#
#   docker build -t frp-quic .
#   docker run --rm -v /etc/frp:/etc/frp:ro -p 443:7443/udp -p 443:8443 frp-quic frps -c /etc/frp/frps.toml
#
# The build stage compiles both binaries statically (deploy/container/build-rootfs, which the
# test suite runs the same way); the runtime image is empty but for them, an /etc/passwd
# naming the non-root user 65532, and a writable /tmp.
ARG RUST_VERSION=1.85
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN deploy/container/build-rootfs /rootfs

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin
USER 65532:65532
# Ports of the example configs: QUIC (UDP), the TCP transport (TCP, same number) and the
# vhost HTTPS port (TCP), unprivileged.
EXPOSE 7443/udp 7443/tcp 8443/tcp
CMD ["frps", "--help"]
