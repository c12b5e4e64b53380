"""Operator tools: admin operations over one manager (shared by the CLI and the
daemon's admin role) and the deployment checks (``sessionward check``, Django
system checks)."""

from __future__ import annotations

from .service import Admin as Admin
from .service import AdminError as AdminError
from .service import operator_identity as operator_identity

__all__ = ["Admin", "AdminError", "operator_identity"]
