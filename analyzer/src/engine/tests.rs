//! Engine behaviour on exact in-memory data: eviction, bounded history,
//! the before-rollout baseline window.

use super::*;
use crate::config::load_str;
use crate::source::memory::MemorySource;
use crate::source::{Sample, Series};
use std::path::Path;

const CONFIG: &str = r#"
analyses:
  web:
    lookback: 1m
    step: 15s
    dedup_window: 5s
    min_data: {points: 3}
    BASELINE_WINDOW
    metrics:
      - name: latency
        kind: gauge
        canary: 'latency{app="{{name}}-canary"}'
        baseline: 'latency{app="{{name}}-primary"}'
"#;

fn series(from: f64, to: f64, value: impl Fn(f64) -> f64) -> Vec<Series> {
    let mut samples = Vec::new();
    let mut t = from;
    while t <= to {
        samples.push(Sample {
            timestamp: t,
            value: value(t),
        });
        t += 15.0;
    }
    vec![Series {
        labels: Default::default(),
        samples,
    }]
}

fn engine(baseline_window: &str, source: MemorySource) -> Engine {
    let text = CONFIG.replace("BASELINE_WINDOW", baseline_window);
    let config = load_str(Path::new("t.yaml"), &text, Vec::new()).unwrap();
    Engine::new(
        config.analyses,
        Arc::new(source),
        Arc::new(Telemetry::new()),
    )
}

fn request(name: &str, now: f64) -> LookRequest {
    LookRequest {
        key: RunKey::Replay { name: name.into() },
        analysis: "web".into(),
        vars: [("name".to_string(), "app".to_string())]
            .into_iter()
            .collect(),
        now,
        weight: None,
        steps: None,
    }
}

fn wavy(t: f64) -> f64 {
    0.1 + 0.01 * (t / 15.0).sin()
}

#[tokio::test]
async fn idle_runs_are_forgotten_when_a_new_run_starts() {
    let e = engine("", MemorySource::new());
    e.look(request("a", 1000.0)).await.unwrap();
    e.look(request("b", 2000.0)).await.unwrap();
    assert_eq!(e.open_runs(), 2);
    e.look(request("c", 1000.0 + RUN_IDLE_EVICTION_SECONDS + 1.0))
        .await
        .unwrap();
    // "a" was idle for longer than the limit; "b" is just under it.
    assert_eq!(e.open_runs(), 2);
    assert!(e
        .run("web", &RunKey::Replay { name: "a".into() })
        .await
        .is_none());
}

#[tokio::test]
async fn a_run_holds_one_look_in_memory_and_numbers_keep_counting() {
    let mut source = MemorySource::new();
    source.insert(r#"latency{app="app-canary"}"#, series(0.0, 1e5, wavy));
    source.insert(r#"latency{app="app-primary"}"#, series(0.0, 1e5, wavy));
    let e = engine("", source);
    let n = 40;
    let mut last = None;
    for i in 0..n {
        last = Some(e.look(request("a", 100.0 + 10.0 * i as f64)).await.unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.number, n);
    let run = e
        .run("web", &RunKey::Replay { name: "a".into() })
        .await
        .unwrap();
    // The very look answered, not a copy of it.
    assert!(Arc::ptr_eq(run.last_look().unwrap(), &last));
    // Every look is in the store.
    let stored = e.store().get_run(run.id.unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.looks.len(), n);
}

#[tokio::test]
async fn before_rollout_baseline_reads_the_primary_before_the_run() {
    // The primary only has data before t = 1240 (then it was scaled down).
    let mut source = MemorySource::new();
    source.insert(r#"latency{app="app-canary"}"#, series(1240.0, 2000.0, wavy));
    source.insert(r#"latency{app="app-primary"}"#, series(0.0, 1239.0, wavy));
    let same = engine("", source.clone());
    let look = same.look(request("a", 1300.0)).await.unwrap();
    assert_eq!(look.metrics[0].classification.verdict_name(), "nodata");
    let before = engine("baseline_window: before-rollout", source);
    // Run starts at 1300 − 60 (lookback); the canary window [1240, 1300] is
    // compared with the primary's [1180, 1240].
    let look = before.look(request("a", 1300.0)).await.unwrap();
    assert_eq!(look.metrics[0].classification.verdict_name(), "pass");
    assert!(look.baseline.contains("before the run"));
}

const COUNTER_CONFIG: &str = r#"
analyses:
  web:
    lookback: 1m
    step: 15s
    min_data: {requests: 100}
    metrics:
      - name: errors
        kind: counter
        judge: sequential
        canary: {errors: 'err{arm="canary"}', total: 'req{arm="canary"}'}
        baseline: {errors: 'err{arm="primary"}', total: 'req{arm="primary"}'}
"#;

/// Cumulative counters: `rate` per second, from t = 0.
fn counter(rate: f64) -> Vec<Series> {
    series(0.0, 1e4, move |t| (rate * t).floor())
}

#[tokio::test]
async fn a_broken_traffic_split_blocks_promotion() {
    // Equal traffic to both arms, 1 % errors each.
    let mut source = MemorySource::new();
    source.insert(r#"err{arm="canary"}"#, counter(0.5));
    source.insert(r#"req{arm="canary"}"#, counter(50.0));
    source.insert(r#"err{arm="primary"}"#, counter(0.5));
    source.insert(r#"req{arm="primary"}"#, counter(50.0));
    let config = load_str(Path::new("t.yaml"), COUNTER_CONFIG, Vec::new()).unwrap();
    let e = Engine::new(
        config.analyses,
        Arc::new(source),
        Arc::new(Telemetry::new()),
    );
    let at = |name: &str, now: f64, weight: f64| LookRequest {
        weight: Some(weight),
        steps: None,
        ..request(name, now)
    };
    // The weight says 50 %: consistent, healthy.
    let look = e.look(at("ok", 600.0, 50.0)).await.unwrap();
    assert_eq!(
        look.metrics[0].classification.verdict_name(),
        "pass",
        "{:?}",
        look.metrics[0]
    );
    // The weight says 5 % but the canary gets half the requests: seen from
    // the first look whose increments begin a `step` after the weight was
    // first seen (before that the data may still show the old split). The
    // looks before cannot promote either: with the weight moving every
    // look, a broken split would otherwise never be seen.
    for now in [600.0, 900.0] {
        let early = e.look(at("split", now, 5.0)).await.unwrap();
        let m = &early.metrics[0];
        assert!(!m.enough_data, "{m:?}");
        assert!(
            m.reason
                .contains("is checked once a look's requests all fall after"),
            "{}",
            m.reason
        );
        assert_ne!(
            early.decision.action,
            verdict_judges::decision::Action::Promote
        );
    }
    let look = e.look(at("split", 1200.0, 5.0)).await.unwrap();
    let m = &look.metrics[0];
    assert_eq!(m.classification.verdict_name(), "error", "{m:?}");
    assert!(m.reason.contains("traffic split mismatch"), "{}", m.reason);
    assert_ne!(
        look.decision.action,
        verdict_judges::decision::Action::Promote
    );
}

#[tokio::test]
async fn a_segments_first_look_does_not_judge_the_split_it_straddles() {
    // The canary gets traffic from t = 600 at weight 50 (half of 100/s);
    // before, the primary had it all. The first look at weight 50 reaches
    // back over the lookback into the weight-0 traffic: 25 % canary share.
    let ramp = |rate_before: f64, rate_after: f64| {
        series(0.0, 1e4, move |t| {
            (rate_before * t.min(600.0) + rate_after * (t - 600.0).max(0.0)).floor()
        })
    };
    let mut source = MemorySource::new();
    source.insert(r#"err{arm="canary"}"#, ramp(0.0, 0.5));
    source.insert(r#"req{arm="canary"}"#, ramp(0.0, 50.0));
    source.insert(r#"err{arm="primary"}"#, ramp(1.0, 0.5));
    source.insert(r#"req{arm="primary"}"#, ramp(100.0, 50.0));
    let config = load_str(Path::new("t.yaml"), COUNTER_CONFIG, Vec::new()).unwrap();
    let e = Engine::new(
        config.analyses,
        Arc::new(source),
        Arc::new(Telemetry::new()),
    );
    let at = |now: f64| LookRequest {
        weight: Some(50.0),
        steps: None,
        ..request("step", now)
    };
    for now in [630.0, 690.0, 750.0, 810.0] {
        let look = e.look(at(now)).await.unwrap();
        let m = &look.metrics[0];
        assert_eq!(m.classification.verdict_name(), "pass", "at {now}: {m:?}");
        // Counts toward promotion once the split has been checked, on the
        // increments from 690 on (the weight was first seen at 630, and the
        // data may show the old split for a `step` after that).
        assert_eq!(m.enough_data, now > 690.0, "at {now}: {m:?}");
    }
}

#[tokio::test]
async fn a_margin_makes_promotion_wait_for_shown_non_inferiority() {
    let with_margin = COUNTER_CONFIG.replace(
        "judge: sequential",
        "judge: sequential\n        margin: 0.005",
    );
    let config = load_str(Path::new("t.yaml"), &with_margin, Vec::new()).unwrap();
    // Canary slightly worse (1.2 % vs 1 %): not enough to reject quickly, and
    // with little traffic not yet shown to be within half a point either.
    let mut source = MemorySource::new();
    source.insert(r#"err{arm="canary"}"#, counter(0.012));
    source.insert(r#"req{arm="canary"}"#, counter(1.0));
    source.insert(r#"err{arm="primary"}"#, counter(0.01));
    source.insert(r#"req{arm="primary"}"#, counter(1.0));
    let e = Engine::new(
        config.analyses.clone(),
        Arc::new(source),
        Arc::new(Telemetry::new()),
    );
    let look = e.look(request("small", 600.0)).await.unwrap();
    let m = &look.metrics[0];
    assert_eq!(m.classification.verdict_name(), "pass", "{m:?}");
    assert!(
        !m.enough_data,
        "non-inferiority cannot be shown on 600 requests: {m:?}"
    );
    assert_eq!(m.statistics["non_inferiority"]["shown"], false);
    assert_ne!(
        look.decision.action,
        verdict_judges::decision::Action::Promote
    );
    // Identical arms with plenty of traffic: shown within the margin, promoted.
    let mut source = MemorySource::new();
    for arm in ["canary", "primary"] {
        source.insert(format!(r#"err{{arm="{arm}"}}"#), counter(10.0));
        source.insert(format!(r#"req{{arm="{arm}"}}"#), counter(1000.0));
    }
    let e = Engine::new(
        config.analyses,
        Arc::new(source),
        Arc::new(Telemetry::new()),
    );
    let look = e.look(request("big", 3000.0)).await.unwrap();
    let m = &look.metrics[0];
    assert!(m.enough_data, "{m:?}");
    assert_eq!(m.statistics["non_inferiority"]["shown"], true, "{m:?}");
    assert_eq!(
        look.decision.action,
        verdict_judges::decision::Action::Promote
    );
}

const HISTOGRAM_CONFIG: &str = r#"
analyses:
  web:
    lookback: 1m
    step: 15s
    min_data: {requests: 100}
    metrics:
      - name: latency
        kind: histogram
        judge: sequential
        slow_above: 0.25
        margin: 0.015
        canary: 'lat_bucket{arm="canary"}'
        baseline: 'lat_bucket{arm="primary"}'
"#;

/// Cumulative `_bucket` series at `rate` requests per second, a share
/// `slow` of them above 0.25 s.
fn histogram(rate: f64, slow: f64) -> Vec<Series> {
    [
        ("0.1", 1.0 - slow),
        ("0.25", 1.0 - slow),
        ("1", 1.0),
        ("+Inf", 1.0),
    ]
    .into_iter()
    .map(|(le, cumulative_share)| Series {
        labels: [("le".to_string(), le.to_string())].into_iter().collect(),
        ..series(0.0, 1e4, move |t| (rate * cumulative_share * t).floor()).remove(0)
    })
    .collect()
}

fn histogram_engine(canary: (f64, f64), primary: (f64, f64)) -> Engine {
    let config = load_str(Path::new("t.yaml"), HISTOGRAM_CONFIG, Vec::new()).unwrap();
    let mut source = MemorySource::new();
    source.insert(r#"lat_bucket{arm="canary"}"#, histogram(canary.0, canary.1));
    source.insert(
        r#"lat_bucket{arm="primary"}"#,
        histogram(primary.0, primary.1),
    );
    Engine::new(
        config.analyses,
        Arc::new(source),
        Arc::new(Telemetry::new()),
    )
}

#[tokio::test]
async fn a_histogram_margin_makes_promotion_wait_for_a_shown_slow_share() {
    // Slow share 16.5 % against 15 %: exactly at the margin, with little
    // traffic; nothing is shown either way, so no promotion.
    let e = histogram_engine((1.0, 0.165), (1.0, 0.15));
    let look = e.look(request("small", 600.0)).await.unwrap();
    let m = &look.metrics[0];
    assert_eq!(m.classification.verdict_name(), "pass", "{m:?}");
    assert!(!m.enough_data, "{m:?}");
    assert_eq!(m.statistics["non_inferiority"]["shown"], false, "{m:?}");
    assert_ne!(
        look.decision.action,
        verdict_judges::decision::Action::Promote
    );
    // Equal slow shares on plenty of traffic: within the margin, promoted.
    let e = histogram_engine((500.0, 0.15), (500.0, 0.15));
    let look = e.look(request("big", 3000.0)).await.unwrap();
    let m = &look.metrics[0];
    assert_eq!(m.statistics["non_inferiority"]["shown"], true, "{m:?}");
    let cs = &m.statistics["non_inferiority"]["rate_difference_cs"];
    assert!(cs[1].as_f64().unwrap() < 0.015, "{cs}");
    assert_eq!(
        look.decision.action,
        verdict_judges::decision::Action::Promote
    );
}

#[test]
fn a_histogram_margin_needs_slow_above() {
    let text = HISTOGRAM_CONFIG.replace("        slow_above: 0.25\n", "");
    let e = load_str(Path::new("t.yaml"), &text, Vec::new()).unwrap_err();
    assert!(e.to_string().contains("set slow_above too"), "{e}");
}

#[tokio::test]
async fn an_undecided_step_ends_as_configured_when_its_budget_runs_out() {
    // Healthy but never enough points to promote (min_data.points 1000).
    let text = CONFIG
        .replace(
            "BASELINE_WINDOW",
            "step_budget: {duration: 2m, on_undecided: abort}",
        )
        .replace("min_data: {points: 3}", "min_data: {points: 1000}");
    let config = load_str(Path::new("t.yaml"), &text, Vec::new()).unwrap();
    let mut source = MemorySource::new();
    source.insert(r#"latency{app="app-canary"}"#, series(0.0, 1e4, wavy));
    source.insert(r#"latency{app="app-primary"}"#, series(0.0, 1e4, wavy));
    let e = Engine::new(
        config.analyses,
        Arc::new(source),
        Arc::new(Telemetry::new()),
    );
    let at = |now: f64, weight: f64| LookRequest {
        weight: Some(weight),
        steps: None,
        ..request("a", now)
    };
    use verdict_judges::decision::Action;
    // Weight 5 from t = 100: undecided until the 2-minute budget is spent.
    for t in [100.0, 160.0] {
        assert_eq!(
            e.look(at(t, 5.0)).await.unwrap().decision.action,
            Action::Continue
        );
    }
    // A new step (weight 25) at t = 200 starts a new budget...
    for t in [200.0, 260.0, 310.0] {
        assert_eq!(
            e.look(at(t, 25.0)).await.unwrap().decision.action,
            Action::Continue
        );
    }
    // ...which runs out at t = 320.
    let look = e.look(at(320.0, 25.0)).await.unwrap();
    assert_eq!(look.decision.action, Action::Abort);
    assert!(
        look.decision.reasons[0].contains("time budget of 120 s ran out"),
        "{:?}",
        look.decision.reasons
    );
}

#[test]
fn a_step_budget_shorter_than_the_minimum_duration_is_refused() {
    let text = CONFIG
        .replace(
            "BASELINE_WINDOW",
            "step_budget: {duration: 1m, on_undecided: inconclusive}",
        )
        .replace(
            "min_data: {points: 3}",
            "min_data: {points: 3, duration: 5m}",
        );
    let e = load_str(Path::new("t.yaml"), &text, Vec::new()).unwrap_err();
    assert!(e.to_string().contains("step_budget.duration"), "{e}");
}

/// Argo measures a new step's run at once: a delivery at another weight
/// within the dedup window is that step's first look, not a duplicate of
/// the last step's (whose answer would pass the new step unseen).
#[tokio::test]
async fn a_delivery_at_another_weight_is_a_new_look_not_a_duplicate() {
    let source = {
        let mut s = MemorySource::new();
        s.insert(r#"latency{app="app-canary"}"#, series(0.0, 3000.0, wavy));
        s.insert(r#"latency{app="app-primary"}"#, series(0.0, 3000.0, wavy));
        s
    };
    let e = engine("", source);
    let at = |now: f64, weight: Option<f64>| LookRequest {
        weight,
        steps: None,
        ..request("r", now)
    };
    let first = e.look(at(1000.0, Some(5.0))).await.unwrap();
    let duplicate = e.look(at(1001.0, Some(5.0))).await.unwrap();
    assert_eq!(duplicate.number, first.number, "same weight: a duplicate");
    let next_step = e.look(at(1001.5, Some(25.0))).await.unwrap();
    assert_eq!(next_step.number, first.number + 1);
    assert_eq!(next_step.weight, Some(25.0));
}

/// A quantile gauge takes part only while the arms' request volumes (seen
/// by the look's counter) are within 2x: a p99 of a 5 % canary's requests
/// is not comparable with the baseline's, whatever the gauge values say.
#[tokio::test]
async fn a_quantile_gauge_is_set_aside_while_the_arms_volumes_differ() {
    let text = COUNTER_CONFIG.replace(
        "    metrics:\n",
        "    metrics:\n      - name: p99\n        kind: gauge\n        quantile: 0.99\n        \
         canary: 'p99{arm=\"canary\"}'\n        baseline: 'p99{arm=\"primary\"}'\n",
    );
    let config = load_str(Path::new("t.yaml"), &text, Vec::new()).unwrap();
    let judge_p99 = |canary_rate: f64, primary_rate: f64| {
        let mut source = MemorySource::new();
        source.insert(r#"err{arm="canary"}"#, counter(0.0));
        source.insert(r#"req{arm="canary"}"#, counter(canary_rate));
        source.insert(r#"err{arm="primary"}"#, counter(0.0));
        source.insert(r#"req{arm="primary"}"#, counter(primary_rate));
        // The canary's p99 reads twice the baseline's.
        source.insert(r#"p99{arm="canary"}"#, series(0.0, 1e4, |t| 2.0 * wavy(t)));
        source.insert(r#"p99{arm="primary"}"#, series(0.0, 1e4, wavy));
        let e = Engine::new(
            config.analyses.clone(),
            Arc::new(source),
            Arc::new(Telemetry::new()),
        );
        async move {
            let look = e.look(request("q", 3000.0)).await.unwrap();
            look.metrics[0].clone()
        }
    };
    let low = judge_p99(5.0, 95.0).await;
    assert!(low.muted, "{low:?}");
    assert_eq!(low.classification.verdict_name(), "nodata");
    assert!(
        low.reason.contains("5.0% of the requests"),
        "{}",
        low.reason
    );
    let even = judge_p99(50.0, 50.0).await;
    assert!(!even.muted, "{even:?}");
    assert_eq!(even.classification.verdict_name(), "high", "{even:?}");
}

/// Counters that start at `from` (no sample before: the arm had no traffic).
fn counter_from(from: f64, rate: f64) -> Vec<Series> {
    series(from, 1e4, move |t| (rate * (t - from)).floor())
}

fn gate_engine(source: MemorySource) -> Engine {
    let text = COUNTER_CONFIG.replace(
        "    min_data:",
        "    steps: [5, 25, 50, 100]\n    min_data:",
    );
    let config = load_str(Path::new("t.yaml"), &text, Vec::new()).unwrap();
    Engine::new(
        config.analyses,
        Arc::new(source),
        Arc::new(Telemetry::new()),
    )
}

/// Flagger never sends the weight: Verdict counts the steps by the openings
/// of the traffic gate, takes each step's weight from the schedule, and a
/// look opens the gate once.
#[tokio::test]
async fn the_traffic_gate_counts_the_steps_and_opens_once_per_look() {
    let mut source = MemorySource::new();
    // The baseline serves from the start; the canary only from t = 1000,
    // after the first opening, at 5 % of the traffic.
    source.insert(r#"err{arm="primary"}"#, counter(0.0));
    source.insert(r#"req{arm="primary"}"#, counter(95.0));
    source.insert(r#"err{arm="canary"}"#, counter_from(1000.0, 0.0));
    source.insert(r#"req{arm="canary"}"#, counter_from(1000.0, 5.0));
    let e = gate_engine(source);
    let key = RunKey::Replay { name: "g".into() };

    // Weight 0, before any canary traffic: the first increase is allowed.
    let first = e.gate(request("g", 990.0)).await.unwrap();
    let opened = first.opened.expect("the first increase opens the gate");
    assert_eq!((opened.step, opened.after_look), (1, 1));
    assert_eq!(first.look.weight, None);
    assert!(first.decision.reasons[0].contains("no traffic yet"));
    // Asked again at once (a retry): the weight is now step 1's, so this is
    // step 1's first look, still idle but past the first increase: held.
    let again = e.gate(request("g", 991.0)).await.unwrap();
    assert!(again.opened.is_none(), "{:?}", again.decision);
    assert_eq!(again.decision.action, Action::Continue);
    assert_eq!((again.look.number, again.look.step), (2, Some(1)));
    assert_eq!(e.run("web", &key).await.unwrap().step(), 1);

    // Step 1 carries the schedule's weight; the canary has traffic now, so
    // an idle-looking look could not open the gate again.
    let look = e.look(request("g", 1300.0)).await.unwrap();
    assert_eq!((look.weight, look.step), (Some(5.0), Some(1)));
    assert_eq!(
        e.gate(request("g", 1300.5)).await.unwrap().look.number,
        look.number,
        "the tick's look"
    );
    // Looks every 30 s until the evidence (the split checked against 5 %
    // included) opens the gate: step 2 begins, at the schedule's 25 %.
    let mut opened = None;
    for now in [1330.0, 1360.0, 1390.0, 1420.0] {
        let answer = e.gate(request("g", now)).await.unwrap();
        if let Some(o) = answer.opened {
            assert!(answer.decision.reasons[0].contains("step 2 (weight 25) begins"));
            opened = Some((o, now));
            break;
        }
        assert_ne!(answer.decision.action, Action::Promote);
    }
    let (o, at) = opened.expect("healthy arms open the gate within four looks");
    assert_eq!((o.step, o.at), (2, at));
    // The step's first look is at 25 %: its split is not checked yet, so
    // no promote.
    let next = e.look(request("g", at + 10.0)).await.unwrap();
    assert_eq!((next.weight, next.step), (Some(25.0), Some(2)));
    assert_eq!(
        next.decision.action,
        Action::Continue,
        "{:?}",
        next.decision
    );
}

/// An opening is in the store before it is answered: a restarted daemon
/// (a new engine on the same store) continues at the same step.
#[tokio::test]
async fn a_restarted_daemon_counts_the_same_steps() {
    let source = {
        let mut s = MemorySource::new();
        s.insert(r#"err{arm="primary"}"#, counter(0.0));
        s.insert(r#"req{arm="primary"}"#, counter(95.0));
        s
    };
    let store: Arc<dyn crate::store::Store> = Arc::new(MemoryStore::new());
    let e = gate_engine(source.clone()).with_store(store.clone());
    assert!(e.gate(request("r", 990.0)).await.unwrap().opened.is_some());
    drop(e);
    let restarted = gate_engine(source).with_store(store);
    let look = restarted.look(request("r", 1300.0)).await.unwrap();
    assert_eq!((look.step, look.weight), (Some(1), Some(5.0)));
    // The canary still has no traffic, but the first increase was made:
    // the gate holds now.
    let held = restarted.gate(request("r", 1300.5)).await.unwrap();
    assert!(held.opened.is_none(), "{:?}", held.decision);
}

/// Without a schedule the steps are still counted, the weight stays
/// unknown, and a promote says the split was not checked.
#[tokio::test]
async fn without_a_schedule_the_weight_stays_unknown() {
    let mut source = MemorySource::new();
    source.insert(r#"err{arm="primary"}"#, counter(0.0));
    source.insert(r#"req{arm="primary"}"#, counter(50.0));
    source.insert(r#"err{arm="canary"}"#, counter(0.0));
    source.insert(r#"req{arm="canary"}"#, counter(50.0));
    let config = load_str(Path::new("t.yaml"), COUNTER_CONFIG, Vec::new()).unwrap();
    let e = Engine::new(
        config.analyses,
        Arc::new(source),
        Arc::new(Telemetry::new()),
    );
    let mut promoted = None;
    for i in 0..20 {
        let answer = e.gate(request("n", 600.0 + 30.0 * i as f64)).await.unwrap();
        assert_eq!(answer.look.weight, None);
        if answer.opened.is_some() {
            promoted = Some(answer);
            break;
        }
    }
    let promoted = promoted.expect("identical arms promote within 20 looks");
    assert_eq!(promoted.decision.action, Action::Promote);
    // The same look asked again (a retry within the dedup window; without
    // a schedule the weight does not change): the gate opened once.
    let opened = promoted.opened.unwrap();
    let again = e.gate(request("n", opened.at + 1.0)).await.unwrap();
    assert_eq!(again.look.number, promoted.look.number);
    assert!(again.opened.is_none());
    assert_eq!(again.decision.action, Action::Continue);
    assert!(
        again.decision.reasons[0].contains("already opened"),
        "{:?}",
        again.decision
    );
    assert!(
        promoted
            .decision
            .summary()
            .contains("the traffic split was not checked"),
        "{:?}",
        promoted.decision
    );
    // The next step begins at the opening: its first look, 10 s on, holds
    // for the step's minimum (the analysis's `step`, 15 s) whatever the
    // evidence so far.
    let at = promoted.opened.unwrap().at;
    let next = e.look(request("n", at + 10.0)).await.unwrap();
    assert_eq!(next.step, Some(promoted.opened.unwrap().step));
    assert_eq!(
        next.decision.action,
        Action::Continue,
        "{:?}",
        next.decision
    );
    assert!(
        next.decision
            .summary()
            .contains("the current step has lasted 10 s of its minimum 15 s"),
        "{:?}",
        next.decision
    );
    let later = e.look(request("n", at + 15.0)).await.unwrap();
    assert_eq!(
        later.decision.action,
        Action::Promote,
        "{:?}",
        later.decision
    );
}

/// A webhook's `stepWeights` overrides the analysis's schedule.
#[test]
fn step_weights_parse_and_refuse_what_is_not_a_schedule() {
    let s = StepWeights::parse("5,25, 50 100%").unwrap();
    assert_eq!(
        (
            s.weight_of(0),
            s.weight_of(1),
            s.weight_of(4),
            s.weight_of(5)
        ),
        (None, Some(5.0), Some(100.0), None)
    );
    for bad in ["", "5,x", "25,5", "0,50", "5,150", "5,5"] {
        assert!(StepWeights::parse(bad).is_err(), "{bad:?}");
    }
}
