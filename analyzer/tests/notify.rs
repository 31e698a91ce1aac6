//! Notifications end to end: real looks (the engine over exact in-memory
//! series, and the daemon over a real Prometheus) notify a real HTTP
//! receiver on a free loopback port, which can answer as told: accept,
//! fail, ask to slow down, or hang until the test releases it.

mod support;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use verdict::config::load_str;
use verdict::engine::run::{Look, RunKey};
use verdict::engine::{Engine, LookRequest};
use verdict::notify::{DeliveryOutcome, NotificationLog, Notifier, TracingLog};
use verdict::source::memory::MemorySource;
use verdict::source::{Sample, Series};
use verdict::telemetry::Telemetry;
use verdict_judges::decision::Action;

/// Upper bound on any wait in these tests: reached only when something is
/// broken, so the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- receiver

/// How the receiver answers one request.
enum Reply {
    Status(u16),
    /// 429 with `Retry-After: <seconds>`.
    SlowDown(u64),
    /// Waits for the test's signal, then answers 200.
    Hang(oneshot::Receiver<()>),
}

/// A request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
    at: Instant,
}

struct ReceiverState {
    /// Answers for the next requests, in order; 200 once used up.
    script: Mutex<VecDeque<Reply>>,
    seen: mpsc::UnboundedSender<Received>,
}

/// An HTTP receiver of notifications on a free loopback port.
struct Receiver {
    url: String,
    seen: mpsc::UnboundedReceiver<Received>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    async fn start(script: Vec<Reply>) -> Receiver {
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let state = Arc::new(ReceiverState {
            script: Mutex::new(script.into()),
            seen: seen_tx,
        });
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("receiver");
        });
        Receiver {
            url,
            seen,
            _stop: stop,
        }
    }

    /// The next request that arrived.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.seen.recv())
            .await
            .expect("a notification within the patience")
            .expect("receiver running")
    }

    /// Requests that have arrived and not been taken yet.
    fn pending(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.seen.try_recv() {
            out.push(r);
        }
        out
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |h: header::HeaderName| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let _ = state.seen.send(Received {
        path: uri.path().to_string(),
        authorization: text(header::AUTHORIZATION),
        content_type: text(header::CONTENT_TYPE),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
    });
    let reply = state.script.lock().unwrap().pop_front();
    match reply {
        None => (StatusCode::OK, "ok").into_response(),
        Some(Reply::Status(code)) => {
            (StatusCode::from_u16(code).unwrap(), "scripted answer").into_response()
        }
        Some(Reply::SlowDown(secs)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            "slow down",
        )
            .into_response(),
        Some(Reply::Hang(release)) => {
            let _ = release.await;
            (StatusCode::OK, "ok").into_response()
        }
    }
}

// ------------------------------------------------------------ engine setup

/// Delivery outcomes as the audit trail would get them.
struct Outcomes(mpsc::UnboundedSender<DeliveryOutcome>);

impl NotificationLog for Outcomes {
    fn record<'a>(&'a self, outcome: &'a DeliveryOutcome) -> verdict::source::BoxFuture<'a, ()> {
        TracingLog.log(outcome);
        let _ = self.0.send(outcome.clone());
        Box::pin(std::future::ready(()))
    }
}

async fn next_outcome(rx: &mut mpsc::UnboundedReceiver<DeliveryOutcome>) -> DeliveryOutcome {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("a delivery outcome within the patience")
        .expect("notifier running")
}

const ANALYSIS: &str = r#"
analyses:
  web:
    lookback: 1m
    step: 15s
    dedup_window: 5s
    min_data: {points: 3}
    metrics:
      - name: latency
        kind: gauge
        canary: 'latency{app="{{name}}-canary"}'
        baseline: 'latency{app="{{name}}-primary"}'
"#;

fn wavy(t: f64) -> f64 {
    0.1 + 0.01 * (t / 15.0).sin()
}

/// Every 15 s from 0 to 10^4 s.
fn series(value: impl Fn(f64) -> f64) -> Vec<Series> {
    let samples = (0..=666)
        .map(|i| {
            let t = i as f64 * 15.0;
            Sample {
                timestamp: t,
                value: value(t),
            }
        })
        .collect();
    vec![Series {
        labels: Default::default(),
        samples,
    }]
}

/// The primary at `wavy`, the canary as given.
fn source(canary: impl Fn(f64) -> f64) -> MemorySource {
    let mut s = MemorySource::new();
    s.insert(r#"latency{app="app-canary"}"#, series(canary));
    s.insert(r#"latency{app="app-primary"}"#, series(wavy));
    s
}

/// A canary five times slower than its primary: a latency regression.
fn slow(t: f64) -> f64 {
    5.0 * wavy(t)
}

struct Setup {
    engine: Engine,
    notifier: Arc<Notifier>,
    telemetry: Arc<Telemetry>,
    outcomes: mpsc::UnboundedReceiver<DeliveryOutcome>,
}

/// An engine over `source` whose config has `notifications` (YAML under
/// `notifications:`), with `env` as the process environment.
fn setup(notifications: &str, env: &[(&str, String)], source: MemorySource) -> Setup {
    let text = format!("{ANALYSIS}notifications:\n{notifications}");
    let config = load_str(
        Path::new("notify-test.yaml"),
        &text,
        env.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|e| panic!("config refused:\n{e}"));
    let telemetry = Arc::new(Telemetry::new());
    let (tx, outcomes) = mpsc::unbounded_channel();
    let notifier = Notifier::start(
        config.notifications.clone(),
        Arc::new(Outcomes(tx)),
        telemetry.clone(),
    )
    .expect("notifier");
    let engine = Engine::new(config.analyses, Arc::new(source), telemetry.clone()).with_notifier(
        Some(notifier.clone() as Arc<dyn verdict::engine::LookObserver>),
    );
    Setup {
        engine,
        notifier,
        telemetry,
        outcomes,
    }
}

fn request(run: &str, now: f64) -> LookRequest {
    LookRequest {
        key: RunKey::Replay { name: run.into() },
        analysis: "web".into(),
        vars: [("name".to_string(), "app".to_string())]
            .into_iter()
            .collect(),
        now,
        weight: Some(5.0),
        steps: None,
    }
}

/// The same look on an engine without notifications: what the decision is
/// when nothing is notified.
async fn look_without_notifications(canary: impl Fn(f64) -> f64, run: &str, now: f64) -> Arc<Look> {
    let config = load_str(Path::new("t.yaml"), ANALYSIS, Vec::new()).unwrap();
    let engine = Engine::new(
        config.analyses,
        Arc::new(source(canary)),
        Arc::new(Telemetry::new()),
    );
    engine.look(request(run, now)).await.unwrap()
}

fn count(t: &Telemetry, channel: &str, decision: &str, result: &str) -> u64 {
    t.notifications
        .with_label_values(&[channel, decision, result])
        .get()
}

// ------------------------------------------------------------------- tests

#[tokio::test]
async fn slack_and_webhook_messages_carry_the_run_decision_and_reasons() {
    let mut receiver = Receiver::start(vec![]).await;
    let s = setup(
        r#"  channels:
    - name: oncall
      kind: slack
      url_env: SLACK_URL
    - name: audit
      kind: webhook
      url_env: HOOK_URL
      bearer_token_env: HOOK_TOKEN
"#,
        &[
            ("SLACK_URL", format!("{}/slack/T0/B0/x", receiver.url)),
            ("HOOK_URL", format!("{}/hook", receiver.url)),
            ("HOOK_TOKEN", "s3cr3t-token".into()),
        ],
        source(slow),
    );
    let mut outcomes = s.outcomes;
    let look = s.engine.look(request("r1", 1000.0)).await.unwrap();
    assert_eq!(look.decision.action, Action::Abort, "{look:#?}");
    assert!(!look.decision.reasons.is_empty());

    let mut by_path = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let r = receiver.next().await;
        by_path.insert(r.path.clone(), r);
    }
    let slack = &by_path["/slack/T0/B0/x"];
    assert_eq!(slack.content_type.as_deref(), Some("application/json"));
    assert_eq!(slack.authorization, None);
    let text = slack.body["text"].as_str().unwrap();
    assert!(
        text.contains("abort") && text.contains("replay/r1"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{:.2}", look.decision.score)),
        "{text}"
    );
    let blocks = slack.body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("abort"));
    let fields: Vec<&str> = blocks[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    for expected in [
        "*Run*\nreplay/r1",
        "*Analysis*\nweb",
        "*Decision*\nabort",
        "*Look*\n1",
        "*Canary weight*\n5%",
    ] {
        assert!(fields.contains(&expected), "{expected:?} not in {fields:?}");
    }
    let reasons = blocks[2]["text"]["text"].as_str().unwrap();
    // mrkdwn escaping turns `<`/`>` in numbers into entities; the reason's
    // opening words survive as they are.
    let first_words: String = look.decision.reasons[0].chars().take(20).collect();
    assert!(reasons.contains(&first_words), "{reasons}");

    let hook = &by_path["/hook"];
    assert_eq!(hook.authorization.as_deref(), Some("Bearer s3cr3t-token"));
    let b = &hook.body;
    assert_eq!(b["version"], 1);
    assert_eq!(b["id"], "web/replay/r1/1");
    assert_eq!(b["analysis"], "web");
    assert_eq!(b["run"]["key"], "replay/r1");
    assert_eq!(b["run"]["detail"]["controller"], "replay");
    assert_eq!(b["look"], 1);
    assert_eq!(b["weight"], 5.0);
    assert_eq!(b["decision"], "abort");
    assert_eq!(b["score"].as_f64().unwrap(), look.decision.score);
    assert_eq!(b["classification"], "Fail");
    assert_eq!(
        b["reasons"],
        serde_json::to_value(&look.decision.reasons).unwrap()
    );
    assert!(b["time"].as_str().unwrap().ends_with('Z'));
    let m = &b["metrics"][0];
    assert_eq!(m["name"], "latency");
    assert_eq!(m["classification"], "high");
    assert_eq!(m["judge"], "mann-whitney");
    assert_eq!(m["enough_data"], true);
    assert_eq!(m["reason"], look.metrics[0].reason.as_str());

    for _ in 0..2 {
        let o = next_outcome(&mut outcomes).await;
        assert_eq!((o.attempts, &o.result), (1, &Ok(())), "{o:?}");
        assert_eq!((o.look, o.decision), (1, Action::Abort));
    }
    assert_eq!(count(&s.telemetry, "oncall", "abort", "sent"), 1);
    assert_eq!(count(&s.telemetry, "audit", "abort", "sent"), 1);
}

#[tokio::test]
async fn one_notification_per_decision_change_of_a_run() {
    let mut receiver = Receiver::start(vec![]).await;
    // Healthy until t = 2000, then five times slower.
    let canary = |t: f64| if t < 2000.0 { wavy(t) } else { slow(t) };
    let s = setup(
        "  channels:\n    - name: audit\n      kind: webhook\n      url_env: HOOK_URL\n",
        &[("HOOK_URL", format!("{}/hook", receiver.url))],
        source(canary),
    );
    let mut outcomes = s.outcomes;
    let mut decisions = Vec::new();
    // Lookback 1 m: the run's window starts at 940; later looks see more
    // and more of the slow canary.
    for now in [1000.0, 1010.0, 5000.0, 5010.0, 5020.0] {
        let look = s.engine.look(request("r1", now)).await.unwrap();
        decisions.push(look.decision.action);
    }
    assert_eq!(
        decisions,
        [
            Action::Promote,
            Action::Promote,
            Action::Abort,
            Action::Abort,
            Action::Abort
        ]
    );
    let first = receiver.next().await;
    let second = receiver.next().await;
    assert_eq!(
        (first.body["decision"].as_str(), first.body["look"].as_u64()),
        (Some("promote"), Some(1))
    );
    assert_eq!(
        (
            second.body["decision"].as_str(),
            second.body["look"].as_u64()
        ),
        (Some("abort"), Some(3))
    );
    for _ in 0..2 {
        assert!(next_outcome(&mut outcomes).await.result.is_ok());
    }
    // Both deliveries are done; nothing else was sent.
    assert!(receiver.pending().is_empty());
    let repeated = |d: &str| {
        s.telemetry
            .notifications_repeated
            .with_label_values(&[d])
            .get()
    };
    assert_eq!((repeated("promote"), repeated("abort")), (1, 2));
    // Another run with the same decision is news of its own.
    s.engine.look(request("r2", 5000.0)).await.unwrap();
    assert_eq!(receiver.next().await.body["run"]["key"], "replay/r2");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_after_500_and_429_until_it_accepts() {
    let mut receiver = Receiver::start(vec![Reply::Status(500), Reply::SlowDown(1)]).await;
    let s = setup(
        r#"  channels:
    - name: audit
      kind: webhook
      url_env: HOOK_URL
      attempts: 4
      backoff: 10ms
      max_backoff: 5s
"#,
        &[("HOOK_URL", format!("{}/hook", receiver.url))],
        source(slow),
    );
    let mut outcomes = s.outcomes;
    s.engine.look(request("r1", 1000.0)).await.unwrap();
    let o = next_outcome(&mut outcomes).await;
    assert_eq!((o.attempts, &o.result), (3, &Ok(())), "{o:?}");
    let arrivals: Vec<Received> = receiver.pending();
    assert_eq!(arrivals.len(), 3, "{arrivals:?}");
    // The same notification every time, so a receiver can drop repeats.
    assert!(arrivals.iter().all(|r| r.body == arrivals[0].body));
    // The third attempt waited for the receiver's Retry-After (1 s), not for
    // the 20 ms the backoff alone would give.
    let waited = arrivals[2].at - arrivals[1].at;
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert_eq!(count(&s.telemetry, "audit", "abort", "sent"), 1);
    assert_eq!(
        s.telemetry
            .notification_retries
            .with_label_values(&["audit"])
            .get(),
        2
    );
}

#[tokio::test]
async fn a_permanently_failing_receiver_is_given_up_and_the_decision_stands() {
    let mut receiver = Receiver::start((0..10).map(|_| Reply::Status(503)).collect()).await;
    let s = setup(
        r#"  channels:
    - name: audit
      kind: webhook
      url_env: HOOK_URL
      attempts: 3
      backoff: 10ms
"#,
        &[("HOOK_URL", format!("{}/hook", receiver.url))],
        source(slow),
    );
    let mut outcomes = s.outcomes;
    let look = s.engine.look(request("r1", 1000.0)).await.unwrap();
    let o = next_outcome(&mut outcomes).await;
    assert_eq!(o.attempts, 3, "{o:?}");
    let error = o.result.unwrap_err();
    assert!(
        error.contains("503") && error.contains("gave up after 3 attempts"),
        "{error}"
    );
    assert_eq!(receiver.pending().len(), 3);
    assert_eq!(count(&s.telemetry, "audit", "abort", "failed"), 1);
    assert_eq!(count(&s.telemetry, "audit", "abort", "sent"), 0);
    // The decision is what it is without notifications.
    let plain = look_without_notifications(slow, "r1", 1000.0).await;
    assert_eq!(look.decision, plain.decision);
    // And the run goes on: the next look is taken and decided as usual.
    let next = s.engine.look(request("r1", 1100.0)).await.unwrap();
    assert_eq!((next.number, next.decision.action), (2, Action::Abort));
}

#[tokio::test]
async fn a_refusal_other_than_429_is_not_retried() {
    let mut receiver = Receiver::start(vec![Reply::Status(404)]).await;
    let s = setup(
        "  channels:\n    - name: oncall\n      kind: slack\n      url_env: URL\n      backoff: 10ms\n",
        &[("URL", format!("{}/gone", receiver.url))],
        source(slow),
    );
    let mut outcomes = s.outcomes;
    s.engine.look(request("r1", 1000.0)).await.unwrap();
    let o = next_outcome(&mut outcomes).await;
    assert_eq!(o.attempts, 1, "{o:?}");
    assert!(o.result.unwrap_err().starts_with("HTTP 404"));
    assert_eq!(receiver.pending().len(), 1);
}

#[tokio::test]
async fn a_full_queue_drops_the_notification_counts_it_and_tries_again_later() {
    let (release, hang) = oneshot::channel();
    let mut receiver = Receiver::start(vec![Reply::Hang(hang)]).await;
    let s = setup(
        "  queue: 1\n  max_in_flight: 1\n  channels:\n    - name: audit\n      kind: webhook\n      url_env: HOOK_URL\n      timeout: 60s\n",
        &[("HOOK_URL", format!("{}/hook", receiver.url))],
        source(slow),
    );
    let mut outcomes = s.outcomes;
    let look = look_without_notifications(slow, "x", 1000.0).await;
    let key = |run: &str| RunKey::Replay { name: run.into() };
    s.notifier.offer_for_run(Some(7), "web", &key("a"), &look);
    // "a" is being delivered and hangs: the one delivery slot is taken.
    assert_eq!(receiver.next().await.body["run"]["key"], "replay/a");
    // Two offers with no await between them: the worker cannot run, so
    // "b" fills the queue and "c" finds it full.
    s.notifier.offer("web", &key("b"), &look);
    s.notifier.offer("web", &key("c"), &look);
    assert_eq!(count(&s.telemetry, "audit", "abort", "dropped"), 1);
    release.send(()).unwrap();
    let mut delivered = Vec::new();
    for _ in 0..2 {
        let o = next_outcome(&mut outcomes).await;
        assert!(o.result.is_ok(), "{o:?}");
        // The store's id of the run travels to the audit trail.
        let expected_id = (o.run.to_string() == "replay/a").then_some(7);
        assert_eq!(o.run_id, expected_id, "{o:?}");
        delivered.push(o.run.to_string());
    }
    assert_eq!(delivered, ["replay/a", "replay/b"]);
    // A dropped notification is not remembered as sent: the run's next look
    // with the same decision is offered again and delivered.
    s.notifier.offer("web", &key("c"), &look);
    assert_eq!(
        next_outcome(&mut outcomes).await.run.to_string(),
        "replay/c"
    );
    assert_eq!(count(&s.telemetry, "audit", "abort", "sent"), 3);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn urls_and_tokens_never_appear_in_logs_errors_or_debug_output() {
    // Everything runs on this thread (current-thread runtime), so the
    // thread's default subscriber sees the delivery tasks' logs too.
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,verdict=trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let receiver = Receiver::start(vec![Reply::Status(403)]).await;
    // A port nobody listens on: connection refused, retried, given up.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let secrets = ["SLACKPATHSECRET", "HOOKPATHSECRET", "TOKENSECRET"];
    let s = setup(
        r#"  channels:
    - name: oncall
      kind: slack
      url_env: SLACK_URL
    - name: audit
      kind: webhook
      url_env: HOOK_URL
      bearer_token_env: HOOK_TOKEN
      attempts: 2
      backoff: 10ms
"#,
        &[
            (
                "SLACK_URL",
                format!("{}/services/SLACKPATHSECRET", receiver.url),
            ),
            (
                "HOOK_URL",
                format!("http://127.0.0.1:{closed_port}/hook/HOOKPATHSECRET?key=HOOKPATHSECRET"),
            ),
            ("HOOK_TOKEN", "TOKENSECRET".into()),
        ],
        source(slow),
    );
    let mut outcomes = s.outcomes;
    s.engine.look(request("r1", 1000.0)).await.unwrap();
    let mut errors = Vec::new();
    for _ in 0..2 {
        let o = next_outcome(&mut outcomes).await;
        errors.push(o.result.clone().unwrap_err());
    }
    errors.sort();
    assert!(errors[0].starts_with("HTTP 403"), "{errors:?}");
    assert!(errors[1].contains("gave up after 2 attempts"), "{errors:?}");
    let logs = logs.text();
    // The failures were logged (so this test sees the logs at all)...
    assert!(logs.contains("notification failed"), "{logs}");
    assert!(logs.contains("retrying notification"), "{logs}");
    // ...without a secret anywhere.
    let shown = format!(
        "{logs}\n{errors:?}\n{:?}\n{:?}",
        s.notifier,
        s.engine.telemetry().render()
    );
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
}

// ------------------------------------------------ the daemon, real Prometheus

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_the_flagger_answer() {
    use support::daemon::Daemon;
    use support::scenario::{config, Scenario};

    let (release, hang) = oneshot::channel();
    let mut receiver = Receiver::start(vec![Reply::Hang(hang)]).await;
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("slack-url");
    std::fs::write(&url_file, format!("{}/services/T/B/x", receiver.url)).unwrap();
    // p99 up 60 % on the canary: the run is aborted.
    let prom = Scenario::healthy()
        .with_canary(|c| c.latency = 0.32)
        .start();
    let yaml = format!(
        "{}notifications:\n  channels:\n    - name: oncall\n      kind: slack\n      url_file: {}\n      timeout: 120s\n",
        config(&prom.url),
        url_file.display()
    );
    let d = Daemon::start(&yaml, 300.0).await;
    let payload =
        r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b"}"#;
    let answer = tokio::time::timeout(
        PATIENCE,
        d.post_json("/v1/flagger/checkout/rollback", payload),
    )
    .await
    .expect("Flagger gets its answer while the receiver hangs");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.starts_with("roll back: "), "{answer:?}");
    // The notification reached the receiver, which is still waiting for
    // `release`: the answer above came while the delivery was in progress.
    let arrived = receiver.next().await;
    assert!(arrived.body["text"].as_str().unwrap().contains("abort"));
    assert_eq!(
        d.metric_sum("verdict_notifications_total", &[r#"result="sent""#])
            .await,
        0.0
    );
    // The rest of Flagger's tick is answered as well.
    let rollout = d.post_json("/v1/flagger/checkout/rollout", payload).await;
    assert_eq!(rollout.status, 409, "{rollout:?}");
    release.send(()).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let sent = d
            .metric_sum(
                "verdict_notifications_total",
                &[
                    r#"channel="oncall""#,
                    r#"decision="abort""#,
                    r#"result="sent""#,
                ],
            )
            .await;
        if sent == 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the delivery never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One notification for the run: the rollout hook's look was the same
    // decision (a duplicate delivery or a repeat), not news.
    assert!(receiver.pending().is_empty());
}
