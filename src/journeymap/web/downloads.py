"""Downloads of the journey map: XLSX, HTML and Markdown for the map page's filters.

Each download renders the journey map view's cached data with :mod:`journeymap.report.exports`
(or :mod:`journeymap.report.map_html`), so a workbook contains the same numbers as ``/api/map``
for the same filters. Rendered files are cached per store version and filters as well.
"""

# No ``from __future__ import annotations``: FastAPI must see the filter dependency's class,
# which is a parameter of add_download_routes, as an object rather than as text.
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from journeymap.report.exports import render_markdown, write_xlsx
from journeymap.report.map import JourneyMap
from journeymap.report.map_html import render_map_html
from journeymap.report.map_json import map_from_dict
from journeymap.web.service import Dashboard


@dataclass(frozen=True)
class Download:
    """One download format: its file suffix, media type and renderer."""

    suffix: str
    media_type: str
    render: Callable[[JourneyMap], bytes]


def _xlsx(journey_map: JourneyMap) -> bytes:
    with tempfile.TemporaryDirectory(prefix="journeymap-map-") as folder:
        path = write_xlsx(journey_map, Path(folder) / "journey-map.xlsx")
        return path.read_bytes()


DOWNLOADS: dict[str, Download] = {
    "xlsx": Download(
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _xlsx,
    ),
    "html": Download("html", "text/html; charset=utf-8", lambda m: render_map_html(m).encode()),
    "md": Download("md", "text/markdown; charset=utf-8", lambda m: render_markdown(m).encode()),
}
"""Download formats by the suffix of their route, ``/api/map.<suffix>``."""


def file_name(data: dict[str, Any], suffix: str) -> str:
    """Return the download's file name: ``journey-map``, then the range when one is set."""
    settings = data["filters"]
    days = [day for day in (settings["start"], settings["end"]) if day]
    return "-".join(["journey-map", *days]) + f".{suffix}"


def add_download_routes(router: APIRouter, dashboard: Dashboard, filter_params: Any) -> None:
    """Add ``GET /map.xlsx``, ``/map.html`` and ``/map.md`` to ``router`` (mounted at ``/api``).

    ``filter_params`` is the dependency class of the view endpoints' filter parameters. A
    map whose data is missing gets 404 with the empty state's message and command.
    """
    for suffix, download in DOWNLOADS.items():
        router.add_api_route(
            f"/map.{suffix}",
            _endpoint(dashboard, download, filter_params),
            methods=["GET"],
            summary=f"The journey map as a {suffix.upper()} file",
            description="Takes the filters of `/api/map` and renders the same data.",
            response_class=Response,
            name=f"api_map_{suffix}",
        )


def _endpoint(dashboard: Dashboard, download: Download, filter_params: Any) -> Any:
    def endpoint(filters: Annotated[filter_params, Depends()]) -> Response:
        result = dashboard.result("map", filters.values)
        if result.error is not None:
            return JSONResponse({"error": result.error}, status_code=result.status)
        if result.data is None:
            empty = result.empty or {}
            body = {"message": empty.get("message"), "hint": empty.get("command")}
            return JSONResponse({"error": body}, status_code=404)
        data = result.data
        key = ("download", download.suffix, result.filters.without("grain").key())
        content = dashboard.access.memo(key, lambda: download.render(map_from_dict(data)))
        name = file_name(data, download.suffix)
        return Response(
            content,
            media_type=download.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )

    endpoint.__name__ = f"api_map_{download.suffix}"
    return endpoint
