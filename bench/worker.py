"""Subprocess entry: ``python -m bench.worker '<json spec>'``.

Runs exactly one workload and prints one ``BENCH_RESULT {json}`` line, so
each workload's peak RSS (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

from bench.common import Outcome
from bench.targets import Unavailable

WORKLOADS: dict[str, str] = {
    "cycle": "bench.cycle:cycle_workload",
    "readonly": "bench.cycle:readonly_workload",
    "unix_rtt": "bench.cycle:unix_rtt_workload",
    "throughput": "bench.cycle:throughput_workload",
    "modes": "bench.modes:modes_workload",
    "contention": "bench.contention:contention_workload",
    "lost_updates": "bench.lost_updates:lost_updates_workload",
    "scale_sw": "bench.scale:scale_sw_workload",
    "scale_django_file": "bench.scale:scale_django_file_workload",
    "scale_django_db": "bench.scale:scale_django_db_workload",
    "php": "bench.php:php_workload",
    "e2e": "bench.e2e:e2e_workload",
}


def run(spec: dict[str, Any]) -> Outcome:
    module, func = WORKLOADS[spec["workload"]].split(":")
    fn: Callable[[dict[str, Any]], Outcome] = getattr(importlib.import_module(module), func)
    return fn(spec)


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        outcome = run(spec)
    except Unavailable as exc:
        outcome = Outcome(spec["name"], status="unavailable", message=str(exc))
    except Exception as exc:
        traceback.print_exc()
        outcome = Outcome(spec["name"], status="error", message=f"{type(exc).__name__}: {exc}")
    outcome.emit()


if __name__ == "__main__":
    main()
