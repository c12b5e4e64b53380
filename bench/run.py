"""Run the benchmark suite: ``python -m bench.run [--quick] [--only NAME...]``.

Starts a private redis-server, runs every workload in its own subprocess
(serially: this is a 2-core machine and contenders must not share it),
then writes ``bench/results/report.md``, PNG plots and ``results.json``.
``--only`` keeps workloads whose group or name starts with one of the given
names (``cycle``, ``modes``, ``contention``, ``lost_updates``, ``scale``, ``php``, ``e2e``,
``cycle:sw_redis`` …).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import contention, e2e, lost_updates, modes, php, scale
from bench.common import RESULT_PREFIX
from bench.redis_server import RedisServer, flushall, private_redis, used_memory_rss
from bench.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Profile:
    """Sizes for a run: quick (< 2 min) or full (≤ 30 min)."""

    quick: bool
    rounds: int
    round_seconds: float
    max_cycles: int
    timeout: float
    budget: float
    """Wall-clock budget of the whole run: workloads that would start after it
    are skipped (reported as such), so quick stays under 2 minutes even on a
    busy machine and full under 30."""

    @classmethod
    def of(cls, quick: bool) -> Profile:
        if quick:
            return cls(True, 5, 0.1, 3000, 60, 105)
        return cls(False, 7, 0.6, 30000, 600, 1650)


def cycle_specs(p: Profile) -> list[dict[str, Any]]:
    """Session-cycle, read-only, transport-floor and throughput workloads."""
    specs: list[dict[str, Any]] = [
        {"group": "cycle", "name": f"cycle:{name}", "workload": "cycle", "target": name}
        for name in TARGETS
    ]
    specs += [
        {"group": "cycle", "name": f"readonly:{name}", "workload": "readonly", "target": name,
         "options": {"count": True}}
        for name in ("sw_memory", "sw_sqlite", "sw_redis")
    ]
    specs.append({"group": "cycle", "name": "unix_rtt", "workload": "unix_rtt"})
    seconds = 0.3 if p.quick else 2.0
    specs += [
        {"group": "cycle", "name": f"throughput:{name}", "workload": "throughput",
         "target": name, "procs": 4, "seconds": seconds,
         "rounds": 5 if p.quick else 7}
        for name in ("sw_daemon", "sw_sqlite")
    ]
    specs += [
        {"group": "cycle", "name": f"throughput:sw_daemon_w{n}", "workload": "throughput",
         "target": "sw_daemon", "options": {"workers": n}, "procs": 4, "seconds": seconds,
         "rounds": 5 if p.quick else 7}
        for n in (2, 3)
    ]
    return specs


def all_specs(p: Profile) -> list[dict[str, Any]]:
    specs = (cycle_specs(p) + modes.specs(p.quick) + contention.specs(p.quick)
             + lost_updates.specs(p.quick) + scale.specs(p.quick) + php.specs(p.quick)
             + e2e.specs(p.quick))
    for s in specs:
        s.setdefault("rounds", p.rounds)
        s.setdefault("round_seconds", p.round_seconds)
        s.setdefault("max_cycles", p.max_cycles)
    return specs


def selected(specs: list[dict[str, Any]], only: list[str] | None) -> list[dict[str, Any]]:
    if not only:
        return specs
    return [s for s in specs if any(s["group"] == o or s["name"].startswith(o) for o in only)]


def run_one(spec: dict[str, Any], p: Profile, redis: RedisServer | None,
            scratch: Path) -> dict[str, Any]:
    """Run one workload in a fresh subprocess with a fresh work directory."""
    workdir = Path(tempfile.mkdtemp(prefix="w-", dir=scratch))
    if redis is not None:
        flushall(redis)
    spec = dict(spec)
    spec["env"] = {
        "workdir": str(workdir),
        "redis_host": redis.host if redis else "127.0.0.1",
        "redis_port": redis.port if redis else 0,
        "redis_socket": redis.socket_path if redis else "",
        "quick": p.quick,
    }
    t0 = time.perf_counter()
    result: dict[str, Any] = {"name": spec["name"], "status": "error", "message": ""}
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.worker", json.dumps(spec)],
                              cwd=ROOT, capture_output=True, text=True,
                              timeout=spec.get("timeout", p.timeout), check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
        if lines:
            result = json.loads(lines[-1][len(RESULT_PREFIX):])
        else:
            result["message"] = f"worker exited {proc.returncode}: {proc.stderr[-400:]}"
        if result["status"] == "error":
            (scratch / f"{spec['name'].replace(':', '_')}.stderr").write_text(proc.stderr)
    except subprocess.TimeoutExpired:
        result["message"] = f"timed out after {spec.get('timeout', p.timeout)} s"
    if redis is not None:
        result["redis_rss"] = used_memory_rss(redis)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    result["spec"] = {k: v for k, v in spec.items() if k != "env"}
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="groups or workload names")
    ap.add_argument("--out", type=Path, default=RESULTS, help="output directory")
    ap.add_argument("--budget", type=float, metavar="SECONDS",
                    help="wall-clock budget (default 105 quick, 1650 full)")
    args = ap.parse_args(argv)
    profile = Profile.of(args.quick)
    if args.budget:
        profile = dataclasses.replace(profile, budget=args.budget)
    if args.quick:
        os.environ["SW_BENCH_WARMUP"] = "0.15"
    specs = selected(all_specs(profile), args.only)
    if not specs:
        ap.error("--only matched no workload")
    started = time.time()
    load_start = round(os.getloadavg()[0], 2)
    scratch = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    results: list[dict[str, Any]] = []
    redis_version = ""
    try:
        with private_redis() as redis:
            redis_version = redis.version if redis else "absent"
            for i, spec in enumerate(specs, 1):
                left = profile.budget - (time.time() - started)
                if left < 3:
                    res = {"name": spec["name"], "status": "skipped", "seconds": 0.0,
                           "message": f"run budget of {profile.budget:.0f} s used up",
                           "spec": spec}
                else:
                    spec = spec | {"timeout": min(spec.get("timeout", profile.timeout), left)}
                    res = run_one(spec, profile, redis, scratch)
                results.append(res)
                print(f"[{i:>2}/{len(specs)}] {spec['name']:<34} {res['status']:<11}"
                      f" {_brief(res)} ({res['seconds']} s)", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    meta = {"quick": args.quick, "started": started, "elapsed": time.time() - started,
            "redis_version": redis_version, "argv": sys.argv[1:],
            "load_start": load_start, "load_end": round(os.getloadavg()[0], 2)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "results": results},
                                                      indent=1))
    from bench import report

    path = report.write(args.out, results, meta)
    print(f"report: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
          f" ({meta['elapsed']:.0f} s)")
    return 0


def _brief(res: dict[str, Any]) -> str:
    stats = res.get("stats")
    if res["status"] != "ok":
        return str(res.get("message", ""))[:70]
    if stats:
        unit = str(res.get("extra", {}).get("unit", "µs"))
        return f"median {stats['median']:.1f} {unit}"
    return json.dumps(res.get("extra", {}))[:70]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
