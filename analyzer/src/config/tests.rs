use super::*;

const GOOD: &str = r#"
listen: 127.0.0.1:9999
prometheus:
  url: http://127.0.0.1:9090
analyses:
  web:
    metrics:
      - name: latency
        kind: gauge
        canary: 'avg(latency{pod=~"{{name}}-canary-.*"})'
        baseline: 'avg(latency{pod=~"{{name}}-primary-.*"})'
      - name: errors
        kind: counter
        canary: {errors: 'sum(err{app="{{name}}"})', total: 'sum(req{app="{{name}}"})'}
        baseline: {errors: 'sum(err{app="{{name}}-primary"})', total: 'sum(req{app="{{name}}-primary"})'}
        critical: true
"#;

fn load_yaml(text: &str) -> Result<Config, ConfigError> {
    load_str(Path::new("verdict.yaml"), text, Vec::new())
}

#[test]
fn a_good_config_loads_with_defaults() {
    let c = load_yaml(GOOD).unwrap();
    assert_eq!(c.settings.listen, "127.0.0.1:9999");
    let web = &c.analyses["web"];
    assert_eq!(web.metrics.len(), 2);
    assert_eq!(web.metrics[0].judge, analysis::JudgeKind::MannWhitney);
    assert_eq!(web.metrics[1].judge, analysis::JudgeKind::Sequential);
    assert_eq!(web.config.thresholds.pass, 95.0);
}

#[test]
fn a_type_error_names_file_line_and_field() {
    let text = GOOD.replace("critical: true", "critical: maybe");
    let err = load_yaml(&text).unwrap_err().to_string();
    assert!(
        err.starts_with("verdict.yaml:16: analyses.web.metrics[1].critical:"),
        "{err}"
    );
}

#[test]
fn an_unknown_field_is_refused() {
    let text = GOOD.replace("critical: true", "critcal: true");
    let err = load_yaml(&text).unwrap_err().to_string();
    assert!(err.contains("verdict.yaml:16"), "{err}");
    assert!(err.contains("critcal"), "{err}");
}

#[test]
fn semantic_errors_are_all_reported_with_lines() {
    let text = GOOD
        .replace("kind: gauge", "kind: gauge\n        judge: proportion")
        .replace("url: http://127.0.0.1:9090", "url: 127.0.0.1:9090");
    let err = load_yaml(&text).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    let s = err.to_string();
    assert!(
        s.contains("verdict.yaml:10: analyses.web.metrics[0].judge"),
        "{s}"
    );
    assert!(s.contains("verdict.yaml:4: prometheus.url"), "{s}");
}

#[test]
fn a_bad_template_is_refused_at_load() {
    let text = GOOD.replace("{{name}}-canary", "{{name");
    let err = load_yaml(&text).unwrap_err().to_string();
    assert!(err.contains("analyses.web.metrics[0].canary"), "{err}");
    assert!(err.contains("unclosed"), "{err}");
}

#[test]
fn a_syntax_error_names_its_line() {
    let err = load_yaml("listen: [\nprometheus: {")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("verdict.yaml:"), "{err}");
}

#[test]
fn environment_overrides_settings() {
    let env = vec![
        ("VERDICT_LISTEN".to_string(), "127.0.0.1:7000".to_string()),
        (
            "VERDICT_PROMETHEUS__URL".to_string(),
            "http://prom:9090".to_string(),
        ),
        ("VERDICT_PROMETHEUS__RETRIES".to_string(), "5".to_string()),
        ("UNRELATED".to_string(), "x".to_string()),
    ];
    let c = load_str(Path::new("v.yaml"), GOOD, env).unwrap();
    assert_eq!(c.settings.listen, "127.0.0.1:7000");
    assert_eq!(c.settings.prometheus.url, "http://prom:9090");
    assert_eq!(c.settings.prometheus.retries, 5);
}

#[test]
fn environment_overrides_the_store_and_its_checks_see_the_result() {
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let c = load_str(
        Path::new("v.yaml"),
        GOOD,
        env(&[
            ("VERDICT_STORE__BACKEND", "postgres"),
            ("VERDICT_STORE__URL_ENV", "PG_URL"),
            ("VERDICT_STORE__POOL_SIZE", "9"),
            ("PG_URL", "postgres://verdict@db/verdict"),
        ]),
    )
    .unwrap();
    assert_eq!(c.settings.store.backend, store::StoreBackend::Postgres);
    assert_eq!(c.settings.store.url_env.as_deref(), Some("PG_URL"));
    assert_eq!(c.settings.store.pool_size, 9);
    // Overrides are applied before validation: postgres without a URL source
    // is refused just as in the file.
    let err = load_str(
        Path::new("v.yaml"),
        GOOD,
        env(&[("VERDICT_STORE__BACKEND", "postgres")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("needs url_file or url_env"), "{err}");
    let err = load_str(
        Path::new("v.yaml"),
        GOOD,
        env(&[("VERDICT_STORE__BACKEND", "mysql")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bad VERDICT_* environment override"), "{err}");
    let c = load_str(
        Path::new("v.yaml"),
        GOOD,
        env(&[("VERDICT_STORE__PATH", "/data/verdict.db")]),
    )
    .unwrap();
    assert_eq!(
        c.settings.store.path.as_deref(),
        Some(Path::new("/data/verdict.db"))
    );
}

#[test]
fn toml_configs_load_too() {
    let text = r#"
listen = "127.0.0.1:8081"
[prometheus]
url = "http://127.0.0.1:9090"
timeout = "2s"
"#;
    let c = load_str(Path::new("v.toml"), text, Vec::new()).unwrap();
    assert_eq!(c.settings.prometheus.timeout.0.as_secs(), 2);
    let err = load_str(Path::new("v.toml"), "listen = 5\n", Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("v.toml:1: listen:"), "{err}");
}

#[test]
fn missing_secret_files_are_problems_not_panics() {
    let text = GOOD.replace(
        "url: http://127.0.0.1:9090",
        "url: http://127.0.0.1:9090\n  bearer_token_file: /nonexistent/token",
    );
    let err = load_yaml(&text).unwrap_err().to_string();
    assert!(err.contains("prometheus.bearer_token_file"), "{err}");
    assert!(err.contains("cannot read secret file"), "{err}");
}

#[test]
fn credentials_never_print() {
    let c = Credentials {
        api_tokens: Some(crate::config::tokens::Tokens::parse("api-token-0123456789").unwrap()),
        store_url: Some(Secret::new("postgres://verdict:pgpass@db/verdict")),
    };
    let s = format!("{c:?}");
    assert!(!s.contains("api-token"), "{s}");
    assert!(!s.contains("pgpass"), "{s}");
}

#[test]
fn a_tls_ca_file_is_read_and_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let text = GOOD.replace(
        "url: http://127.0.0.1:9090",
        "url: https://127.0.0.1:9090\n  tls: {ca_file: ca.pem}",
    );
    let path = dir.path().join("verdict.yaml");
    let err = load_str(&path, &text, Vec::new()).unwrap_err();
    let s = err.to_string();
    assert!(s.contains("verdict.yaml:5: prometheus.tls.ca_file"), "{s}");
    assert!(
        s.contains("no PEM certificate") || s.contains("not a PEM"),
        "{s}"
    );
    let missing = GOOD.replace(
        "url: http://127.0.0.1:9090",
        "url: https://127.0.0.1:9090\n  tls: {ca_file: /nonexistent/ca.pem}",
    );
    let s = load_yaml(&missing).unwrap_err().to_string();
    assert!(s.contains("cannot read CA file"), "{s}");
    let skip = GOOD.replace(
        "url: http://127.0.0.1:9090",
        "url: https://127.0.0.1:9090\n  tls: {insecure_skip_verify: true}",
    );
    let c = load_yaml(&skip).unwrap();
    assert!(c.settings.prometheus.tls.insecure_skip_verify);
    // The source builds a TLS-capable client from it.
    crate::source::prometheus::PrometheusSource::new(&c.settings.prometheus).expect("https client");
}

#[test]
fn the_store_section_is_typed_and_validated_with_lines() {
    let c = load_str(
        Path::new("/etc/verdict/v.yaml"),
        "listen: 127.0.0.1:1\n",
        Vec::new(),
    )
    .unwrap();
    assert_eq!(c.settings.store.backend, store::StoreBackend::Sqlite);
    assert_eq!(
        c.settings.store.sqlite_path(&c.path),
        Path::new("/etc/verdict/verdict.db")
    );
    let e = load_str(
        Path::new("v.yaml"),
        "listen: 127.0.0.1:1\nstore:\n  backend: postgres\n",
        Vec::new(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("v.yaml:3: store.backend: postgres needs url_file or url_env"),
        "{e}"
    );
    let e = load_str(
        Path::new("v.yaml"),
        "store:\n  backend: postgres\n  url_env: PG\n",
        vec![("PG".to_string(), "mysql://root:hunter2@db".to_string())],
    )
    .unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let ok = load_str(
        Path::new("v.yaml"),
        "store:\n  backend: postgres\n  url_env: PG\n",
        vec![("PG".to_string(), "postgres://v:pw@db/v".to_string())],
    )
    .unwrap();
    assert_eq!(
        ok.credentials.store_url.as_ref().map(Secret::expose),
        Some("postgres://v:pw@db/v")
    );
    let e = load_str(
        Path::new("v.yaml"),
        "store:\n  backend: mongo\n",
        Vec::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("v.yaml:2"), "{e}");
    let e = load_str(Path::new("v.yaml"), "store:\n  colour: red\n", Vec::new()).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
}

#[test]
fn a_quantile_is_for_gauges_and_strictly_between_0_and_1() {
    let good = GOOD.replace("kind: gauge", "kind: gauge\n        quantile: 0.99");
    let c = load_yaml(&good).unwrap();
    assert_eq!(c.analyses["web"].metrics[0].config.quantile, Some(0.99));
    let err = load_yaml(&GOOD.replace("kind: gauge", "kind: gauge\n        quantile: 1.5"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("analyses.web.metrics[0].quantile"), "{err}");
    assert!(err.contains("strictly between 0 and 1, got 1.5"), "{err}");
    let err = load_yaml(&GOOD.replace("kind: counter", "kind: counter\n        quantile: 0.5"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("analyses.web.metrics[1].quantile"), "{err}");
    assert!(err.contains("only applies to gauge metrics"), "{err}");
}
