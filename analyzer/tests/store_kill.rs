//! `kill -9` during looks loses no committed look: the real `verdict serve`
//! binary on SQLite, looks fired by several clients, killed mid-stream,
//! restarted, several rounds. Every answered look must be stored, and look
//! numbers must run 1..N with no gap across the restarts.
//!
//! Prometheus is an unreachable loopback port: every look is "cannot judge
//! (no data)", which exercises the same commit path as a judged look and
//! keeps this test independent of a metrics backend.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start verdict serve")
}

async fn wait_healthy(client: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("verdict did not become healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_looks_loses_no_answered_look() {
    verdict::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("verdict.yaml");
    std::fs::write(
        &config,
        format!(
            r#"listen: 127.0.0.1:{port}
prometheus: {{url: "http://127.0.0.1:{}", retries: 0, timeout: 1s}}
store: {{backend: sqlite, path: runs.db}}
analyses:
  web:
    dedup_window: 0s
    metrics:
      - name: errors
        kind: counter
        judge: sequential
        canary: {{errors: 'err{{arm="canary"}}', total: 'req{{arm="canary"}}'}}
        baseline: {{errors: 'err{{arm="primary"}}', total: 'req{{arm="primary"}}'}}
"#,
            free_port()
        ),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let runs = ["a", "b", "c"];
    let answered: Arc<Vec<AtomicUsize>> =
        Arc::new(runs.iter().map(|_| AtomicUsize::new(0)).collect());
    for round in 0..5 {
        let mut child = spawn(&config);
        wait_healthy(&client, &url).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            let (client, url, stop, answered) =
                (client.clone(), url.clone(), stop.clone(), answered.clone());
            let body = format!(r#"{{"name":"{run}","namespace":"prod","checksum":"x"}}"#);
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let r = client
                        .post(format!("{url}/v1/flagger/web/rollout"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let Ok(r) = r else { break };
                    let status = r.status().as_u16();
                    let Ok(text) = r.text().await else { break };
                    assert_eq!(status, 424, "{text}");
                    assert!(!text.contains("could not be recorded"), "{text}");
                    answered[i].fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + 150 * round)).await;
        child.kill().expect("kill -9"); // SIGKILL
        child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
    }
    // Read what survived, through the CLI as an operator would.
    let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["runs", "list", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stored = list["runs"].as_array().unwrap();
    assert_eq!(
        stored.len(),
        runs.len(),
        "one run per rollout across restarts"
    );
    for (i, run) in runs.iter().enumerate() {
        let s = stored.iter().find(|r| r["name"] == *run).unwrap();
        let looks = s["looks"].as_u64().unwrap() as usize;
        let got = answered[i].load(Ordering::SeqCst);
        assert!(got > 0, "run {run} was never answered");
        // Every answered look is stored; at most one per kill was committed
        // but not answered.
        assert!(
            looks >= got && looks <= got + 5,
            "run {run}: {looks} stored, {got} answered"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
            .args(["runs", "show", "--json", "--config"])
            .arg(&config)
            .arg(s["id"].to_string())
            .output()
            .unwrap();
        assert!(out.status.success());
        let detail: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let numbers: Vec<u64> = detail["looks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (1..=looks as u64).collect::<Vec<_>>(), "run {run}");
    }
}
