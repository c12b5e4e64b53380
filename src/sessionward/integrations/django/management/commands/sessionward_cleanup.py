"""``manage.py sessionward_cleanup``: delete expired sessions in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
)

from sessionward.integrations.django.backend import get_manager

from .....core.errors import StoreError


class Command(BaseCommand):  # type: ignore[misc]  # django ships no types
    help = "Delete expired sessionward sessions (batched; cost grows with the expired ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=1000, help="records per batch")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            removed = get_manager().cleanup(batch=max(1, int(options["batch"])))
        except StoreError as exc:
            raise CommandError(f"the session store is unavailable: {type(exc).__name__}") from None
        self.stdout.write(f"removed {removed} expired session(s)")
