//! End-to-end Argo Rollouts canaries on this machine, no cluster: the same
//! services, Prometheus and Verdict analysis as `rollout.rs`, with a
//! controller playing Argo Rollouts (`verdict_e2e::argo`) instead of
//! Flagger.
//!
//! Each scenario is a Rollout with the canary steps setWeight 5 → analysis
//! → setWeight 25 → analysis → setWeight 50 → analysis → 100 %, every
//! analysis step an AnalysisRun of the **shipped** `verdict-step`
//! AnalysisTemplate (`templates/argo/analysistemplates.yaml`), its args
//! given as in `templates/argo/rollout-canary.yaml` (the step's weight as a
//! literal). Only the metric's `interval` is scaled (1m → [`INTERVAL`]),
//! with Argo's 10 s error-retry delay scaled by the same factor, and the
//! URL's host is the test's Verdict; `count`, the conditions, the limits,
//! the JSONPath, the body, the header and the path are the template's.
//! Verdict checks the template's `Authorization: Bearer` header: it runs
//! with an API token, which the Rollout's namespace holds as the
//! `verdict-api-token` secret.
//!
//! The scenarios run concurrently:
//!
//! * `healthy`: the canary is the baseline's build; it must reach 100 %
//!   with every run Successful and no Error measurement.
//! * `errors`, `latency`, `accuracy`: the canary's fault is on from the
//!   start (30 % injected 500s; +60 ms on every request; 60 % of correct
//!   answers made wrong); each must be aborted (a Failed run, weight back to
//!   0) before 100 %, by a measurement whose reason names the metric.
//! * `late-latency`: healthy until, half an interval into the 50 % step's
//!   run, the test adds 60 ms to every request; it must be aborted in that
//!   step within two measurements of the fault.
//! * `restart`: a healthy canary with its own Verdict on its own SQLite
//!   store, reached through a stable front address (a Service's). Half an
//!   interval into the 25 % step's run, that Verdict is stopped and a fresh
//!   router started on the same store behind the same address. The rollout
//!   must still be promoted with no Error measurement, and the new router's
//!   look numbers must continue the old one's (the run came from the
//!   store, not from scratch).
//!
//! Why [`INTERVAL`] and [`RATE`]: the template passes a step at its first
//! `promote` and pauses the rollout after `count` (15) measurements without
//! one; the analysis (`common::VERDICT_CONFIG`) promotes only after 300
//! requests per arm. At 5 % of 300 req/s the canary has them after about
//! 4 intervals of 6 s (360 requests), well inside the template's budget
//! (docs/deploy.md, "Sizing a step analysis").

mod common;
#[path = "../../../analyzer/tests/support/daemon.rs"]
mod daemon;
#[path = "../../../analyzer/tests/support/prometheus.rs"]
mod prometheus;

use common::{
    describe_load, log, switch_faults_on, unix_now, verdict_config, wait_scraped, Service,
    NAMESPACE, SCRAPE,
};
use daemon::Daemon;
use prometheus::{PrometheusServer, ScrapeTarget};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use verdict_e2e::argo::{
    AnalysisPhase, AnalysisTemplate, ArgValue, Outcome, Report, Rollout, RolloutSpec, Step,
    ARGO_ERROR_RETRY,
};
use verdict_e2e::load::{CanaryWeight, LoadConfig, LoadGenerator, LoadStats};

/// The template's `interval: 1m`, scaled.
const INTERVAL: Duration = Duration::from_secs(6);
/// The template's interval as written (checked against the shipped file).
const TEMPLATE_INTERVAL: &str = "1m";
/// Requests per second per scenario, both arms together.
const RATE: f64 = 300.0;
const STEPS: [u32; 3] = [5, 25, 50];
/// The weight during whose run the restart scenario replaces its Verdict
/// (half an interval after the run starts).
const RESTART_AT_WEIGHT: u32 = 25;
const TEMPLATE_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../templates/argo/analysistemplates.yaml"
);
const TEMPLATE: &str = "verdict-step";
/// The API token: Verdict's token file and the namespace's secret.
const TOKEN: &str = "e2e-argo-token-0123456789";
const CANARY_HASH: &str = "6d4f8c9b7";
const STABLE_HASH: &str = "5b7c9d8f4";

/// Argo's error-retry delay scaled like the interval (1m → INTERVAL).
fn error_retry() -> Duration {
    ARGO_ERROR_RETRY.mul_f64(INTERVAL.as_secs_f64() / 60.0)
}

/// One rollout to run.
struct Scenario {
    /// The Rollout's name (the services are `<name>-primary`, `<name>-canary`).
    name: &'static str,
    /// `e2e-app` fault flags of the canary build, on from the start.
    faults: &'static [&'static str],
    /// For a regressing canary, the metric that must be named in the abort.
    regressed_metric: Option<&'static str>,
    /// Replace this scenario's Verdict mid-rollout.
    restart: bool,
    /// The weight at which the fault is switched on (half an interval into
    /// that step's run); 0: from the start.
    fault_at_weight: u32,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        name: "healthy",
        faults: &[],
        regressed_metric: None,
        restart: false,
        fault_at_weight: 0,
    },
    Scenario {
        name: "errors",
        faults: &["--error-rate", "0.3"],
        regressed_metric: Some("errors"),
        restart: false,
        fault_at_weight: 0,
    },
    Scenario {
        name: "latency",
        faults: &["--extra-latency-ms", "60"],
        regressed_metric: Some("latency"),
        restart: false,
        fault_at_weight: 0,
    },
    Scenario {
        name: "accuracy",
        faults: &["--wrong-rate", "0.6"],
        regressed_metric: Some("accuracy"),
        restart: false,
        fault_at_weight: 0,
    },
    Scenario {
        name: "late-latency",
        faults: &["--extra-latency-ms", "60"],
        regressed_metric: Some("latency"),
        restart: false,
        fault_at_weight: 50,
    },
    Scenario {
        name: "restart",
        faults: &[],
        regressed_metric: None,
        restart: true,
        fault_at_weight: 0,
    },
];

/// A stable address in front of a replaceable Verdict, as a Kubernetes
/// Service is in front of its pod: every connection is forwarded to the
/// current backend. While no backend is set (during a replacement) new
/// connections wait for one, so the test measures state continuity across
/// the restart, not the readiness gap of a real pod swap.
struct Front {
    url: String,
    backend: tokio::sync::watch::Sender<Option<String>>,
}

impl Front {
    async fn start(backend: &str) -> Front {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the front address");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (tx, rx) = tokio::sync::watch::channel(Some(address_of(backend)));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let address = loop {
                        if let Some(a) = rx.borrow_and_update().clone() {
                            break a;
                        }
                        if rx.changed().await.is_err() {
                            return;
                        }
                    };
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(address).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Front { url, backend: tx }
    }

    fn route_to(&self, backend: Option<&str>) {
        let _ = self.backend.send(backend.map(address_of));
    }
}

fn address_of(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Replaces `old` by a fresh router on the same config (so the same SQLite
/// store) once `weight` reaches [`RESTART_AT_WEIGHT`] and half an interval
/// has passed. Returns the new daemon and when the swap started and ended.
async fn restart_mid_rollout(
    weight: Arc<CanaryWeight>,
    front: Arc<Front>,
    mut old: Daemon,
    config: String,
) -> (Daemon, f64, f64) {
    while weight.get() < RESTART_AT_WEIGHT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(INTERVAL / 2).await;
    let started = unix_now();
    front.route_to(None);
    old.stop();
    drop(old);
    // Let the old server finish and release the store.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let new = Daemon::start_on_wall_clock(&config).await;
    front.route_to(Some(&new.url));
    (new, started, unix_now())
}

/// What one scenario produced.
struct Outcomes {
    report: Report,
    load: LoadStats,
    /// The restart scenario: when the old router was stopped and the new one
    /// took over.
    restart: Option<(f64, f64)>,
    /// When a late fault was switched on (unix seconds).
    onset: Option<f64>,
}

fn rollout_spec(name: &str, template: &AnalysisTemplate) -> RolloutSpec {
    let mut steps = Vec::new();
    for w in STEPS {
        steps.push(Step::SetWeight(w));
        steps.push(Step::Analysis {
            template: template.clone(),
            // As in templates/argo/rollout-canary.yaml.
            args: vec![
                (
                    "namespace".into(),
                    ArgValue::FieldRef("metadata.namespace".into()),
                ),
                ("rollout".into(), ArgValue::FieldRef("metadata.name".into())),
                ("canary-hash".into(), ArgValue::LatestHash),
                ("stable-hash".into(), ArgValue::StableHash),
                ("weight".into(), ArgValue::Value(w.to_string())),
            ],
        });
    }
    RolloutSpec {
        name: name.to_string(),
        namespace: NAMESPACE.to_string(),
        canary_hash: CANARY_HASH.into(),
        stable_hash: STABLE_HASH.into(),
        steps,
        secrets: BTreeMap::from([(
            ("verdict-api-token".to_string(), "token".to_string()),
            TOKEN.to_string(),
        )]),
        error_retry: error_retry(),
        // Three steps: about 5 looks at 5 %, 2 at each later step, and room.
        deadline: INTERVAL * 16,
    }
}

async fn run_scenario(
    scenario: &Scenario,
    services: &(Service, Service),
    template: &AnalysisTemplate,
    restart: Option<(Arc<Front>, Daemon, String)>,
) -> Outcomes {
    let (baseline, canary) = services;
    if !scenario.faults.is_empty() && scenario.fault_at_weight == 0 {
        let answer = reqwest::Client::new()
            .post(format!("{}/admin/faults", canary.url))
            .send()
            .await
            .expect("switch the canary's faults on");
        assert_eq!(answer.status().as_u16(), 200, "POST /admin/faults");
    }
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
    let late = (scenario.fault_at_weight > 0).then(|| {
        tokio::spawn(switch_faults_on(
            weight.clone(),
            canary.url.clone(),
            scenario.fault_at_weight,
            INTERVAL / 2,
        ))
    });
    let swap = restart.map(|(front, daemon, config)| {
        tokio::spawn(restart_mid_rollout(weight.clone(), front, daemon, config))
    });
    let rollout =
        Rollout::new(rollout_spec(scenario.name, template), weight).expect("the Argo driver");
    let report = rollout.run().await;
    let restart = match swap {
        Some(task) if task.is_finished() => {
            let (new, started, ended) = task.await.expect("the restart");
            drop(new);
            Some((started, ended))
        }
        Some(task) => {
            task.abort();
            None
        }
        None => None,
    };
    let onset = match late {
        Some(task) if task.is_finished() => Some(task.await.expect("the fault switch")),
        Some(task) => {
            task.abort();
            None
        }
        None => None,
    };
    Outcomes {
        report,
        load: load.stop().await,
        restart,
        onset,
    }
}

fn errors_of(report: &Report) -> Vec<String> {
    report
        .measurements()
        .filter(|(_, m)| m.phase == AnalysisPhase::Error)
        .map(|(r, m)| {
            format!(
                "{} at +{:.1} s: {}",
                r.name,
                m.started - report.started,
                m.message
            )
        })
        .collect()
}

/// Measurements Verdict answered with the look it had already made for the
/// previous measurement (same look number), with the weights of both.
///
/// OBSERVED VERDICT BEHAVIOUR (reported, not asserted): Argo creates a
/// step's AnalysisRun as soon as the previous one succeeds and measures at
/// once, so the first measurement of the 25 % and 50 % runs comes a few
/// milliseconds after the last one of the previous run, with a new
/// `weight` argument. Verdict's dedup window (`engine::look`, 500 ms here,
/// 5 s by default) returns the run's last look to any request within the
/// window, so such a measurement got the previous step's `promote` (made
/// at the previous weight) and Argo counted a Successful measurement for
/// the new step without any look at its weight: with the shipped template
/// (count 5, inconclusiveLimit 4) that stale promote alone let a step pass.
/// Verdict now takes a new look when the weight differs; the test asserts
/// that no scenario gets a stale answer.
fn stale_answers(report: &Report) -> Vec<String> {
    let all: Vec<_> = report.measurements().collect();
    all.windows(2)
        .filter(|w| w[0].1.look.is_some() && w[0].1.look == w[1].1.look)
        .map(|w| {
            format!(
                "look {} (made at weight {} %) answered again {:.0} ms later to the {} % run's measurement 1 as {}",
                w[0].1.look.unwrap_or(0),
                w[0].0.weight,
                (w[1].1.started - w[0].1.finished) * 1000.0,
                w[1].0.weight,
                w[1].1.value.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

fn check_promoted(outcome: &Outcomes) -> String {
    let report = &outcome.report;
    let timeline = report.timeline();
    assert_eq!(
        report.outcome,
        Outcome::Promoted,
        "healthy canary not promoted:\n{timeline}"
    );
    assert_eq!(report.max_weight(), 100, "{timeline}");
    assert_eq!(report.runs.len(), STEPS.len(), "{timeline}");
    for run in &report.runs {
        assert_eq!(run.phase, AnalysisPhase::Successful, "{timeline}");
    }
    let errors = errors_of(report);
    assert!(
        errors.is_empty(),
        "Error measurements: {errors:?}\n{timeline}"
    );
    // The first promote of each run from a look made for that run (not a
    // stale answer, see `stale_answers`).
    let mut first_fresh_promote: BTreeMap<usize, usize> = BTreeMap::new();
    let mut previous_look = None;
    for (run, m) in report.measurements() {
        let index = run.measurements.iter().position(|x| std::ptr::eq(x, m));
        let fresh = m.look.is_some() && m.look != previous_look;
        previous_look = m.look;
        if fresh && m.value.as_deref() == Some("\"promote\"") {
            if let Some(i) = index {
                first_fresh_promote.entry(run.step).or_insert(i + 1);
            }
        }
    }
    let promoted_at: Vec<String> = report
        .runs
        .iter()
        .map(|r| {
            format!(
                "{} %: first fresh promote at measurement {}",
                r.weight,
                first_fresh_promote
                    .get(&r.step)
                    .map_or("-".to_string(), |i| i.to_string())
            )
        })
        .collect();
    format!("promoted ({})\n", promoted_at.join(", "))
}

fn check_aborted(scenario: &Scenario, outcome: &Outcomes) -> String {
    let report = &outcome.report;
    let metric = scenario.regressed_metric.expect("a regressing scenario");
    let timeline = report.timeline();
    let Outcome::Aborted { step, phase } = report.outcome.clone() else {
        panic!("regressed canary not aborted:\n{timeline}");
    };
    assert_eq!(
        phase,
        AnalysisPhase::Failed,
        "the abort should come from an `abort` answer, not Errors:\n{timeline}"
    );
    assert!(
        report.max_weight() < 100,
        "reached 100 % before the abort:\n{timeline}"
    );
    assert_eq!(
        report.weights.last().map(|(_, w)| *w),
        Some(0),
        "{timeline}"
    );
    let run = report.runs.last().expect("the aborted run");
    assert_eq!(run.step, step);
    let (at, last) = (
        run.measurements.len(),
        run.measurements.last().expect("a measurement"),
    );
    assert_eq!(last.value.as_deref(), Some("\"abort\""), "{timeline}");
    let reason = last.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(metric),
        "the abort does not name {metric}: {reason}\n{timeline}"
    );
    let errors = errors_of(report);
    assert!(
        errors.is_empty(),
        "Error measurements: {errors:?}\n{timeline}"
    );
    if scenario.fault_at_weight > 0 {
        let onset = outcome
            .onset
            .unwrap_or_else(|| panic!("the fault was never switched on:\n{timeline}"));
        assert_eq!(run.weight, scenario.fault_at_weight, "{timeline}");
        assert!(
            last.started > onset,
            "aborted before the fault:\n{timeline}"
        );
        // Within two measurements of the fault, plus a scrape of lag.
        let allowed = 2.0 * INTERVAL.as_secs_f64() + 1.0;
        assert!(
            last.started - onset <= allowed,
            "aborted {:.1} s after the fault (allowed {allowed:.1} s):\n{timeline}",
            last.started - onset
        );
    }
    format!(
        "aborted at {} % (measurement {at} of its run, +{:.1} s): {reason}\n",
        run.weight,
        last.started - report.started
    )
}

fn check_restart(outcome: &Outcomes) -> String {
    let summary = check_promoted(outcome);
    let report = &outcome.report;
    let timeline = report.timeline();
    let (stopped, resumed) = outcome
        .restart
        .unwrap_or_else(|| panic!("Verdict was never replaced:\n{timeline}"));
    let looks: Vec<(f64, u64)> = report
        .measurements()
        .filter_map(|(_, m)| m.look.map(|l| (m.started, l)))
        .collect();
    let before = looks.iter().filter(|(t, _)| *t < stopped).count();
    let after = looks.iter().filter(|(t, _)| *t >= stopped).count();
    assert!(
        before > 0 && after > 0,
        "no measurement on both sides of the restart:\n{timeline}"
    );
    // A repeated number is a measurement Verdict answered with its last
    // look (dedup window; see `stale_answers`); every new look must be the
    // next number, across the restart too.
    assert!(
        looks
            .windows(2)
            .all(|w| w[1].1 == w[0].1 || w[1].1 == w[0].1 + 1),
        "look numbers do not run on across the restart: {looks:?}\n{timeline}"
    );
    format!(
        "{}  Verdict replaced at +{:.1} s ({:.0} ms); {before} measurements before, {after} after, looks 1..{}\n",
        summary.trim_end(),
        stopped - report.started,
        (resumed - stopped) * 1000.0,
        looks.last().map_or(0, |l| l.1)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn argo_canaries_are_promoted_when_healthy_aborted_when_regressed_and_survive_a_restart() {
    let shipped = std::fs::read_to_string(TEMPLATE_FILE).expect("read the shipped templates");
    let template = AnalysisTemplate::from_yaml(&shipped, TEMPLATE)
        .unwrap_or_else(|e| panic!("the shipped {TEMPLATE} template cannot be played: {e}"));
    assert_eq!(
        template.metric_field("/interval").and_then(|v| v.as_str()),
        Some(TEMPLATE_INTERVAL),
        "the template's interval changed: rescale INTERVAL"
    );
    let path = template.url_path().expect("the template's URL");
    let analysis = path
        .strip_prefix("/v1/argo/")
        .unwrap_or_else(|| panic!("the template's URL path {path} is not Verdict's Argo API"))
        .to_string();

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
            [(baseline, "primary"), (canary, "canary")].map(|(service, track)| ScrapeTarget {
                address: service.address.clone(),
                labels: vec![
                    ("namespace".into(), NAMESPACE.into()),
                    ("app".into(), format!("{}-{track}", s.name)),
                ],
            })
        })
        .collect();
    let prometheus = PrometheusServer::start_scraping(&targets, SCRAPE);
    wait_scraped(&prometheus, targets.len()).await;

    let dir = tempfile::tempdir().expect("a directory for the token and the store");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).expect("write the token file");
    let config = format!(
        "{}\nauth: {{token_file: {:?}}}\n",
        verdict_config(&prometheus.url, &analysis).trim_end(),
        tokens.display().to_string()
    );
    let restart_config = format!(
        "{config}store: {{backend: sqlite, path: {:?}}}\n",
        dir.path().join("restart.db").display().to_string()
    );
    let verdict = Daemon::start_on_wall_clock(&config).await;
    let restart_daemon = Daemon::start_on_wall_clock(&restart_config).await;
    let front = Arc::new(Front::start(&restart_daemon.url).await);
    let mut restart = Some((front.clone(), restart_daemon, restart_config));

    let started = Instant::now();
    let runs = SCENARIOS.iter().zip(&services).map(|(s, svc)| {
        let (origin, restart) = if s.restart {
            (front.url.clone(), restart.take())
        } else {
            (verdict.url.clone(), None)
        };
        let template = template
            .clone()
            .scaled(INTERVAL, None)
            .with_origin(&origin)
            .expect("the template's URL");
        async move { run_scenario(s, svc, &template, restart).await }
    });
    let outcomes = futures_util::future::join_all(runs).await;
    log(&format!(
        "\n=== end-to-end Argo rollouts ({:.0} s; interval {:?}, error retry {:?}, {RATE} req/s) ===\n",
        started.elapsed().as_secs_f64(),
        INTERVAL,
        error_retry()
    ));

    let mut failures = Vec::new();
    for (scenario, outcome) in SCENARIOS.iter().zip(&outcomes) {
        log(&format!(
            "\n{}{}",
            outcome.report.timeline(),
            describe_load(&outcome.load)
        ));
        for stale in stale_answers(&outcome.report) {
            log(&format!("  stale answer: {stale}\n"));
            failures.push(format!("{}: stale answer: {stale}", scenario.name));
        }
        let checked = std::panic::catch_unwind(|| match scenario.regressed_metric {
            None if scenario.restart => check_restart(outcome),
            None => check_promoted(outcome),
            Some(_) => check_aborted(scenario, outcome),
        });
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
