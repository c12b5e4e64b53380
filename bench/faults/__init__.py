"""Fault scenarios (issue 18): each module exposes ``SCENARIOS: list[Scenario]``."""
