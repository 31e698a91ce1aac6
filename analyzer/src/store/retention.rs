//! Retention: looks older than the configured age are deleted
//! periodically; runs' summaries (decision, score, look count, outcome) are
//! kept, and so is each run's latest look, which a resuming daemon needs.
//! Kayenta-API executions that ended longer ago than the same age go too
//! (their looks are gone by then); running ones stay.

use super::Store;
use crate::kayenta_api::repository::ExecutionRepository;
use crate::telemetry::{StoreOperation, Telemetry};
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
            telemetry.pruned_looks(deleted);
            if deleted > 0 {
                tracing::info!(deleted, cutoff, "retention: deleted old looks");
            }
            deleted
        }
        Err(e) => {
            telemetry.store_failed(StoreOperation::Retention);
            tracing::error!("retention: {e}");
            0
        }
    }
}

/// Deletes Kayenta-API executions that ended more than `max_age` before
/// `now` (unix seconds) once; counted in telemetry either way.
pub async fn prune_executions(
    executions: &dyn ExecutionRepository,
    max_age: Duration,
    now: f64,
    telemetry: &Telemetry,
) -> u64 {
    let cutoff_millis = ((now - max_age.as_secs_f64()) * 1000.0) as i64;
    match executions.delete_ended_before(cutoff_millis).await {
        Ok(deleted) => {
            telemetry.pruned_kayenta_executions(deleted);
            if deleted > 0 {
                tracing::info!(
                    deleted,
                    cutoff_millis,
                    "retention: deleted old Kayenta executions"
                );
            }
            deleted
        }
        Err(e) => {
            telemetry.store_failed(StoreOperation::Retention);
            tracing::error!("retention of Kayenta executions: {e}");
            0
        }
    }
}

/// Runs [`prune`] and [`prune_executions`] forever at [`interval`], by the
/// wall clock.
pub async fn run(store: Arc<dyn Store>, max_age: Duration, telemetry: Arc<Telemetry>) {
    let executions = store.clone().kayenta().executions;
    let mut tick = tokio::time::interval(interval(max_age));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = crate::clock::now();
        prune(store.as_ref(), max_age, now, &telemetry).await;
        prune_executions(executions.as_ref(), max_age, now, &telemetry).await;
    }
}
