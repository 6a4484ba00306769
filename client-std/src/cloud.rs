//! The cloud connection: one task per `Action::Connect`. It resolves, connects (IPv6 then
//! IPv4 unless forced, bound to the interface), does TLS and the upgrade with the core's
//! headers, reports the HTTP answer, and then pumps frames both ways until it is told to close
//! or the socket ends. The core decides everything else.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use xmidt_client_core::ConnId;

use crate::config::{IpFamily, MAX_MESSAGE};
use crate::device::Event;
use crate::error::Error;
use crate::tls;

/// parodus sends larger messages as continuation frames of this size (client-spec §3.5).
const FRAGMENT: usize = 60 * 1024;
/// A frame that cannot be written in this time means the connection is stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a close handshake may take before the socket is dropped anyway (it delays a
/// signalled exit, so it is short).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// With several addresses to try, each but the last gets this long to accept TCP.
const ADDRESS_TIMEOUT: Duration = Duration::from_secs(3);
/// Frames waiting for the socket; when full, new ones are dropped (the write timeout closes a
/// connection that stays stuck).
const OUTGOING: usize = 256;

/// What every connection shares: address family, interface, and the TLS config, built the
/// first time a `wss://` endpoint (or a redirect to one) needs it.
pub(crate) struct Net {
    pub family: IpFamily,
    pub interface: Option<String>,
    pub ca: Option<PathBuf>,
    /// `--mtls-client-cert-path`, `--mtls-client-key-path`.
    pub mtls: Option<(PathBuf, PathBuf)>,
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    bind_warned: AtomicBool,
}

impl Net {
    pub fn new(
        family: IpFamily,
        interface: Option<String>,
        ca: Option<PathBuf>,
        mtls: Option<(PathBuf, PathBuf)>,
    ) -> Self {
        Net {
            family,
            interface,
            ca,
            mtls,
            tls: OnceLock::new(),
            bind_warned: AtomicBool::new(false),
        }
    }

    pub fn tls(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let build = || -> Result<Arc<rustls::ClientConfig>, Error> {
            let identity = match &self.mtls {
                Some((cert, key)) => Some(tls::identity(cert, key)?),
                None => None,
            };
            tls::client_config(tls::roots(self.ca.as_deref())?, identity).map(Arc::new)
        };
        self.tls
            .get_or_init(|| build().map_err(|e| e.to_string()))
            .clone()
            .map_err(Error::Config)
    }

    fn ws_config() -> WebSocketConfig {
        // Small buffers: an idle gateway process should stay small; frames are written at once.
        WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE))
    }
}

/// Where to connect and what to send, copied from the core's `Connect`.
pub(crate) struct Target {
    pub conn: ConnId,
    pub url: String,
    pub host: String,
    pub port: u16,
    pub secure: bool,
    pub headers: Vec<(&'static str, String)>,
}

/// What the driver sends a connection.
pub(crate) enum Outgoing {
    Frame(Vec<u8>),
    /// Send a close frame, wait briefly for the answer, and end.
    Close {
        code: u16,
        reason: String,
    },
}

/// The driver's handle on a connection task.
pub(crate) struct Connection {
    out: mpsc::Sender<Outgoing>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Connection {
    pub fn spawn(target: Target, net: Arc<Net>, events: mpsc::Sender<Event>) -> Self {
        let (out, rx) = mpsc::channel(OUTGOING);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(target, net, events, rx, cancel.clone()));
        Connection { out, cancel, task }
    }

    /// Queues a frame; false when the connection cannot take it.
    pub fn send(&self, frame: Vec<u8>) -> bool {
        self.out.try_send(Outgoing::Frame(frame)).is_ok()
    }

    /// Closes with a close frame if the socket is open; a connect in progress is abandoned.
    /// The task finishes on its own; the handle says when.
    pub fn close(self, code: u16, reason: &str) -> JoinHandle<()> {
        let _ = self.out.try_send(Outgoing::Close {
            code,
            reason: reason.to_string(),
        });
        // Only the connect phase listens to this; an open socket takes the close frame.
        self.cancel.cancel();
        self.task
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The upgrade's outcome when it is not a WebSocket.
enum Refused {
    /// Any HTTP answer but 101.
    Http {
        status: u16,
        location: Option<String>,
    },
    /// DNS, TCP, TLS or a broken HTTP answer.
    Failed(String),
}

async fn run(
    target: Target,
    net: Arc<Net>,
    events: mpsc::Sender<Event>,
    mut out: mpsc::Receiver<Outgoing>,
    cancel: CancellationToken,
) {
    let conn = target.conn;
    let opened = tokio::select! {
        () = cancel.cancelled() => return,
        r = open(&target, &net) => r,
    };
    let mut ws = match opened {
        Ok(ws) => ws,
        Err(Refused::Http { status, location }) => {
            let _ = events
                .send(Event::Handshake {
                    conn,
                    status,
                    location,
                })
                .await;
            return;
        }
        Err(Refused::Failed(error)) => {
            let _ = events.send(Event::ConnectFailed { conn, error }).await;
            return;
        }
    };
    let online = Event::Handshake {
        conn,
        status: 101,
        location: None,
    };
    // Even when the driver is gone, a close it queued is still sent below.
    let _ = events.send(online).await;
    let code = loop {
        tokio::select! {
            o = out.recv() => match o {
                Some(Outgoing::Frame(frame)) => {
                    if let Err(e) = write(&mut ws, frame).await {
                        tracing::info!(error = %e, "cloud write failed");
                        break None;
                    }
                }
                Some(Outgoing::Close { code, reason }) => {
                    close(&mut ws, code, reason).await;
                    return;
                }
                // The driver has given up on this connection.
                None => return,
            },
            m = ws.next() => match m {
                Some(Ok(Message::Binary(b))) => {
                    let _ = events.send(Event::Frame { conn, bytes: b }).await;
                }
                // parodus decodes text frames as WRP too.
                Some(Ok(Message::Text(t))) => {
                    let bytes = Bytes::from(t);
                    let _ = events.send(Event::Frame { conn, bytes }).await;
                }
                Some(Ok(Message::Ping(_))) => {
                    let _ = events.send(Event::Ping(conn)).await;
                    // The pong tungstenite queued goes out now, not with the next frame.
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.flush()).await;
                }
                Some(Ok(Message::Close(frame))) => {
                    // Echo the close (parodus did not, so talaria saw 1006).
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.flush()).await;
                    // A close frame without a code is 1005, "no status".
                    break Some(frame.map_or(1005, |f| u16::from(f.code)));
                }
                Some(Ok(Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(e)) => {
                    tracing::info!(error = %e, "cloud connection lost");
                    break None;
                }
                None => break None,
            },
        }
    };
    let _ = events.send(Event::Closed { conn, code }).await;
}

/// One WRP message as one binary frame, or as 60 KiB fragments when larger.
async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    frame: Vec<u8>,
) -> Result<(), WsError> {
    let sending = async {
        if frame.len() <= FRAGMENT {
            return ws.send(Message::Binary(frame.into())).await;
        }
        let chunks: Vec<&[u8]> = frame.chunks(FRAGMENT).collect();
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let opcode = if i == 0 { Data::Binary } else { Data::Continue };
            let f = Frame::message(
                Bytes::copy_from_slice(chunk),
                OpCode::Data(opcode),
                i == last,
            );
            ws.feed(Message::Frame(f)).await?;
        }
        ws.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, sending)
        .await
        .unwrap_or_else(|_| Err(WsError::Io(std::io::ErrorKind::TimedOut.into())))
}

async fn close(ws: &mut Ws, code: u16, reason: String) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if ws.send(Message::Close(Some(frame))).await.is_ok() {
            // Wait for the server's close, so the frame is known to be out.
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

async fn open(target: &Target, net: &Net) -> Result<Ws, Refused> {
    let failed = |e: &dyn std::fmt::Display| Refused::Failed(e.to_string());
    let connector = if target.secure {
        Connector::Rustls(net.tls().map_err(|e| failed(&e))?)
    } else {
        Connector::Plain
    };
    let tcp = tcp(&target.host, target.port, net)
        .await
        .map_err(|e| failed(&e))?;
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| failed(&e))?;
    for (name, value) in &target.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| failed(&e))?;
        let value = HeaderValue::from_str(value).map_err(|e| failed(&e))?;
        request.headers_mut().insert(name, value);
    }
    let handshake = tokio_tungstenite::client_async_tls_with_config(
        request,
        tcp,
        Some(Net::ws_config()),
        Some(connector),
    );
    match handshake.await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(Refused::Http {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }),
        Err(e) => Err(failed(&e)),
    }
}

/// A TCP connection to the first address that answers, in the configured family order.
async fn tcp(host: &str, port: u16, net: &Net) -> std::io::Result<TcpStream> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await?
        .filter(|a| match net.family {
            IpFamily::Any => true,
            IpFamily::V4 => a.is_ipv4(),
            IpFamily::V6 => a.is_ipv6(),
        })
        .collect();
    // IPv6 first, as parodus tries it.
    addrs.sort_by_key(SocketAddr::is_ipv4);
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{host} has no address of the allowed family"),
    );
    let count = addrs.len();
    for (i, addr) in addrs.into_iter().enumerate() {
        let attempt = connect(addr, net);
        let result = if i + 1 < count {
            tokio::time::timeout(ADDRESS_TIMEOUT, attempt)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
        } else {
            attempt.await
        };
        match result {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn connect(addr: SocketAddr, net: &Net) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(interface) = &net.interface {
        // SO_BINDTODEVICE needs CAP_NET_RAW; without it the routing table decides.
        if let Err(e) = socket.bind_device(Some(interface.as_bytes())) {
            if !net.bind_warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(interface, error = %e, "cannot bind the cloud socket to the interface");
            }
        }
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// (FIN, opcode, payload length) of each frame in `wire`, a client's masked frames.
    fn frames(mut wire: &[u8]) -> Vec<(bool, u8, usize)> {
        let mut out = Vec::new();
        while wire.len() >= 2 {
            let (fin, opcode) = (wire[0] & 0x80 != 0, wire[0] & 0x0f);
            assert_eq!(wire[1] & 0x80, 0x80, "client frames are masked");
            let (len, head) = match wire[1] & 0x7f {
                126 => (usize::from(u16::from_be_bytes([wire[2], wire[3]])), 4),
                127 => (
                    u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (usize::from(n), 2),
            };
            out.push((fin, opcode, len));
            wire = &wire[head + 4 + len..];
        }
        out
    }

    async fn written(message: Vec<u8>) -> Vec<(bool, u8, usize)> {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut ws = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        write(&mut ws, message).await.unwrap();
        drop(ws);
        let mut wire = Vec::new();
        server.read_to_end(&mut wire).await.unwrap();
        frames(&wire)
    }

    #[tokio::test]
    async fn large_messages_go_out_in_60_kib_fragments() {
        assert_eq!(written(vec![7; 1000]).await, [(true, 2, 1000)]);
        assert_eq!(written(vec![7; FRAGMENT]).await, [(true, 2, FRAGMENT)]);
        assert_eq!(
            written(vec![7; 150 * 1024]).await,
            [
                (false, 2, FRAGMENT),
                (false, 0, FRAGMENT),
                (true, 0, 30 * 1024)
            ]
        );
    }
}
