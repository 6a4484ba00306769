//! Where the bytes go: TCP connections from a [`Connector`] (embassy-net on a board, anything
//! else in tests), optionally wrapped in TLS 1.3, split into a reading and a writing half.
//!
//! The client reads and writes at the same time: one future waits for the server's frames while
//! another sends answers, events and pongs. A read is therefore never cancelled half-way (the
//! TLS record reader keeps a partly read record header in its own future, so cancelling it would
//! lose bytes); the halves make cancelling unnecessary.

use core::future::Future;

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::mutex::Mutex;
use embedded_io::ErrorKind;
use embedded_io_async::{ErrorType, Read, Write};
use embedded_tls::{
    Aes128GcmSha256, CertificateEntryRef, CertificateRef, CertificateVerifyRef, CryptoProvider,
    CryptoRngCore, SignatureScheme, TlsConnection, TlsContext, TlsError, TlsReader, TlsVerifier,
    TlsWriter,
};
use sha2::{Digest, Sha256};

use crate::x509;

/// Why a TCP connection could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum ConnectError {
    /// The host did not resolve: a name without the `dns` feature, a failed lookup, or an
    /// IPv6 literal (the client speaks IPv4).
    Dns,
    /// TCP refused, reset or timed out.
    Tcp,
}

/// Opens TCP connections to the cloud.
pub trait Connector {
    type Socket<'a>: Socket
    where
        Self: 'a;

    /// Connects to `host` (a name or an IP literal, IPv6 without brackets) on `port`.
    fn connect<'a>(
        &'a mut self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = Result<Self::Socket<'a>, ConnectError>>;
}

/// A connected TCP socket whose halves can be used at the same time.
pub trait Socket {
    type Error: embedded_io::Error;
    type Reader<'s>: Read<Error = Self::Error>
    where
        Self: 's;
    type Writer<'s>: Write<Error = Self::Error>
    where
        Self: 's;

    fn split(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>);

    /// Ends the connection politely (FIN after what is queued), bounded in time.
    fn close(&mut self) -> impl Future<Output = ()>;
}

/// Both halves behind shared references, so TLS can hand one to its reader and one to its
/// writer (embedded-tls splits a connection by cloning its transport). Each mutex has one user
/// once split, so the locks never wait on each other.
pub(crate) struct Duplex<'h, R, W> {
    r: &'h Mutex<NoopRawMutex, R>,
    w: &'h Mutex<NoopRawMutex, W>,
}

impl<R, W> Clone for Duplex<'_, R, W> {
    fn clone(&self) -> Self {
        Duplex {
            r: self.r,
            w: self.w,
        }
    }
}

impl<'h, R, W> Duplex<'h, R, W> {
    pub fn new(r: &'h Mutex<NoopRawMutex, R>, w: &'h Mutex<NoopRawMutex, W>) -> Self {
        Duplex { r, w }
    }
}

impl<R: ErrorType, W> ErrorType for Duplex<'_, R, W> {
    type Error = R::Error;
}

impl<R: Read, W> Read for Duplex<'_, R, W> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, R::Error> {
        self.r.lock().await.read(buf).await
    }
}

impl<E: embedded_io::Error, R: Read<Error = E>, W: Write<Error = E>> Write for Duplex<'_, R, W> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, E> {
        self.w.lock().await.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), E> {
        self.w.lock().await.flush().await
    }
}

/// An I/O failure on the link.
#[derive(Debug, Clone, Copy, defmt::Format)]
pub enum LinkError {
    Io(ErrorKind),
    Tls(TlsError),
}

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl core::error::Error for LinkError {}

impl embedded_io::Error for LinkError {
    fn kind(&self) -> ErrorKind {
        match self {
            LinkError::Io(kind) => *kind,
            LinkError::Tls(e) => embedded_io::Error::kind(e),
        }
    }
}

fn io<E: embedded_io::Error>(e: E) -> LinkError {
    LinkError::Io(e.kind())
}

/// The server's certificate checked against the configured CA and the host (see `x509`), and
/// its handshake signature against the leaf's key.
pub(crate) struct Verifier<'a> {
    ca: &'a [u8],
    host: &'a str,
    /// The leaf's key (uncompressed SEC1) and the transcript up to its certificate, for the
    /// CertificateVerify message that follows.
    leaf: Option<([u8; 65], Sha256)>,
}

/// What TLS 1.3 signs in CertificateVerify (RFC 8446 §4.4.3): 64 spaces, the context string
/// and its zero byte, then the transcript hash.
const VERIFY_CONTEXT: &[u8; 34] = b"TLS 1.3, server CertificateVerify\0";

impl TlsVerifier<Aes128GcmSha256> for Verifier<'_> {
    /// The host was given to [`Provider::new`]: IP literals are checked without SNI.
    fn set_hostname_verification(&mut self, _hostname: &str) -> Result<(), TlsError> {
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &Sha256,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        let chain = cert.entries.iter().map(|e| match e {
            CertificateEntryRef::X509(der) => *der,
            // A raw public key has no chain to the CA: it fails as malformed.
            CertificateEntryRef::RawPublicKey(_) => &[][..],
        });
        let key = x509::check_chain(chain, self.ca, self.host).map_err(|e| {
            defmt::warn!("xmidt: certificate refused: {}", e);
            TlsError::InvalidCertificate
        })?;
        let key: [u8; 65] = key.try_into().map_err(|_| TlsError::InvalidCertificate)?;
        self.leaf = Some((key, transcript.clone()));
        Ok(())
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        let (key, transcript) = self.leaf.take().ok_or(TlsError::InvalidSignature)?;
        if verify.signature_scheme != SignatureScheme::EcdsaSecp256r1Sha256 {
            return Err(TlsError::InvalidSignatureScheme);
        }
        let mut message = [0x20u8; 64 + 34 + 32];
        message[64..98].copy_from_slice(VERIFY_CONTEXT);
        message[98..].copy_from_slice(&transcript.finalize());
        x509::verify(&key, &message, verify.signature).map_err(|_| TlsError::InvalidSignature)
    }
}

/// The device's TLS provider: its random numbers and the verifier.
pub(crate) struct Provider<'a, R> {
    rng: R,
    verifier: Verifier<'a>,
}

impl<'a, R: CryptoRngCore> Provider<'a, R> {
    /// Verifies against `ca` (DER) and `host`.
    pub fn new(rng: R, ca: &'a [u8], host: &'a str) -> Self {
        Provider {
            rng,
            verifier: Verifier {
                ca,
                host,
                leaf: None,
            },
        }
    }
}

impl<R: CryptoRngCore> CryptoProvider for Provider<'_, R> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = &'static [u8];

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Aes128GcmSha256>, TlsError> {
        Ok(&mut self.verifier)
    }
}

/// A connection to talk WebSocket over: plain TCP or TLS.
#[allow(
    clippy::large_enum_variant,
    reason = "one link exists at a time, inside a static future; there is no heap to box into"
)]
pub(crate) enum Link<'t, 'h, R, W>
where
    R: Read + 'h,
    W: Write<Error = R::Error> + 'h,
{
    Plain(Duplex<'h, R, W>),
    Tls(TlsConnection<'t, Duplex<'h, R, W>, Aes128GcmSha256>),
}

impl<'t, 'h, R, W> Link<'t, 'h, R, W>
where
    R: Read + 'h,
    W: Write<Error = R::Error> + 'h,
{
    /// Runs the TLS handshake over `duplex`. SNI is sent for host names, never for IP literals
    /// (RFC 6066); the certificate is checked against `host` either way.
    pub async fn tls(
        duplex: Duplex<'h, R, W>,
        buffers: (&'t mut [u8], &'t mut [u8]),
        provider: Provider<'_, impl CryptoRngCore>,
        host: &str,
    ) -> Result<Self, TlsError> {
        let mut tls = TlsConnection::new(duplex, buffers.0, buffers.1);
        let config = embedded_tls::TlsConfig::new();
        let is_ip = host.parse::<core::net::IpAddr>().is_ok();
        let config = if is_ip {
            config
        } else {
            config.with_server_name(host)
        };
        tls.open(TlsContext::new(&config, provider)).await?;
        Ok(Link::Tls(tls))
    }

    pub fn split(&mut self) -> (LinkReader<'_, 'h, R, W>, LinkWriter<'_, 'h, R, W>) {
        match self {
            Link::Plain(d) => (LinkReader::Plain(d.clone()), LinkWriter::Plain(d.clone())),
            Link::Tls(tls) => {
                let (r, w) = tls.split();
                (LinkReader::Tls(r), LinkWriter::Tls(w))
            }
        }
    }

    /// Sends TLS's close_notify; a plain link has nothing to say.
    pub async fn close(self) {
        if let Link::Tls(tls) = self {
            // The socket closes next whatever happens here.
            let _ = tls.close().await;
        }
    }
}

pub(crate) enum LinkReader<'a, 'h: 'a, R: Read, W: Write<Error = R::Error>> {
    Plain(Duplex<'h, R, W>),
    Tls(TlsReader<'a, Duplex<'h, R, W>, Aes128GcmSha256>),
}

pub(crate) enum LinkWriter<'a, 'h: 'a, R: Read, W: Write<Error = R::Error>> {
    Plain(Duplex<'h, R, W>),
    Tls(TlsWriter<'a, Duplex<'h, R, W>, Aes128GcmSha256>),
}

impl<'a, 'h: 'a, R: Read, W: Write<Error = R::Error>> ErrorType for LinkReader<'a, 'h, R, W> {
    type Error = LinkError;
}

impl<'a, 'h: 'a, R: Read, W: Write<Error = R::Error>> ErrorType for LinkWriter<'a, 'h, R, W> {
    type Error = LinkError;
}

impl<'a, 'h: 'a, R: Read, W: Write<Error = R::Error>> Read for LinkReader<'a, 'h, R, W> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, LinkError> {
        match self {
            LinkReader::Plain(d) => d.read(buf).await.map_err(io),
            LinkReader::Tls(t) => t.read(buf).await.map_err(LinkError::Tls),
        }
    }
}

impl<'a, 'h: 'a, R: Read, W: Write<Error = R::Error>> Write for LinkWriter<'a, 'h, R, W> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, LinkError> {
        match self {
            LinkWriter::Plain(d) => d.write(buf).await.map_err(io),
            LinkWriter::Tls(t) => t.write(buf).await.map_err(LinkError::Tls),
        }
    }

    async fn flush(&mut self) -> Result<(), LinkError> {
        match self {
            LinkWriter::Plain(d) => d.flush().await.map_err(io),
            LinkWriter::Tls(t) => t.flush().await.map_err(LinkError::Tls),
        }
    }
}

pub use embassy::{run_on_stack, EmbassyNet, TCP_RX, TCP_TX};

mod embassy {
    use embassy_net::tcp::{TcpReader, TcpSocket, TcpWriter};
    use embassy_net::{IpAddress, Stack};
    use embassy_time::{with_timeout, Duration};

    use super::{ConnectError, Connector, Socket};

    /// How long an unacknowledged send may wait before smoltcp gives the connection up.
    const TCP_TIMEOUT: Duration = Duration::from_secs(30);
    /// How long a polite close may take before the socket is dropped anyway.
    const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

    /// TCP over an embassy-net stack, with one connection's buffers.
    pub struct EmbassyNet<'d> {
        stack: Stack<'d>,
        rx: &'d mut [u8],
        tx: &'d mut [u8],
    }

    impl<'d> EmbassyNet<'d> {
        /// `rx` bounds the TCP receive window; `tx` what may be in flight.
        pub fn new(stack: Stack<'d>, rx: &'d mut [u8], tx: &'d mut [u8]) -> Self {
            EmbassyNet { stack, rx, tx }
        }
    }

    /// The cloud connection's TCP receive window, as [`run_on_stack`] sizes it.
    pub const TCP_RX: usize = 4096;
    /// What may be in flight on the cloud connection, as [`run_on_stack`] sizes it.
    pub const TCP_TX: usize = 2048;

    /// [`crate::run`] over a board's embassy-net `stack`, with the connection's TCP buffers
    /// ([`TCP_RX`], [`TCP_TX`]) inside this future. Boards wanting other sizes give `run` an
    /// [`EmbassyNet`] of their own.
    pub async fn run_on_stack<R: rand_core::RngCore + rand_core::CryptoRng>(
        stack: Stack<'_>,
        config: &crate::Config<'_>,
        rng: R,
        services: &mut [&mut dyn crate::Service],
        events: embassy_sync::channel::DynamicReceiver<'_, crate::Event>,
    ) -> Result<core::convert::Infallible, crate::StartError> {
        let mut rx = [0u8; TCP_RX];
        let mut tx = [0u8; TCP_TX];
        let mut connector = EmbassyNet::new(stack, &mut rx, &mut tx);
        crate::run(config, &mut connector, rng, services, events).await
    }

    impl Connector for EmbassyNet<'_> {
        type Socket<'a>
            = TcpSocket<'a>
        where
            Self: 'a;

        async fn connect<'a>(
            &'a mut self,
            host: &str,
            port: u16,
        ) -> Result<TcpSocket<'a>, ConnectError> {
            let address = resolve(self.stack, host).await?;
            let mut socket = TcpSocket::new(self.stack, self.rx, self.tx);
            socket.set_timeout(Some(TCP_TIMEOUT));
            socket
                .connect((address, port))
                .await
                .map_err(|_| ConnectError::Tcp)?;
            Ok(socket)
        }
    }

    async fn resolve(stack: Stack<'_>, host: &str) -> Result<IpAddress, ConnectError> {
        if let Ok(ip) = host.parse::<core::net::Ipv4Addr>() {
            return Ok(ip.into());
        }
        #[cfg(feature = "dns")]
        {
            let found = stack
                .dns_query(host, embassy_net::dns::DnsQueryType::A)
                .await
                .map_err(|_| ConnectError::Dns)?;
            found.first().copied().ok_or(ConnectError::Dns)
        }
        #[cfg(not(feature = "dns"))]
        {
            let _ = stack;
            Err(ConnectError::Dns)
        }
    }

    impl Socket for TcpSocket<'_> {
        type Error = embassy_net::tcp::Error;
        type Reader<'s>
            = TcpReader<'s>
        where
            Self: 's;
        type Writer<'s>
            = TcpWriter<'s>
        where
            Self: 's;

        fn split(&mut self) -> (TcpReader<'_>, TcpWriter<'_>) {
            TcpSocket::split(self)
        }

        async fn close(&mut self) {
            TcpSocket::close(self);
            if with_timeout(CLOSE_TIMEOUT, self.flush()).await.is_err() {
                self.abort();
            }
        }
    }
}
