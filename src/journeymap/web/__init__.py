"""The web dashboard: pages and a REST API over the store, served beside the collector.

:func:`create_server_app` builds the one app of ``journeymap serve``; :mod:`.views` computes
the data, :mod:`.rest` and :mod:`.pages` serve it, and :mod:`.auth` signs users in.
"""

from __future__ import annotations

from journeymap.web.app import add_dashboard, create_server_app

__all__ = ["add_dashboard", "create_server_app"]
