"""journeymap: customer journeys and multi-touch attribution for B2B SaaS teams."""

from __future__ import annotations

from journeymap.common.spark_sql import fix_pyspark_strip

__version__ = "0.1.0"

fix_pyspark_strip()
