//! Retention: looks older than the configured age are deleted
//! periodically; runs' summaries (decision, score, look count, outcome) are
//! kept, and so is each run's latest look, which a resuming daemon needs.

use super::Store;
use crate::telemetry::Telemetry;
use std::sync::Arc;
use std::time::Duration;

/// How often the job runs for a given retention age: often enough that
/// looks outlive their age by at most a few percent, at most hourly, and
/// not more than once a minute.
pub fn interval(max_age: Duration) -> Duration {
    (max_age / 24).clamp(Duration::from_secs(60), Duration::from_secs(3600))
}

/// Deletes looks older than `max_age` at time `now` (unix seconds) once;
/// counted in telemetry either way.
pub async fn prune(store: &dyn Store, max_age: Duration, now: f64, telemetry: &Telemetry) -> u64 {
    let cutoff = now - max_age.as_secs_f64();
    match store.delete_looks_before(cutoff).await {
        Ok(deleted) => {
            telemetry.retention_deleted_looks.inc_by(deleted);
            if deleted > 0 {
                tracing::info!(deleted, cutoff, "retention: deleted old looks");
            }
            deleted
        }
        Err(e) => {
            telemetry
                .store_errors
                .with_label_values(&["retention"])
                .inc();
            tracing::error!("retention: {e}");
            0
        }
    }
}

/// Runs [`prune`] forever at [`interval`], by the wall clock.
pub async fn run(store: Arc<dyn Store>, max_age: Duration, telemetry: Arc<Telemetry>) {
    let mut tick = tokio::time::interval(interval(max_age));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        prune(store.as_ref(), max_age, crate::api::now(), &telemetry).await;
    }
}
