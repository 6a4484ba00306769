//! Where devices connect: URL parsing, loopback-only resolution, TLS, and the websocket
//! handshake itself (following petasos' redirects).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::rustls::crypto::aws_lc_rs::default_provider;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Petasos answers one redirect; a chain longer than this is a loop.
const MAX_REDIRECTS: usize = 3;
/// The largest frame a device accepts (talaria's default `max_message_size`).
const MAX_MESSAGE: usize = 256 * 1024;
/// Per-connection read buffer: the devices' frames are small, and 18,000 connections with
/// tungstenite's 128 KiB default would need gigabytes.
const READ_BUFFER: usize = 4 * 1024;

/// A parsed ws/wss (or http/https, treated alike) URL.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("ws" | "http") => false,
            Some("wss" | "https") => true,
            _ => return Err(format!("{url}: the scheme must be ws, wss, http or https")),
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("{url}: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        Ok(Endpoint {
            tls,
            host,
            port,
            path,
        })
    }

    /// `host:port`, as a URL or a `Host` header writes it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.authority(), self.path)
    }

    /// The endpoint's address, which must be a loopback one: this tool never loads anything
    /// beyond the machine it runs on.
    pub async fn resolve(&self) -> Result<SocketAddr, String> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return if ip.is_loopback() {
                Ok(SocketAddr::new(ip, self.port))
            } else {
                Err(format!("{ip} is not a loopback address"))
            };
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("{}: {e}", self.host))?
            .collect();
        // IPv4 first: the source addresses devices bind to are 127.x.y.z.
        addrs
            .iter()
            .find(|a| a.is_ipv4() && a.ip().is_loopback())
            .or_else(|| addrs.iter().find(|a| a.ip().is_loopback()))
            .copied()
            .ok_or_else(|| format!("{} resolves to no loopback address", self.host))
    }
}

/// The first device URL, resolved once per worker, and how to speak TLS.
pub struct Target {
    pub endpoint: Endpoint,
    pub addr: SocketAddr,
    pub tls: Option<Arc<ClientConfig>>,
}

impl Target {
    pub async fn new(url: &str, ca: Option<&Path>) -> Result<Target, String> {
        let endpoint = Endpoint::parse(url)?;
        let addr = endpoint.resolve().await?;
        let tls = ca.map(client_tls).transpose()?;
        if endpoint.tls && tls.is_none() {
            return Err(format!("{url} is TLS: give --ca-cert"));
        }
        Ok(Target {
            endpoint,
            addr,
            tls,
        })
    }
}

/// A rustls client trusting only the given PEM certificates.
pub fn client_tls(ca: &Path) -> Result<Arc<ClientConfig>, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate", ca.display()));
    }
    let config = ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // Every frame is flushed at once: answers are latency-bound, not throughput-bound.
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Opens a TCP connection to `addr` from `source` (port chosen by the kernel).
async fn tcp(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(source) = source.filter(|s| s.is_ipv4() == addr.is_ipv4()) {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("bind {source}: {e}"))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    // Small frames both ways: never wait for Nagle.
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    Ok(stream)
}

/// Connects one device: TCP from `source`, TLS when the URL says so, the websocket handshake
/// with the device's headers; a 3xx with a `Location` (petasos) is followed.
pub async fn connect(
    target: &Target,
    id: &HeaderValue,
    convey: Option<&HeaderValue>,
    source: Option<IpAddr>,
) -> Result<Socket, String> {
    let mut endpoint = target.endpoint.clone();
    let mut addr = target.addr;
    for _ in 0..=MAX_REDIRECTS {
        let connector = match (&target.tls, endpoint.tls) {
            (_, false) => Connector::Plain,
            (Some(tls), true) => Connector::Rustls(tls.clone()),
            (None, true) => return Err(format!("{} is TLS: give --ca-cert", endpoint.ws_url())),
        };
        let mut request = endpoint
            .ws_url()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        let headers = request.headers_mut();
        headers.insert("x-webpa-device-name", id.clone());
        if let Some(convey) = convey {
            headers.insert("x-webpa-convey", convey.clone());
        }
        let stream = tcp(addr, source).await?;
        match tokio_tungstenite::client_async_tls_with_config(
            request,
            stream,
            Some(ws_config()),
            Some(connector),
        )
        .await
        {
            Ok((ws, _)) => return Ok(ws),
            Err(WsError::Http(response)) if response.status().is_redirection() => {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| format!("HTTP {} without a Location", response.status()))?;
                endpoint = Endpoint::parse(location)?;
                addr = endpoint.resolve().await?;
            }
            Err(WsError::Http(response)) => return Err(format!("HTTP {}", response.status())),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("too many redirects".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        let e = Endpoint::parse("http://localhost/api/v3/device").unwrap();
        assert!(!e.tls);
        assert_eq!((e.host.as_str(), e.port), ("localhost", 80));
        assert_eq!(e.ws_url(), "ws://localhost:80/api/v3/device");
        let e = Endpoint::parse("wss://[::1]:6200/d").unwrap();
        assert!(e.tls);
        assert_eq!(e.ws_url(), "wss://[::1]:6200/d");
        assert!(Endpoint::parse("ftp://x/").is_err());
    }

    #[tokio::test]
    async fn only_loopback_is_accepted() {
        let e = Endpoint::parse("ws://10.0.0.1:6200/").unwrap();
        assert!(e.resolve().await.is_err());
        let e = Endpoint::parse("ws://127.0.0.1:6200/").unwrap();
        assert_eq!(e.resolve().await.unwrap().port(), 6200);
    }
}
