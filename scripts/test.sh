#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (Debian's prometheus for the real-Prometheus integration tests), then runs
# formatting, lints and every test of the workspace. README.md and .ci/run
# both call exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# A one-minute load and soak (300 concurrent canaries; exits 1 on growth of
# memory or descriptors; docs/benchmarks.md). Test profile: no second build.
# `--workspace` here and below keeps the features the test build resolved:
# a per-package invocation resolves them anew and rebuilds most dependencies
# (polars included), minutes each on 2 cores.
cargo test --workspace --locked --bench soak -- --seconds 60

# A bounded fuzzing session (fuzz/, docs/security.md): 30 s per target from
# the committed seed corpus. The seed is printed; a finding fails the run and
# prints the command that replays it. VERDICT_FUZZ_SEED reproduces a session.
# The test build above already built the binaries with the test's features
# (a package with integration tests gets its binaries built); `cargo build`
# would resolve features without dev-dependencies and rebuild polars and
# most else (5 min from empty on 2 cores). `--no-run` only checks they are
# current.
cargo test --workspace --locked --no-run
fuzz="${CARGO_TARGET_DIR:-target}/debug/verdict-fuzz"
"$fuzz" --seconds 30 ${VERDICT_FUZZ_SEED:+--seed "$VERDICT_FUZZ_SEED"} \
  flagger argo config template csv parquet query-range manifest
