"""The REST API under ``/api``: the JSON behind every dashboard page.

Every view endpoint returns ``{"view", "filters", "data", "empty"}`` with status 200. ``data``
is the view's JSON (its shape is in each endpoint's description) and ``empty`` is null; or,
when the store lacks what the view needs, ``data`` is null and ``empty`` holds ``message`` and
the ``command`` that provides the data. Invalid filters get 400, an unknown person or account
404, a store locked by another process 503 and a failed computation 500, each with
``{"error": {"message", "hint"}}``. Without a valid session or bearer token every endpoint
returns 401.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from journeymap.web.auth import FAILURE_DELAY
from journeymap.web.downloads import add_download_routes
from journeymap.web.service import Dashboard, Result


class EmptyBody(BaseModel):
    """What the view lacks, and the command that provides it."""

    message: str
    command: str | None = None


class ViewBody(BaseModel):
    """A view's response: its data, or the empty state."""

    view: str
    filters: dict[str, str]
    data: dict[str, Any] | None
    empty: EmptyBody | None


class ErrorDetail(BaseModel):
    message: str
    hint: str | None = None


class ErrorBody(BaseModel):
    """An error: what failed and what to do."""

    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "An invalid filter"},
    401: {"model": ErrorBody, "description": "Not signed in"},
    404: {"model": ErrorBody, "description": "No such person or account"},
    500: {"model": ErrorBody, "description": "The computation failed"},
    503: {"model": ErrorBody, "description": "The store is locked, or sign-in is not set up"},
}


class FilterParams:
    """The filter query parameters that every view endpoint takes."""

    def __init__(
        self,
        start: Annotated[str | None, Query(description="First conversion day, YYYY-MM-DD.")] = None,
        end: Annotated[str | None, Query(description="Last conversion day, YYYY-MM-DD.")] = None,
        segment: Annotated[
            str | None,
            Query(description="Account segment as DIMENSION:VALUE, e.g. industry:Software."),
        ] = None,
        model: Annotated[str | None, Query(description="Model of single-model views.")] = None,
        lookback: Annotated[
            str | None, Query(description="Lookback in days, at most the built one.")
        ] = None,
        kind: Annotated[str | None, Query(description="Conversion kind, e.g. closed_won.")] = None,
        grain: Annotated[
            str | None, Query(description="Attribution breakdown: channel, campaign or ad.")
        ] = None,
    ) -> None:
        values = {
            "start": start,
            "end": end,
            "segment": segment,
            "model": model,
            "lookback": lookback,
            "kind": kind,
            "grain": grain,
        }
        self.values = {name: value for name, value in values.items() if value is not None}


def _respond(result: Result) -> JSONResponse:
    return JSONResponse(result.as_json(), status_code=result.status)


def api_router(dashboard: Dashboard) -> APIRouter:
    """Build the ``/api`` routes of ``dashboard``; every route requires sign-in."""

    async def signed_in(request: Request) -> None:
        auth = dashboard.auth
        if not auth.configured:
            raise SignInRequiredError(
                503,
                "dashboard sign-in is not set up",
                f"Set the environment variable {auth.password_env} and restart, "
                "or set dashboard.auth: none on a loopback address",
            )
        if auth.signed_in(request):
            return
        client = request.client.host if request.client else "?"
        if auth.bearer(request) is not None:
            wait = auth.throttle.wait(client)
            if wait > 0:
                raise SignInRequiredError(
                    429,
                    "too many failed sign-ins from this address",
                    f"Try again in {wait:.0f} seconds",
                    retry_after=wait,
                )
            auth.throttle.fail(client)
            await asyncio.sleep(FAILURE_DELAY)
        raise SignInRequiredError(
            401,
            "not signed in",
            "Sign in at /login, or send Authorization: Bearer <password>",
        )

    router = APIRouter(prefix="/api", tags=["dashboard"], dependencies=[Depends(signed_in)])

    @router.get("/status", summary="The store: row counts, last build and run, models, kinds")
    def status() -> dict[str, Any]:
        """Also ``warm_up``: the cache warm-up's ``state`` (``starting``, ``warming``,
        ``ready``, ``off`` or ``stopped``), ``rounds`` and the last round's ``tasks``,
        ``seconds`` and ``finished_at``."""
        return dashboard.summary() | {"warm_up": dashboard.warm_up_status()}

    documented = {
        "map": "The journey map: per stage its figures, channels, paths and qualitative rows.",
        "attribution": (
            "Credit by model for `channel`, `campaign` and `ad` (`credit[grain]`: model, key, "
            "conversions, value), and spend with ROAS and cost per conversion for `model` "
            "(`spend[grain]`: key, cost, conversions, value, roas, cost_per_conversion)."
        ),
        "funnel": (
            "Stage funnel: `steps` (from_stage, to_stage, entered, converted, rate, open), "
            "`cohorts` by month, `dropoff` by first-touch channel."
        ),
        "velocity": (
            "`time_in_stage` (stage, completed_stays, median_days, p75_days, p90_days, "
            "open_stays) and `stalled` (entity_id, stage, entered_at, days_in_stage, "
            "threshold_days)."
        ),
        "paths": (
            "Top converting `paths` (path, converters, share, converting_journeys, "
            "non_converting_journeys, conversion_rate) and a `sankey` of nodes and links."
        ),
        "blind-spots": "Tracking health: `by_kind`, `click_ids`, `agreement`, `undercount`.",
        "icp": (
            "Ideal customer profile, win rates and retention by segment: the ranked `profile`, "
            "`segments` by industry, size band and region, and `retention`, false without "
            "churn data."
        ),
        "entities": "People and accounts with the most conversions: id, touches, conversions.",
        "recommendations": "Recommended changes of spend and tracking.",
        "sync": "The conversion-sync audit: what was sent to each ad platform.",
    }
    for name, description in documented.items():
        router.add_api_route(
            f"/{name}",
            _view_endpoint(dashboard, name),
            methods=["GET"],
            summary=description.split(":")[0].split("(")[0].strip().rstrip("."),
            description=description,
            response_model=ViewBody,
            responses=ERRORS,
            name=f"api_{name.replace('-', '_')}",
        )

    @router.get(
        "/compare",
        summary="What changed between two snapshots or two periods",
        response_model=ViewBody,
        responses=ERRORS,
    )
    def compare(
        filters: Annotated[FilterParams, Depends()],
        before: Annotated[str | None, Query(description="Earlier snapshot name.")] = None,
        after: Annotated[str | None, Query(description="Later snapshot name.")] = None,
        a: Annotated[
            str | None, Query(description="Earlier period: 2026-Q1, 2026-03, 2026 or DAY..DAY.")
        ] = None,
        b: Annotated[str | None, Query(description="Later period, as `a`.")] = None,
    ) -> JSONResponse:
        """Without a choice, the two newest snapshots. ``data`` has ``source``, ``before``,
        ``after``, ``snapshots`` (name, created_at, start, end, model, lookback_days, entity,
        segment), ``rule``, ``changes`` (section, item, before, after, change, unit,
        base_before, base_after, p_value, matters; those that matter first), ``highlights``
        and ``notes``. A snapshot that is not saved gets 404."""
        choice = {"before": before, "after": after, "a": a, "b": b}
        params = filters.values | {name: value for name, value in choice.items() if value}
        return _respond(dashboard.compare(params))

    add_download_routes(router, dashboard, FilterParams)

    @router.get(
        "/timeline/{entity_kind}/{entity_id}",
        summary="One person's or account's touches, conversions, deals and stages",
        response_model=ViewBody,
        responses=ERRORS,
    )
    def timeline(entity_kind: str, entity_id: str) -> JSONResponse:
        """``entity_kind`` is ``person`` or ``account``. ``data`` has ``touches``,
        ``conversions``, ``deals``, ``deal_stages`` and ``stages``, oldest first."""
        return _respond(dashboard.timeline(entity_kind, entity_id, {}))

    return router


def _view_endpoint(dashboard: Dashboard, name: str) -> Any:
    def endpoint(filters: Annotated[FilterParams, Depends()]) -> JSONResponse:
        return _respond(dashboard.result(name, filters.values))

    endpoint.__name__ = f"api_{name.replace('-', '_')}"
    return endpoint


class SignInRequiredError(Exception):
    """A request without a session, or to a dashboard whose sign-in is not set up."""

    def __init__(
        self, status: int, message: str, hint: str, *, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.body = {"error": {"message": message, "hint": hint}}
        self.retry_after = retry_after


async def unauthorized_handler(request: Request, exc: Exception) -> JSONResponse:
    """Return the JSON error of a request that is not signed in."""
    assert isinstance(exc, SignInRequiredError)
    headers = (
        {} if exc.retry_after is None else {"Retry-After": str(max(1, round(exc.retry_after)))}
    )
    return JSONResponse(exc.body, status_code=exc.status, headers=headers)
