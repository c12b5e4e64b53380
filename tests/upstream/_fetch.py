"""Fetch the frameworks' own test files at test time (never committed to this repo).

:func:`upstream_dir` runs ``pip download --no-binary :all: --no-deps
<project>==<installed version>`` into a gitignored cache folder, extracts only
the members a suite needs, and returns the extracted tree.  A later run reuses
the extracted files (keyed by project and version), so the network is needed
once per version.

The cache folder is ``.upstream-cache/`` at the repository root, or
``$SESSIONWARD_UPSTREAM_CACHE``.  When the download fails, :func:`require`
turns that into a collection error under CI (a missing suite must never pass
as green) and into a skip with the reason on a developer machine.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOWNLOAD_TIMEOUT = 600.0


class UpstreamUnavailable(RuntimeError):
    """The sdist could not be downloaded or lacks the wanted members."""


def cache_root() -> Path:
    """Where sdists and extracted test trees live (gitignored)."""
    return Path(os.environ.get("SESSIONWARD_UPSTREAM_CACHE", ROOT / ".upstream-cache"))


def installed_version(project: str) -> str:
    """The version of ``project`` installed in this environment."""
    return importlib.metadata.version(project)


def _download(project: str, version: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    existing = _find_sdist(into, project, version)
    if existing is not None:
        return existing
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
           "--no-deps", "--disable-pip-version-check", f"{project}=={version}", "-d", str(into)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UpstreamUnavailable(f"pip download {project}=={version} failed: {exc}") from exc
    found = _find_sdist(into, project, version)
    if done.returncode != 0 or found is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise UpstreamUnavailable(
            f"pip download {project}=={version} failed (exit {done.returncode}): "
            + " | ".join(tail))
    return found


def _find_sdist(folder: Path, project: str, version: str) -> Path | None:
    for candidate in folder.glob("*.tar.gz"):
        stem = candidate.name[: -len(".tar.gz")].lower().replace("_", "-")
        if stem == f"{project.lower()}-{version}":
            return candidate
    return None


def _extract(sdist: Path, members: list[str], dest: Path) -> None:
    """Extract ``members`` (paths below the sdist's top folder) into ``dest`` atomically."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            top = tar.getnames()[0].split("/", 1)[0]
            wanted = [tar.getmember(f"{top}/{m}") for m in members]
            tar.extractall(tmp, members=wanted, filter="data")
        shutil.rmtree(dest, ignore_errors=True)
        (tmp / top).rename(dest)
    except KeyError as exc:
        raise UpstreamUnavailable(f"{sdist.name} has no {exc.args[0]}") from exc
    except (OSError, tarfile.TarError) as exc:
        raise UpstreamUnavailable(f"cannot extract {sdist.name}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def upstream_dir(project: str, members: list[str]) -> Path:
    """The extracted ``members`` of the installed version's sdist.

    Raises:
        UpstreamUnavailable: no network, unknown version, or a member is missing.
    """
    version = installed_version(project)
    base = cache_root()
    dest = base / f"{project.lower()}-{version}"
    if all((dest / m).is_file() for m in members):
        return dest
    sdist = _download(project, version, base / "sdists")
    _extract(sdist, members, dest)
    return dest


def require(project: str, members: list[str]) -> Path:
    """:func:`upstream_dir`, or fail (CI) / skip (developer machine) collection."""
    try:
        return upstream_dir(project, members)
    except UpstreamUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"upstream {project} tests unavailable: {exc}", allow_module_level=True)
