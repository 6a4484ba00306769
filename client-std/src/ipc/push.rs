//! One PUSH connection per registered service, to the URL it registered. Like nanomsg's PUSH,
//! it (re)connects on demand; a message that cannot be written within the send timeout, the
//! connect included, means the service is dead (client-spec §7.3).

use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::sp::{self, Io};
use super::Endpoint;
use crate::device::Event;
use crate::services::{Gone, ServiceSink};

/// How often a refused connect is retried within the send timeout (nanomsg's reconnect
/// interval).
const RECONNECT: Duration = Duration::from_millis(100);

/// The driver's end of a service's PUSH connection.
pub(crate) struct IpcSink {
    queue: mpsc::Sender<Vec<u8>>,
}

impl ServiceSink for IpcSink {
    fn deliver(&mut self, message: &[u8]) -> Result<(), Gone> {
        // A full queue is a service that stopped reading: as dead as one that is gone.
        self.queue.try_send(message.to_vec()).map_err(|_| Gone)
    }
}

/// What a service's PUSH task needs.
pub(crate) struct Push {
    pub service: String,
    /// Tells the driver's report apart from one about a later registration of the name.
    pub id: u64,
    pub endpoint: Endpoint,
    pub send_timeout: Duration,
    pub queue: usize,
}

impl Push {
    /// Starts the connection task; it ends when the sink is dropped or the service dies.
    pub fn spawn(self, inbox: mpsc::Sender<Event>) -> IpcSink {
        let (queue, messages) = mpsc::channel(self.queue.max(1));
        tokio::spawn(self.run(messages, inbox));
        IpcSink { queue }
    }

    async fn run(self, mut messages: mpsc::Receiver<Vec<u8>>, inbox: mpsc::Sender<Event>) {
        let mut conn: Option<Box<dyn Io>> = None;
        loop {
            let next = match conn.as_mut() {
                // A PULL peer sends nothing after its header: anything else is its end.
                Some(io) => tokio::select! {
                    m = messages.recv() => m,
                    () = closed(io) => {
                        conn = None;
                        continue;
                    }
                },
                None => messages.recv().await,
            };
            let Some(message) = next else { return };
            let sent =
                tokio::time::timeout(self.send_timeout, self.send(&mut conn, &message)).await;
            if let Err(e) = sent.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())) {
                tracing::warn!(service = self.service, error = %e, "service unreachable; removed");
                let _ = inbox
                    .send(Event::ServiceGone {
                        service: self.service,
                        id: self.id,
                    })
                    .await;
                return;
            }
        }
    }

    async fn send(&self, conn: &mut Option<Box<dyn Io>>, message: &[u8]) -> io::Result<()> {
        let io = match conn {
            Some(io) => io,
            None => conn.insert(self.connect().await),
        };
        let written = sp::write_message(io, self.endpoint.is_ipc(), message).await;
        if written.is_err() {
            *conn = None;
        }
        written
    }

    /// Connects and pairs, retrying until it works (the caller bounds the time).
    async fn connect(&self) -> Box<dyn Io> {
        loop {
            if let Ok(mut io) = self.endpoint.connect().await {
                if sp::handshake(&mut io, sp::PUSH, sp::PULL, self.send_timeout)
                    .await
                    .is_ok()
                {
                    return io;
                }
            }
            tokio::time::sleep(RECONNECT).await;
        }
    }
}

/// Resolves when the peer closes the connection or it fails.
async fn closed(io: &mut Box<dyn Io>) {
    let mut scratch = [0u8; 64];
    while let Ok(n) = io.read(&mut scratch).await {
        if n == 0 {
            return;
        }
    }
}
