"""Benchmark harness for sessionward (issue 10).

Entry point: ``python -m bench.run [--quick] [--only NAME...]``.  Every
measured workload runs in its own subprocess (:mod:`bench.worker`) so its
peak RSS is its own; results land in ``bench/results/`` (git-ignored) as a
Markdown report, PNG plots and the raw JSON.
"""
