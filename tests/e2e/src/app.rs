//! The instrumented service the end-to-end test deploys twice: once as the
//! baseline (the primary) and once as the canary, the same code with
//! different [`AppConfig`]s, as a real rollout ships one image with a change.
//!
//! `GET /predict` plays a small model server: it waits a random "inference"
//! time, then answers a prediction that is correct with probability
//! `accuracy` and says so (as a service with delayed ground truth would
//! score it). `GET /metrics` exposes what Verdict's example analyses query:
//!
//! * `http_requests_total{code}`: every `/predict` answer, by status code;
//! * `http_request_duration_seconds`: a classic histogram of their latency;
//! * `model_requests_total{status}` (`ok`, `error`) and
//!   `model_inference_duration_seconds`: the same answers and latencies under
//!   the names of `templates/analysis/ml-model.yaml`;
//! * `model_predictions_scored_total{correct}`: scored predictions.
//!
//! Every label value the service can produce is exported from the start at
//! zero, so a counter's first increment is never hidden in the appearance
//! of its series (Prometheus' `increase` and Verdict both need a starting
//! sample).
//!
//! Faults ([`Faults`]) make the canary worse: extra latency, injected 500s,
//! wrong answers. They are configured at start and switched on by
//! `POST /admin/faults`, so a canary can be healthy at first and regress
//! mid-rollout at a moment the test chooses (a step of the rollout, not a
//! guess at how long the test's setup takes).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounterVec, Opts, Registry, TextEncoder};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use verdict_judges::splitmix64::SplitMix64;

/// Latency histogram buckets, seconds: fine around the service's normal
/// latency (a few milliseconds) and above it.
pub const LATENCY_BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// What goes wrong once the faults are on. All zero: a healthy build.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Fraction of requests answered `500`.
    pub error_rate: f64,
    /// Added to every request's latency.
    pub extra_latency: Duration,
    /// Fraction of otherwise correct predictions made wrong.
    pub wrong_rate: f64,
}

/// One build of the service.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Seed of the service's random choices (latency, answers, faults).
    pub seed: u64,
    /// Normal latency is uniform between these.
    pub min_latency: Duration,
    pub max_latency: Duration,
    /// Probability that a prediction is correct without faults.
    pub accuracy: f64,
    pub faults: Faults,
}

/// The service's state: its config, clock, generator and metrics.
pub struct App {
    config: AppConfig,
    faults_on: AtomicBool,
    rng: Mutex<SplitMix64>,
    registry: Registry,
    requests: IntCounterVec,
    duration: Histogram,
    model_requests: IntCounterVec,
    inference: Histogram,
    scored: IntCounterVec,
}

impl App {
    pub fn new(config: AppConfig) -> Result<Arc<App>, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "Answers of /predict by status code."),
            &["code"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Latency of /predict answers, seconds.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let model_requests = IntCounterVec::new(
            Opts::new("model_requests_total", "Answers of /predict by status."),
            &["status"],
        )?;
        let inference = Histogram::with_opts(
            HistogramOpts::new(
                "model_inference_duration_seconds",
                "Latency of /predict answers, seconds.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let scored = IntCounterVec::new(
            Opts::new(
                "model_predictions_scored_total",
                "Predictions scored against the truth, by correctness.",
            ),
            &["correct"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(model_requests.clone()))?;
        registry.register(Box::new(inference.clone()))?;
        registry.register(Box::new(scored.clone()))?;
        for code in ["200", "500"] {
            requests.with_label_values(&[code]);
        }
        for status in ["ok", "error"] {
            model_requests.with_label_values(&[status]);
        }
        for correct in ["true", "false"] {
            scored.with_label_values(&[correct]);
        }
        Ok(Arc::new(App {
            rng: Mutex::new(SplitMix64::new(config.seed)),
            config,
            faults_on: AtomicBool::new(false),
            registry,
            requests,
            duration,
            model_requests,
            inference,
            scored,
        }))
    }

    /// The faults in force now.
    fn faults(&self) -> Faults {
        if self.faults_on.load(Ordering::SeqCst) {
            self.config.faults
        } else {
            Faults::default()
        }
    }

    /// Four uniform draws for one request (one lock per request).
    fn draws(&self) -> [f64; 4] {
        let mut rng = self.rng.lock().expect("generator lock");
        std::array::from_fn(|_| rng.next_f64())
    }
}

/// `/predict`, `/metrics` and `POST /admin/faults`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/predict", get(predict))
        .route("/metrics", get(metrics))
        .route("/admin/faults", post(faults_on))
        .with_state(app)
}

/// Switches the configured faults on (idempotent).
async fn faults_on(State(app): State<Arc<App>>) -> &'static str {
    app.faults_on.store(true, Ordering::SeqCst);
    "faults on"
}

async fn predict(State(app): State<Arc<App>>) -> Response {
    let started = Instant::now();
    let faults = app.faults();
    let [latency, error, correct, wrong] = app.draws();
    let cfg = &app.config;
    let spread = cfg.max_latency.saturating_sub(cfg.min_latency);
    tokio::time::sleep(cfg.min_latency + spread.mul_f64(latency) + faults.extra_latency).await;
    let (status, body) = if error < faults.error_rate {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected error".to_string(),
        )
    } else {
        let correct = correct < cfg.accuracy && wrong >= faults.wrong_rate;
        app.scored
            .with_label_values(&[if correct { "true" } else { "false" }])
            .inc();
        (StatusCode::OK, format!("{{\"correct\":{correct}}}"))
    };
    app.requests.with_label_values(&[status.as_str()]).inc();
    let model_status = if status.is_success() { "ok" } else { "error" };
    app.model_requests.with_label_values(&[model_status]).inc();
    let seconds = started.elapsed().as_secs_f64();
    app.duration.observe(seconds);
    app.inference.observe(seconds);
    (status, body).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let encoder = TextEncoder::new();
    let mut out = Vec::new();
    match encoder.encode(&app.registry.gather(), &mut out) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_string())],
            out,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
