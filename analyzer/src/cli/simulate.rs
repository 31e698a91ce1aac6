//! `verdict simulate`: the seeded simulation harness comparing the sequential
//! judges with Kayenta's Mann-Whitney classifier (see
//! [`crate::simulate`] and `docs/statistics/simulation.md`).

use crate::simulate::{report, simulate, SimConfig};
use clap::Args;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Runs per scenario.
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    /// Looks per run (one look per 1-minute interval).
    #[arg(long, default_value_t = 60)]
    pub looks: usize,
    /// Master seed; every run's generator is derived from it.
    #[arg(long, default_value_t = 20240601)]
    pub seed: u64,
    /// Canary share of the traffic.
    #[arg(long, default_value_t = 0.05)]
    pub weight: f64,
    /// Level of each sequential judge.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Expected requests per look, both arms together.
    #[arg(long, default_value_t = 4000.0)]
    pub requests_per_look: f64,
    /// First look at which a promote may happen; half the looks by default.
    #[arg(long)]
    pub min_looks: Option<usize>,
    /// Worker threads; the available parallelism by default.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print a markdown report instead of JSON.
    #[arg(long)]
    pub markdown: bool,
}

pub fn run(args: &SimulateArgs) -> i32 {
    let mut config = SimConfig::new(args.runs, args.looks, args.seed);
    config.weight = args.weight;
    config.alpha = args.alpha;
    config.requests_per_look = args.requests_per_look;
    if let Some(m) = args.min_looks {
        config.min_looks = m;
    }
    config.threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if let Err(e) = config.validate() {
        eprintln!("{e}");
        return super::EXIT_BAD_INPUT;
    }
    let started = std::time::Instant::now();
    let results = simulate(&config, |line| eprintln!("{line}"));
    let rows = report::summarize(&results);
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
    if args.markdown {
        super::print_line(&report::markdown(&config, &rows));
    } else {
        let value = serde_json::json!({
            "runs": config.runs,
            "looks": config.looks,
            "seed": config.seed,
            "weight": config.weight,
            "alpha": config.alpha,
            "requests_per_look": config.requests_per_look,
            "min_looks": config.min_looks,
            "rows": rows,
        });
        super::print_line(&value.to_string());
    }
    0
}
