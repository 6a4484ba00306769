//! One webhook's delivery: a bounded queue, a dispatcher and at most `workers` deliveries at
//! once, retries with backoff, and the cut-off. Webhooks share nothing but the HTTP client, so
//! a slow or dead receiver holds only its own queue and workers; offering an event never
//! waits.
//!
//! Every event a webhook matched ends in exactly one counter: delivered or not
//! (`delivery_count{outcome}`) once it left the queue, or `slow_consumer_dropped_message_count
//! {reason}` if it never did.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use bytes::Bytes;
use metrics::{counter, gauge, histogram, SharedString};
use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::DeliveryConfig;
use crate::event::Event;
use crate::gotime;
use crate::signature::Secret;
use crate::webhook::{BodyKind, Spec};

/// Bytes of a receiver's answer read (and dropped) so its connection can be reused.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// What every webhook's sender shares.
pub(crate) struct Shared {
    pub config: DeliveryConfig,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
}

impl Shared {
    pub fn new(
        config: DeliveryConfig,
        shutdown: CancellationToken,
    ) -> Result<Shared, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // A receiver must not bounce deliveries to addresses registration would refuse.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.workers)
            .build()?;
        Ok(Shared {
            config,
            client,
            shutdown,
        })
    }
}

/// Why a matched event never left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// The queue (events or bytes) was full; this starts a cut-off.
    QueueFull,
    /// Arrived during a cut-off, or was queued when one began.
    CutOff,
    /// The registration had expired.
    Expired,
    /// The registration was deleted, replaced by another URL, or caduceus stopped.
    Stopped,
}

impl Dropped {
    fn as_str(self) -> &'static str {
        match self {
            Dropped::QueueFull => "queue_full",
            Dropped::CutOff => "cut_off",
            Dropped::Expired => "expired",
            Dropped::Stopped => "stopped",
        }
    }
}

/// How a dequeued event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// The receiver answered with a status that retrying cannot change (3xx, most 4xx).
    Rejected,
    /// Attempts, time (`max_delivery_time`) or an over-long `Retry-After` ran out; this starts
    /// a cut-off.
    RetriesExhausted,
    /// A cut-off began while the event waited to retry.
    CutOff,
    Expired,
    Stopped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Rejected => "rejected",
            Outcome::RetriesExhausted => "retries_exhausted",
            Outcome::CutOff => "cut_off",
            Outcome::Expired => "expired",
            Outcome::Stopped => "stopped",
        }
    }
}

struct Job {
    event: Arc<Event>,
    enqueued: Instant,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    bytes: usize,
    cut_off_until: Option<Instant>,
}

pub(crate) struct Sender {
    /// `config.url`: the webhook's name in metrics and logs.
    url: Arc<str>,
    spec: RwLock<Arc<Spec>>,
    queue: Mutex<Queue>,
    wake: Notify,
    workers: Arc<Semaphore>,
    /// Where the next event starts in the URL ring.
    ring: AtomicUsize,
    stop: CancellationToken,
    shared: Arc<Shared>,
}

impl Sender {
    /// A sender for `spec`, its dispatcher started.
    pub fn start(spec: Spec, shared: Arc<Shared>) -> Arc<Sender> {
        let sender = Arc::new(Sender {
            url: Arc::from(spec.registration.config.url.as_str()),
            spec: RwLock::new(Arc::new(spec)),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            workers: Arc::new(Semaphore::new(shared.config.workers.max(1))),
            // Replicas and restarts do not all start on the same URL.
            ring: AtomicUsize::new(rand::rng().random::<u32>() as usize),
            stop: shared.shutdown.child_token(),
            shared,
        });
        tokio::spawn(sender.clone().dispatch());
        sender
    }

    pub fn spec(&self) -> Arc<Spec> {
        self.spec
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the registration (a renewal or an edit); queue and cut-off carry over.
    pub fn update(&self, spec: Spec) {
        *self.spec.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(spec);
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event` if this webhook wants it; true when it did (queued or counted as
    /// dropped). Never waits.
    pub fn offer(self: &Arc<Self>, event: &Arc<Event>, partners: Option<&[String]>) -> bool {
        let spec = self.spec();
        if !spec.matches(event, partners) {
            return false;
        }
        if SystemTime::now() >= spec.until {
            self.dropped(Dropped::Expired, 1);
            return true;
        }
        let config = &self.shared.config;
        let now = Instant::now();
        let size = event.size();
        let depth = {
            let mut queue = self.queue();
            if queue.cut_off_until.is_some_and(|until| now < until) {
                drop(queue);
                self.dropped(Dropped::CutOff, 1);
                return true;
            }
            if queue.jobs.len() >= config.queue_size || queue.bytes + size > config.max_queue_bytes
            {
                drop(queue);
                self.dropped(Dropped::QueueFull, 1);
                self.cut_off("queue_full");
                return true;
            }
            queue.jobs.push_back(Job {
                event: event.clone(),
                enqueued: now,
            });
            queue.bytes += size;
            queue.jobs.len()
        };
        self.depth(depth);
        self.wake.notify_one();
        true
    }

    /// Stops the sender: nothing more is sent; what is queued is counted as `why`.
    pub fn close(&self, why: Dropped) {
        self.stop.cancel();
        let jobs = {
            let mut queue = self.queue();
            queue.bytes = 0;
            std::mem::take(&mut queue.jobs)
        };
        self.depth(0);
        self.dropped(why, jobs.len());
    }

    fn is_cut_off(&self) -> bool {
        self.queue()
            .cut_off_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// Starts a cut-off unless one is running: for `cut_off_period` events are dropped, the
    /// queue is emptied (so the webhook starts afresh, caduceus#188), and `failure_url` is
    /// told.
    fn cut_off(self: &Arc<Self>, reason: &'static str) {
        let period = self.shared.config.cut_off_period;
        let now = Instant::now();
        let drained = {
            let mut queue = self.queue();
            if queue.cut_off_until.is_some_and(|until| now < until) {
                return;
            }
            queue.cut_off_until = Some(now + period);
            queue.bytes = 0;
            std::mem::take(&mut queue.jobs)
        };
        self.depth(0);
        self.dropped(Dropped::CutOff, drained.len());
        counter!("xmidt_caduceus_slow_consumer_cut_off_count", "url" => self.label(), "reason" => reason)
            .increment(1);
        tracing::warn!(
            url = &*self.url,
            reason,
            ?period,
            dropped = drained.len(),
            "webhook cut off"
        );
        let spec = self.spec();
        if !spec.registration.failure_url.is_empty() {
            let shared = self.shared.clone();
            tokio::spawn(notify_failure(shared, spec, reason, drained.len()));
        }
    }

    /// The `url` metric label, shared rather than copied.
    fn label(&self) -> SharedString {
        SharedString::from(self.url.clone())
    }

    fn depth(&self, depth: usize) {
        gauge!("xmidt_caduceus_outgoing_queue_depths", "url" => self.label()).set(depth as f64);
    }

    fn dropped(&self, why: Dropped, n: usize) {
        if n > 0 {
            counter!("xmidt_caduceus_slow_consumer_dropped_message_count", "url" => self.label(), "reason" => why.as_str())
                .increment(n as u64);
        }
    }

    fn pop(&self) -> Option<Job> {
        let mut queue = self.queue();
        let job = queue.jobs.pop_front()?;
        queue.bytes = queue.bytes.saturating_sub(job.event.size());
        let depth = queue.jobs.len();
        drop(queue);
        self.depth(depth);
        Some(job)
    }

    /// Takes a worker slot, then an event, and delivers it on its own task.
    async fn dispatch(self: Arc<Self>) {
        loop {
            let permit = tokio::select! {
                permit = self.workers.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                () = self.stop.cancelled() => return,
            };
            let job = loop {
                if let Some(job) = self.pop() {
                    break job;
                }
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = self.stop.cancelled() => return,
                }
            };
            let sender = self.clone();
            tokio::spawn(async move {
                sender.deliver(job).await;
                drop(permit);
            });
        }
    }

    async fn deliver(self: Arc<Self>, job: Job) {
        let spec = self.spec();
        let config = &self.shared.config;
        let event = &job.event;
        let (body, content_type) = match spec.body {
            BodyKind::Payload => (
                event.payload.clone(),
                HeaderValue::from_str(&event.msg.content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            BodyKind::WrpMsgpack => (
                event.msgpack.clone(),
                HeaderValue::from_static("application/msgpack"),
            ),
            BodyKind::WrpJson => (event.json(), HeaderValue::from_static("application/json")),
        };
        let deadline = job.enqueued + config.max_delivery_time;
        let first = self.ring.fetch_add(1, Ordering::Relaxed);
        let mut attempt: u32 = 0;
        let mut code = None;
        let outcome = loop {
            if self.stop.is_cancelled() {
                break Outcome::Stopped;
            }
            if SystemTime::now() >= spec.until {
                break Outcome::Expired;
            }
            if attempt > 0 && self.is_cut_off() {
                break Outcome::CutOff;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Outcome::RetriesExhausted;
            }
            let url = &spec.urls[first.wrapping_add(attempt as usize) % spec.urls.len()];
            let mut headers = event.headers.clone();
            headers.insert(header::CONTENT_TYPE, content_type.clone());
            sign(&mut headers, spec.secret.as_ref(), &event.id, &body);
            let request = self
                .shared
                .client
                .post(url.clone())
                .timeout(left.min(config.request_timeout))
                .body(body.clone());
            let started = Instant::now();
            let answer = send(&self.shared.client, request, headers).await;
            histogram!("xmidt_caduceus_query_duration_histogram_seconds", "url" => self.label())
                .record(started.elapsed());
            let retry_after = match answer {
                Ok((status, _)) if status.is_success() => {
                    code = Some(status);
                    break Outcome::Delivered;
                }
                Ok((status, retry_after)) if retryable(status) => {
                    code = Some(status);
                    retry_after
                }
                Ok((status, _)) => {
                    code = Some(status);
                    break Outcome::Rejected;
                }
                Err(e) => {
                    tracing::debug!(%url, error = %e, "delivery attempt failed");
                    code = None;
                    None
                }
            };
            attempt += 1;
            if attempt > config.max_retries {
                break Outcome::RetriesExhausted;
            }
            let wait = match retry_after {
                Some(wait) if wait > config.max_retry_after => break Outcome::RetriesExhausted,
                Some(wait) => wait,
                None => backoff(config, attempt),
            };
            if Instant::now() + wait >= deadline {
                break Outcome::RetriesExhausted;
            }
            counter!("xmidt_caduceus_delivery_retry_count", "url" => self.label()).increment(1);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.stop.cancelled() => break Outcome::Stopped,
            }
        };
        if outcome == Outcome::Delivered {
            histogram!("xmidt_caduceus_delivery_latency_seconds", "url" => self.label())
                .record(job.enqueued.elapsed());
        }
        let code = code.map_or_else(|| "none".to_string(), |c| c.as_u16().to_string());
        counter!("xmidt_caduceus_delivery_count", "url" => self.label(), "outcome" => outcome.as_str(), "code" => code)
            .increment(1);
        if outcome == Outcome::RetriesExhausted {
            self.cut_off("retries_exhausted");
        }
    }
}

/// 408, 429 and 5xx may succeed later; other answers are final.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Exponential backoff with full jitter: up to `retry_backoff * 2^(attempt-1)`, capped.
fn backoff(config: &DeliveryConfig, attempt: u32) -> Duration {
    let ceiling = config
        .retry_backoff
        .saturating_mul(1 << (attempt.saturating_sub(1)).min(20))
        .min(config.max_backoff);
    rand::rng().random_range(Duration::ZERO..=ceiling)
}

/// Sends `request` with exactly `headers` (set whole, not merged one by one), then reads (a
/// bounded part of) the answer so the connection can be reused.
async fn send(
    client: &reqwest::Client,
    request: reqwest::RequestBuilder,
    headers: HeaderMap,
) -> Result<(StatusCode, Option<Duration>), reqwest::Error> {
    let mut request = request.build()?;
    *request.headers_mut() = headers;
    let mut response = client.execute(request).await?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > MAX_RESPONSE_BODY {
            break;
        }
    }
    Ok((status, retry_after))
}

/// `Retry-After`: delay seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const WEBPA_SIGNATURE: HeaderName = HeaderName::from_static("x-webpa-signature");

/// Adds the Standard Webhooks id and timestamp, and both signatures when there is a secret.
fn sign(headers: &mut HeaderMap, secret: Option<&Secret>, id: &str, body: &[u8]) {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // The id is checked to be printable ASCII when the event is made, and the other values
    // are digits, hex and base64, so none of these conversions fails.
    let mut set = |name: HeaderName, value: String| {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    };
    set(WEBHOOK_ID, id.to_string());
    set(WEBHOOK_TIMESTAMP, timestamp.to_string());
    if let Some(secret) = secret {
        set(WEBPA_SIGNATURE, secret.webpa(body));
        set(WEBHOOK_SIGNATURE, secret.standard(id, timestamp, body));
    }
}

/// Tells a webhook's `failure_url` it was cut off (one attempt; the outcome is counted).
async fn notify_failure(
    shared: Arc<Shared>,
    spec: Arc<Spec>,
    reason: &'static str,
    dropped: usize,
) {
    let config = &shared.config;
    let notice = serde_json::json!({
        "text": "Your webhook could not keep up (its queue overflowed or an event could not be \
                 delivered), so it receives no events for the cut-off period; the dropped \
                 events are counted. Delivery resumes after that.",
        "reason": reason,
        "webhook_registration": Spec::public_view(&spec.record),
        "cut_off_period": gotime::format_duration(config.cut_off_period),
        "queue_size": config.queue_size,
        "worker_count": config.workers,
        "dropped_events": dropped,
    });
    let body = Bytes::from(notice.to_string());
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    sign(&mut headers, spec.secret.as_ref(), &id, &body);
    let request = shared
        .client
        .post(&spec.registration.failure_url)
        .timeout(config.request_timeout)
        .body(body);
    let outcome = match send(&shared.client, request, headers).await {
        Ok((status, _)) if status.is_success() => "delivered",
        Ok(_) => "rejected",
        Err(_) => "failed",
    };
    if outcome != "delivered" {
        tracing::warn!(
            url = spec.registration.failure_url,
            outcome,
            "cut-off notice not delivered"
        );
    }
    counter!("xmidt_caduceus_failure_notice_count", "url" => spec.registration.config.url.clone(), "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let soon = SystemTime::now() + Duration::from_secs(30);
        let wait = parse_retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(
            wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let config = DeliveryConfig {
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..DeliveryConfig::default()
        };
        for _ in 0..100 {
            assert!(backoff(&config, 1) <= Duration::from_millis(100));
            assert!(backoff(&config, 2) <= Duration::from_millis(200));
            assert!(backoff(&config, 30) <= Duration::from_millis(350));
        }
    }

    #[test]
    fn which_statuses_are_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 301, 400, 401, 404, 413] {
            assert!(!retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
