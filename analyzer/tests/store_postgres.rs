//! The run store on a real PostgreSQL (Debian's `postgresql`, a cluster
//! per test on a free port): migrations and a failing one, restart with
//! identical decisions, and two daemons recording one look per delivery.

mod support;

use std::sync::Arc;
use support::daemon::Daemon;
use support::postgres::PgServer;
use support::prometheus::base_time;
use verdict::store::migrations::{self, Migration, Step};
use verdict::store::postgres::PostgresStore;
use verdict::store::{Store, StoreError};

async fn store(url: &str) -> Arc<PostgresStore> {
    Arc::new(PostgresStore::connect(url, 4).await.expect("connect"))
}

#[tokio::test]
async fn migrations_go_up_and_down_and_a_failing_one_changes_nothing() {
    let Some(pg) = PgServer::start() else { return };
    let s = store(&pg.database("migrations")).await;
    assert!(s.migration_status().await.unwrap()[0].applied_at.is_none());
    assert_eq!(s.migrate_up().await.unwrap(), vec![1, 2, 3]);
    let tables = s.tables().await.unwrap();
    for t in ["looks", "kayenta_configs", "kayenta_executions"] {
        assert!(tables.contains(&t.to_string()), "{tables:?}");
    }
    assert_eq!(s.migrate_down().await.unwrap(), Some(3));
    assert_eq!(s.migrate_down().await.unwrap(), Some(2));
    assert!(!s
        .tables()
        .await
        .unwrap()
        .iter()
        .any(|t| t.starts_with("kayenta")));
    assert_eq!(s.migrate_down().await.unwrap(), Some(1));
    assert_eq!(s.tables().await.unwrap(), vec!["schema_migrations"]);
    assert_eq!(s.migrate_up().await.unwrap(), vec![1, 2, 3]);
    let before = s.tables().await.unwrap();
    let mut list = migrations::POSTGRES.to_vec();
    let broken = list.len() as i64 + 1;
    list.push(Migration {
        version: broken,
        name: "broken",
        up: "CREATE TABLE half_done (x BIGINT); INSERT INTO no_such_table VALUES (1);",
        down: "DROP TABLE half_done;",
    });
    let err = s.run_migrations(&list, Step::Up, false).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version, .. } if version == broken),
        "{err}"
    );
    assert_eq!(s.tables().await.unwrap(), before);
    assert_eq!(
        s.migration_status().await.unwrap().len(),
        migrations::POSTGRES.len()
    );
}

#[tokio::test]
async fn a_restarted_daemon_resumes_with_identical_decisions() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.database("resume");
    let first = store(&url).await;
    first.migrate_up().await.unwrap();
    let second = store(&url).await;
    support::store::restart_resumes_identically(first, second, 4, 10).await;
}

/// The Kayenta API's records, written through one connection pool and read
/// through another (another replica, or the daemon after a restart).
#[tokio::test]
async fn kayenta_repositories_keep_configs_and_executions() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.database("kayenta");
    let first = store(&url).await;
    first.migrate_up().await.unwrap();
    let second = store(&url).await;
    support::kayenta_store::contract(first.kayenta(), second.kayenta()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_on_one_database_record_one_look_per_delivery() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.database("replicas");
    let url_file = pg.dir().join("pg-url");
    std::fs::write(&url_file, &url).unwrap();
    let config = format!(
        "{}\nstore: {{backend: postgres, url_file: {:?}}}\n",
        support::store::CONFIG,
        url_file.display().to_string()
    );
    let source: Arc<dyn verdict::source::SeriesSource> = Arc::new(support::store::source());
    let a = Daemon::start_with_source(&config, 0.0, Some(source.clone())).await;
    let b = Daemon::start_with_source(&config, 0.0, Some(source)).await;
    let hook = r#"{"name":"checkout","namespace":"shop","checksum":"c1"}"#;
    let deliveries = 8;
    for n in 1..=deliveries {
        // The data lives at small times; the daemons' clocks are offsets
        // from base_time(), so set them to the scenario's look time.
        let at = support::store::time_of(n) - base_time() as f64;
        a.at(at);
        b.at(at);
        // The same delivery reaches both replicas at once, twice each
        // (a retry), as behind one Service.
        let path = "/v1/flagger/web/confirm-promotion";
        let (r1, r2, r3, r4) = tokio::join!(
            a.post_json(path, hook),
            b.post_json(path, hook),
            b.post_json(path, hook),
            a.post_json(path, hook)
        );
        for r in [&r2, &r3, &r4] {
            assert_eq!(
                (r.status, &r.body),
                (r1.status, &r1.body),
                "delivery {n}: the replicas disagree"
            );
        }
        assert!(!r1.body.contains("could not be recorded"), "{}", r1.body);
    }
    let s = store(&url).await;
    let runs = s.list_runs(&Default::default()).await.unwrap();
    assert_eq!(runs.len(), 1, "one run for both replicas: {runs:?}");
    assert_eq!(runs[0].looks, deliveries as u64);
    let detail = s.get_run(runs[0].id).await.unwrap().unwrap();
    let numbers: Vec<usize> = detail.looks.iter().map(|l| l.number).collect();
    assert_eq!(numbers, (1..=deliveries).collect::<Vec<_>>());
}

/// Two daemons on one PostgreSQL database, as replicas behind one Service:
/// a canary config posted to one is listed and judged by the other, an
/// execution started on one is polled on the other, and one name cannot be
/// posted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kayenta_configs_and_executions_are_shared_by_replicas() {
    let Some(pg) = PgServer::start() else { return };
    let prometheus = support::scenario::Scenario::healthy().start();
    let url_file = pg.dir().join("pg-url");
    std::fs::write(&url_file, pg.database("kayenta_replicas")).unwrap();
    let config = format!(
        "prometheus: {{url: {:?}, timeout: 2s, retries: 0}}\nstore: {{backend: postgres, url_file: {:?}}}\n",
        prometheus.url,
        url_file.display().to_string()
    );
    let a = Daemon::start(&config, 900.0).await;
    let b = Daemon::start(&config, 900.0).await;
    let fixture = std::fs::read_to_string("../fixtures/kayenta/podinfo-argo.json").unwrap();
    let created = a.post_json("/canaryConfig", fixture.clone()).await;
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.json()["canaryConfigId"]
        .as_str()
        .unwrap()
        .to_string();
    let again = b.post_json("/canaryConfig", fixture).await;
    assert_eq!(again.status, 409, "one name, one config: {again:?}");
    let listed = b.get("/canaryConfig?application=podinfo").await.json();
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");

    let iso = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let scope = |s: &str| {
        serde_json::json!({"scope": s, "step": 15,
            "start": iso(prometheus.base), "end": iso(prometheus.base + 600)})
    };
    let body = serde_json::json!({
        "scopes": {"default": {"controlScope": scope("primary"), "experimentScope": scope("canary")}},
        "thresholds": {"pass": 90, "marginal": 75}});
    let started = b
        .post_json(
            &format!("/canary/{id}?application=podinfo"),
            body.to_string(),
        )
        .await;
    assert_eq!(started.status, 200, "{started:?}");
    let execution = started.json()["canaryExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut status = serde_json::Value::Null;
    for _ in 0..600 {
        status = a.get(&format!("/canary/{execution}")).await.json();
        if status["complete"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "succeeded", "{status}");
    assert_eq!(
        status["result"]["judgeResult"]["score"]["score"], 100.0,
        "{status}"
    );
    let on_a = a.get("/canary/executions?application=podinfo").await.json();
    assert_eq!(on_a[0]["id"], execution.as_str(), "{on_a}");
}
