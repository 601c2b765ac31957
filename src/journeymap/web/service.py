"""The dashboard's state and the one path every page and API request takes to its data.

:meth:`Dashboard.result` parses the filters, reads the view through the cache and turns every
outcome into a :class:`Result`: data, an empty state (what to import or run), or an error with
its message and HTTP status. Stack traces go to the log only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from journeymap.common.config import Config
from journeymap.common.errors import ConfigError, JourneymapError, ModelError, StoreError
from journeymap.store.store import Store
from journeymap.web.access import StoreAccess
from journeymap.web.auth import Auth
from journeymap.web.filters import Filters, parse_filters
from journeymap.web.views import VIEWS, NoDataError, NotFoundError, store_summary
from journeymap.web.warmup import CacheWarmer

log = logging.getLogger("journeymap.web")


@dataclass
class Result:
    """The outcome of one view: ``data``, or ``empty`` (message and command), or ``error``."""

    view: str
    filters: Filters
    data: dict[str, Any] | None = None
    empty: dict[str, str | None] | None = None
    error: dict[str, str | None] | None = None
    status: int = 200
    summary: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the API's response body."""
        if self.error is not None:
            return {"error": self.error}
        return {
            "view": self.view,
            "filters": self.filters.as_params(),
            "data": self.data,
            "empty": self.empty,
        }


class Dashboard:
    """The configuration, store access and sign-in of one running dashboard."""

    def __init__(self, config: Config, access: StoreAccess, auth: Auth) -> None:
        self.config = config
        self.access = access
        self.auth = auth
        self.warmer: CacheWarmer | None = None
        """The cache warm-up, which the app starts; None when ``dashboard.warm_up`` is off."""

    def warm_up_status(self) -> dict[str, Any]:
        """Return the cache warm-up's state, rounds and last round (``state: off`` without)."""
        return {"state": "off"} if self.warmer is None else self.warmer.status()

    def result(self, view: str, params: Mapping[str, str], *, background: bool = False) -> Result:
        """Compute one of :data:`VIEWS` for the query ``params``.

        The cache key leaves out ``grain``, because every view's data covers all grains.
        ``background`` work lets requests use the store first (see :class:`StoreAccess`).
        """
        compute = VIEWS[view]
        return self._run(
            view,
            params,
            lambda filters: (view, filters.without("grain").key()),
            compute,
            background=background,
        )

    def compare(self, params: Mapping[str, str], *, background: bool = False) -> Result:
        """Compare two snapshots (``before``, ``after``) or two periods (``a``, ``b``).

        See :func:`journeymap.web.views.compare.compare_result`.
        """
        from journeymap.web.views.compare import compare_result

        return compare_result(self, params, background=background)

    def timeline(self, entity_kind: str, entity_id: str, params: Mapping[str, str]) -> Result:
        """Compute the timeline of one person or account."""
        from journeymap.web.views import timeline

        def compute(store: Store, config: Config, filters: Filters) -> dict[str, Any]:
            return timeline(store, config, entity_kind, entity_id)

        return self._run(
            "timeline", params, lambda _: ("timeline", entity_kind, entity_id), compute
        )

    def summary(self, *, background: bool = False) -> dict[str, Any]:
        """Return the store's summary for the page header, or an empty one without a store."""
        if not self.access.exists:
            return {"location": self.access.path, "rows": {}, "models": [], "kinds": []}
        try:
            found: dict[str, Any] = self.access.cached(
                ("summary",), store_summary, background=background
            )
        except JourneymapError as exc:
            log.warning("could not read the store summary: %s", exc)
            return {"location": self.access.path, "rows": {}, "models": [], "kinds": []}
        return found

    def _run(
        self,
        view: str,
        params: Mapping[str, str],
        key: Callable[[Filters], Hashable],
        compute: Callable[[Store, Config, Filters], dict[str, Any]],
        *,
        background: bool = False,
    ) -> Result:
        try:
            filters = parse_filters(params)
        except ConfigError as exc:
            return Result(view, Filters(), error=error_body(exc), status=400)
        if not self.access.exists:
            return Result(
                view,
                filters,
                empty={
                    "message": f"There is no store at {self.access.path} yet. Import data "
                    "into it, or generate the demo world",
                    "command": f"journeymap demo --store {self.access.path}",
                },
            )
        try:
            outcome = self.access.cached(
                key(filters),
                lambda store: _no_data_as_value(compute, store, self.config, filters),
                background=background,
            )
        except NotFoundError as exc:
            return Result(view, filters, error=error_body(exc), status=404)
        except (ConfigError, ModelError) as exc:
            return Result(view, filters, error=error_body(exc), status=400)
        except StoreError as exc:
            if str(exc).startswith("cannot open the store"):
                return Result(view, filters, error=error_body(exc), status=503)
            return Result(view, filters, empty={"message": _message(exc), "command": exc.hint})
        except Exception as exc:
            log.exception("the %s view failed", view)
            message = f"the {view} view failed: {type(exc).__name__}: {_first_line(exc)}"
            return Result(view, filters, error={"message": message, "hint": None}, status=500)
        if isinstance(outcome, NoDataError):
            return Result(view, filters, empty=outcome.as_dict())
        return Result(view, filters, data=outcome)


def _no_data_as_value(
    compute: Callable[[Store, Config, Filters], dict[str, Any]],
    store: Store,
    config: Config,
    filters: Filters,
) -> dict[str, Any] | NoDataError:
    """Run ``compute`` and return its empty state as a value, so that the cache keeps it too."""
    try:
        return compute(store, config, filters)
    except NoDataError as exc:
        return exc


def _message(exc: JourneymapError) -> str:
    text = str(exc)
    if exc.hint and text.endswith(f". {exc.hint}"):
        return text[: -len(exc.hint) - 2]
    return text


def error_body(exc: JourneymapError) -> dict[str, str | None]:
    return {"message": _message(exc), "hint": exc.hint}


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""
