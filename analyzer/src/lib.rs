//! # verdict (analyzer)
//!
//! The daemon and CLI around [`verdict_judges`]: it pulls canary and baseline
//! series from a [`source`], judges them, decides promote / continue / abort,
//! and answers the rollout controllers. See `docs/architecture.md` for the map
//! of modules and how a webhook becomes a decision.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod duration;
pub mod engine;
pub mod fixtures_gen;
pub mod json;
pub mod kayenta_api;
pub mod notify;
pub mod recording;
pub mod reload;
pub mod replay;
pub mod report;
pub mod secret;
pub mod serve_tls;
pub mod simulate;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod tls;
