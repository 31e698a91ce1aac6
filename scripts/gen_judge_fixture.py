#!/usr/bin/env python3
"""Generates fixtures/judge/checkout-data.json: one hour of per-minute points
for the checkout service's canary and baseline, in which the canary's p99
latency regressed by about 25 % while errors and CPU stayed as they were.

Deterministic: seeded, standard library only. Regenerate with
    python3 scripts/gen_judge_fixture.py > fixtures/judge/checkout-data.json
"""
import json
import math
import random

rng = random.Random(20261122)
MINUTES = 60


def daily(minute):
    # Traffic-driven load shape: a slow swell over the hour.
    return 1.0 + 0.15 * math.sin(2 * math.pi * minute / MINUTES)


def series(base, noise, factor=1.0, floor=0.0):
    return [round(max(floor, base * factor * daily(m) * rng.lognormvariate(0, noise)), 6)
            for m in range(MINUTES)]


data = {
    "metrics": {
        # Seconds; the canary is ~25 % slower at the 99th percentile.
        "p99 latency": {
            "baseline": series(0.180, 0.08),
            "canary": series(0.180, 0.08, factor=1.25),
        },
        # 5xx per second: low and noisy in both arms, no change.
        "http 5xx rate": {
            "baseline": series(0.020, 0.5),
            "canary": series(0.020, 0.5),
        },
        # CPU cores per pod: unchanged.
        "cpu usage": {
            "baseline": series(0.45, 0.05),
            "canary": series(0.45, 0.05),
        },
    }
}
print(json.dumps(data, indent=1))
