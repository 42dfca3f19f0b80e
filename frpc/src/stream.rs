//! One server-opened data stream: read its header, dial the local service, splice.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use frp_proto::{read_data_header, ProxyId, StreamCode};
use frp_runtime::credit::StreamEnd;
use frp_runtime::link::{LinkRecv as RecvStream, LinkSend as SendStream};
use frp_runtime::splice::{reset_stream, splice_idle};
use frp_runtime::Gauge;
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::config::LocalProxy;
use crate::handle::Shared;

/// How long the server has to deliver a stream's header (it sends it in its first write).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Live counts of what the client holds open, for tests and metrics.
#[derive(Clone, Debug, Default)]
pub struct ClientGauges {
    /// Data streams being served.
    pub streams: Gauge,
    /// TCP connections to local services.
    pub local_connections: Gauge,
    /// How many streams the server may have open toward us at once: the credit granted so
    /// far, which grows with use up to `transport.quic.maxIncomingStreams`.
    pub stream_credit: Gauge,
}

/// Proxy ids from the server's answers, mapped to the local services they reach; a reload
/// changes them in place.
pub(crate) type Targets = Arc<RwLock<HashMap<ProxyId, Arc<LocalProxy>>>>;

/// Serves one data stream to its end. Failures reset the stream with a code that tells the
/// server why, so it can reset the visitor's TCP connection at once. `_ended` counts it in its
/// session's stream credit once it is over.
pub(crate) async fn handle(
    mut send: SendStream,
    mut recv: RecvStream,
    targets: Targets,
    shared: Arc<Shared>,
    _ended: StreamEnd,
) {
    let gauges = &shared.gauges;
    let connect_timeout = shared.settings.borrow().local_connect_timeout;
    let _stream = gauges.streams.enter();
    let header = match tokio::time::timeout(HEADER_TIMEOUT, read_data_header(&mut recv)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return refuse(&mut send, &mut recv, StreamCode::BadHeader, &e.to_string()),
        Err(_) => {
            return refuse(
                &mut send,
                &mut recv,
                StreamCode::BadHeader,
                "header timed out",
            )
        }
    };
    let target = targets
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&header.proxy)
        .cloned();
    let Some(target) = target else {
        return refuse(
            &mut send,
            &mut recv,
            StreamCode::UnknownProxy,
            "unknown proxy id",
        );
    };
    let (host, port) = (target.local_host.as_str(), target.local_port);
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            warn!(proxy = %target.name, local = %format!("{host}:{port}"), error = %e, "local service unreachable");
            return refuse(
                &mut send,
                &mut recv,
                StreamCode::LocalUnreachable,
                "connect failed",
            );
        }
        Err(_) => {
            warn!(proxy = %target.name, local = %format!("{host}:{port}"), "local service did not answer in time");
            return refuse(
                &mut send,
                &mut recv,
                StreamCode::LocalUnreachable,
                "connect timed out",
            );
        }
    };
    let _connection = gauges.local_connections.enter();
    let _ = tcp.set_nodelay(true);
    let visitor = header.visitor;
    let idle = target.idle_timeout;
    match splice_idle(tcp, send, recv, StreamCode::LocalReset, idle).await {
        Ok(stats) => {
            shared.metrics.transferred(&target.name, stats);
            debug!(
                proxy = %target.name, %visitor, sent = stats.tcp_to_quic, received = stats.quic_to_tcp,
                "stream closed"
            );
        }
        Err(e) => debug!(proxy = %target.name, %visitor, error = %e, "stream reset"),
    }
}

fn refuse(send: &mut SendStream, recv: &mut RecvStream, code: StreamCode, why: &str) {
    debug!(code = ?code, why, "refusing stream");
    reset_stream(send, recv, code);
}
