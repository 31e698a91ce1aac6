//! The run store on a real SQLite file: migrations (and a failing one),
//! restart mid-run with identical decisions, the runs API, Flagger events,
//! notifications, retention, and "cannot judge" when a look cannot be
//! committed.

mod support;

use axum::body::Body;
use axum::http::Request;
use std::sync::Arc;
use support::store::{self as scenario, look};
use tower::ServiceExt;
use verdict::api::{self, AppState};
use verdict::store::migrations::{self, Migration, Step};
use verdict::store::sqlite::SqliteStore;
use verdict::store::{NotificationRecord, Store, StoreError};
use verdict_judges::decision::Action;

async fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let store = SqliteStore::open(&dir.path().join("verdict.db"))
        .await
        .expect("open sqlite");
    store.migrate_up().await.expect("migrate");
    Arc::new(store)
}

#[tokio::test]
async fn migrations_go_up_and_down_and_report_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("v.db")).await.unwrap();
    let status = store.migration_status().await.unwrap();
    assert!(status.iter().all(|m| m.applied_at.is_none()), "{status:?}");
    assert_eq!(store.migrate_up().await.unwrap(), vec![1, 2, 3]);
    assert_eq!(store.migrate_up().await.unwrap(), Vec::<i64>::new());
    let tables = store.tables().await.unwrap();
    for t in [
        "flagger_events",
        "kayenta_configs",
        "kayenta_executions",
        "looks",
        "notifications",
        "runs",
        "schema_migrations",
    ] {
        assert!(tables.contains(&t.to_string()), "{tables:?}");
    }
    assert!(store.migration_status().await.unwrap()[0]
        .applied_at
        .is_some());
    // Down one at a time: the step columns go first, then the Kayenta
    // tables, then the runs.
    assert_eq!(store.migrate_down().await.unwrap(), Some(3));
    assert_eq!(store.migrate_down().await.unwrap(), Some(2));
    let tables = store.tables().await.unwrap();
    assert!(tables.contains(&"runs".to_string()), "{tables:?}");
    assert!(
        !tables.iter().any(|t| t.starts_with("kayenta")),
        "{tables:?}"
    );
    assert_eq!(store.migrate_down().await.unwrap(), Some(1));
    assert_eq!(store.tables().await.unwrap(), vec!["schema_migrations"]);
    assert_eq!(store.migrate_down().await.unwrap(), None);
    assert_eq!(store.migrate_up().await.unwrap(), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_failing_migration_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("v.db")).await.unwrap();
    store.migrate_up().await.unwrap();
    let before = store.tables().await.unwrap();
    let mut list = migrations::SQLITE.to_vec();
    let broken = list.len() as i64 + 1;
    list.push(Migration {
        version: broken,
        name: "broken",
        // The first statement succeeds, the second fails: the table it
        // created must not survive.
        up: "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);",
        down: "DROP TABLE half_done;",
    });
    let err = store
        .run_migrations(list.clone(), Step::Up, false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Migration { version, .. } if *version == broken),
        "{err}"
    );
    assert_eq!(store.tables().await.unwrap(), before);
    let status = store.migration_status().await.unwrap();
    assert_eq!(status.len(), migrations::SQLITE.len());
    assert!(status.iter().all(|m| m.applied_at.is_some()));
    // The fixed migration then applies through the same runner.
    list.last_mut().unwrap().up = "CREATE TABLE half_done (x INTEGER);";
    assert_eq!(
        store.run_migrations(list, Step::Up, false).await.unwrap(),
        vec![broken]
    );
    // ...and this binary now refuses the database it does not know.
    assert_eq!(
        store.migrate_up().await.unwrap_err(),
        StoreError::UnknownSchema(broken)
    );
}

#[tokio::test]
async fn a_restarted_daemon_resumes_with_identical_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let first: Arc<dyn Store> = open(&dir).await;
    let second: Arc<dyn Store> = open(&dir).await;
    scenario::restart_resumes_identically(first, second, 5, 12).await;
}

#[tokio::test]
async fn looks_are_committed_with_their_explanation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let e = scenario::engine(Some(store.clone()));
    for n in 1..=3 {
        look(&e, n).await;
    }
    // A duplicate within the dedup window is no new look.
    let mut dup = scenario::request(3);
    dup.now += 1.0;
    assert_eq!(e.look(dup).await.unwrap().number, 3);
    let runs = store.list_runs(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!((run.analysis.as_str(), run.looks), ("web", 3));
    assert_eq!(run.verdict_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(run.config_hash.len(), 16);
    let detail = store.get_run(run.id).await.unwrap().unwrap();
    let numbers: Vec<usize> = detail.looks.iter().map(|l| l.number).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    let m = &detail.looks[2].metrics[0];
    assert_eq!(m.statistics["test"], "conditional-odds-ratio-e-process");
    assert_eq!(run.decision, Some(detail.looks[2].decision.action));
    // Closing ends the run; the next look starts a new one.
    assert!(e.close("web", &scenario::key(), "Succeeded", 9999.0).await);
    let closed = store.get_run(run.id).await.unwrap().unwrap().run;
    assert_eq!(closed.outcome.as_deref(), Some("Succeeded"));
    assert_eq!(closed.ended_at, Some(9999.0));
    assert_eq!(look(&e, 4).await.number, 1);
    assert_eq!(store.list_runs(&Default::default()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn retention_deletes_old_looks_and_keeps_summaries_and_the_latest_look() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let e = scenario::engine(Some(store.clone()));
    for n in 1..=4 {
        look(&e, n).await;
    }
    let telemetry = verdict::telemetry::Telemetry::new();
    // Everything is older than the cutoff: all but the latest look go.
    let deleted = verdict::store::retention::prune(
        store.as_ref(),
        std::time::Duration::from_secs(3600),
        scenario::time_of(4) + 7200.0,
        &telemetry,
    )
    .await;
    assert_eq!(deleted, 3);
    let run = &store.list_runs(&Default::default()).await.unwrap()[0];
    assert_eq!(run.looks, 4);
    let detail = store.get_run(run.id).await.unwrap().unwrap();
    assert_eq!(detail.looks.len(), 1);
    assert_eq!(detail.looks[0].number, 4);
    // The run resumes from the kept look.
    let resumed = scenario::engine(Some(store.clone()));
    assert_eq!(look(&resumed, 5).await.number, 5);
}

#[tokio::test]
async fn a_look_that_cannot_be_committed_is_answered_cannot_judge() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let e = scenario::engine(Some(store.clone()));
    look(&e, 1).await;
    // Break the database under the daemon, as a full disk or a lost volume would.
    let conn = rusqlite::Connection::open(dir.path().join("verdict.db")).unwrap();
    conn.execute_batch("ALTER TABLE looks RENAME TO looks_gone")
        .unwrap();
    let l = look(&e, 2).await;
    assert_eq!(l.decision.action, Action::Inconclusive);
    assert!(
        l.decision.reasons[0].contains("could not be recorded"),
        "{:?}",
        l.decision.reasons
    );
    let errors = e.telemetry().render();
    assert!(
        errors
            .lines()
            .any(|l| l.starts_with("verdict_store_errors_total{operation=\"sync_run\"} 1")),
        "{errors}"
    );
    // Repaired: the next look is look 2, the failed one was never taken.
    conn.execute_batch("ALTER TABLE looks_gone RENAME TO looks")
        .unwrap();
    assert_eq!(look(&e, 3).await.number, 2);
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: &str) -> (u16, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn the_runs_api_lists_and_explains_recorded_runs_with_events_and_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let engine = Arc::new(scenario::engine(Some(store.clone())));
    let source = Arc::new(scenario::source());
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(
        scenario::time_of(1).to_bits(),
    ));
    let reading = clock.clone();
    let app = api::router(
        AppState::new(engine.clone(), source).with_clock(Arc::new(move || {
            f64::from_bits(reading.load(std::sync::atomic::Ordering::SeqCst))
        })),
    );
    let hook = r#"{"name":"checkout","namespace":"shop","phase":"Progressing","checksum":"abc123","metadata":{"eventType":"Normal","eventMessage":"Advance checkout.shop canary weight 10"}}"#;
    for n in 1..=3 {
        clock.store(
            scenario::time_of(n).to_bits(),
            std::sync::atomic::Ordering::SeqCst,
        );
        let (status, body) = call(&app, "POST", "/v1/flagger/web/rollout", hook).await;
        assert!(
            status == 200 || status == 409 || status == 424,
            "{status} {body}"
        );
    }
    let (status, body) = call(&app, "POST", "/v1/flagger/web/event", hook).await;
    assert_eq!((status, body.as_str()), (200, "event recorded"));
    let (status, body) = call(&app, "GET", "/v1/runs?namespace=shop&analysis=web", "").await;
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let runs = list["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{body}");
    assert_eq!(runs[0]["looks"], 3);
    assert_eq!(runs[0]["key"]["controller"], "flagger");
    assert_eq!(runs[0]["name"], "checkout");
    let id = runs[0]["id"].as_i64().unwrap();
    store
        .record_notification(&NotificationRecord {
            run_id: id,
            sent_at: scenario::time_of(3),
            channel: "oncall-slack".into(),
            decision: Action::Abort,
            attempts: 2,
            ok: false,
            error: Some("HTTP 500".into()),
        })
        .await
        .unwrap();
    let (status, body) = call(&app, "GET", &format!("/v1/runs/{id}"), "").await;
    assert_eq!(status, 200, "{body}");
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(run["looks"].as_array().unwrap().len(), 3);
    assert_eq!(run["looks"][0]["metrics"][0]["name"], "errors");
    assert_eq!(run["events"][0]["event_type"], "Normal");
    assert_eq!(
        run["events"][0]["message"],
        "Advance checkout.shop canary weight 10"
    );
    assert_eq!(run["notifications"][0]["channel"], "oncall-slack");
    assert_eq!(run["notifications"][0]["attempts"], 2);
    // Filters narrow; bad filters are one-line 400s; unknown runs 404.
    let (_, body) = call(&app, "GET", "/v1/runs?namespace=other", "").await;
    assert_eq!(body, r#"{"runs":[]}"#);
    let (status, _) = call(&app, "GET", "/v1/runs?since=999999999999", "").await;
    assert_eq!(status, 200);
    let (status, body) = call(&app, "GET", "/v1/runs?decision=maybe", "").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(&app, "GET", "/v1/runs?colour=red", "").await;
    assert_eq!(status, 400);
    let (status, _) = call(&app, "GET", "/v1/runs/424242", "").await;
    assert_eq!(status, 404);
    let text = verdict::cli::runs::show_text(&store.get_run(id).await.unwrap().unwrap());
    assert!(text.contains("look 3 at"), "{text}");
    assert!(text.contains("oncall-slack"), "{text}");
}

/// The Kayenta API's records on two connections to one SQLite file (what a
/// restarted daemon reads), and on the memory backend.
#[tokio::test]
async fn kayenta_repositories_keep_configs_and_executions() {
    let dir = tempfile::tempdir().unwrap();
    let first: Arc<dyn Store> = open(&dir).await;
    let second: Arc<dyn Store> = open(&dir).await;
    support::kayenta_store::contract(first.kayenta(), second.kayenta()).await;

    let memory: Arc<dyn Store> = Arc::new(verdict::store::memory::MemoryStore::new());
    support::kayenta_store::contract(memory.clone().kayenta(), memory.kayenta()).await;
}

/// The retention job's pass over Kayenta executions: an execution that
/// ended before the cutoff goes and is counted; a running one stays.
#[tokio::test]
async fn retention_deletes_ended_kayenta_executions_and_counts_them() {
    use support::kayenta_store::execution;
    use verdict::kayenta_api::execution::Outcome;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = open(&dir).await;
    let executions = store.clone().kayenta().executions;
    executions
        .insert(execution("old", None, 1_000, Outcome::Running))
        .await
        .unwrap();
    executions
        .finish("old", Outcome::Terminal(vec!["done".into()]), 2_000)
        .await
        .unwrap();
    executions
        .insert(execution("running", None, 1_000, Outcome::Running))
        .await
        .unwrap();
    let telemetry = verdict::telemetry::Telemetry::new();
    // An hour's retention, an hour and ten seconds after "old" ended.
    let deleted = verdict::store::retention::prune_executions(
        executions.as_ref(),
        std::time::Duration::from_secs(3600),
        3_610.0,
        &telemetry,
    )
    .await;
    assert_eq!(deleted, 1);
    assert_eq!(telemetry.retention_deleted_kayenta_executions.get(), 1);
    assert!(executions.get("old").await.unwrap().is_none());
    assert!(executions.get("running").await.unwrap().is_some());
}

/// A backend that never answers.
struct DeadBackend;

impl verdict::source::SeriesSource for DeadBackend {
    fn query_range<'a>(
        &'a self,
        _query: &'a str,
        _window: &'a verdict::source::Window,
    ) -> verdict::source::BoxFuture<
        'a,
        Result<Vec<verdict::source::Series>, verdict::source::SourceError>,
    > {
        Box::pin(async {
            Err(verdict::source::SourceError::Unreachable(
                "connection refused".into(),
            ))
        })
    }

    fn ready(&self) -> verdict::source::BoxFuture<'_, Result<(), verdict::source::SourceError>> {
        Box::pin(async { Err(verdict::source::SourceError::Unreachable("down".into())) })
    }
}

/// "The backend failed" is part of the recorded look: a duplicate delivery
/// answered from the store after a restart still says so (the Argo handler
/// answers 503 on it), instead of looking like judged data.
#[tokio::test]
async fn a_failed_backend_is_remembered_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        verdict::config::load_str(std::path::Path::new("t.yaml"), scenario::CONFIG, Vec::new())
            .unwrap();
    let engine = |store: Arc<SqliteStore>| {
        verdict::engine::Engine::new(
            config.analyses.clone(),
            Arc::new(DeadBackend),
            Arc::new(verdict::telemetry::Telemetry::new()),
        )
        .with_store(store)
    };
    let first = engine(open(&dir).await)
        .look(scenario::request(1))
        .await
        .unwrap();
    assert!(first.metrics.iter().all(|m| m.source_failed()), "{first:?}");
    assert_ne!(first.decision.action, Action::Promote);
    // Restarted: the same delivery again, within the dedup window.
    let again = engine(open(&dir).await)
        .look(scenario::request(1))
        .await
        .unwrap();
    assert_eq!(again.number, first.number, "a duplicate, not a new look");
    assert!(again.metrics.iter().all(|m| m.source_failed()), "{again:?}");
    // Its JSON says so (the field is absent when the backend answered).
    let json = serde_json::to_value(&*again).unwrap();
    assert_eq!(json["metrics"][0]["source_failed"], true);
}
