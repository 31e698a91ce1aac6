//! Notifications: tell people when a run is aborted, promoted or cannot be
//! judged.
//!
//! The engine calls [`Notifier::offer`] once per look, after the look is
//! recorded. `offer` never waits and never fails: it decides whether the
//! look is news (a notifiable decision that differs from the last one
//! notified for this run), and if so puts a [`Notification`] on a bounded
//! queue with `try_send`. A full queue drops the notification (logged and
//! counted) rather than holding the look; nothing here can change or delay
//! a decision.
//!
//! A background worker ([`deliver`]) takes notifications off the queue and
//! sends each to every channel that wants its decision, concurrently and up
//! to a bound on deliveries in flight (`max_in_flight`) (when they are all busy the worker
//! stops taking from the queue, and the queue's bound applies). Each
//! delivery retries connection errors, timeouts, 5xx and 429 (honouring
//! `Retry-After`) with exponential backoff and jitter, for a bounded number
//! of attempts; any other answer is final. The outcome of every delivery
//! goes to a [`NotificationLog`] (the audit trail) and to the metrics.
//!
//! "News" is per run: a Flagger retry, a repeated abort look or a promote
//! at every step after a `continue` is one notification, while a change of
//! decision (inconclusive, then promote) is another. The memory of the last
//! decision per run is bounded the way the engine bounds runs: entries idle
//! for [`crate::engine::RUN_IDLE_EVICTION_SECONDS`] are forgotten.
//!
//! Channel URLs and tokens are secrets ([`crate::secret::Secret`]): they
//! are sent and never printed; error texts are taken from reqwest without
//! the URL.

mod deliver;
pub mod message;

pub use crate::config::notify::{Channel, ChannelKind, Notifications};
use crate::engine::run::{Look, RunKey};
use crate::engine::RUN_IDLE_EVICTION_SECONDS;
pub use crate::secret::Secret;
use crate::source::BoxFuture;
use crate::telemetry::Telemetry;
pub use message::Notification;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use verdict_judges::decision::Action;

/// What became of one notification on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOutcome {
    pub analysis: String,
    pub run: RunKey,
    /// The run's id in the run store, when the engine gave one
    /// ([`Notifier::offer_for_run`]).
    pub run_id: Option<i64>,
    /// When the delivery ended (unix seconds, wall clock).
    pub finished_at: f64,
    /// The look whose decision was notified.
    pub look: usize,
    pub channel: String,
    pub decision: Action,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// `Err` holds why the last attempt failed (never the URL or a token).
    pub result: Result<(), String>,
}

/// Where delivery outcomes are recorded: the audit trail.
///
/// Awaited by the delivery task (never by a look), once per notification
/// and channel, after the last attempt; while it runs, the delivery still
/// holds its `max_in_flight` slot, so a slow audit trail slows deliveries,
/// not decisions.
pub trait NotificationLog: Send + Sync {
    fn record<'a>(&'a self, outcome: &'a DeliveryOutcome) -> BoxFuture<'a, ()>;
}

/// Records outcomes in the log only (no persistent audit trail).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingLog;

impl TracingLog {
    /// Logs one outcome: info when delivered, warn when not.
    pub fn log(&self, o: &DeliveryOutcome) {
        match &o.result {
            Ok(()) => tracing::info!(
                run = %o.run, analysis = %o.analysis, look = o.look, channel = %o.channel,
                decision = o.decision.as_str(), attempts = o.attempts,
                "notification delivered"
            ),
            Err(e) => tracing::warn!(
                run = %o.run, analysis = %o.analysis, look = o.look, channel = %o.channel,
                decision = o.decision.as_str(), attempts = o.attempts, error = %e,
                "notification failed"
            ),
        }
    }
}

impl NotificationLog for TracingLog {
    fn record<'a>(&'a self, outcome: &'a DeliveryOutcome) -> BoxFuture<'a, ()> {
        self.log(outcome);
        Box::pin(std::future::ready(()))
    }
}

/// Records outcomes in the run store (the audit trail of `GET /v1/runs/{id}`)
/// and in the log. An outcome without a run id (a look the store did not
/// commit) is only logged; a store failure is logged, never retried.
pub struct StoreLog(pub Arc<dyn crate::store::Store>);

impl NotificationLog for StoreLog {
    fn record<'a>(&'a self, outcome: &'a DeliveryOutcome) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            TracingLog.log(outcome);
            let Some(run_id) = outcome.run_id else {
                return;
            };
            let record = crate::store::NotificationRecord {
                run_id,
                sent_at: outcome.finished_at,
                channel: outcome.channel.clone(),
                decision: outcome.decision,
                attempts: outcome.attempts,
                ok: outcome.result.is_ok(),
                error: outcome.result.clone().err(),
            };
            if let Err(e) = self.0.record_notification(&record).await {
                tracing::error!(channel = %outcome.channel, "cannot record a notification: {e}");
            }
        })
    }
}

/// Why the notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot build the notification HTTP client: {0}")]
    Client(String),
}

/// A notification on the queue, with when it was queued (delivery latency).
struct Queued {
    notification: Arc<Notification>,
    run_id: Option<i64>,
    queued_at: Instant,
}

/// The engine's handle on notifications; see the module documentation.
pub struct Notifier {
    channels: Arc<[Channel]>,
    queue: mpsc::Sender<Queued>,
    /// Last decision notified per (analysis, run), with the look's time.
    last: Mutex<HashMap<(String, RunKey), (Action, f64)>>,
    telemetry: Arc<Telemetry>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("channels", &self.channels)
            .field("queue_free", &self.queue.capacity())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts the delivery worker on the current tokio runtime and returns
    /// the handle. The worker stops when the handle is dropped (after the
    /// queued notifications are delivered).
    pub fn start(
        notifications: Notifications,
        log: Arc<dyn NotificationLog>,
        telemetry: Arc<Telemetry>,
    ) -> Result<Arc<Notifier>, NotifyError> {
        // Per-attempt deadlines are per channel (set on each request).
        let client = crate::tls::client_builder()
            .build()
            .map_err(|e| NotifyError::Client(crate::source::prometheus::error_chain(&e)))?;
        let channels: Arc<[Channel]> = notifications.channels.into();
        for c in channels.iter() {
            // Series exist at zero before the first notification, so rates
            // and alerts on them are defined.
            let wanted: Vec<Action> = [Action::Abort, Action::Promote, Action::Inconclusive]
                .into_iter()
                .filter(|d| c.wants(*d))
                .collect();
            telemetry.notification_channel(&c.name, &wanted);
        }
        let (queue, receiver) = mpsc::channel(notifications.queue.max(1));
        tokio::spawn(deliver::worker(
            receiver,
            channels.clone(),
            client,
            log,
            telemetry.clone(),
            notifications.max_in_flight.max(1),
        ));
        Ok(Arc::new(Notifier {
            channels,
            queue,
            last: Mutex::new(HashMap::new()),
            telemetry,
        }))
    }

    /// Offers a recorded look of `key` under `analysis`: queues a
    /// notification when the decision is news for some channel. Never
    /// waits; see the module documentation.
    pub fn offer(&self, analysis: &str, key: &RunKey, look: &Look) {
        self.offer_for_run(None, analysis, key, look)
    }

    /// [`Notifier::offer`] for a run with an id in the run store, carried
    /// to the [`DeliveryOutcome`] so the audit trail can file it.
    pub fn offer_for_run(&self, run_id: Option<i64>, analysis: &str, key: &RunKey, look: &Look) {
        let decision = look.decision.action;
        if decision == Action::Continue || !self.channels.iter().any(|c| c.wants(decision)) {
            return;
        }
        let slot = (analysis.to_string(), key.clone());
        let mut last = self.last.lock().expect("notifier lock");
        if matches!(last.get(&slot), Some((previous, _)) if *previous == decision) {
            self.telemetry.notification_repeated(decision);
            return;
        }
        let queued = Queued {
            notification: Arc::new(Notification::new(analysis, key, look)),
            run_id,
            queued_at: Instant::now(),
        };
        match self.queue.try_send(queued) {
            Ok(()) => {
                if !last.contains_key(&slot) {
                    last.retain(|_, (_, time)| look.time - *time < RUN_IDLE_EVICTION_SECONDS);
                }
                last.insert(slot, (decision, look.time));
            }
            // Not remembered as notified: the run's next look with this
            // decision tries again.
            Err(e) => {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "worker stopped",
                };
                for c in self.channels.iter().filter(|c| c.wants(decision)) {
                    self.telemetry.notification_dropped(&c.name, decision);
                }
                tracing::warn!(
                    run = %key, analysis, look = look.number, decision = decision.as_str(),
                    "notification dropped: {why}"
                );
            }
        }
    }
}

impl crate::engine::LookObserver for Notifier {
    fn look_recorded(&self, run_id: Option<i64>, analysis: &str, key: &RunKey, look: &Look) {
        self.offer_for_run(run_id, analysis, key, look);
    }
}

#[cfg(test)]
mod tests;
