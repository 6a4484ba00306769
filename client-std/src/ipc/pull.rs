//! parodus's PULL socket: every local service connects a PUSH socket here and sends its
//! registration and its upstream messages.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcp, ToSocketAddrs};
use std::os::unix::net::{UnixListener as StdUnix, UnixStream as StdUnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, Semaphore};

use super::sp::{self, Io};
use super::Endpoint;
use crate::config::MAX_MESSAGE;
use crate::device::Event;

/// A peer must send its SP header within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Once a message has started, all of it must arrive within this time.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound socket, before the runtime takes it over (binding early reports a taken port
/// to the caller of `Device::spawn`).
pub(crate) enum Bound {
    Tcp(StdTcp),
    Unix(StdUnix, PathBuf),
}

impl Bound {
    pub fn bind(endpoint: &Endpoint) -> io::Result<Bound> {
        match endpoint {
            Endpoint::Tcp { host, port } => {
                let host = if host == "*" { "0.0.0.0" } else { host };
                let addrs: Vec<SocketAddr> = (host, *port).to_socket_addrs()?.collect();
                let l = StdTcp::bind(addrs.as_slice())?;
                l.set_nonblocking(true)?;
                Ok(Bound::Tcp(l))
            }
            Endpoint::Ipc(path) => {
                // A socket file nobody listens on is left over from a previous run.
                if path.exists() && StdUnixStream::connect(path).is_err() {
                    std::fs::remove_file(path)?;
                }
                let l = StdUnix::bind(path)?;
                l.set_nonblocking(true)?;
                Ok(Bound::Unix(l, path.clone()))
            }
        }
    }

    /// The TCP address, for tests and logs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Bound::Tcp(l) => l.local_addr().ok(),
            Bound::Unix(..) => None,
        }
    }
}

/// Accepts PUSH connections and forwards their messages to the driver, until the runtime
/// stops. At most `max_connections` are served at once; more are closed on accept.
pub(crate) async fn serve(bound: Bound, inbox: mpsc::Sender<Event>, max_connections: usize) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let (ipc, _unlink) = match &bound {
        Bound::Tcp(_) => (false, None),
        Bound::Unix(_, path) => (true, Some(Unlink(path.clone()))),
    };
    let listener = match bound {
        Bound::Tcp(l) => TcpListener::from_std(l).map(Listener::Tcp),
        Bound::Unix(l, _) => UnixListener::from_std(l).map(Listener::Unix),
    };
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "the IPC listener cannot be used");
            return;
        }
    };
    loop {
        let io = match listener.accept().await {
            Ok(io) => io,
            Err(e) => {
                // Out of descriptors, most likely: let some close.
                tracing::warn!(error = %e, "IPC accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                max_connections,
                "too many IPC connections; closing a new one"
            );
            continue;
        };
        let inbox = inbox.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(io, ipc, inbox).await {
                tracing::debug!(error = %e, "IPC connection ended");
            }
            drop(slot);
        });
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    async fn accept(&self) -> io::Result<Box<dyn Io>> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Listener::Unix(l) => Box::new(l.accept().await?.0),
        })
    }
}

/// Removes the ipc socket file when the listener goes away.
struct Unlink(PathBuf);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn connection(mut io: Box<dyn Io>, ipc: bool, inbox: mpsc::Sender<Event>) -> io::Result<()> {
    sp::handshake(&mut io, sp::PULL, sp::PUSH, HANDSHAKE_TIMEOUT).await?;
    while let Some(message) = sp::read_message(&mut io, ipc, MAX_MESSAGE, BODY_TIMEOUT).await? {
        if inbox.send(Event::Local(message)).await.is_err() {
            break;
        }
    }
    Ok(())
}
