//! Verdict's end-to-end rollout test, without a cluster: the pieces that
//! stand in for what a Kubernetes rollout would provide.
//!
//! * [`app`]: the instrumented service (binary `e2e-app`), deployed as a
//!   baseline and a canary build with injectable faults;
//! * [`load`]: steady open-loop traffic split by the canary's weight;
//! * [`flagger`]: a rollout controller playing Flagger's part against
//!   Verdict's webhooks.
//!
//! The test itself (`tests/rollout.rs`) wires them to a real Prometheus and
//! a real Verdict; `docs/e2e.md` explains what it proves.

pub mod app;
pub mod flagger;
pub mod load;
