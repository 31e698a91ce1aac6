#!/usr/bin/env bash
# Installs the external programs Verdict's integration tests run against.
#
# The Prometheus-source tests start a real Prometheus (and backfill it with
# promtool) instead of mocking the HTTP API, because the point of those tests
# is to catch disagreements with the real server: result shapes, error types,
# NaN spellings, staleness. Debian's `prometheus` package ships both binaries.
#
# Idempotent: does nothing when both binaries are already on PATH.
# Non-interactive: safe in CI as root with no terminal. Without root it uses
# sudo if available, otherwise it explains what to install and fails.
set -euo pipefail

# Helm's engine for the chart tests (its own script; before the Prometheus
# check below, which may exit early).
bash "$(dirname "$0")/install-helm-sdk.sh"
# PostgreSQL for the run-store tests (analyzer/tests/store_postgres.rs): the
# tests start their own throwaway cluster with initdb/pg_ctl from
# /usr/lib/postgresql/*/bin on a free port; the packaged service is never
# used. Idempotent: skipped when initdb is already installed.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    PG_SUDO=()
    if [ "$(id -u)" -ne 0 ]; then PG_SUDO=(sudo -n); fi
    export DEBIAN_FRONTEND=noninteractive
    "${PG_SUDO[@]}" apt-get install -y -q --no-install-recommends postgresql || {
        "${PG_SUDO[@]}" apt-get update -q
        "${PG_SUDO[@]}" apt-get install -y -q --no-install-recommends postgresql
    }
fi

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: prometheus/promtool missing and apt-get unavailable;" \
         "install Prometheus (with promtool) >= 2.24 and put both on PATH" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "install-test-deps: need root (or sudo) to apt-get install prometheus" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive

# Only refresh the package lists when apt does not know the package yet:
# `apt-get update` is slow and needs the network, and CI images usually
# ship with usable lists.
if ! apt-cache show prometheus >/dev/null 2>&1; then
    "${SUDO[@]}" apt-get update -q
fi

# The package's postinst may try to start a service; in containers without
# an init system that fails harmlessly, and we never use the service.
# Stale lists can name a version the mirror no longer has: refresh and retry once.
"${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus || {
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus
}

for bin in prometheus promtool; do
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "install-test-deps: $bin still not on PATH after installing 'prometheus'" >&2
        exit 1
    fi
done
