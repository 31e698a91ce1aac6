//! `e2e-app`: the instrumented service of the end-to-end rollout test (see
//! `verdict_e2e::app`). Binds `--listen` (port 0 picks a free one), prints
//! `listening on ADDR` as its first stdout line, and exits when its stdin
//! closes, so a test that dies, however it dies, takes its services with it.

use clap::Parser;
use std::time::Duration;
use verdict_e2e::app::{self, App, AppConfig, Faults};

#[derive(Debug, Parser)]
#[command(about = "Instrumented service of Verdict's end-to-end rollout test")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Seed of the service's random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Lower bound of the normal latency, milliseconds.
    #[arg(long, default_value_t = 1)]
    min_latency_ms: u64,
    /// Upper bound of the normal latency, milliseconds.
    #[arg(long, default_value_t = 8)]
    max_latency_ms: u64,
    /// Probability that a prediction is correct (without faults).
    #[arg(long, default_value_t = 0.9)]
    accuracy: f64,
    /// Fault (once `POST /admin/faults` switched faults on): fraction of
    /// requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fault: milliseconds added to every request.
    #[arg(long, default_value_t = 0)]
    extra_latency_ms: u64,
    /// Fault: fraction of correct predictions made wrong.
    #[arg(long, default_value_t = 0.0)]
    wrong_rate: f64,
}

fn check_fraction(name: &str, x: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(format!("--{name} must be between 0 and 1, got {x}"))
    }
}

fn config(args: &Args) -> Result<AppConfig, String> {
    check_fraction("accuracy", args.accuracy)?;
    check_fraction("error-rate", args.error_rate)?;
    check_fraction("wrong-rate", args.wrong_rate)?;
    if args.min_latency_ms > args.max_latency_ms {
        return Err("--min-latency-ms must not exceed --max-latency-ms".into());
    }
    Ok(AppConfig {
        seed: args.seed,
        min_latency: Duration::from_millis(args.min_latency_ms),
        max_latency: Duration::from_millis(args.max_latency_ms),
        accuracy: args.accuracy,
        faults: Faults {
            error_rate: args.error_rate,
            extra_latency: Duration::from_millis(args.extra_latency_ms),
            wrong_rate: args.wrong_rate,
        },
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let config = config(&args).unwrap_or_else(|e| {
        eprintln!("e2e-app: {e}");
        std::process::exit(2);
    });
    let app = App::new(config).unwrap_or_else(|e| {
        eprintln!("e2e-app: metrics: {e}");
        std::process::exit(1);
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .unwrap_or_else(|e| {
            eprintln!("e2e-app: bind {}: {e}", args.listen);
            std::process::exit(1);
        });
    let addr = listener.local_addr().expect("bound address");
    println!("listening on {addr}");
    // Exit when the parent closes our stdin (or dies).
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    if let Err(e) = axum::serve(listener, app::router(app)).await {
        eprintln!("e2e-app: serve: {e}");
        std::process::exit(1);
    }
}
