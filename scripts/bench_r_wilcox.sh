#!/usr/bin/env bash
# Times R's wilcox.test(x, y, conf.int = TRUE) on the data of
# judges/benches/mann_whitney.rs (the splitmix64 recipe, written out by
# scripts/bench_scipy_mannwhitney.py's generator), for n = m = 1k, 10k,
# 100k, giving each size at most LIMIT seconds ("where it finishes").
# Needs Debian's r-base-core and python3 with numpy.
set -euo pipefail
LIMIT="${LIMIT:-300}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cd "$(dirname "$0")/.."
python3 - "$dir" <<'PY'
import sys, importlib.util
spec = importlib.util.spec_from_file_location("b", "scripts/bench_scipy_mannwhitney.py")
b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
for n in (1_000, 10_000, 100_000):
    b.splitmix64_sample(1001, n, 30.0).tofile(f"{sys.argv[1]}/x{n}.f64")
    b.splitmix64_sample(2002, n, 29.4).tofile(f"{sys.argv[1]}/y{n}.f64")
PY
R --version | head -1
for n in 1000 10000 100000; do
  if ! timeout "$LIMIT" Rscript -e "
    x <- readBin('$dir/x$n.f64', 'double', $n); y <- readBin('$dir/y$n.f64', 'double', $n)
    reps <- if ($n <= 1000) 20 else 1
    t <- system.time(for (i in 1:reps) r <- wilcox.test(x, y, conf.int = TRUE))[['elapsed']] / reps
    cat(sprintf('n = m = %6d  wilcox.test(conf.int=TRUE) %10.1f ms  estimate %.6f  CI [%.6f, %.6f]\n',
                $n, 1000 * t, r\$estimate, r\$conf.int[1], r\$conf.int[2]))"; then
    echo "n = m = $n  did not finish within ${LIMIT}s"
  fi
done
