//! Keeping a service's in-memory records in step with its store. Caduceus (webhooks) and
//! mimisbrunnr (norns) both load their records at start and re-read them on a timer, which is
//! how one replica learns of changes made at another.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Loads `service`'s records with `reload` now, failing as it fails, then calls it again every
/// `interval` until `shutdown` or until the service is dropped: the timer holds the service
/// weakly, so it does not keep it alive. A later failure is logged (`records` names what was
/// reloaded) and the service keeps the records it has.
pub async fn keep_loaded<S, F, Fut, E>(
    service: &Arc<S>,
    records: &'static str,
    interval: Duration,
    shutdown: CancellationToken,
    reload: F,
) -> Result<(), E>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Display,
{
    reload(service.clone()).await?;
    let service = Arc::downgrade(service);
    tokio::spawn(async move {
        // The first reload one interval after the load above, not at once.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let Some(service) = service.upgrade() else {
                return;
            };
            if let Err(e) = reload(service).await {
                tracing::warn!(error = %e, "reloading {records} failed; keeping the current set");
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its reloads; fails them while `failing`.
    #[derive(Default)]
    struct Counter {
        reloads: AtomicUsize,
        failing: bool,
    }

    async fn reload(counter: Arc<Counter>) -> Result<(), String> {
        counter.reloads.fetch_add(1, Ordering::SeqCst);
        if counter.failing {
            Err("store down".into())
        } else {
            Ok(())
        }
    }

    #[tokio::test]
    async fn records_load_at_once_then_reload_until_shutdown() {
        let counter = Arc::new(Counter::default());
        let shutdown = CancellationToken::new();
        let tick = Duration::from_millis(20);
        keep_loaded(&counter, "counters", tick, shutdown.clone(), reload)
            .await
            .unwrap();
        assert_eq!(counter.reloads.load(Ordering::SeqCst), 1);

        let reloading = async {
            while counter.reloads.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(tick).await;
            }
        };
        let reloaded = tokio::time::timeout(Duration::from_secs(5), reloading).await;
        assert!(reloaded.is_ok(), "no reloads after the first load");

        shutdown.cancel();
        tokio::time::sleep(tick).await;
        let stopped = counter.reloads.load(Ordering::SeqCst);
        tokio::time::sleep(tick * 5).await;
        assert_eq!(counter.reloads.load(Ordering::SeqCst), stopped);
    }

    #[tokio::test]
    async fn a_failed_first_load_fails_and_the_timer_does_not_keep_the_service_alive() {
        let failing = Arc::new(Counter {
            failing: true,
            ..Counter::default()
        });
        let tick = Duration::from_millis(20);
        let failed = keep_loaded(&failing, "counters", tick, CancellationToken::new(), reload);
        assert_eq!(failed.await, Err("store down".to_string()));

        let counter = Arc::new(Counter::default());
        keep_loaded(&counter, "counters", tick, CancellationToken::new(), reload)
            .await
            .unwrap();
        let watched = Arc::downgrade(&counter);
        drop(counter);
        tokio::time::sleep(tick * 3).await;
        assert!(
            watched.upgrade().is_none(),
            "the timer keeps the service alive"
        );
    }
}
