#!/usr/bin/env bash
# Installs Helm's rendering engine for the chart tests (k8s/helm/verdict).
#
# Debian ships no helm binary and npm none for Linux; PyPI's helm-python-sdk
# wheel bundles Helm's official Go SDK (v4) as a shared library, which
# scripts/helm_template.py drives like `helm template`. It goes into its own
# directory (pip --target), so neither the system Python nor a virtualenv is
# touched, and PEP 668 does not apply.
#
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

VERSION=0.2.2
DIR="${VERDICT_TOOLS_DIR:-/var/tmp/verdict-tools}/helm-python"

installed() {
    PYTHONPATH="$DIR" python3 -c \
        "import importlib.metadata as m, helm_python; assert m.version('helm-python-sdk') == '$VERSION'" \
        >/dev/null 2>&1
}

if installed; then
    exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "install-helm-sdk: python3 (>= 3.10, with pip) is needed for the Helm chart tests" >&2
    exit 1
fi
rm -rf "$DIR"
mkdir -p "$DIR"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --target "$DIR" "helm-python-sdk==$VERSION"
if ! installed; then
    echo "install-helm-sdk: helm-python-sdk $VERSION did not import from $DIR" >&2
    exit 1
fi
