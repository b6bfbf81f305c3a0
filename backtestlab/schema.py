"""OpenAPI post-processing: every operation documents the one JSON error shape, and every
request body says that it takes only the fields it declares.

Any status the API can answer with besides the documented successes (400, 401, 403, 404, 405,
409, 413, 429, ...) carries ``{"ok": false, "error": "...", "field": "..."}``; the schema says so
once per operation as its ``default`` response, so clients and schemathesis can check it.
"""

from __future__ import annotations

ERROR_COMPONENT = "ApiError"
ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error shape of the API.",
    "properties": {
        "ok": {"type": "boolean", "enum": [False]},
        "error": {"type": "string", "description": "What was wrong and what to send instead."},
        "field": {"type": "string", "description": "The offending request field, if one is."},
        "errors": {"type": "object", "description": "Every field error (validation only)."},
    },
    "required": ["ok", "error"],
}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    default = {
        "description": "Any error: 4xx with what was wrong (and `field`), 5xx logged.",
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}
        },
    }
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in METHODS:
                operation.setdefault("responses", {}).setdefault("default", default)
    return result


def strict_request_bodies(result, generator, request, public):
    """``additionalProperties: false`` on every request body: the views refuse a field their
    serializer does not declare (backtestlab.api.fields_check, the tools' and carry compare's
    own checks, the risk service), so a typo is a 400, never a silent default."""
    schemas = result.get("components", {}).get("schemas", {})
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in METHODS:
                continue
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                name = media.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                if schemas.get(name, {}).get("type") == "object":
                    schemas[name].setdefault("additionalProperties", False)
    return result
