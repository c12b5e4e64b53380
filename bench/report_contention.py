"""Report sections and plot for the open-mode cost and contention workloads.

Kept apart from :mod:`bench.report` (which calls into here) so each file stays
readable.  Nothing here judges speed; it lays out what was measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.modes import MODES
from bench.targets import TARGETS

Results = dict[str, dict[str, Any]]
LAYOUT_TITLE = {"one": "all workers on ONE session", "own": "each worker on its OWN session"}


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _ok(by_name: Results, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [(n, r) for n, r in by_name.items() if n.startswith(prefix) and r.get("status") == "ok"]


def _failed(by_name: Results, prefix: str) -> list[str]:
    return [f"- `{n}`: {r['status']} – {r.get('message', '')[:120]}"
            for n, r in by_name.items() if n.startswith(prefix) and r.get("status") != "ok"]


# ---------------------------------------------------------------- mode cost


def _mode_cell(x: dict[str, Any], mode: str) -> str:
    s, ratio = x["modes"][mode], x["ratio_to_optimistic"][mode]
    if mode == "optimistic":
        return f"{s['median']:,.1f} ({s['low']:,.0f}–{s['high']:,.0f})"
    return (f"{s['median']:,.1f} = **{ratio['median']:.2f}×** "
            f"({ratio['low']:.2f}–{ratio['high']:.2f})")


def modes_section(by_name: Results) -> str:
    """µs per request in each open mode, and its interleaved ratio to optimistic."""
    rows = [[TARGETS[n.split(":", 1)[1]].label, *(_mode_cell(r["extra"], m) for m in MODES),
             f"{r['extra']['updates_checked']:,}"]
            for n, r in _ok(by_name, "modes:")]
    failed = _failed(by_name, "modes:")
    if not rows and not failed:
        return ""
    head = ["store", "read µs (× optimistic)", "optimistic µs (min–max)",
            "exclusive µs (× optimistic)", "update() µs (× optimistic)",
            "update() increments read back"]
    return ("## 6. Cost of each open mode (one process, no contention)\n\n"
            "`read` = `load(mode=\"read\")` + read a key; `optimistic` = load → change one "
            "key → save; `exclusive` = `with open(cookie, mode=\"exclusive\")` (lease, load, "
            "change, save, release); `update()` = load → `update(s, \"hits\", +1)` → save.  "
            "The four run interleaved in one worker on one session (order rotated each "
            "round); ratios are medians of per-round ratios to the optimistic round "
            "(min–max in brackets).  Afterwards the session must hold the last `counter` "
            "written and every `hits` increment.\n\n"
            + _table(head, rows) + ("\n\n" + "\n".join(failed) if failed else ""))


# ---------------------------------------------------------------- contention


def _counts(by_name: Results) -> list[int]:
    return sorted({row["workers"] for _, r in _ok(by_name, "contention:")
                   for lay in r["extra"]["layouts"].values() for row in lay["rows"]})


def _kinds(rows: list[dict[str, Any]]) -> str:
    total: dict[str, int] = {}
    for row in rows:
        for k, v in row["errors"].items():
            total[k] = total.get(k, 0) + v
    return ", ".join(f"{k} {v:,}" for k, v in sorted(total.items())) or "0"


def _contention_rows(by_name: Results, counts: list[int]) -> list[list[str]]:
    rows = []
    for _, r in _ok(by_name, "contention:"):
        x = r["extra"]
        for layout, lay in x["layouts"].items():
            by_n = {row["workers"]: row for row in lay["rows"]}
            cells = [f"{by_n[n]['stats']['median']:,.0f}" if n in by_n else "–" for n in counts]
            rows.append([x["store"], f"`{x['mode']}`", layout, *cells, _kinds(lay["rows"]),
                         f"{lay['silently_lost']} (of {lay['values_checked']} values checked)"])
    return rows


def contention_section(by_name: Results) -> str:
    """Total requests/s per worker count, layout, store and mode."""
    counts = _counts(by_name)
    rows = _contention_rows(by_name, counts)
    failed = _failed(by_name, "contention:")
    if not rows and not failed:
        return ""
    sample: dict[str, Any] = next((r["extra"] for _, r in _ok(by_name, "contention:")), {})
    head = ["store", "mode", "session", *(f"{n} worker{'s' * (n > 1)} /s" for n in counts),
            "reported failures (all windows)", "silently lost"]
    notes = _messages(by_name)
    return ("## 7. Throughput under contention\n\n"
            "Successful requests per second, summed over the worker processes "
            f"(window {sample.get('seconds_per_window', '?')} s, median of "
            f"{sample.get('rounds', '?')} windows).  `one` = every worker on the same "
            "session, `own` = a session per worker.  `optimistic` workers each change "
            "their own key (disjoint keys); `exclusive` and `update()` increment one "
            "shared counter.  Reported failures are exceptions the library raised "
            "(the app sees them and can retry); silently lost = acknowledged requests "
            "whose write is missing on read-back.  The memory store is per-process and "
            "not included.  This is a 2-core machine: beyond 2 workers, processes share "
            "cores.\n\n" + _table(head, rows)
            + ("\n\nFirst message of each failure kind:\n\n" + "\n".join(notes)
               if notes else "")
            + ("\n\n" + "\n".join(failed) if failed else ""))


def _messages(by_name: Results) -> list[str]:
    """One line per (workload, exception type): its first message."""
    seen: dict[str, str] = {}
    for name, r in _ok(by_name, "contention:"):
        for lay in r["extra"]["layouts"].values():
            for row in lay["rows"]:
                for kind, msg in row.get("messages", {}).items():
                    seen.setdefault(f"`{name}` {kind}", msg)
    return [f"- {k}: {v}" for k, v in seen.items()]


STORE_COLOR = {"sqlite": "#4c72b0", "filesystem": "#55a868", "redis": "#c44e52"}
MODE_STYLE = {"optimistic": ("-", "o"), "exclusive": ("--", "s"), "update": (":", "^")}


def plot_contention(plt: Any, out: Path, by_name: Results) -> str | None:
    """Throughput vs workers, one line per store/mode (colour = store, line =
    mode); left panel one shared session, right panel a session per worker.
    Log y axis: the modes differ by 10× and more."""
    runs = _ok(by_name, "contention:")
    if not runs:
        return None
    counts = _counts(by_name)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax, layout in zip(axes, ("one", "own"), strict=True):
        for _, r in runs:
            x = r["extra"]
            rows = x["layouts"].get(layout, {}).get("rows", [])
            style, marker = MODE_STYLE.get(x["mode"], ("-", "o"))
            ax.plot([row["workers"] for row in rows], [row["stats"]["median"] for row in rows],
                    linestyle=style, marker=marker, color=STORE_COLOR.get(x["store"]),
                    label=f"{x['store']} / {x['mode']}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(counts, [str(n) for n in counts])
        ax.set_xlabel("worker processes")
        ax.set_title(LAYOUT_TITLE[layout], fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("successful requests / s (total, median; log scale)")
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle("Throughput under contention (2-core machine)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "contention.png", dpi=110)
    plt.close(fig)
    return "contention.png"
