"""The hardened filesystem store (``file:///abs/dir``): see :mod:`.store` and
docs/stores-filesystem.md."""

from __future__ import annotations

from .index import BUCKET_SECONDS as BUCKET_SECONDS
from .store import FileStore as FileStore

__all__ = ["BUCKET_SECONDS", "FileStore"]
