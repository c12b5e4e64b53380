"""The fault report runner (issue 18, part 6): discovery, the table, merging."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def runner() -> ModuleType:
    """``bench.faults.run`` (the repository root is not on sys.path)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.faults.run")


def test_every_scenario_module_is_discovered() -> None:
    """pkgutil finds each module's SCENARIOS; helpers without them are skipped."""
    names = runner().collect()
    assert {"daemon_crash", "disk_full", "kill_writers"} <= set(names)
    assert runner().select(names, ["kill"]) == ["kill_writers"]
    assert runner().select(names, []) == sorted(names)


@pytest.mark.slow
def test_runner_writes_the_table_and_keeps_other_rows(tmp_path: Path) -> None:
    """``--short --only kill_writers`` writes the table with its rows, the
    date/machine/command, and keeps rows of scenarios it did not run."""
    run = runner()
    out = tmp_path / "faults.md"
    kept = {"runs": {"zz_other": {
        "rows": [{"scenario": "an earlier row", "requests": 7, "user_visible_failures": 1,
                  "failure_window_s": 0.5, "sessions_lost": 0, "acked_writes_lost": 0,
                  "notes": "kept"}],
        "seconds": 1.0, "form": "long", "machine": "m", "date": "d", "command": "c"}}}
    out.write_text(run.render(kept))
    assert run.main(["--short", "--only", "kill_writers", "--out", str(out)]) == 0
    text = out.read_text()
    header = "| " + " | ".join(run.COLUMNS) + " |"
    assert header in text
    rows = [line for line in text.splitlines() if line.startswith("| kill -9 of writers")]
    assert len(rows) == 2
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert len(cells) == len(run.COLUMNS)
        assert int(cells[1]) > 0 and cells[4] == "0" and cells[5] == "0"
    assert "| an earlier row | 7 | 1 | 0.50 | 0 | 0 | kept |" in text
    assert "--short --only kill_writers" in text and "cores" in text
    assert run.load_data(out)["runs"]["kill_writers"]["form"] == "short"


def test_unknown_name_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert runner().main(["--only", "no-such-scenario", "--out", str(tmp_path / "f.md")]) == 1
    assert "no scenario matches" in capsys.readouterr().err
    assert not (tmp_path / "f.md").exists()
