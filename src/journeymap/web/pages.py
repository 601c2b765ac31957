"""The dashboard's HTML pages: server-side Jinja2 templates over the same views as the API.

Each page renders its view's figures and tables, or the view's empty state (what to import or
run) or error message. The filters live in the URL query, so a page can be bookmarked and shared.
A request that is not signed in is sent to ``/login``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from journeymap import __version__
from journeymap.web import figures, tables
from journeymap.web.auth import COOKIE, safe_next
from journeymap.web.map_grid import map_grid
from journeymap.web.service import Dashboard, Result
from journeymap.web.views.compare import compare_context
from journeymap.web.warmup import Task

log = logging.getLogger("journeymap.web")

LOGIN_FAILURE_DELAY = 0.5
"""Seconds a failed sign-in waits before its response, to slow down guessing."""


@dataclass(frozen=True)
class Page:
    """One page: its path, navigation title, view and how its data becomes figures and tables.

    ``context`` adds template values drawn from the view's data (the map's grid), and
    ``warm`` lists the query parameters the cache warm-up requests: the default filters and
    the page's tabs.
    """

    name: str
    path: str
    title: str
    view: str
    figures: Callable[[dict[str, Any], Any], figures.Figures]
    tables: Callable[[dict[str, Any], Any], list[tables.TableSpec]]
    context: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    warm: tuple[dict[str, str], ...] = ({},)


PAGES: tuple[Page, ...] = (
    Page(
        "map",
        "/",
        "Journey map",
        "map",
        lambda d, f: figures.journey_map(d),
        tables.journey_map,
        context=lambda d: {"grid": map_grid(d)},
    ),
    Page(
        "attribution",
        "/attribution",
        "Attribution",
        "attribution",
        lambda d, f: figures.attribution(d, f.grain),
        tables.attribution,
        warm=({}, {"grain": "campaign"}, {"grain": "ad"}),
    ),
    Page("funnel", "/funnel", "Funnel", "funnel", lambda d, f: figures.funnel(d), tables.funnel),
    Page(
        "velocity",
        "/velocity",
        "Velocity",
        "velocity",
        lambda d, f: figures.velocity(d),
        tables.velocity,
    ),
    Page("paths", "/paths", "Paths", "paths", lambda d, f: figures.paths(d), tables.paths),
    Page(
        "blind-spots",
        "/blind-spots",
        "Blind spots",
        "blind-spots",
        lambda d, f: figures.blind_spots(d),
        tables.blind_spots,
    ),
    Page("icp", "/icp", "ICP", "icp", lambda d, f: figures.icp(d), tables.icp),
    Page("timeline", "/timeline", "Timeline", "entities", lambda d, f: [], tables.entities),
    Page(
        "recommendations",
        "/recommendations",
        "Recommendations",
        "recommendations",
        lambda d, f: [],
        tables.recommendations,
    ),
    Page("compare", "/compare", "Compare", "compare", lambda d, f: [], lambda d, f: []),
    Page("sync", "/sync", "Sync audit", "sync", lambda d, f: [], tables.generic),
)


def page_result(
    dashboard: Dashboard, page: Page, params: Mapping[str, str], *, background: bool = False
) -> Result:
    """Return the view of ``page`` for the query ``params``."""
    if page.name == "compare":
        return dashboard.compare(params, background=background)
    return dashboard.result(page.view, params, background=background)


def page_figures(
    dashboard: Dashboard, page: Page, result: Result, entity: tuple[str, ...] = ()
) -> figures.Figures:
    """Return the figures of ``page`` for ``result``; they are cached like the views."""
    if result.data is None or not dashboard.access.exists:
        return []
    data = result.data
    # Building Plotly figures takes tens of milliseconds each, so they are cached too.
    key = (page.name, result.filters.key(), entity)
    return dashboard.access.memo(key, lambda: page.figures(data, result.filters))


def warm_tasks(dashboard: Dashboard) -> list[Task]:
    """Return the cache warm-up's tasks: the header summary, then each page and tab."""
    tasks: list[Task] = [("summary", lambda: dashboard.summary(background=True))]
    for page in PAGES:
        for params in page.warm:

            def task(page: Page = page, params: dict[str, str] = params) -> None:
                result = page_result(dashboard, page, params, background=True)
                page_figures(dashboard, page, result)

            label = page.path + (f"?{urlencode(params)}" if params else "")
            tasks.append((label, task))
    return tasks


def environment() -> Environment:
    """Return the Jinja2 environment of the dashboard templates, escaping HTML."""
    env = Environment(
        loader=PackageLoader("journeymap.web", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = tables.format_cell
    return env


def page_router(dashboard: Dashboard) -> APIRouter:
    """Build the page routes, ``/login`` and ``/logout`` of ``dashboard``."""
    env = environment()
    router = APIRouter(include_in_schema=False)

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(
            pages=PAGES,
            version=__version__,
            auth=dashboard.auth,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def gate(request: Request) -> Response | None:
        """Return the response for a request that may not see pages, or None when it may."""
        if not dashboard.auth.configured:
            return render(
                request, "locked.html.j2", status=503, env_name=dashboard.auth.password_env
            )
        if dashboard.auth.signed_in(request):
            return None
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    def show(page: Page, request: Request, result: Result, **extra: Any) -> HTMLResponse:
        data = result.data or {}
        drawn = page_figures(dashboard, page, result, tuple(extra.get("entity") or ()))
        shown = page.tables(data, result.filters) if result.data is not None else []
        if result.data is not None and page.context is not None:
            extra.update(page.context(data))
        return render(
            request,
            "page.html.j2",
            status=result.status,
            page=page,
            result=result,
            filters=result.filters,
            summary=dashboard.summary(),
            figures=drawn,
            tables=shown,
            notes=data.get("notes", []),
            **extra,
        )

    def add_page(page: Page) -> None:
        def handler(request: Request) -> Response:
            blocked = gate(request)
            if blocked is not None:
                return blocked
            params = dict(request.query_params)
            result = page_result(dashboard, page, params)
            if page.name == "compare":
                return show(page, request, result, **compare_context(dashboard, params))
            return show(page, request, result)

        handler.__name__ = f"page_{page.name.replace('-', '_')}"
        router.add_api_route(page.path, handler, methods=["GET"], response_class=HTMLResponse)

    for page in PAGES:
        add_page(page)

    timeline_page = next(page for page in PAGES if page.name == "timeline")

    @router.get("/timeline/{entity_kind}/{entity_id}", response_class=HTMLResponse)
    def entity_timeline(request: Request, entity_kind: str, entity_id: str) -> Response:
        blocked = gate(request)
        if blocked is not None:
            return blocked
        result = dashboard.timeline(entity_kind, entity_id, dict(request.query_params))
        page = Page(
            timeline_page.name,
            timeline_page.path,
            timeline_page.title,
            "timeline",
            lambda d, f: figures.timeline(d),
            tables.timeline,
        )
        return show(page, request, result, entity=(entity_kind, entity_id))

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None) -> Response:
        if not dashboard.auth.enabled:
            return RedirectResponse(safe_next(next), status_code=303)
        return render(request, "login.html.j2", next=safe_next(next), failed=False)

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        password = (form.get("password") or [""])[0]
        target = safe_next((form.get("next") or ["/"])[0])
        client = request.client.host if request.client else "?"
        if dashboard.auth.throttle.wait(client) > 0:
            return render(request, "login.html.j2", status=429, next=target, failed=True)
        if not dashboard.auth.check_password(password):
            dashboard.auth.throttle.fail(client)
            await asyncio.sleep(LOGIN_FAILURE_DELAY)
            return render(request, "login.html.j2", status=401, next=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            dashboard.auth.issue(),
            max_age=int(dashboard.auth.session_seconds),
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https"
            or request.headers.get("x-forwarded-proto", "").lower() == "https",
        )
        return response

    @router.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return router
