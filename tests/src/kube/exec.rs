//! `kubectl exec` over WebSocket, subprotocol `v5.channel.k8s.io`, as the kubelet speaks it.
//!
//! Every binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the error
//! channel (a `Status` that ends the session and carries the exit code), 4 terminal resizes.
//! Version 5 adds the close signal `[255, channel]`, with which the client says that stdin
//! ended. The commands the "container" knows:
//!
//! - `cat`: echoes stdin to stdout until stdin is closed, then exits 0;
//! - `exit N`: exits with status `N` at once;
//! - anything else: `command not found` on stderr, exit 127.

use futures_util::{SinkExt as _, StreamExt as _};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::http::{empty, TestBody};

/// The only subprotocol accepted: the one with the close signal.
pub const PROTOCOL: &str = "v5.channel.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

/// Accepts the WebSocket upgrade of an exec request running `command`; returns the `101` and
/// the subprotocol chosen.
///
/// # Errors
/// Why the upgrade is refused (no key, no `v5.channel.k8s.io` offered).
pub(super) fn accept(
    mut req: Request<Incoming>,
    command: Vec<String>,
) -> Result<(Response<TestBody>, &'static str), String> {
    let key = req
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .ok_or("no Sec-WebSocket-Key")?
        .as_bytes()
        .to_vec();
    let offered = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL);
    if !offered {
        return Err(format!("subprotocol {PROTOCOL} not offered"));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        session(ws, command).await;
    });
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(PROTOCOL));
    let accept = HeaderValue::from_str(&derive_accept_key(&key)).map_err(|e| e.to_string())?;
    h.insert(SEC_WEBSOCKET_ACCEPT, accept);
    Ok((r, PROTOCOL))
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Runs `command` on the WebSocket, then sends its exit status and closes.
async fn session(mut ws: Ws, command: Vec<String>) {
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    let code = match args.as_slice() {
        ["cat"] => match cat(&mut ws).await {
            Some(code) => code,
            None => return,
        },
        ["exit", n] => n.parse().unwrap_or(255),
        _ => {
            let msg = format!("{}: command not found\n", command.join(" "));
            if send(&mut ws, STDERR, msg.as_bytes()).await.is_err() {
                return;
            }
            127
        }
    };
    let status = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        })
    };
    let _ = send(&mut ws, ERROR, status.to_string().as_bytes()).await;
    // A close without a code reads as an error to client-go: say "normal closure".
    let normal = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = ws.close(Some(normal)).await;
}

/// Echoes stdin to stdout until the client closes stdin (`Some(0)`), or vanishes (`None`).
async fn cat(ws: &mut Ws) -> Option<u32> {
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Binary(data) = msg else {
            continue;
        };
        match data.first() {
            Some(&STDIN) if data.len() > 1 => send(ws, STDOUT, &data[1..]).await.ok()?,
            Some(&CLOSE) if data.get(1) == Some(&STDIN) => return Some(0),
            _ => {}
        }
    }
    None
}

async fn send(
    ws: &mut Ws,
    channel: u8,
    data: &[u8],
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(data);
    ws.send(Message::Binary(frame.into())).await
}
