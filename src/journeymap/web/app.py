"""One app for ``journeymap serve``: the collector, the REST API and the dashboard pages.

:func:`create_server_app` builds the collector's app (:func:`journeymap.collect.app.create_app`)
and adds the dashboard to it: ``/api/*`` (in the OpenAPI schema at ``/docs``), the pages, the
sign-in routes and ``/static/*`` (the dashboard's own files and the Plotly bundle of the
installed ``plotly`` package, so the pages load nothing from elsewhere). The collector's routes
keep their own write-key authentication, and ``/health`` and ``/ready`` stay open. While the
app runs, a :class:`~journeymap.web.warmup.CacheWarmer` keeps every page's default view
computed (``dashboard.warm_up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import plotly
from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from journeymap.collect.app import create_app
from journeymap.common.config import Config
from journeymap.store.store import MEMORY, Store
from journeymap.web.access import StoreAccess
from journeymap.web.auth import Auth
from journeymap.web.pages import page_router, warm_tasks
from journeymap.web.rest import SignInRequiredError, api_router, unauthorized_handler
from journeymap.web.service import Dashboard
from journeymap.web.warmup import CacheWarmer

log = logging.getLogger("journeymap.web")

STATIC = Path(__file__).with_name("static")
PLOTLY_BUNDLE = Path(plotly.__file__).with_name("package_data") / "plotly.min.js"
STATIC_MAX_AGE = 86_400
"""Seconds browsers may keep the static files."""


def add_dashboard(
    app: FastAPI, config: Config, *, host: str, store: Store | None = None
) -> Dashboard:
    """Add the REST API, the pages and the static files to ``app`` and return the dashboard.

    ``store`` is an open store to read instead of the file ``config.store`` (tests, memory).

    Raises:
        ConfigError: ``dashboard.auth`` is ``none`` and ``host`` is not a loopback address.
    """
    access = StoreAccess(config.store if store is None else MEMORY, store=store)
    dashboard = Dashboard(config, access, Auth.from_config(config.dashboard, host=host))
    app.state.dashboard = dashboard
    app.add_exception_handler(SignInRequiredError, unauthorized_handler)
    app.include_router(api_router(dashboard))

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_bundle() -> Response:
        return FileResponse(
            PLOTLY_BUNDLE,
            media_type="text/javascript",
            headers={"Cache-Control": f"public, max-age={STATIC_MAX_AGE}"},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(page_router(dashboard))
    if config.dashboard.warm_up:
        dashboard.warmer = CacheWarmer(access, lambda: warm_tasks(dashboard))
        _warm_during_lifespan(app, dashboard.warmer)
    return dashboard


def _warm_during_lifespan(app: FastAPI, warmer: CacheWarmer) -> None:
    """Start ``warmer`` once the app has started, and stop it before the app stops."""
    started = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with started(app) as state:
            warmer.start()
            try:
                yield state
            finally:
                await asyncio.to_thread(warmer.stop)

    app.router.lifespan_context = lifespan


def create_server_app(
    config: Config | None = None,
    *,
    host: str | None = None,
    store: Store | None = None,
    **collector: Any,
) -> FastAPI:
    """Build the collector app with the dashboard added (unless ``dashboard.enabled`` is off).

    ``host`` is the address the server listens on (default ``collector.host``), which decides
    whether ``dashboard.auth: none`` is accepted. ``collector`` passes on to
    :func:`journeymap.collect.app.create_app` (``journal_path``, ``store_path``,
    ``drain_every``, ``drain_process``).

    Raises:
        ConfigError: ``dashboard.auth`` is ``none`` and ``host`` is not a loopback address.
    """
    config = config or Config()
    app = create_app(config, **collector)
    app.title = "journeymap"
    app.description = (
        "Segment-compatible tracking API, the dashboard's REST API, health and metrics."
    )
    if config.dashboard.enabled:
        add_dashboard(app, config, host=host or config.collector.host, store=store)
    return app
