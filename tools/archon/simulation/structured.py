"""Structured output in the vLLM simulation: a reply that is valid under the request's JSON schema,
as vLLM's guided decoding guarantees (docs.vllm.ai/en/latest/features/structured_outputs/).

vLLM takes the schema from OpenAI's `response_format` (`{"type": "json_schema", "json_schema":
{"schema": ...}}`) or from its own `structured_outputs: {"json": ...}` (what the gateway's hook
sends for an archetype's `guidedDecoding`). The simulation answers with the smallest instance of the
schema, or with the next scripted reply for that schema's name, so a test can decide what the
"model" chooses (a critic's verdict, a router's pick) while the reply still has the real shape.
"""

from __future__ import annotations

import json
from typing import Any

SIMULATED_STRING = "simulated"


def requested_schema(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(name, schema) when the request asks for JSON under a schema, else None."""
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            return str(spec.get("name") or ""), spec["schema"]
    structured = body.get("structured_outputs")
    if isinstance(structured, dict) and isinstance(structured.get("json"), dict):
        return "", structured["json"]
    return None


def smallest_instance(schema: dict[str, Any]) -> Any:
    """The smallest value the schema accepts, for the subset structured outputs use."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: smallest_instance(sub) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items") or {}
        count = int(schema.get("minItems", 0))
        if "enum" in items and schema.get("uniqueItems"):
            return list(items["enum"][:count])
        return [smallest_instance(items) for _ in range(count)]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return SIMULATED_STRING


def structured_reply(
    body: dict[str, Any], script: dict[str, list[str]], served: dict[str, int]
) -> str | None:
    """The reply text for a structured request: the next scripted reply for the schema's name
    (the last one repeats), else the smallest instance. None for a free-text request."""
    requested = requested_schema(body)
    if requested is None:
        return None
    name, schema = requested
    replies = script.get(name)
    if replies:
        index = served.get(name, 0)
        served[name] = index + 1
        return replies[min(index, len(replies) - 1)]
    return json.dumps(smallest_instance(schema))
