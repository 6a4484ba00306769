//! Discovery against real sockets on 127.0.0.x: health servers that stop, restart and change
//! status, and DNS resolution of `localhost`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use xmidt_discovery::{Discovery, DiscoveryConfig, DiscoveryError, HealthConfig};
use xmidt_ring::{Instance, Ring};

/// Generous bound for any awaited change; the expected time is a few health intervals.
const DEADLINE: Duration = Duration::from_secs(5);

/// A minimal HTTP health endpoint answering every request with a settable status.
struct HealthServer {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    task: Option<JoinHandle<()>>,
}

impl HealthServer {
    async fn start(ip: &str) -> HealthServer {
        let listener = bind(SocketAddr::new(parse_ip(ip), 0)).await;
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("local_addr: {e}"));
        let status = Arc::new(AtomicU16::new(200));
        let task = Some(tokio::spawn(serve(listener, Arc::clone(&status))));
        HealthServer { addr, status, task }
    }

    /// Closes the listening socket: checks now get "connection refused".
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Wait until the task (and so the listener) is dropped.
            let _ = task.await;
        }
    }

    /// Listens again on the same address and port.
    async fn restart(&mut self) {
        let listener = bind(self.addr).await;
        self.task = Some(tokio::spawn(serve(listener, Arc::clone(&self.status))));
    }

    fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn instance(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn parse_ip(ip: &str) -> IpAddr {
    ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"))
}

async fn bind(addr: SocketAddr) -> TcpListener {
    TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"))
}

async fn serve(listener: TcpListener, status: Arc<AtomicU16>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // One connection at a time is plenty for a health check every few tens of ms.
        let _ = timeout(Duration::from_secs(1), respond(stream, &status)).await;
    }
}

async fn respond(mut stream: TcpStream, status: &AtomicU16) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let status = status.load(Ordering::SeqCst);
    let response =
        format!("HTTP/1.1 {status} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn fast_health() -> HealthConfig {
    HealthConfig {
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        failure_threshold: 2,
        ..HealthConfig::default()
    }
}

fn members(ring: &Ring) -> Vec<String> {
    ring.instances().iter().map(|i| i.to_string()).collect()
}

fn sorted(instances: &[&String]) -> Vec<String> {
    let mut list: Vec<String> = instances.iter().map(|s| s.to_string()).collect();
    list.sort();
    list
}

async fn start(config: DiscoveryConfig) -> Discovery {
    Discovery::start(config)
        .await
        .unwrap_or_else(|e| panic!("discovery start: {e}"))
}

/// Waits until the ring holds exactly `expected`; returns how long that took.
async fn wait_for_members(rx: &mut watch::Receiver<Arc<Ring>>, expected: &[String]) -> Duration {
    let started = Instant::now();
    let outcome = timeout(DEADLINE, rx.wait_for(|ring| members(ring) == expected))
        .await
        .map(|waited| waited.map(|_| ()));
    match outcome {
        Ok(Ok(())) => started.elapsed(),
        Ok(Err(e)) => panic!("discovery stopped: {e}"),
        Err(_) => panic!(
            "ring never became {expected:?}; it is {:?}",
            members(&rx.borrow())
        ),
    }
}

#[tokio::test]
async fn failing_instance_leaves_and_returns() {
    let a = HealthServer::start("127.0.0.2").await;
    let mut b = HealthServer::start("127.0.0.3").await;
    let c = HealthServer::start("127.0.0.4").await;
    let (ia, ib, ic) = (a.instance(), b.instance(), c.instance());
    let discovery = start(DiscoveryConfig {
        fixed: vec![ia.clone(), ib.clone(), ic.clone()],
        health: Some(fast_health()),
        ..DiscoveryConfig::default()
    })
    .await;
    let all = sorted(&[&ia, &ib, &ic]);
    assert_eq!(members(&discovery.ring()), all);
    let mut rx = discovery.subscribe();

    b.stop().await;
    let took = wait_for_members(&mut rx, &sorted(&[&ia, &ic])).await;
    // Two failed checks 50 ms apart, plus scheduling slack.
    assert!(took < Duration::from_secs(2), "left after {took:?}");
    let ring = discovery.ring();
    for n in 0..200 {
        let key = format!("mac:{n:012x}");
        let owner = ring.owner(key.as_bytes()).map(Instance::to_string);
        assert!(owner.as_ref().is_ok_and(|o| *o != ib), "{key} → {owner:?}");
    }

    b.restart().await;
    let took = wait_for_members(&mut rx, &all).await;
    assert!(took < Duration::from_secs(2), "returned after {took:?}");
}

#[tokio::test]
async fn status_codes_decide_and_newcomers_must_pass_first() {
    let good = HealthServer::start("127.0.0.5").await;
    let sick = HealthServer::start("127.0.0.6").await;
    sick.set_status(503);
    let (ig, is) = (good.instance(), sick.instance());
    let discovery = start(DiscoveryConfig {
        fixed: vec![ig.clone(), is.clone()],
        health: Some(fast_health()),
        ..DiscoveryConfig::default()
    })
    .await;
    // The 503 instance never passed, so it was never in the ring.
    assert_eq!(members(&discovery.ring()), std::slice::from_ref(&ig));
    let mut rx = discovery.subscribe();

    sick.set_status(204);
    wait_for_members(&mut rx, &sorted(&[&ig, &is])).await;

    good.set_status(500);
    wait_for_members(&mut rx, std::slice::from_ref(&is)).await;

    sick.set_status(302);
    wait_for_members(&mut rx, &[]).await;
    assert_eq!(
        discovery.ring().owner(b"mac:112233445566").map(|_| ()),
        Err(xmidt_ring::RingError::NoInstances)
    );
}

#[tokio::test]
async fn stable_membership_publishes_no_new_ring() {
    let a = HealthServer::start("127.0.0.7").await;
    let discovery = start(DiscoveryConfig {
        fixed: vec![a.instance()],
        dns: vec![format!("http://localhost:{}", a.addr.port())],
        dns_interval: Duration::from_millis(40),
        health: Some(fast_health()),
        ..DiscoveryConfig::default()
    })
    .await;
    let first = discovery.ring();
    let rx = discovery.subscribe();
    // Ten health rounds and a dozen DNS rounds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(matches!(rx.has_changed(), Ok(false)));
    assert!(Arc::ptr_eq(&first, &discovery.ring()));
    // localhost's 127.0.0.1 at that port has no server: it keeps failing without causing
    // a rebuild.
    assert_eq!(members(&first), [a.instance()]);
}

#[tokio::test]
async fn dns_localhost_gives_loopback_instances() {
    let discovery = start(DiscoveryConfig {
        fixed: vec!["http://127.0.0.10:6200".to_owned()],
        dns: vec!["http://localhost:6200".to_owned()],
        ..DiscoveryConfig::default()
    })
    .await;
    let ring = discovery.ring();
    let names = members(&ring);
    // localhost may also resolve to ::1; 127.0.0.1 is certain. Fixed and DNS sources add up.
    assert!(
        names.contains(&"http://127.0.0.1:6200".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"http://127.0.0.10:6200".to_owned()),
        "{names:?}"
    );
    for instance in ring.instances() {
        let ip: Result<IpAddr, _> = instance.hostname().parse();
        assert!(ip.is_ok_and(|ip| ip.is_loopback()), "{instance}");
        assert_eq!(instance.port(), Some(6200));
    }
}

#[tokio::test]
async fn dns_instances_are_health_checked() {
    let mut server = HealthServer::start("127.0.0.1").await;
    let port = server.addr.port();
    let discovery = start(DiscoveryConfig {
        dns: vec![format!("http://localhost:{port}")],
        dns_interval: Duration::from_millis(50),
        health: Some(fast_health()),
        ..DiscoveryConfig::default()
    })
    .await;
    // Only the IPv4 address has a server; a ::1 answer from the resolver fails its check.
    let expected = [format!("http://127.0.0.1:{port}")];
    assert_eq!(members(&discovery.ring()), expected);
    let mut rx = discovery.subscribe();

    server.stop().await;
    wait_for_members(&mut rx, &[]).await;
    server.restart().await;
    wait_for_members(&mut rx, &expected).await;
}

#[tokio::test]
async fn health_port_overrides_instance_port() {
    let health = HealthServer::start("127.0.0.8").await;
    // The instance's own port has nothing behind it; only the health port answers.
    let instance = "http://127.0.0.8:1".to_owned();
    let discovery = start(DiscoveryConfig {
        fixed: vec![instance.clone()],
        health: Some(HealthConfig {
            port: Some(health.addr.port()),
            ..fast_health()
        }),
        ..DiscoveryConfig::default()
    })
    .await;
    assert_eq!(members(&discovery.ring()), [instance]);
}

#[tokio::test]
async fn invalid_config_fails_start() {
    let result = Discovery::start(DiscoveryConfig::default()).await;
    assert!(
        matches!(result, Err(DiscoveryError::NoSources)),
        "{result:?}"
    );
}
