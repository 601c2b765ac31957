"""Attribution models: the registry, the rule-based family and credit summaries."""

# isort: off
# Registration order is the order of `--models all` and of reports: rule models first.
from journeymap.attribution import rules as _rules  # noqa: F401
from journeymap.attribution import markov as _markov  # noqa: F401
from journeymap.attribution import shapley as _shapley  # noqa: F401
from journeymap.attribution import fractribution as _fractribution  # noqa: F401

# isort: on
from journeymap.attribution.base import (
    REGISTRY,
    AttributionModel,
    create_model,
    model_names,
    resolve_models,
)
from journeymap.attribution.credits import GRAINS, attribute, channel_credit_table, credit_by

__all__ = [
    "GRAINS",
    "REGISTRY",
    "AttributionModel",
    "attribute",
    "channel_credit_table",
    "create_model",
    "credit_by",
    "model_names",
    "resolve_models",
]
