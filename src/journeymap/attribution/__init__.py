"""Attribution models: the registry, the rule-based family and credit summaries."""

from journeymap.attribution import rules as _rules  # noqa: F401  (registers the rule models)
from journeymap.attribution.base import (
    REGISTRY,
    AttributionModel,
    create_model,
    model_names,
    resolve_models,
)
from journeymap.attribution.credits import GRAINS, attribute, credit_by

__all__ = [
    "GRAINS",
    "REGISTRY",
    "AttributionModel",
    "attribute",
    "create_model",
    "credit_by",
    "model_names",
    "resolve_models",
]
