"""OpenAPI post-processing: every operation documents the one JSON error shape, every
request body says that it takes only the fields it declares, and all text sent says it holds
no NUL character.

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


NO_NUL = "^[^\\u0000]*$"


def text_without_nul(result, generator, request, public):
    """Every string of a query parameter or a request body says it holds no NUL character (a
    ``pattern``): the API refuses one with a 400 naming the field
    (backtestlab.middleware.NulCharacterMiddleware, backtestlab.parsers, DRF's CharField).
    Enums, strings with a pattern of their own and uploaded files are left as they are."""
    schemas = result.get("components", {}).get("schemas", {})
    stack: list[dict] = []
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in METHODS:
                continue
            stack += [p["schema"] for p in operation.get("parameters", []) if p["in"] == "query"]
            content = (operation.get("requestBody") or {}).get("content", {})
            stack += [media["schema"] for media in content.values() if "schema" in media]
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        ref = node.get("$ref", "").rsplit("/", 1)[-1]
        if ref and ref not in seen:
            seen.add(ref)
            stack.append(schemas[ref])
        text = node.get("type") == "string" and node.get("format") != "binary"
        if text and "enum" not in node and "pattern" not in node:
            node["pattern"] = NO_NUL
        stack += [v for v in node.get("properties", {}).values() if isinstance(v, dict)]
        stack += [
            node[k] for k in ("items", "additionalProperties") if isinstance(node.get(k), dict)
        ]
        stack += [v for k in ("allOf", "anyOf", "oneOf") for v in node.get(k, [])]
    return result
