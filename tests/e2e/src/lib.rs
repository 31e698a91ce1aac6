//! Verdict's end-to-end rollout test, without a cluster: the pieces that
//! stand in for what a Kubernetes rollout would provide.
//!
//! * [`app`]: the instrumented service (binary `e2e-app`), deployed as a
//!   baseline and a canary build with injectable faults;
//! * [`load`]: steady open-loop traffic split by the canary's weight;
//! * [`flagger`]: a rollout controller playing Flagger's part against
//!   Verdict's webhooks;
//! * [`argo`]: a rollout controller playing Argo Rollouts' canary strategy
//!   with inline step analysis and the `web` metric provider.
//!
//! The tests (`tests/rollout.rs`, `tests/argo_rollout.rs`) wire them to a
//! real Prometheus and a real Verdict; `docs/e2e.md` explains what they
//! prove.

pub mod app;
pub mod argo;
pub mod flagger;
pub mod load;
