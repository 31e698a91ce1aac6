//! The contract every Kayenta repository backend keeps (memory, SQLite,
//! PostgreSQL): configs by id with unique names, executions with their
//! outcomes, "first finish wins", and listing with Kayenta's filters.
//!
//! [`contract`] takes two handles on one backing store (two connections to
//! one database, or the same maps twice), writes through the first and
//! reads through the second, so what it checks is what another replica or
//! a restarted daemon would see.

#![allow(dead_code)] // each test binary uses a different subset

use verdict::kayenta_api::execution::{Execution, Outcome};
use verdict::kayenta_api::model::{ExecutionParams, ExecutionRequest};
use verdict::kayenta_api::repository::{ExecutionFilter, KayentaRepositories, RepositoryError};
use verdict_judges::kayenta::config::CanaryConfig;

/// The podinfo canary config of the Kayenta tests, with `id` and `name`.
pub fn podinfo_config(id: &str, name: &str) -> CanaryConfig {
    let mut c = CanaryConfig::from_json(
        &std::fs::read_to_string(format!(
            "{}/../fixtures/kayenta/podinfo-argo.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    c.id = Some(id.into());
    c.name = name.into();
    c.updated_timestamp = Some(1_700_000_000_000);
    c
}

/// An execution of the podinfo config started at `build` (ms), for
/// `application`, with `outcome`.
pub fn execution(id: &str, application: Option<&str>, build: i64, outcome: Outcome) -> Execution {
    let request: ExecutionRequest = serde_json::from_value(serde_json::json!({
        "scopes": {"default": {
            "controlScope": {"scope": "primary", "start": "2025-01-01T10:00:00Z", "end": "2025-01-01T10:10:00Z", "step": 15},
            "experimentScope": {"scope": "canary", "start": "2025-01-01T10:00:00Z", "end": "2025-01-01T10:10:00Z", "step": 15}}},
        "thresholds": {"pass": 90, "marginal": 75}
    }))
    .unwrap();
    Execution {
        id: id.into(),
        config_id: Some("podinfo-argo".into()),
        config: podinfo_config("podinfo-argo", "podinfo-argo"),
        request,
        params: ExecutionParams {
            application: application.map(str::to_string),
            storage_account_name: Some("s".into()),
            ..ExecutionParams::default()
        },
        build_time_millis: build,
        end_time_millis: None,
        outcome,
    }
}

fn ids(list: &[Execution]) -> Vec<&str> {
    list.iter().map(|e| e.id.as_str()).collect()
}

/// Writes through `a`, reads through `b` (see the module documentation).
pub async fn contract(a: KayentaRepositories, b: KayentaRepositories) {
    // Configs: put, get, list by id, replace, unique names, delete.
    a.configs.put(podinfo_config("c2", "second")).await.unwrap();
    a.configs.put(podinfo_config("c1", "first")).await.unwrap();
    let got = b.configs.get("c1").await.unwrap().expect("c1 stored");
    assert_eq!(got, podinfo_config("c1", "first"));
    assert_eq!(b.configs.get("nope").await.unwrap(), None);
    let listed: Vec<String> = b
        .configs
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.unwrap())
        .collect();
    assert_eq!(listed, ["c1", "c2"]);
    let mut renamed = podinfo_config("c1", "first-renamed");
    renamed.description = Some("replaced".into());
    a.configs.put(renamed.clone()).await.unwrap();
    assert_eq!(b.configs.get("c1").await.unwrap(), Some(renamed));
    match a.configs.put(podinfo_config("c3", "second")).await {
        Err(RepositoryError::Conflict(m)) => assert!(m.contains("\"second\""), "{m}"),
        other => panic!("a taken name must conflict: {other:?}"),
    }
    assert_eq!(b.configs.get("c3").await.unwrap(), None);
    assert!(a.configs.delete("c2").await.unwrap());
    assert!(!b.configs.delete("c2").await.unwrap());
    assert_eq!(b.configs.get("c2").await.unwrap(), None);

    // Executions: insert, get, finish once, list with filters and pages.
    let terminal = || Outcome::Terminal(vec!["metric \"x\" could not be judged".into()]);
    a.executions
        .insert(execution("e1", Some("podinfo"), 1_000, Outcome::Running))
        .await
        .unwrap();
    a.executions
        .insert(execution("e2", Some("podinfo"), 2_000, Outcome::Running))
        .await
        .unwrap();
    a.executions
        .insert(execution("e3", None, 3_000, Outcome::Running))
        .await
        .unwrap();
    a.executions
        .insert(execution("e4", Some("ad-hoc"), 4_000, terminal()))
        .await
        .unwrap();
    let e1 = b.executions.get("e1").await.unwrap().expect("e1 stored");
    assert!(matches!(e1.outcome, Outcome::Running));
    assert_eq!(
        e1.request,
        execution("e1", None, 0, Outcome::Running).request
    );
    assert_eq!(e1.params.application.as_deref(), Some("podinfo"));
    assert_eq!(e1.config.name, "podinfo-argo");
    assert_eq!(b.executions.get("nope").await.unwrap().map(|e| e.id), None);

    b.executions.finish("e1", terminal(), 5_000).await.unwrap();
    // The first finish wins: a second judgement of the same execution
    // (re-launched after a restart on another replica) changes nothing.
    a.executions
        .finish("e1", Outcome::Terminal(vec!["second".into()]), 6_000)
        .await
        .unwrap();
    let e1 = a.executions.get("e1").await.unwrap().unwrap();
    assert_eq!(e1.end_time_millis, Some(5_000));
    match e1.outcome {
        Outcome::Terminal(r) => assert_eq!(r, ["metric \"x\" could not be judged"]),
        other => panic!("{other:?}"),
    }
    assert!(a.executions.finish("nope", terminal(), 1).await.is_err());

    let list = |f: ExecutionFilter| {
        let b = b.clone();
        async move { b.executions.list(&f).await.unwrap() }
    };
    assert_eq!(
        ids(&list(ExecutionFilter::running()).await),
        ["e3", "e2"],
        "newest first"
    );
    let podinfo = ExecutionFilter {
        application: Some("podinfo".into()),
        ..ExecutionFilter::default()
    };
    assert_eq!(ids(&list(podinfo.clone()).await), ["e2", "e1"]);
    assert_eq!(
        ids(&list(ExecutionFilter {
            statuses: Some(vec!["terminal".into()]),
            ..podinfo.clone()
        })
        .await),
        ["e1"]
    );
    assert_eq!(
        ids(&list(ExecutionFilter {
            statuses: Some(vec![]),
            ..podinfo.clone()
        })
        .await),
        Vec::<&str>::new()
    );
    assert_eq!(
        ids(&list(ExecutionFilter {
            offset: 1,
            limit: Some(1),
            ..ExecutionFilter::default()
        })
        .await),
        ["e3"]
    );
    assert_eq!(
        ids(&list(ExecutionFilter {
            offset: 4,
            ..ExecutionFilter::default()
        })
        .await),
        Vec::<&str>::new()
    );

    // Retention: ended executions go by their end time (or their start if
    // recorded ended), running ones stay whatever their age.
    assert_eq!(a.executions.delete_ended_before(4_500).await.unwrap(), 1);
    assert_eq!(b.executions.get("e4").await.unwrap().map(|e| e.id), None);
    assert!(b.executions.get("e1").await.unwrap().is_some());
    assert_eq!(
        a.executions.delete_ended_before(1_000_000).await.unwrap(),
        1
    );
    assert_eq!(b.executions.get("e1").await.unwrap().map(|e| e.id), None);
    assert_eq!(
        ids(&list(ExecutionFilter::default()).await),
        ["e3", "e2"],
        "running executions are kept"
    );
    assert_eq!(a.executions.delete_ended_before(i64::MAX).await.unwrap(), 0);
}
