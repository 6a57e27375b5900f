"""The interactive API docs (Swagger UI at /docs), served offline.

Its script and styles come from a Python package (`fastapi-offline`, mounted at
`/static/api-docs`), never from a CDN, and the page is plain HTML whose only scripts are files
from our own origin: the strict Content-Security-Policy (no inline script or style) holds here
too. /redoc leads to /docs: ReDoc writes inline styles and loads its logo from its CDN, which
that policy refuses.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/static/api-docs"

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>onyxia-py API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/static/favicon.svg">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="/static/js/api-docs.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    """Swagger UI over /openapi.json."""
    return HTMLResponse(_PAGE.format(assets=ASSETS_URL))


@router.get("/redoc")
async def redoc() -> RedirectResponse:
    """The API docs are at /docs."""
    return RedirectResponse("/docs", status_code=307)
