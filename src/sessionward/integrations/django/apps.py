"""The Django app config (label ``sessionward``)."""

from __future__ import annotations

from django.apps import AppConfig


class SessionwardConfig(AppConfig):  # type: ignore[misc]  # django ships no types
    """Registers the system checks and the ``sessionward_cleanup`` command."""

    name = "sessionward.integrations.django"
    label = "sessionward"
    verbose_name = "sessionward sessions"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
