"""journeymap: customer journeys and multi-touch attribution for B2B SaaS teams."""

from __future__ import annotations

__version__ = "0.1.0"
