//! Device events leave here: routed by `dest`, queued, and posted by a pool of workers with
//! retries. An event waits a bounded time for room in a full queue; a queue still full after
//! that, or a spent retry budget, drops the event, always counted and logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{Locator, Scheme};

use crate::config::OutboundConfig;

/// Why an event was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// `dest` is not `event:` or `dns:`.
    Unroutable,
    /// No endpoint for the event type and no `default`.
    NoEndpoint,
    /// A `dns:` destination whose scheme is not allowed.
    SchemeNotAllowed,
    QueueFull,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Unroutable => "unroutable_destination",
            DropReason::NoEndpoint => "no_endpoint_configured_for_event",
            DropReason::SchemeNotAllowed => "url_scheme_not_allowed",
            DropReason::QueueFull => "queue_full",
        }
    }
}

struct Job {
    url: String,
    body: Bytes,
    deadline: Instant,
    /// Shared by the jobs of one event whose sender wants to know when they have all ended:
    /// the last one dropped (delivered, given up, or never queued) drops the sender, which
    /// resolves the receiver.
    _ended: Option<Arc<oneshot::Sender<()>>>,
}

/// The event sender of one talaria.
pub struct Outbound {
    config: OutboundConfig,
    queue: mpsc::Sender<Job>,
    drop_log: DropLog,
}

/// Dropped events are logged at most once a second, with how many went unlogged meanwhile: a
/// disconnect storm drops thousands a second (each counted in the metrics all the same), and a
/// line for each would cost more than the events.
#[derive(Default)]
struct DropLog {
    last: std::sync::Mutex<Option<std::time::Instant>>,
    unlogged: AtomicU64,
}

impl DropLog {
    /// Some(drops not logged since the last line) when this drop should be logged.
    fn admit(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }
}

impl Outbound {
    /// Starts the worker pool; workers stop when `shutdown` is cancelled.
    pub fn start(config: OutboundConfig, shutdown: CancellationToken) -> Arc<Outbound> {
        let (tx, rx) = mpsc::channel(config.queue_size.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(config.workers.max(1))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        for _ in 0..config.workers.max(1) {
            let worker = Worker {
                client: client.clone(),
                queue: rx.clone(),
                authorization: config.authorization.clone(),
                retries: config.retries,
                backoff: config.retry_backoff,
            };
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = worker.run() => {}
                    () = shutdown.cancelled() => {}
                }
            });
        }
        Arc::new(Outbound {
            config,
            queue: tx,
            drop_log: DropLog::default(),
        })
    }

    /// The receiver URLs for a message's `dest`.
    pub fn route(&self, dest: &str) -> Result<Vec<String>, DropReason> {
        let locator = Locator::parse(dest).map_err(|_| DropReason::Unroutable)?;
        match locator.scheme {
            Scheme::Event => {
                let endpoints = &self.config.event_endpoints;
                endpoints
                    .get(locator.authority)
                    .or_else(|| endpoints.get("default"))
                    .filter(|urls| !urls.is_empty())
                    .cloned()
                    .ok_or(DropReason::NoEndpoint)
            }
            Scheme::Dns => {
                // Everything after "dns:" is the target: host, then any path.
                let target = dest.split_once(':').map_or("", |(_, t)| t).trim();
                let url = if target.contains("://") {
                    target.to_string()
                } else {
                    format!("{}://{target}", self.config.default_scheme)
                };
                let scheme = url.split("://").next().unwrap_or_default();
                if self
                    .config
                    .allowed_schemes
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(scheme))
                {
                    Ok(vec![url])
                } else {
                    Err(DropReason::SchemeNotAllowed)
                }
            }
            _ => Err(DropReason::Unroutable),
        }
    }

    /// Queues `frame` (a msgpack WRP) for every receiver of `dest`. While the queue is full,
    /// the event waits up to `queue_wait` for room (so a burst of events, such as the offline
    /// events of a mass disconnect, is delayed rather than lost); then it is dropped.
    ///
    /// `ended`, if given, is dropped once every delivery of the event has ended (delivered or
    /// given up), or at once when it was not queued.
    pub async fn dispatch(
        &self,
        dest: &str,
        frame: Bytes,
        ended: Option<oneshot::Sender<()>>,
    ) -> Result<(), DropReason> {
        let result = self.enqueue(dest, frame, ended.map(Arc::new)).await;
        let outcome = match result {
            Ok(()) => "queued",
            Err(reason) => {
                if let Some(unlogged) = self.drop_log.admit() {
                    tracing::warn!(
                        dest,
                        reason = reason.as_str(),
                        unlogged,
                        "event dropped (unlogged: drops since the last such line)"
                    );
                }
                metrics::counter!("xmidt_talaria_outbound_dropped_messages", "reason" => reason.as_str())
                    .increment(1);
                reason.as_str()
            }
        };
        metrics::counter!("xmidt_talaria_total_outbound_events", "outcome" => outcome).increment(1);
        metrics::gauge!("xmidt_talaria_outbound_queue_size")
            .set((self.queue.max_capacity() - self.queue.capacity()) as f64);
        result
    }
}

impl Outbound {
    async fn enqueue(
        &self,
        dest: &str,
        frame: Bytes,
        ended: Option<Arc<oneshot::Sender<()>>>,
    ) -> Result<(), DropReason> {
        for url in self.route(dest)? {
            let job = Job {
                url,
                body: frame.clone(),
                deadline: Instant::now() + self.config.request_timeout,
                _ended: ended.clone(),
            };
            match self.queue.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job)) => self.wait_for_room(job).await?,
                // Only when the workers have stopped: talaria is shutting down.
                Err(TrySendError::Closed(_)) => return Err(DropReason::QueueFull),
            }
        }
        Ok(())
    }

    async fn wait_for_room(&self, mut job: Job) -> Result<(), DropReason> {
        metrics::counter!("xmidt_talaria_outbound_queue_waits").increment(1);
        match tokio::time::timeout(self.config.queue_wait, self.queue.reserve()).await {
            Ok(Ok(room)) => {
                // The delivery budget starts once queued, as for an event that did not wait.
                job.deadline = Instant::now() + self.config.request_timeout;
                room.send(job);
                Ok(())
            }
            Ok(Err(_)) | Err(_) => Err(DropReason::QueueFull),
        }
    }
}

struct Worker {
    client: reqwest::Client,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    authorization: Option<String>,
    retries: u32,
    backoff: Duration,
}

impl Worker {
    async fn run(self) {
        loop {
            let job = { self.queue.lock().await.recv().await };
            let Some(job) = job else { return };
            self.deliver(job).await;
        }
    }

    async fn deliver(&self, job: Job) {
        let mut attempt = 0;
        let outcome = loop {
            let left = job.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break "expired";
            }
            let mut request = self
                .client
                .post(&job.url)
                .timeout(left)
                .header("Content-Type", "application/msgpack")
                .body(job.body.clone());
            if let Some(auth) = &self.authorization {
                request = request.header("Authorization", auth);
            }
            let retryable = match request.send().await {
                Ok(r) if r.status().is_success() => break "delivered",
                Ok(r) => {
                    let code = r.status().as_u16();
                    matches!(code, 408 | 429 | 500..=599)
                }
                Err(e) => {
                    tracing::debug!(url = job.url, error = %e, "event delivery failed");
                    true
                }
            };
            if !retryable {
                break "rejected";
            }
            if attempt >= self.retries {
                break "retries_exhausted";
            }
            attempt += 1;
            metrics::counter!("xmidt_talaria_outbound_retries").increment(1);
            // Exponential backoff with full jitter, never past the deadline.
            let ceiling = self.backoff.saturating_mul(1 << attempt.min(16));
            let wait = rand::rng().random_range(Duration::ZERO..=ceiling);
            tokio::time::sleep_until((Instant::now() + wait).min(job.deadline)).await;
        };
        if outcome != "delivered" {
            tracing::warn!(url = job.url, outcome, "event not delivered");
        }
        metrics::counter!("xmidt_talaria_outbound_requests", "outcome" => outcome).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_logged_once_a_second_with_the_unlogged_count() {
        let log = DropLog::default();
        assert_eq!(log.admit(), Some(0), "the first drop is logged");
        assert_eq!(log.admit(), None);
        assert_eq!(log.admit(), None);
        // A second later (moved back rather than waited for), the next one is, with the count.
        let earlier = std::time::Instant::now() - Duration::from_secs(1);
        *log.last.lock().unwrap() = Some(earlier);
        assert_eq!(log.admit(), Some(2));
        assert_eq!(log.admit(), None);
    }
}
