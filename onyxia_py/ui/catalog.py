"""The catalogue page: a tab per catalogue the caller may use, its charts as cards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from onyxia_py.api import catalogs as catalogs_api
from onyxia_py.api.deps import CatalogsDep, Reader, SettingsDep
from onyxia_py.errors import NotFound
from onyxia_py.ui.rendering import PageRoute, page_for, render

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@dataclass(frozen=True)
class Card:
    """A chart as its card shows it."""

    name: str
    description: str
    version: str
    keywords: tuple[str, ...]
    highlighted: bool
    # Our own icon route: the CSP allows no other site's images. The monogram stays behind it
    # and shows when the icon cannot be had.
    icon: str
    monogram: str
    hue: int

    @property
    def search_text(self) -> str:
        """What search-as-you-type matches against (lower case)."""
        return " ".join((self.name, self.description, *self.keywords)).lower()


def card(chart: catalogs_api.ChartOut) -> Card:
    """The card of one chart."""
    return Card(
        name=chart.name,
        description=chart.description,
        version=chart.latest_version,
        keywords=tuple(chart.keywords),
        highlighted=chart.highlighted,
        icon=chart.icon_url,
        monogram=(chart.name[:1] or "?").upper(),
        hue=sum(map(ord, chart.name)) % 8,
    )


async def _catalog_page(
    request: Request,
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    catalog_id: str | None,
    q: str,
) -> HTMLResponse:
    page = page_for(request, settings, principal)
    tabs = await catalogs_api.list_catalogs(principal, settings, catalogs, project=page.project_id)
    loading = not catalogs.first_load.is_set()
    current = None
    if tabs:
        wanted = catalog_id or tabs[0].id
        if all(t.id != wanted for t in tabs):
            raise NotFound(f"no catalogue {wanted!r} here: it may be hidden in this project")
        current = await catalogs_api.get_catalog(
            wanted, principal, settings, catalogs, project=page.project_id
        )
    elif catalog_id:
        raise NotFound(f"no catalogue {catalog_id!r}")
    cards = [card(c) for c in current.charts] if current else []
    query = q.strip().lower()
    shown = [c for c in cards if query in c.search_text] if query else cards
    return render(
        request,
        page,
        "catalog.html",
        section="catalog",
        title=current.name if current else "Catalogue",
        tabs=tabs,
        current=current,
        cards=shown,
        total=len(cards),
        q=q,
        loading=loading,
    )


Search = Annotated[str, Query(max_length=100)]


@router.get("/catalog", response_class=HTMLResponse)
async def catalog_home(
    request: Request,
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    q: Search = "",
) -> HTMLResponse:
    """The first catalogue of the current project."""
    return await _catalog_page(request, principal, settings, catalogs, None, q)


@router.get("/catalog/{catalog_id}", response_class=HTMLResponse)
async def catalog_tab(
    request: Request,
    catalog_id: str,
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    q: Search = "",
) -> HTMLResponse:
    """One catalogue's charts, highlighted first; `q` filters them (the script does it live)."""
    return await _catalog_page(request, principal, settings, catalogs, catalog_id, q)
