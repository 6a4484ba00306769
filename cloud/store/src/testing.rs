//! A real PostgreSQL server for tests (feature `testing`): started on first use, shared by every
//! test of the process, on a free port of 127.0.0.1, in a temporary directory; each test takes
//! its own database with [`PostgresServer::create_database`].
//!
//! PostgreSQL refuses to run as root, so under root the server runs as the `postgres` user. It
//! is stopped, and its directory removed, when the test process exits, however it exits: a
//! small shell watchdog waits for the process's end of a pipe to close.
//!
//! Missing server binaries fail the test with the fix (`./scripts/test-all` installs them);
//! the tests never pass by skipping.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

/// A running server.
pub struct PostgresServer {
    port: u16,
    /// Holds the watchdog's stdin open; the watchdog stops the server when it closes.
    _watchdog: Mutex<Child>,
}

/// The process's server, started on first call. Panics (failing the test) when PostgreSQL is
/// not installed or does not start.
pub fn postgres() -> &'static PostgresServer {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

impl PostgresServer {
    /// A `postgres://` URL for a new, empty database of its own.
    pub async fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = self.url("postgres");
        // The server accepts TCP a little before it accepts logins.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut conn = loop {
            match PgConnection::connect(&admin).await {
                Ok(conn) => break conn,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "waiting for postgres");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("test PostgreSQL server does not accept connections: {e}"),
            }
        };
        let create = format!("CREATE DATABASE {name}");
        if let Err(e) = conn.execute(sqlx::AssertSqlSafe(create)).await {
            panic!("creating test database {name}: {e}");
        }
        self.url(&name)
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

/// The newest installed PostgreSQL's `bin` directory.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): these \
             tests run against a real server. Run ./scripts/test-all, which installs the \
             `postgresql` package, or install it yourself (apt-get install postgresql)."
        ),
    }
}

/// The uid and gid to run the server as: `postgres` when we are root, else ourselves.
fn server_user() -> Option<(u32, u32)> {
    // /proc/self belongs to the effective user.
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !root {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap_or_else(|e| panic!("running `id {flag} postgres`: {e}"));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "no `postgres` user to run the test server as (PostgreSQL refuses root); \
                     run ./scripts/test-all, which installs the postgresql package"
                )
            })
    };
    Some((id("-u"), id("-g")))
}

fn as_server_user(command: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port for the test PostgreSQL server: {e}"))
}

fn start() -> PostgresServer {
    let bin = bin_dir();
    let user = server_user();
    let dir = std::env::temp_dir().join(format!("xmidt-store-pg-{}", std::process::id()));
    // A port can be taken between our probe and the server's bind; try a few.
    for _ in 0..5 {
        init_cluster(&bin, &dir, user);
        let port = free_port();
        let mut watchdog = spawn_server(&bin, &dir, port, user);
        if wait_until_listening(&dir, port, &mut watchdog) {
            return PostgresServer {
                port,
                _watchdog: Mutex::new(watchdog),
            };
        }
    }
    panic!("the test PostgreSQL server did not start; see its log above");
}

/// A fresh database cluster in `dir/data`, `dir` owned by the server's user.
fn init_cluster(bin: &Path, dir: &Path, user: Option<(u32, u32)>) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("giving {} to postgres: {e}", dir.display()));
    }
    let initdb = as_server_user(&mut Command::new(bin.join("initdb")), user)
        .current_dir(dir)
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        .output()
        .unwrap_or_else(|e| panic!("running initdb: {e}"));
    assert!(
        initdb.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
}

/// Starts the server under a shell that stops it (and removes `dir`) when its stdin closes,
/// which happens when this process exits. The shell prints `started` once the server runs.
fn spawn_server(bin: &Path, dir: &Path, port: u16, user: Option<(u32, u32)>) -> Child {
    const WATCHDOG: &str = r#"
dir=$1; shift
"$@" >>"$dir/log" 2>&1 &
pid=$!
echo started
while read -r _; do :; done
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$dir"
"#;
    let mut command = Command::new("sh");
    as_server_user(&mut command, user)
        .current_dir(dir)
        .args(["-c", WATCHDOG, "sh"])
        .arg(dir)
        .arg(bin.join("postgres"))
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(dir)
        // A disposable server: durability off, sized for tests.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting the test PostgreSQL server: {e}"))
}

fn wait_until_listening(dir: &Path, port: u16, watchdog: &mut Child) -> bool {
    if let Some(out) = watchdog.stdout.take() {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Closing stdin makes the watchdog stop whatever started and remove the directory.
    eprintln!(
        "test PostgreSQL server not listening on port {port}; its log:\n{}",
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
    drop(watchdog.stdin.take());
    let _ = watchdog.wait();
    false
}
