"""Onyxia's REST API over our domain, for the stock Onyxia web (docs/onyxia-web.md).

A second face of the platform beside `api/`: same authentication (`api.deps`), same error
handler (RFC 7807 problems), same domain services; only the paths, headers and answer shapes
are Onyxia's. Nothing here decides anything the domain does not already decide.
"""

from __future__ import annotations

from onyxia_py.onyxia_compat.routes import build_router

__all__ = ["build_router"]
