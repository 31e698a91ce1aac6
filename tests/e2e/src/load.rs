//! A steady, open-loop load generator that splits requests between the
//! baseline and the canary by the canary's current weight, as a mesh or an
//! ingress does during a rollout.
//!
//! Open loop: requests leave at the configured rate whatever the answers'
//! latency (each is its own task), so a slow canary does not slow the load
//! down and hide its own regression. The split is a weighted round robin
//! (an error-diffusion counter), so over any stretch of traffic the canary
//! gets its weight's share up to one request; the weight is read for every
//! request, so a change takes effect at once.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the load goes and how much of it.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URLs, e.g. `http://127.0.0.1:41236`; `/predict` is requested.
    pub baseline: String,
    pub canary: String,
    /// Requests per second, both arms together.
    pub rate: f64,
    /// Per-request timeout; a timeout is counted as failed.
    pub timeout: Duration,
}

/// The canary's share of traffic, percent, shared by the rollout controller
/// (which sets it) and the load generator (which obeys it).
#[derive(Debug, Default)]
pub struct CanaryWeight(AtomicU32);

impl CanaryWeight {
    pub fn set(&self, percent: u32) {
        self.0.store(percent.min(100), Ordering::SeqCst);
    }

    pub fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Requests of one arm, by outcome.
#[derive(Debug, Default)]
struct ArmCounters {
    sent: AtomicU64,
    ok: AtomicU64,
    server_errors: AtomicU64,
    failed: AtomicU64,
}

impl ArmCounters {
    fn snapshot(&self) -> ArmStats {
        ArmStats {
            sent: self.sent.load(Ordering::SeqCst),
            ok: self.ok.load(Ordering::SeqCst),
            server_errors: self.server_errors.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
        }
    }
}

/// What one arm received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArmStats {
    pub sent: u64,
    /// 2xx answers.
    pub ok: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// No answer (connection error, timeout) or another status.
    pub failed: u64,
}

/// What the generator did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadStats {
    pub baseline: ArmStats,
    pub canary: ArmStats,
    pub elapsed: Duration,
}

impl LoadStats {
    /// Requests sent per second, both arms.
    pub fn achieved_rate(&self) -> f64 {
        (self.baseline.sent + self.canary.sent) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A running generator; [`LoadGenerator::stop`] ends it.
pub struct LoadGenerator {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Duration>,
    baseline: Arc<ArmCounters>,
    canary: Arc<ArmCounters>,
}

/// How often the generator wakes up to send what is due.
const TICK: Duration = Duration::from_millis(5);

impl LoadGenerator {
    /// Starts sending at `config.rate` on the current Tokio runtime.
    pub fn start(config: LoadConfig, weight: Arc<CanaryWeight>) -> Result<Self, reqwest::Error> {
        verdict::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .no_proxy()
            .build()?;
        let stop = Arc::new(AtomicBool::new(false));
        let baseline = Arc::new(ArmCounters::default());
        let canary = Arc::new(ArmCounters::default());
        let task = tokio::spawn(generate(
            config,
            weight,
            client,
            stop.clone(),
            baseline.clone(),
            canary.clone(),
        ));
        Ok(LoadGenerator {
            stop,
            task,
            baseline,
            canary,
        })
    }

    /// Stops sending, lets requests in flight finish (up to their timeout)
    /// and returns the totals.
    pub async fn stop(self) -> LoadStats {
        self.stop.store(true, Ordering::SeqCst);
        let elapsed = self.task.await.unwrap_or_default();
        LoadStats {
            baseline: self.baseline.snapshot(),
            canary: self.canary.snapshot(),
            elapsed,
        }
    }
}

async fn generate(
    config: LoadConfig,
    weight: Arc<CanaryWeight>,
    client: reqwest::Client,
    stop: Arc<AtomicBool>,
    baseline: Arc<ArmCounters>,
    canary: Arc<ArmCounters>,
) -> Duration {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut sent: u64 = 0;
    // Error diffusion: add the weight per request, route to the canary on
    // each overflow of 100.
    let mut credit: u32 = 0;
    while !stop.load(Ordering::SeqCst) {
        ticker.tick().await;
        let due = (started.elapsed().as_secs_f64() * config.rate) as u64;
        while sent < due {
            sent += 1;
            credit += weight.get();
            let (base, counters) = if credit >= 100 {
                credit -= 100;
                (&config.canary, canary.clone())
            } else {
                (&config.baseline, baseline.clone())
            };
            counters.sent.fetch_add(1, Ordering::SeqCst);
            let request = client.get(format!("{base}/predict?id={sent}"));
            in_flight.spawn(async move {
                let counter = match request.send().await {
                    Ok(r) if r.status().is_success() => &counters.ok,
                    Ok(r) if r.status().is_server_error() => &counters.server_errors,
                    _ => &counters.failed,
                };
                counter.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Reap finished requests so the set stays small.
        while in_flight.try_join_next().is_some() {}
    }
    let elapsed = started.elapsed();
    while in_flight.join_next().await.is_some() {}
    elapsed
}
