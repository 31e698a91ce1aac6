//! Verdict's own metrics, exported at `/metrics` in Prometheus format.
//!
//! Every observable behaviour has a counter or histogram here; the Grafana
//! dashboards under `grafana/` read exactly these names (a test checks).

use crate::engine::run::Look;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};
use std::time::Duration;

/// The registry and every metric Verdict exports.
pub struct Telemetry {
    registry: Registry,
    pub looks: IntCounterVec,
    pub look_seconds: HistogramVec,
    pub run_score: GaugeVec,
    pub judge_seconds: Histogram,
    pub query_seconds: HistogramVec,
    pub query_errors: IntCounterVec,
    pub fetch_errors: IntCounterVec,
    pub answer_budget_exceeded: IntCounterVec,
    pub duplicate_deliveries: IntCounter,
    pub http_requests: IntCounterVec,
    pub http_seconds: HistogramVec,
    pub flagger_events: IntCounterVec,
    /// Openings of Flagger's traffic gate (each begins a rollout step).
    pub gate_openings: IntCounter,
    pub config_reloads: IntCounterVec,
    pub notifications: IntCounterVec,
    pub notification_retries: IntCounterVec,
    pub notification_seconds: HistogramVec,
    pub notifications_repeated: IntCounterVec,
    pub http_unauthorized: IntCounterVec,
    pub tls_reloads: IntCounterVec,
    pub tls_handshake_failures: IntCounter,
    pub store_errors: IntCounterVec,
    pub store_seconds: HistogramVec,
    pub retention_deleted_looks: IntCounter,
    pub retention_deleted_kayenta_executions: IntCounter,
    /// Kayenta-compatible executions, by how they ended.
    pub kayenta_executions: IntCounterVec,
}

/// Run store operations, as labelled in `verdict_store_errors_total`.
pub const STORE_OPERATIONS: &[&str] = &[
    "open_run",
    "sync_run",
    "record_look",
    "close_run",
    "open_step",
    "record_event",
    "record_notification",
    "retention",
];

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
        for result in ["success", "failure"] {
            tls_reloads.with_label_values(&[result]);
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
        for operation in STORE_OPERATIONS {
            store_errors.with_label_values(&[operation]);
        }
        // Label values known in advance start at zero, so the series exist
        // (and `rate()` and alerts work) before the first event.
        for result in ["success", "failure"] {
            config_reloads.with_label_values(&[result]);
        }
        for kind in ["Normal", "Warning", "other"] {
            flagger_events.with_label_values(&[kind]);
        }
        for api in ["flagger", "argo"] {
            answer_budget_exceeded.with_label_values(&[api]);
        }
        let kayenta_executions = IntCounterVec::new(
            Opts::new(
                "verdict_kayenta_executions_total",
                "Kayenta API executions, by status (started, succeeded, terminal).",
            ),
            &["status"],
        )
        .expect("metric");
        for status in ["started", "succeeded", "terminal"] {
            kayenta_executions.with_label_values(&[status]);
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

    pub fn record_look(&self, analysis: &str, run: &str, look: &Look, elapsed: Duration) {
        self.looks
            .with_label_values(&[analysis, look.decision.action.as_str()])
            .inc();
        self.look_seconds
            .with_label_values(&[analysis])
            .observe(elapsed.as_secs_f64());
        self.run_score
            .with_label_values(&[analysis, run])
            .set(look.decision.score);
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
