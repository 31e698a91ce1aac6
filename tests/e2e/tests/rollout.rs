//! End-to-end rollouts on this machine, no cluster: real services, a real
//! Prometheus, a real Verdict, and a controller playing Flagger.
//!
//! What a user deploys, as shipped: Verdict's config holds the analyses of
//! `templates/analysis/http-service.yaml` and `ml-model.yaml` (only the
//! Prometheus URL replaced), and each Canary is
//! `templates/flagger/canary-istio.yaml` (steps 5 → 25 → 50 → 100, its
//! threshold, its webhooks with their metadata: the token and
//! `stepWeights`), pointed at this Verdict and, for the accuracy scenario,
//! at the `ml-model` analysis. Only the interval is shortened, to
//! Flagger's minimum of 10 s. The services are scraped with the pod names
//! Kubernetes would give them (`<name>-<hash>-<id>`,
//! `<name>-primary-<hash>-<id>`), which the templates' selectors match.
//!
//! Per scenario, a baseline (`<name>-primary`) and a canary build of
//! `e2e-app` serve `/predict`; a load generator sends them a steady `RATE`
//! requests per second split by the canary weight; one Prometheus scrapes
//! every service each second; Verdict serves the production router
//! (in-process, on the wall clock, exactly as `verdict serve`); and
//! [`Rollout`] plays Flagger, calling every webhook of the template. The
//! scenarios run concurrently:
//!
//! * `healthy`: the canary is the baseline's build; it must be promoted
//!   with no failed check, and every webhook must have been answered.
//! * `errors`, `latency`, `accuracy`: the canary is faulty from the start
//!   (its fault is switched on before it gets any traffic: 30 % injected
//!   500s; +60 ms on every request; 60 % of correct answers made wrong). It
//!   must be rolled back by Verdict's `rollback` webhook at the first or
//!   second step, before weight 100, with the regressed metric named in the
//!   reason, within one analysis interval of the regression becoming
//!   detectable.
//! * `late-latency`: healthy until, half an interval after it reaches 50 %,
//!   the test adds +60 ms to every request. It must be rolled back, never
//!   before the fault, within one interval of detectability.
//!
//! # "Detectable"
//!
//! The regression is *detectable* at the earliest time `T_d` at which
//! Verdict's own judges, given everything Prometheus had scraped by then,
//! abort. It is found by an oracle: after the rollout, a second Verdict
//! engine with the same analysis replays the run against the same
//! Prometheus, looking every second (the scrape interval, the finest
//! resolution the data has) from the run's first look, with the payload
//! Flagger sent (no weight). The live rollout only looks
//! once per analysis interval, so the best it can do is the first tick at
//! or after `T_d`: the test asserts that the rollback tick started no later
//! than `T_d + INTERVAL`, plus one scrape interval of tolerance (a scrape
//! stamped just before a look may be committed just after it, and ticks
//! drift by their own duration). The oracle is Verdict itself rather than
//! a second implementation of the statistics, so the assertion is about
//! the rollout machinery (webhooks, the rollback hook, run state, windows,
//! scrape lag) losing no time, not about the judges' power, which the
//! simulation in `docs/statistics.md` measures.
//!
//! Processes are killed when the test ends, also on failure (guards'
//! `Drop`), and `e2e-app` exits by itself when the test process dies
//! (its stdin closes). Ports are chosen free at run time; everything is on
//! 127.0.0.1. `prometheus` must be on PATH (`scripts/install-test-deps.sh`).

mod common;
#[path = "../../../analyzer/tests/support/daemon.rs"]
mod daemon;
#[path = "../../../analyzer/tests/support/prometheus.rs"]
mod prometheus;

use common::{
    describe_load, log, pod_labels, switch_faults_on, template_config, wait_scraped, Service,
    NAMESPACE, SCRAPE,
};
use daemon::Daemon;
use prometheus::{PrometheusServer, ScrapeTarget};
use std::sync::Arc;
use std::time::{Duration, Instant};
use verdict::api::flagger::FlaggerWebhook;
use verdict::engine::LookRequest;
use verdict_e2e::flagger::{Canary, HookType, Phase, Report, RollbackCause, Rollout};
use verdict_e2e::load::{CanaryWeight, LoadConfig, LoadGenerator, LoadStats};
use verdict_judges::decision::Action;

/// Flagger's analysis interval: its minimum, 10 s (the template's is 1m;
/// the shorter interval only brings Verdict the same calls closer together).
const INTERVAL: Duration = Duration::from_secs(10);
/// Requests per second per scenario, both arms together.
const RATE: f64 = 200.0;
const CHECKSUM: &str = "85d557f47b";
/// The Canary a user deploys: its stepWeights (5, 25, 50, 100), threshold
/// and webhooks, metadata included (docs/deploy.md).
const CANARY_TEMPLATE: &str = include_str!("../../../templates/flagger/canary-istio.yaml");
/// Ticks before the driver gives up: the healthy rollout needs the
/// analysis's minimum duration (2 min) and each later step's minimum and
/// split check (under a minute each), about 25 ticks.
const MAX_TICKS: u32 = 45;

/// One rollout to run.
struct Scenario {
    /// The Canary's name (the services are `<name>-primary`, `<name>-canary`).
    name: &'static str,
    /// The analysis of `templates/analysis/` that judges it: `http-service`
    /// (the template's own), or `ml-model` for the accuracy scenario (the
    /// template's hooks pointed at it, as its user would).
    analysis: &'static str,
    /// `e2e-app` fault flags of the canary build.
    faults: &'static [&'static str],
    /// For a regressing canary, the metric that must be named in the rollback.
    regressed_metric: Option<&'static str>,
    /// The canary weight at which the fault is switched on (half an
    /// interval later); 0: before the canary gets any traffic.
    regress_at_weight: u32,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        name: "healthy",
        analysis: "http-service",
        faults: &[],
        regressed_metric: None,
        regress_at_weight: 0,
    },
    Scenario {
        name: "errors",
        analysis: "http-service",
        faults: &["--error-rate", "0.3"],
        regressed_metric: Some("errors"),
        regress_at_weight: 0,
    },
    Scenario {
        name: "latency",
        analysis: "http-service",
        faults: &["--extra-latency-ms", "60"],
        regressed_metric: Some("latency"),
        regress_at_weight: 0,
    },
    Scenario {
        name: "accuracy",
        analysis: "ml-model",
        faults: &["--wrong-rate", "0.6"],
        regressed_metric: Some("accuracy"),
        regress_at_weight: 0,
    },
    Scenario {
        name: "late-latency",
        analysis: "http-service",
        faults: &["--extra-latency-ms", "60"],
        regressed_metric: Some("latency"),
        regress_at_weight: 50,
    },
];

/// The shipped Canary template's webhooks, pointed at this test's Verdict
/// and at the scenario's analysis.
fn canary(scenario: &Scenario, verdict: &str) -> Canary {
    Canary::from_template(
        CANARY_TEMPLATE,
        verdict,
        scenario.analysis,
        (scenario.name, NAMESPACE, CHECKSUM),
        INTERVAL,
        MAX_TICKS,
    )
    .expect("the shipped Canary template")
}

/// The step weights of the shipped Canary.
fn steps() -> Vec<u32> {
    canary(&SCENARIOS[0], "http://x").step_weights
}

/// What one scenario produced.
struct Outcome {
    report: Report,
    /// When the fault was switched on (regressing scenarios).
    onset: Option<f64>,
    load: LoadStats,
}

async fn run_scenario(
    scenario: &Scenario,
    services: &(Service, Service),
    verdict: &str,
) -> Outcome {
    let (baseline, canary) = services;
    let weight = Arc::new(CanaryWeight::default());
    let load = LoadGenerator::start(
        LoadConfig {
            baseline: baseline.url.clone(),
            canary: canary.url.clone(),
            rate: RATE,
            timeout: Duration::from_secs(5),
        },
        weight.clone(),
    )
    .expect("load generator");
    let trigger = scenario.regressed_metric.map(|_| {
        tokio::spawn(switch_faults_on(
            weight.clone(),
            canary.url.clone(),
            scenario.regress_at_weight,
            INTERVAL / 2,
        ))
    });
    if scenario.regress_at_weight == 0 {
        // On before the rollout starts, so the canary is faulty from its
        // first request.
        while trigger.as_ref().is_some_and(|t| !t.is_finished()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let rollout = Rollout::new(self::canary(scenario, verdict), weight).expect("driver");
    let report = rollout.run().await;
    let onset = match trigger {
        Some(task) if task.is_finished() => Some(task.await.expect("fault switch")),
        Some(task) => {
            task.abort();
            None
        }
        None => None,
    };
    Outcome {
        report,
        onset,
        load: load.stop().await,
    }
}

/// The earliest second at which Verdict's judges, looking at every scrape,
/// abort the run of `report` (see the module doc), and why; `None` if they
/// never do up to `until`.
async fn detectable_at(
    oracle: &Daemon,
    scenario: &Scenario,
    report: &Report,
    until: f64,
) -> Option<(f64, String)> {
    let rollout_hook = canary(scenario, "http://x")
        .webhooks
        .into_iter()
        .find(|w| w.hook == HookType::Rollout)
        .expect("the template has a rollout hook");
    let first_look = report
        .ticks
        .iter()
        .find(|t| t.calls.iter().any(|c| c.hook == HookType::PreRollout))?
        .at;
    let mut k = 0u32;
    loop {
        let t = first_look + f64::from(k);
        if t > until {
            return None;
        }
        // What Flagger sends, as the live rollout did: no weight, the
        // rollout hook's metadata.
        let body = serde_json::json!({
            "name": scenario.name,
            "namespace": NAMESPACE,
            "phase": "Progressing",
            "checksum": CHECKSUM,
            "metadata": rollout_hook.metadata,
        });
        let payload = FlaggerWebhook::parse(body.to_string().as_bytes()).expect("payload");
        let look = oracle
            .engine
            .look(LookRequest {
                key: payload.key(),
                analysis: scenario.analysis.into(),
                vars: payload.vars(),
                now: t,
                weight: None,
                steps: None,
            })
            .await
            .expect("oracle look");
        if look.decision.action == Action::Abort {
            return Some((t, look.decision.summary()));
        }
        k += 1;
    }
}

fn check_healthy(outcome: &Outcome) {
    let report = &outcome.report;
    assert_eq!(
        report.phase,
        Phase::Succeeded,
        "healthy canary not promoted:\n{}",
        report.timeline()
    );
    assert_eq!(report.rollback, None);
    let last = report.ticks.last().expect("ticks");
    assert_eq!(
        last.failed_checks,
        0,
        "Verdict failed a check of a healthy canary:\n{}",
        report.timeline()
    );
    assert!(
        report.weights.iter().any(|(_, w)| *w == 100),
        "the canary never reached 100 %:\n{}",
        report.timeline()
    );
    let promoted = report
        .ticks
        .iter()
        .flat_map(|t| &t.calls)
        .any(|c| c.hook == HookType::ConfirmPromotion && c.status == Some(200));
    assert!(
        promoted,
        "confirm-promotion never answered 200:\n{}",
        report.timeline()
    );
}

async fn check_regressed(scenario: &Scenario, outcome: &Outcome, oracle: &Daemon) -> String {
    let report = &outcome.report;
    let metric = scenario.regressed_metric.expect("a regressing scenario");
    let timeline = report.timeline();
    assert_eq!(
        report.phase,
        Phase::Failed,
        "regressed canary not rolled back:\n{timeline}"
    );
    let onset = outcome
        .onset
        .unwrap_or_else(|| panic!("the fault was never switched on:\n{timeline}"));
    let (tick_number, cause) = report.rollback.clone().expect("a rollback tick");
    assert_eq!(
        cause,
        RollbackCause::RollbackWebhook,
        "the rollback should come from Verdict's rollback webhook:\n{timeline}"
    );
    let tick = report.tick(tick_number).expect("the rollback tick");
    if scenario.regress_at_weight == 0 {
        // Faulty from the start: caught at the first or second step.
        let reached = report.weights.iter().map(|(_, w)| *w).max().unwrap_or(0);
        assert!(
            reached <= steps()[1],
            "a canary faulty from the start reached {reached} % before its rollback:\n{timeline}"
        );
    }
    assert!(
        tick.at > onset,
        "rolled back at {:.1} before the fault at {onset:.1}:\n{timeline}",
        tick.at
    );
    for earlier in report.ticks.iter().filter(|t| t.at < onset) {
        assert_eq!(
            earlier.failed_checks, 0,
            "a check failed before the fault:\n{timeline}"
        );
    }
    let rollback_call = tick
        .calls
        .iter()
        .find(|c| c.hook == HookType::Rollback && c.passed())
        .expect("the rollback call");
    assert!(
        rollback_call.detail.contains(metric),
        "the rollback reason does not name {metric}: {}",
        rollback_call.detail
    );
    let until = tick.at + INTERVAL.as_secs_f64();
    let (detectable, why) = detectable_at(oracle, scenario, report, until)
        .await
        .unwrap_or_else(|| {
            panic!("the oracle never aborted, yet the rollout was rolled back:\n{timeline}")
        });
    let late = tick.at - detectable;
    let allowed = (INTERVAL + SCRAPE).as_secs_f64();
    assert!(
        late <= allowed,
        "rolled back {late:.1} s after the regression became detectable (allowed {allowed:.1} s); \
         detectable at +{:.1} s: {why}\n{timeline}",
        detectable - report.ticks[0].at
    );
    format!(
        "fault on at +{:.1} s; detectable at +{:.1} s (oracle: {why}); rolled back at +{:.1} s ({late:+.1} s)\n",
        onset - report.ticks[0].at,
        detectable - report.ticks[0].at,
        tick.at - report.ticks[0].at,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canaries_are_promoted_when_healthy_and_rolled_back_within_an_interval_of_detection() {
    let services: Vec<(Service, Service)> = SCENARIOS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                Service::start(2 * i as u64 + 1, &[]),
                Service::start(2 * i as u64 + 2, s.faults),
            )
        })
        .collect();
    let targets: Vec<ScrapeTarget> = SCENARIOS
        .iter()
        .zip(&services)
        .flat_map(|(s, (baseline, canary))| {
            [(baseline, true), (canary, false)].map(|(service, primary)| ScrapeTarget {
                address: service.address.clone(),
                labels: pod_labels(s.name, primary),
            })
        })
        .collect();
    let prometheus = PrometheusServer::start_scraping(&targets, SCRAPE);
    wait_scraped(&prometheus, targets.len()).await;
    let config = template_config(&prometheus.url);
    let verdict = Daemon::start_on_wall_clock(&config).await;

    let started = Instant::now();
    let outcomes = futures_util::future::join_all(
        SCENARIOS
            .iter()
            .zip(&services)
            .map(|(s, svc)| run_scenario(s, svc, &verdict.url)),
    )
    .await;
    log(&format!(
        "\n=== end-to-end rollouts ({:.0} s) ===\n",
        started.elapsed().as_secs_f64()
    ));

    // The oracle: the same analysis in a separate engine, on the same Prometheus.
    let oracle = Daemon::start_on_wall_clock(&config).await;
    let mut failures = Vec::new();
    for (scenario, outcome) in SCENARIOS.iter().zip(&outcomes) {
        log(&format!(
            "\n{}{}",
            outcome.report.timeline(),
            describe_load(&outcome.load)
        ));
        for (message, call) in &outcome.report.events {
            if !call.passed() {
                failures.push(format!(
                    "{}: event {message:?} answered {:?} {}",
                    scenario.name, call.status, call.detail
                ));
            }
        }
        let checked = match scenario.regressed_metric {
            None => std::panic::catch_unwind(|| check_healthy(outcome))
                .map(|()| "promoted\n".to_string()),
            Some(_) => {
                let future = check_regressed(scenario, outcome, &oracle);
                futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(future)).await
            }
        };
        match checked {
            Ok(summary) => log(&format!("{}: {summary}", scenario.name)),
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {text}", scenario.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
