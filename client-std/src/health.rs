//! The files parodus keeps for other processes: the connection health file (`{START=<t0>,<now>}`
//! while connecting, rewritten every 240 s; `{STOP=<now>}` once online) and the
//! "notify ready" file, present while online after a reconnect (not after the first connect).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// parodus's `UPDATE_HEALTH_FILE_INTERVAL_SECS`.
const REWRITE: Duration = Duration::from_secs(240);

pub(crate) struct Health {
    health_file: Option<PathBuf>,
    notify_file: Option<PathBuf>,
    /// When the current connecting period began (unix seconds), while offline.
    connecting_since: Option<u64>,
    next_rewrite: Option<Instant>,
    been_online: bool,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Health {
    pub fn new(health_file: Option<PathBuf>, notify_file: Option<PathBuf>) -> Self {
        Health {
            health_file,
            notify_file,
            connecting_since: None,
            next_rewrite: None,
            been_online: false,
        }
    }

    /// When `rewrite` is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.next_rewrite
    }

    /// The connection is down (or not up yet): a connecting period starts.
    pub fn offline(&mut self) {
        if let Some(f) = &self.notify_file {
            let _ = std::fs::remove_file(f);
        }
        self.connecting_since = Some(unix_now());
        self.rewrite();
    }

    /// Still connecting: refresh the START line.
    pub fn rewrite(&mut self) {
        if let Some(since) = self.connecting_since {
            self.write(&format!("{{START={since},{}}}\n", unix_now()));
            self.next_rewrite = self.health_file.as_ref().map(|_| Instant::now() + REWRITE);
        }
    }

    pub fn online(&mut self) {
        self.connecting_since = None;
        self.next_rewrite = None;
        self.write(&format!("{{STOP={}}}\n", unix_now()));
        if self.been_online {
            if let Some(f) = &self.notify_file {
                if let Err(e) = std::fs::write(f, b"") {
                    tracing::warn!(file = %f.display(), error = %e, "cannot create the notify file");
                }
            }
        }
        self.been_online = true;
    }

    fn write(&self, line: &str) {
        if let Some(f) = &self.health_file {
            if let Err(e) = std::fs::write(f, line) {
                tracing::warn!(file = %f.display(), error = %e, "cannot write the health file");
            }
        }
    }
}
