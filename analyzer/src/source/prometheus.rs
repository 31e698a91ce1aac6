//! Prometheus HTTP API source (in progress).
