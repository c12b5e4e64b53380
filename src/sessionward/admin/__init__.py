"""Operator tools: admin operations over one manager (shared by the CLI and the
daemon's admin role), the deployment checks (``sessionward check``, Django
system checks) and the php.ini audit."""

from __future__ import annotations

from .context import MAX_PAGE as MAX_PAGE
from .context import AdminError as AdminError
from .context import operator_identity as operator_identity
from .service import Admin as Admin

__all__ = ["MAX_PAGE", "Admin", "AdminError", "operator_identity"]
