//! The libparodus IPC (client-spec §7): nanomsg pipeline sockets, spoken here without nanomsg.
//! parodus binds a PULL socket on `--parodus-local-url`; every registered service gets a PUSH
//! connection to the URL it registered.

pub(crate) mod pull;
pub(crate) mod push;
pub(crate) mod sp;

use std::io;
use std::path::PathBuf;

use tokio::net::{TcpStream, UnixStream};

use sp::Io;

/// A nanomsg URL: `tcp://host:port` or `ipc:///path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `host` is a name or an address (IPv6 without brackets); `*` binds every address.
    Tcp {
        host: String,
        port: u16,
    },
    Ipc(PathBuf),
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("ipc://") {
            if path.is_empty() {
                return Err(format!("{url}: no path"));
            }
            return Ok(Endpoint::Ipc(PathBuf::from(path)));
        }
        let rest = url
            .strip_prefix("tcp://")
            .ok_or_else(|| format!("{url}: only tcp:// and ipc:// are supported"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("{url}: no port"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        // Port 0 binds any free port (tests); connecting to it just fails.
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("{url}: the port must be 0..65535"))?;
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(format!("{url}: no valid host"));
        }
        Ok(Endpoint::Tcp {
            host: host.to_string(),
            port,
        })
    }

    /// Whether messages carry nanomsg's ipc type byte.
    pub fn is_ipc(&self) -> bool {
        matches!(self, Endpoint::Ipc(_))
    }

    /// Opens a connection (the SP handshake is the caller's).
    pub async fn connect(&self) -> io::Result<Box<dyn Io>> {
        Ok(match self {
            Endpoint::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Endpoint::Ipc(path) => Box::new(UnixStream::connect(path).await?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let tcp = |h: &str, p| Endpoint::Tcp {
            host: h.into(),
            port: p,
        };
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:6666"),
            Ok(tcp("127.0.0.1", 6666))
        );
        assert_eq!(Endpoint::parse("tcp://*:6667"), Ok(tcp("*", 6667)));
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:0"),
            Ok(tcp("127.0.0.1", 0))
        );
        assert_eq!(Endpoint::parse("tcp://[::1]:6668"), Ok(tcp("::1", 6668)));
        assert_eq!(
            Endpoint::parse("tcp://localhost:1"),
            Ok(tcp("localhost", 1))
        );
        assert_eq!(
            Endpoint::parse("ipc:///tmp/parodus.ipc"),
            Ok(Endpoint::Ipc("/tmp/parodus.ipc".into()))
        );
        for bad in [
            "tcp://127.0.0.1",
            "tcp://127.0.0.1:70000",
            "tcp://:6666",
            "ipc://",
            "http://127.0.0.1:6666",
            "inproc://x",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
