"""OpenAPI descriptions of the tracking routes' bodies and responses.

The routes read their bodies themselves (gzip, size limits, text/plain from browsers), so the
schemas are declared here for the documentation and for schema-driven tests.
"""

from __future__ import annotations

from typing import Any

_ID = {"type": "string", "maxLength": 100}
_TIME = {"type": "string", "format": "date-time"}
_OBJECT = {"type": "object", "additionalProperties": True}

_COMMON: dict[str, Any] = {
    "messageId": {**_ID, "description": "Unique id; a retry with the same id is stored once."},
    "userId": {**_ID, "description": "The identified user."},
    "anonymousId": {**_ID, "description": "The device or browser id."},
    "timestamp": {**_TIME, "description": "When the event happened (device clock)."},
    "originalTimestamp": {**_TIME, "description": "The device's stamp, before correction."},
    "sentAt": {**_TIME, "description": "When the device sent it; enables clock-skew correction."},
    "context": {**_OBJECT, "description": "page, campaign, userAgent, clickIds and more."},
    "integrations": _OBJECT,
    "writeKey": {"type": "string", "description": "The write key, unless sent by Basic auth."},
}
_BY_TYPE: dict[str, dict[str, Any]] = {
    "identify": {"traits": _OBJECT},
    "track": {"event": {"type": "string", "minLength": 1}, "properties": _OBJECT},
    "page": {"name": {"type": "string"}, "properties": _OBJECT},
    "screen": {"name": {"type": "string"}, "properties": _OBJECT},
    "group": {"groupId": _ID, "traits": _OBJECT},
    "alias": {"previousId": _ID},
}
_REQUIRED: dict[str, list[str]] = {
    "track": ["event"],
    "group": ["groupId"],
    "alias": ["previousId", "userId"],
}


def message_schema(kind: str | None) -> dict[str, Any]:
    """Return the JSON schema of one message of ``kind`` (any kind when None)."""
    properties: dict[str, Any] = dict(_COMMON)
    kinds = [kind] if kind else list(_BY_TYPE)
    for name in kinds:
        properties.update(_BY_TYPE[name])
    properties["type"] = {"type": "string", "enum": kinds}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if kind is not None and kind in _REQUIRED:
        schema["required"] = _REQUIRED[kind]
    if kind is None:
        schema["required"] = ["type"]
    return schema


def message_body(kind: str) -> dict[str, Any]:
    """Return the OpenAPI request body of a single-call route."""
    return {
        "required": True,
        "content": {"application/json": {"schema": message_schema(kind)}},
        "description": f"One {kind} message of the Segment spec; gzip bodies are accepted.",
    }


def batch_body() -> dict[str, Any]:
    """Return the OpenAPI request body of ``/v1/batch``."""
    schema = {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "minItems": 1, "items": message_schema(None)},
            "sentAt": _TIME,
            "context": _OBJECT,
            "writeKey": _COMMON["writeKey"],
        },
    }
    return {
        "required": True,
        "content": {"application/json": {"schema": schema}},
        "description": "Messages of any type; the envelope's context is merged into each.",
    }


_ANSWER = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "stored": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "message": {"type": "string"},
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Committed to disk; duplicates were already stored.",
        "content": {"application/json": {"schema": _ANSWER}},
    },
    400: {"description": "Not JSON, or a message lacks a field its type needs."},
    401: {"description": "Missing or unknown write key."},
    413: {"description": "A message or the body is above the size limit."},
    503: {"description": "The journal cannot be written; retry."},
}
