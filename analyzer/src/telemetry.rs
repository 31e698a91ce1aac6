//! Verdict's own metrics, exported at `/metrics` in Prometheus format.
//!
//! Every observable behaviour has a counter or histogram here; the Grafana
//! dashboards under `grafana/` read exactly these names (a test checks).

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};
use std::time::Duration;
use verdict_judges::decision::{Action, Decision};

mod labels;
pub use labels::{
    Controller, Delivery, FlaggerEventType, KayentaExecution, Reload, StoreOperation,
};

/// The registry and every metric Verdict exports. Events are counted by
/// the methods below, which name what happened and hold the label values;
/// the few fields still public are read by tests.
pub struct Telemetry {
    registry: Registry,
    looks: IntCounterVec,
    look_seconds: HistogramVec,
    run_score: GaugeVec,
    judge_seconds: Histogram,
    query_seconds: HistogramVec,
    query_errors: IntCounterVec,
    fetch_errors: IntCounterVec,
    answer_budget_exceeded: IntCounterVec,
    duplicate_deliveries: IntCounter,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
    flagger_events: IntCounterVec,
    /// Openings of Flagger's traffic gate (each begins a rollout step).
    gate_openings: IntCounter,
    config_reloads: IntCounterVec,
    pub notifications: IntCounterVec,
    pub notification_retries: IntCounterVec,
    notification_seconds: HistogramVec,
    pub notifications_repeated: IntCounterVec,
    http_unauthorized: IntCounterVec,
    tls_reloads: IntCounterVec,
    tls_handshake_failures: IntCounter,
    store_errors: IntCounterVec,
    store_seconds: HistogramVec,
    retention_deleted_looks: IntCounter,
    pub retention_deleted_kayenta_executions: IntCounter,
    /// Kayenta-compatible executions, by how they ended.
    kayenta_executions: IntCounterVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Telemetry {
    pub fn new() -> Self {
        let registry = Registry::new();
        let looks = IntCounterVec::new(
            Opts::new(
                "verdict_looks_total",
                "Looks taken, by analysis and decision.",
            ),
            &["analysis", "decision"],
        )
        .expect("metric");
        let look_seconds = HistogramVec::new(
            HistogramOpts::new(
                "verdict_look_duration_seconds",
                "Time to take one look (queries and judging), by analysis.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["analysis"],
        )
        .expect("metric");
        let run_score = GaugeVec::new(
            Opts::new(
                "verdict_run_score",
                "Score (0-100) of each open run's last look.",
            ),
            &["analysis", "run"],
        )
        .expect("metric");
        let judge_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "verdict_judge_duration_seconds",
                "Time spent judging and deciding one look (no queries).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("metric");
        let query_seconds = HistogramVec::new(
            HistogramOpts::new(
                "verdict_query_duration_seconds",
                "Time to fetch both arms of one metric from the source.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["metric"],
        )
        .expect("metric");
        let query_errors = IntCounterVec::new(
            Opts::new(
                "verdict_query_errors_total",
                "Metric fetches that failed, by metric.",
            ),
            &["metric"],
        )
        .expect("metric");
        let fetch_errors = IntCounterVec::new(
            Opts::new(
                "verdict_fetch_errors_total",
                "Arms of metrics that could not be fetched, by kind of failure \
                 (unreachable, timeout, http, bad_query, bad_response, too_large, \
                 too_many_series, shape, template).",
            ),
            &["kind"],
        )
        .expect("metric");
        let answer_budget_exceeded = IntCounterVec::new(
            Opts::new(
                "verdict_answer_budget_exceeded_total",
                "Webhooks answered \"cannot judge\" because the look did not finish \
                 within the answer budget, by API.",
            ),
            &["api"],
        )
        .expect("metric");
        let duplicate_deliveries = IntCounter::new(
            "verdict_duplicate_deliveries_total",
            "Webhook deliveries answered from the previous look (retries, duplicates).",
        )
        .expect("metric");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "verdict_http_requests_total",
                "HTTP requests, by route and status.",
            ),
            &["route", "status"],
        )
        .expect("metric");
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "verdict_http_request_duration_seconds",
                "HTTP request latency, by route.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("metric");
        let flagger_events = IntCounterVec::new(
            Opts::new(
                "verdict_flagger_events_total",
                "Flagger event webhooks, by event type.",
            ),
            &["type"],
        )
        .expect("metric");
        let gate_openings = IntCounter::new(
            "verdict_gate_openings_total",
            "Openings of the traffic gate (confirm-traffic-increase answered 200): rollout steps begun.",
        )
        .expect("metric");
        let config_reloads = IntCounterVec::new(
            Opts::new("verdict_config_reloads_total", "Config reloads, by result."),
            &["result"],
        )
        .expect("metric");
        let notifications = IntCounterVec::new(
            Opts::new(
                "verdict_notifications_total",
                "Decision notifications, by channel, decision and result (sent, failed, dropped).",
            ),
            &["channel", "decision", "result"],
        )
        .expect("metric");
        let notification_retries = IntCounterVec::new(
            Opts::new(
                "verdict_notification_retries_total",
                "Notification attempts after the first, by channel.",
            ),
            &["channel"],
        )
        .expect("metric");
        let notification_seconds = HistogramVec::new(
            HistogramOpts::new(
                "verdict_notification_delivery_seconds",
                "Time from a decision to its notification's delivery or final failure, retries included.",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
            &["channel", "result"],
        )
        .expect("metric");
        let notifications_repeated = IntCounterVec::new(
            Opts::new(
                "verdict_notifications_repeated_total",
                "Decisions not notified because the run's last notification had the same decision.",
            ),
            &["decision"],
        )
        .expect("metric");
        let http_unauthorized = IntCounterVec::new(
            Opts::new(
                "verdict_http_unauthorized_total",
                "Requests refused for want of a valid token, by route and reason (missing, malformed, invalid).",
            ),
            &["route", "reason"],
        )
        .expect("metric");
        let tls_reloads = IntCounterVec::new(
            Opts::new(
                "verdict_tls_reloads_total",
                "Reloads of the serving certificate and key, by result.",
            ),
            &["result"],
        )
        .expect("metric");
        let tls_handshake_failures = IntCounter::new(
            "verdict_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
        )
        .expect("metric");
        for result in [Reload::Success, Reload::Failure] {
            tls_reloads.with_label_values(&[result.as_str()]);
        }
        let store_errors = IntCounterVec::new(
            Opts::new(
                "verdict_store_errors_total",
                "Run store operations that failed, by operation; a look that cannot be recorded is answered as cannot judge.",
            ),
            &["operation"],
        )
        .expect("metric");
        let store_seconds = HistogramVec::new(
            HistogramOpts::new(
                "verdict_store_duration_seconds",
                "Time of run store operations on the look path, by operation.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        )
        .expect("metric");
        let retention_deleted_looks = IntCounter::new(
            "verdict_retention_deleted_looks_total",
            "Looks deleted by the retention job.",
        )
        .expect("metric");
        let retention_deleted_kayenta_executions = IntCounter::new(
            "verdict_retention_deleted_kayenta_executions_total",
            "Ended Kayenta-API executions deleted by the retention job.",
        )
        .expect("metric");
        for operation in StoreOperation::PRE_REGISTERED {
            store_errors.with_label_values(&[operation.as_str()]);
        }
        // Label values known in advance start at zero, so the series exist
        // (and `rate()` and alerts work) before the first event.
        for result in [Reload::Success, Reload::Failure] {
            config_reloads.with_label_values(&[result.as_str()]);
        }
        for kind in [
            FlaggerEventType::Normal,
            FlaggerEventType::Warning,
            FlaggerEventType::Other,
        ] {
            flagger_events.with_label_values(&[kind.as_str()]);
        }
        for api in [Controller::Flagger, Controller::Argo] {
            answer_budget_exceeded.with_label_values(&[api.as_str()]);
        }
        let kayenta_executions = IntCounterVec::new(
            Opts::new(
                "verdict_kayenta_executions_total",
                "Kayenta API executions, by status (started, succeeded, terminal).",
            ),
            &["status"],
        )
        .expect("metric");
        for status in [
            KayentaExecution::Started,
            KayentaExecution::Succeeded,
            KayentaExecution::Terminal,
        ] {
            kayenta_executions.with_label_values(&[status.as_str()]);
        }
        for m in [
            Box::new(looks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(look_seconds.clone()),
            Box::new(run_score.clone()),
            Box::new(judge_seconds.clone()),
            Box::new(query_seconds.clone()),
            Box::new(query_errors.clone()),
            Box::new(fetch_errors.clone()),
            Box::new(answer_budget_exceeded.clone()),
            Box::new(duplicate_deliveries.clone()),
            Box::new(http_requests.clone()),
            Box::new(http_seconds.clone()),
            Box::new(flagger_events.clone()),
            Box::new(gate_openings.clone()),
            Box::new(config_reloads.clone()),
            Box::new(notifications.clone()),
            Box::new(notification_retries.clone()),
            Box::new(notification_seconds.clone()),
            Box::new(notifications_repeated.clone()),
            Box::new(http_unauthorized.clone()),
            Box::new(tls_reloads.clone()),
            Box::new(tls_handshake_failures.clone()),
            Box::new(store_errors.clone()),
            Box::new(store_seconds.clone()),
            Box::new(retention_deleted_looks.clone()),
            Box::new(retention_deleted_kayenta_executions.clone()),
            Box::new(kayenta_executions.clone()),
        ] {
            registry.register(m).expect("unique metric names");
        }
        Telemetry {
            registry,
            looks,
            look_seconds,
            run_score,
            judge_seconds,
            query_seconds,
            query_errors,
            fetch_errors,
            answer_budget_exceeded,
            duplicate_deliveries,
            http_requests,
            http_seconds,
            flagger_events,
            gate_openings,
            config_reloads,
            notifications,
            notification_retries,
            notification_seconds,
            notifications_repeated,
            http_unauthorized,
            tls_reloads,
            tls_handshake_failures,
            store_errors,
            store_seconds,
            retention_deleted_looks,
            retention_deleted_kayenta_executions,
            kayenta_executions,
        }
    }

    /// One metric fetched (both arms), failed or not.
    pub fn observe_query(&self, metric: &str, elapsed: Duration, failed: bool) {
        self.query_seconds
            .with_label_values(&[metric])
            .observe(elapsed.as_secs_f64());
        // Created at zero on the first fetch, so an error ratio per metric
        // is defined before the first error.
        let errors = self.query_errors.with_label_values(&[metric]);
        if failed {
            errors.inc();
        }
    }

    /// One arm of a metric could not be fetched; `kind` is
    /// `engine::fetch::FetchError::kind`.
    pub fn fetch_error(&self, kind: &'static str) {
        self.fetch_errors.with_label_values(&[kind]).inc();
    }

    /// A look taken and recorded, with its decision.
    pub fn record_look(&self, analysis: &str, run: &str, decision: &Decision, elapsed: Duration) {
        self.looks
            .with_label_values(&[analysis, decision.action.as_str()])
            .inc();
        self.look_seconds
            .with_label_values(&[analysis])
            .observe(elapsed.as_secs_f64());
        self.run_score
            .with_label_values(&[analysis, run])
            .set(decision.score);
    }

    /// Time spent judging and deciding one look.
    pub fn judged(&self, elapsed: Duration) {
        self.judge_seconds.observe(elapsed.as_secs_f64());
    }

    /// A delivery answered from the run's previous look.
    pub fn duplicate_delivery(&self) {
        self.duplicate_deliveries.inc();
    }

    /// Flagger's traffic gate opened: a rollout step begins.
    pub fn gate_opened(&self) {
        self.gate_openings.inc();
    }

    /// A webhook of `controller` answered "cannot judge" for want of time.
    pub fn answer_budget_exceeded(&self, controller: Controller) {
        self.answer_budget_exceeded
            .with_label_values(&[controller.as_str()])
            .inc();
    }

    /// A Flagger event webhook received.
    pub fn flagger_event(&self, event_type: FlaggerEventType) {
        self.flagger_events
            .with_label_values(&[event_type.as_str()])
            .inc();
    }

    /// An HTTP request answered, by route (the matched path).
    pub fn http_request(&self, route: &str, status: axum::http::StatusCode, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[route, status.as_str()])
            .inc();
        self.http_seconds
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// A request refused for want of a valid token; `reason` is the
    /// refusal's label (`missing`, `malformed`, `invalid`).
    pub fn unauthorized(&self, route: &str, reason: &'static str) {
        self.http_unauthorized
            .with_label_values(&[route, reason])
            .inc();
    }

    /// A config reload, applied or refused.
    pub fn config_reloaded(&self, result: Reload) {
        self.config_reloads
            .with_label_values(&[result.as_str()])
            .inc();
    }

    /// A reload of the serving certificate, applied or refused.
    pub fn tls_reloaded(&self, result: Reload) {
        self.tls_reloads.with_label_values(&[result.as_str()]).inc();
    }

    /// A TLS handshake failed or timed out.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.inc();
    }

    /// A run store operation failed.
    pub fn store_failed(&self, operation: StoreOperation) {
        self.store_errors
            .with_label_values(&[operation.as_str()])
            .inc();
    }

    /// Time of a run store operation on the look path.
    pub fn store_took(&self, operation: StoreOperation, elapsed: Duration) {
        self.store_seconds
            .with_label_values(&[operation.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// Looks deleted by the retention job.
    pub fn pruned_looks(&self, deleted: u64) {
        self.retention_deleted_looks.inc_by(deleted);
    }

    /// Ended Kayenta-API executions deleted by the retention job.
    pub fn pruned_kayenta_executions(&self, deleted: u64) {
        self.retention_deleted_kayenta_executions.inc_by(deleted);
    }

    /// A Kayenta-API execution started or ended.
    pub fn kayenta_execution(&self, status: KayentaExecution) {
        self.kayenta_executions
            .with_label_values(&[status.as_str()])
            .inc();
    }

    /// Series of a notification channel at zero, for every decision it
    /// wants, before its first notification (so rates and alerts on them
    /// are defined).
    pub fn notification_channel(&self, channel: &str, decisions: &[Action]) {
        for decision in decisions {
            for result in [Delivery::Sent, Delivery::Failed, Delivery::Dropped] {
                self.notifications.with_label_values(&[
                    channel,
                    decision.as_str(),
                    result.as_str(),
                ]);
            }
        }
        self.notification_retries.with_label_values(&[channel]);
    }

    /// A notification of `decision` on `channel` sent or given up, `elapsed`
    /// after the decision (retries included).
    pub fn notification_delivered(
        &self,
        channel: &str,
        decision: Action,
        result: Delivery,
        elapsed: Duration,
    ) {
        self.notifications
            .with_label_values(&[channel, decision.as_str(), result.as_str()])
            .inc();
        self.notification_seconds
            .with_label_values(&[channel, result.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// A notification of `decision` on `channel` dropped before the queue.
    pub fn notification_dropped(&self, channel: &str, decision: Action) {
        self.notifications
            .with_label_values(&[channel, decision.as_str(), Delivery::Dropped.as_str()])
            .inc();
    }

    /// A notification attempt after the first.
    pub fn notification_retried(&self, channel: &str) {
        self.notification_retries
            .with_label_values(&[channel])
            .inc();
    }

    /// A decision not notified: the run's last notification had the same.
    pub fn notification_repeated(&self, decision: Action) {
        self.notifications_repeated
            .with_label_values(&[decision.as_str()])
            .inc();
    }

    /// Forgets a finished run's gauge so closed runs do not pile up.
    pub fn forget_run(&self, analysis: &str, run: &str) {
        let _ = self.run_score.remove_label_values(&[analysis, run]);
    }

    /// The exposition text of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("exposition is UTF-8")
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}
