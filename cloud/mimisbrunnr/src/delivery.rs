//! Delivery: every norn has its own bounded buffer and its own worker, so a slow or dead
//! destination fills only its own buffer and delays no other norn.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::StatusCode;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;

use crate::config::DeliveryConfig;
use crate::norn::{HttpTarget, Norn, SqsTarget, Target};
use crate::{signature, sqs};

/// The header carrying the HMAC-SHA1 of a delivery's body (Go mimisbrunnr's name).
pub(crate) const SIGNATURE_HEADER: &str = "X-Codex-Signature";

/// What every norn's worker shares.
pub(crate) struct Shared {
    pub client: reqwest::Client,
    pub config: DeliveryConfig,
    pub buffer_size: usize,
}

/// A norn as delivery needs it: what it is and until when.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub norn: Norn,
    pub expires_at: SystemTime,
}

/// One norn's buffer and worker.
pub(crate) struct Sender {
    live: RwLock<Arc<Live>>,
    queue: mpsc::Sender<Bytes>,
    stop: CancellationToken,
    last_notice: Mutex<Option<Instant>>,
    shared: Arc<Shared>,
}

pub(crate) fn dropped(reason: &'static str, n: u64) {
    metrics::counter!("xmidt_mimisbrunnr_dropped_event_count", "reason" => reason).increment(n);
}

impl Sender {
    /// Starts the norn's worker; it ends with [`Sender::stop`] or `shutdown`.
    pub fn start(live: Live, shared: Arc<Shared>, shutdown: &CancellationToken) -> Arc<Sender> {
        let (queue, rx) = mpsc::channel(shared.buffer_size);
        let sender = Arc::new(Sender {
            live: RwLock::new(Arc::new(live)),
            queue,
            stop: shutdown.child_token(),
            last_notice: Mutex::new(None),
            shared,
        });
        tokio::spawn(work(sender.clone(), rx));
        sender
    }

    pub fn live(&self) -> Arc<Live> {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes a changed norn (TTL, secrets, credentials); the next event uses it.
    pub fn update(&self, live: Live) {
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(live);
    }

    /// Ends the worker; what is still buffered is dropped (and counted).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Buffers one event (its JSON WRP) without waiting. A full buffer drops it and tells the
    /// norn's `FailureURL`.
    pub fn offer(&self, body: Bytes) {
        match self.queue.try_send(body) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                dropped("buffer_full", 1);
                self.notify_overflow();
            }
            Err(TrySendError::Closed(_)) => dropped("stopped", 1),
        }
    }

    /// Posts `{"text", ...}` to the `FailureURL`, signed like deliveries, at most once per
    /// `failure_notice_interval`, so an overflowing norn is not flooded with notices.
    fn notify_overflow(&self) {
        let live = self.live();
        let Target::Http(http) = &live.norn.target else {
            return;
        };
        let Some(url) = http.failure_url.clone() else {
            return;
        };
        {
            let mut last = self
                .last_notice
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let interval = self.shared.config.failure_notice_interval;
            if last.is_some_and(|at| at.elapsed() < interval) {
                return;
            }
            *last = Some(Instant::now());
        }
        let body = serde_json::json!({
            "text": format!(
                "mimisbrunnr's buffer of {} events for norn {} (device {}) is full, so events \
                 for it are being dropped: {} is not keeping up",
                self.shared.buffer_size, live.norn.id, live.norn.device_id, http.url
            ),
            "ID": live.norn.id,
            "DeviceID": live.norn.device_id,
            "BufferSize": self.shared.buffer_size,
        })
        .to_string();
        let mut request = self
            .shared
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if !http.secret.is_empty() {
            request = request.header(
                SIGNATURE_HEADER,
                signature::sign(&http.secret, body.as_bytes()),
            );
        }
        let request = request.body(body);
        tokio::spawn(async move {
            let outcome = match request.send().await {
                Ok(r) if r.status().is_success() => "sent",
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "failure URL refused the overflow notice");
                    "refused"
                }
                Err(e) => {
                    tracing::warn!(error = %e, "overflow notice not delivered");
                    "failed"
                }
            };
            metrics::counter!("xmidt_mimisbrunnr_failure_notice_count", "outcome" => outcome)
                .increment(1);
        });
    }
}

/// The norn's worker: delivers its events one at a time, in order.
async fn work(sender: Arc<Sender>, mut rx: mpsc::Receiver<Bytes>) {
    loop {
        let body = tokio::select! {
            biased;
            () = sender.stop.cancelled() => break,
            body = rx.recv() => match body {
                Some(body) => body,
                None => break,
            },
        };
        let live = sender.live();
        if live.expires_at <= SystemTime::now() {
            dropped("expired", 1);
            continue;
        }
        let kind = match &live.norn.target {
            Target::Http(_) => "http",
            Target::Sqs(_) => "sqs",
        };
        let outcome = tokio::select! {
            biased;
            () = sender.stop.cancelled() => {
                dropped("stopped", 1);
                break;
            }
            outcome = deliver(&sender.shared, &live.norn, body) => outcome,
        };
        metrics::counter!("xmidt_mimisbrunnr_delivery_count", "destination" => kind, "outcome" => outcome)
            .increment(1);
    }
    rx.close();
    let mut left = 0;
    while rx.try_recv().is_ok() {
        left += 1;
    }
    dropped("stopped", left);
}

/// One attempt's result.
enum Attempt {
    Delivered,
    /// Worth another try: a connection error, a timeout, 408, 429 or 5xx.
    Retry(String),
    /// Refused for good.
    Final(String),
}

fn classify(status: StatusCode) -> Attempt {
    if status.is_success() {
        Attempt::Delivered
    } else if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        Attempt::Retry(status.to_string())
    } else {
        Attempt::Final(status.to_string())
    }
}

/// Delivers one event with retries; the outcome's name is the metric label.
async fn deliver(shared: &Shared, norn: &Norn, body: Bytes) -> &'static str {
    let config = &shared.config;
    let mut retries = 0;
    loop {
        let attempt = match &norn.target {
            Target::Http(http) => send_http(shared, http, body.clone()).await,
            Target::Sqs(queue) => send_sqs(shared, queue, &body).await,
        };
        match attempt {
            Attempt::Delivered => return "delivered",
            Attempt::Final(why) => {
                tracing::info!(norn = norn.id, why, "destination refused an event");
                return "rejected";
            }
            Attempt::Retry(why) if retries < config.max_retries => {
                retries += 1;
                metrics::counter!("xmidt_mimisbrunnr_delivery_retry_count").increment(1);
                tracing::debug!(norn = norn.id, why, retries, "retrying delivery");
                tokio::time::sleep(backoff(config, retries)).await;
            }
            Attempt::Retry(why) => {
                tracing::warn!(norn = norn.id, why, "delivery failed after every retry");
                return "retries_exhausted";
            }
        }
    }
}

/// Exponential backoff with full jitter: up to `retry_backoff × 2^(retry-1)`, capped.
fn backoff(config: &DeliveryConfig, retry: u32) -> Duration {
    let cap = config
        .retry_backoff
        .saturating_mul(1 << retry.saturating_sub(1).min(20))
        .min(config.max_backoff);
    cap.mul_f64(rand::random::<f64>())
}

async fn send_http(shared: &Shared, http: &HttpTarget, body: Bytes) -> Attempt {
    let mut request = shared
        .client
        .post(http.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if !http.secret.is_empty() {
        request = request.header(SIGNATURE_HEADER, signature::sign(&http.secret, &body));
    }
    match request.body(body).send().await {
        Ok(response) => classify(response.status()),
        Err(e) => Attempt::Retry(e.to_string()),
    }
}

async fn send_sqs(shared: &Shared, queue: &SqsTarget, body: &[u8]) -> Attempt {
    // The body is serde_json's output, always UTF-8.
    let Ok(body) = std::str::from_utf8(body) else {
        return Attempt::Final("event JSON is not UTF-8".into());
    };
    let request = match sqs::send_message(&shared.client, queue, body, SystemTime::now()) {
        Ok(request) => request,
        Err(e) => return Attempt::Final(format!("cannot sign the request: {e}")),
    };
    match request.send().await {
        Ok(response) => match classify(response.status()) {
            // SQS names the problem in the body (`__type`), e.g. a bad signature.
            Attempt::Final(status) => {
                let detail = read_prefix(response, 1024).await;
                Attempt::Final(format!("{status}: {detail}"))
            }
            other => other,
        },
        Err(e) => Attempt::Retry(e.to_string()),
    }
}

/// At most `limit` bytes of a response body, for logs.
pub(crate) async fn read_prefix(mut response: reqwest::Response, limit: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(limit);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let config = DeliveryConfig {
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..DeliveryConfig::default()
        };
        for retry in 1..40 {
            let wait = backoff(&config, retry);
            assert!(wait <= Duration::from_millis(300), "{retry}: {wait:?}");
        }
        assert!(backoff(&config, 1) <= Duration::from_millis(100));
    }

    #[test]
    fn statuses_worth_retrying() {
        for (status, retry) in [
            (408, true),
            (429, true),
            (500, true),
            (503, true),
            (404, false),
            (400, false),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                matches!(classify(status), Attempt::Retry(_)),
                retry,
                "{status}"
            );
        }
        assert!(matches!(
            classify(StatusCode::NO_CONTENT),
            Attempt::Delivered
        ));
    }
}
