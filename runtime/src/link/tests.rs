//! The HTTP/2 link over an in-memory pipe: what both transports must do the same way.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::h2::{H2Link, H2Tuning, Peer};
use super::{Link, LinkError, LinkRecv, LinkSend};

const LIMIT: Duration = Duration::from_secs(10);

fn peer() -> Peer {
    Peer {
        remote: "127.0.0.1:1".parse().expect("addr"),
        certs: Vec::new(),
    }
}

fn tuning() -> H2Tuning {
    H2Tuning {
        keepalive: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        max_incoming_streams: 100,
    }
}

/// frps's end (it opens streams) and frpc's end (it accepts them) over one pipe.
async fn pair() -> (Link, Link) {
    let (a, b) = tokio::io::duplex(256 * 1024);
    let server = tokio::spawn(H2Link::server(b, peer(), tuning()));
    let frps = H2Link::client(a, peer(), tuning()).await.expect("client");
    let frpc = server.await.expect("join").expect("server");
    (Link::H2(frps), Link::H2(frpc))
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f).await.expect("in time")
}

async fn read_all(recv: &mut LinkRecv) -> std::io::Result<Vec<u8>> {
    let mut got = Vec::new();
    recv.read_to_end(&mut got).await?;
    Ok(got)
}

#[tokio::test]
async fn streams_carry_bytes_both_ways_with_clean_ends() {
    let (frps, frpc) = pair().await;
    let (control_send, _control_recv) = within(frps.accept_control()).await.expect("control");
    let (_s, _r) = within(frpc.open_control()).await.expect("frpc's control");
    drop(control_send);
    let (mut up, mut up_recv) = within(frps.open_bi()).await.expect("open");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            for chunk in data.chunks(100_000) {
                up.write_chunk(Bytes::copy_from_slice(chunk))
                    .await
                    .expect("write");
            }
            up.finish();
            up
        })
    };
    let (mut down, mut down_recv) = within(frpc.accept_bi()).await.expect("accept");
    let got = within(read_all(&mut down_recv)).await.expect("read");
    assert!(got == data, "every byte arrives once, in order");
    down.write_all(b"answer").await.expect("answer");
    down.shutdown().await.expect("fin");
    let back = within(read_all(&mut up_recv)).await.expect("read back");
    assert_eq!(back, b"answer");
    let mut up = within(writer).await.expect("writer");
    assert_eq!(up.stopped().await.expect("stopped"), None);
}

#[tokio::test]
async fn a_reset_carries_its_code_to_the_peer() {
    let (frps, frpc) = pair().await;
    let (mut send, _recv) = within(frps.open_bi()).await.expect("open");
    send.write_chunk(Bytes::from_static(b"x"))
        .await
        .expect("write");
    let (_down, mut down_recv): (LinkSend, LinkRecv) =
        within(frpc.accept_bi()).await.expect("accept");
    send.reset(frp_proto::StreamCode::VisitorReset.code());
    let err = within(read_all(&mut down_recv)).await.expect_err("reset");
    let code = frp_proto::StreamCode::VisitorReset.code();
    assert!(err.to_string().contains(&format!("code {code}")), "{err}");
}

#[tokio::test]
async fn a_close_carries_its_code_each_way() {
    let (frps, frpc) = pair().await;
    let code = frp_proto::CloseCode::Revoked.code();
    frps.close(code, b"certificate revoked");
    match within(frpc.closed()).await {
        LinkError::TcpClosed { code: c, reason } => {
            assert_eq!((c, reason.as_str()), (code, "certificate revoked"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        frps.close_reason(),
        Some(LinkError::TcpLocallyClosed(_))
    ));

    let (frps, frpc) = pair().await;
    let code = frp_proto::CloseCode::ClientShutdown.code();
    frpc.close(code, b"client shutting down");
    let end = within(frps.closed()).await;
    assert_eq!(
        end.closed_by_peer().map(|(c, _)| c),
        Some(u64::from(code)),
        "{end:?}"
    );
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let (frps, frpc) = pair().await;
    let (send, recv) = within(frps.open_bi()).await.expect("open");
    drop(frps);
    // A stream still open keeps the connection.
    let _accepted = within(frpc.accept_bi()).await.expect("accept");
    assert!(frpc.close_reason().is_none());
    drop((send, recv));
    let end = within(frpc.closed()).await;
    assert!(
        end.closed_by_peer().is_some() || matches!(end, LinkError::TcpLost(_)),
        "{end:?}"
    );
}
