//! nanomsg's SP wire format (client-spec §7.1), as libparodus speaks it: after connecting, each
//! side sends `00 53 50 00 | protocol u16 BE | 00 00`; then every message is a u64 big-endian
//! length and the bytes. Over `ipc://` each message starts with one more byte, 0x01.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The pipeline protocol numbers.
pub(crate) const PUSH: u16 = 0x0050;
pub(crate) const PULL: u16 = 0x0051;

/// nanomsg's ipc transport marks each message with this type byte.
const IPC_MESSAGE: u8 = 0x01;

/// A socket of either transport.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn header(protocol: u16) -> [u8; 8] {
    let p = protocol.to_be_bytes();
    [0x00, b'S', b'P', 0x00, p[0], p[1], 0x00, 0x00]
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Sends our header and checks the peer's, within `limit`.
pub(crate) async fn handshake(
    io: &mut (impl Io + ?Sized),
    own: u16,
    peer: u16,
    limit: Duration,
) -> io::Result<()> {
    tokio::time::timeout(limit, async {
        io.write_all(&header(own)).await?;
        let mut theirs = [0u8; 8];
        io.read_exact(&mut theirs).await?;
        if theirs != header(peer) {
            return Err(invalid("not the expected SP header"));
        }
        Ok(())
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "SP handshake timed out"))?
}

/// Reads one message of at most `max` bytes. `None` when the peer closed between messages.
/// Once a message has started, the rest must arrive within `limit`.
pub(crate) async fn read_message(
    io: &mut (impl Io + ?Sized),
    ipc: bool,
    max: usize,
    limit: Duration,
) -> io::Result<Option<Vec<u8>>> {
    let mut first = [0u8; 1];
    if io.read(&mut first).await? == 0 {
        return Ok(None);
    }
    tokio::time::timeout(limit, async {
        let mut len = [0u8; 8];
        if ipc {
            if first[0] != IPC_MESSAGE {
                return Err(invalid("unknown ipc message type"));
            }
            io.read_exact(&mut len).await?;
        } else {
            len[0] = first[0];
            io.read_exact(&mut len[1..]).await?;
        }
        let len = usize::try_from(u64::from_be_bytes(len)).unwrap_or(usize::MAX);
        if len > max {
            return Err(invalid("message over the size limit"));
        }
        let mut body = vec![0u8; len];
        io.read_exact(&mut body).await?;
        Ok(Some(body))
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "message body timed out"))?
}

/// Writes one message.
pub(crate) async fn write_message(
    io: &mut (impl Io + ?Sized),
    ipc: bool,
    message: &[u8],
) -> io::Result<()> {
    let mut head = Vec::with_capacity(9);
    if ipc {
        head.push(IPC_MESSAGE);
    }
    head.extend_from_slice(&(message.len() as u64).to_be_bytes());
    io.write_all(&head).await?;
    io.write_all(message).await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(1);

    #[test]
    fn headers_are_parodus_captures() {
        assert_eq!(header(PULL), [0, 0x53, 0x50, 0, 0, 0x51, 0, 0]);
        assert_eq!(header(PUSH), [0, 0x53, 0x50, 0, 0, 0x50, 0, 0]);
    }

    #[tokio::test]
    async fn round_trip_both_framings() {
        for ipc in [false, true] {
            let (mut a, mut b) = tokio::io::duplex(1024);
            write_message(&mut a, ipc, b"hello").await.unwrap();
            write_message(&mut a, ipc, b"").await.unwrap();
            drop(a);
            assert_eq!(
                read_message(&mut b, ipc, 16, LIMIT).await.unwrap(),
                Some(b"hello".to_vec())
            );
            assert_eq!(
                read_message(&mut b, ipc, 16, LIMIT).await.unwrap(),
                Some(vec![])
            );
            assert_eq!(read_message(&mut b, ipc, 16, LIMIT).await.unwrap(), None);
        }
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 0, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'])
            .await
            .unwrap();
        assert_eq!(
            read_message(&mut b, false, 16, LIMIT).await.unwrap(),
            Some(b"hello".to_vec())
        );
    }

    #[tokio::test]
    async fn limits() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_message(&mut a, false, &[7; 17]).await.unwrap();
        let e = read_message(&mut b, false, 16, LIMIT).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);

        // A length of 2^64 - 1 is refused before anything is allocated.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0xff; 8]).await.unwrap();
        let e = read_message(&mut b, false, 16, LIMIT).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);

        // A body that stops arriving.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 0, 0, 0, 0, 9, 1]).await.unwrap();
        let e = read_message(&mut b, false, 16, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);

        // The wrong type byte on ipc.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0x02, 0, 0, 0, 0, 0, 0, 0, 0]).await.unwrap();
        assert!(read_message(&mut b, true, 16, LIMIT).await.is_err());
    }

    #[tokio::test]
    async fn handshake_checks_the_peer() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let (x, y) = tokio::join!(
            handshake(&mut a, PUSH, PULL, LIMIT),
            handshake(&mut b, PULL, PUSH, LIMIT)
        );
        x.unwrap();
        y.unwrap();

        // Two PUSH sockets do not pair.
        let (mut a, mut b) = tokio::io::duplex(64);
        let (x, y) = tokio::join!(
            handshake(&mut a, PUSH, PULL, LIMIT),
            handshake(&mut b, PUSH, PULL, LIMIT)
        );
        assert!(x.is_err() && y.is_err());

        // A peer that says nothing.
        let (mut a, _b) = tokio::io::duplex(64);
        let e = handshake(&mut a, PUSH, PULL, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
