"""Fixtures of the CLI tests (defined in :mod:`cli._harness`)."""

from __future__ import annotations

from cli._harness import cli_fixture, manager_fixture  # noqa: F401
