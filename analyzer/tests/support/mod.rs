//! Harnesses shared by the integration tests. Each test file that needs one
//! declares `mod support;` and uses the submodule it needs.

pub mod daemon;
pub mod fault_proxy;
pub mod kayenta_store;
pub mod postgres;
pub mod prometheus;
pub mod scenario;
pub mod store;
