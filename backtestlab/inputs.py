"""Untrusted text from requests: whole numbers, NUL characters and JSON nesting.

One definition for every surface (API views and selectors, lab forms, the JSON parser, the
request middleware), so that ``"²"`` is never a number in one place and a 500 in another, a NUL
character never reaches PostgreSQL (its text columns cannot hold one) and a body nested
thousands of levels deep is refused before anything recurses into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from backtestlab.errors import ApplicationError

MAX_ID = 2**63 - 1  # the largest value of a database integer (SQLite overflows beyond)
MAX_DIGITS = 100  # a number the caller caps anyway (page_size); int() raises past 4,300
MAX_JSON_DEPTH = 32  # our deepest body (a grid with a range) is 3 levels
NUL = "\x00"


def whole_number(text: Any, *, maximum: int | None = MAX_ID) -> int | None:
    """``text`` as a whole number if it is written in ASCII digits only and is at most
    ``maximum`` (default: any database id; None: any number of up to MAX_DIGITS digits, for a
    caller that caps it), otherwise None.

    ``str.isdigit()`` is true for ``"²"``, which ``int()`` refuses (a 500 where a 400 was
    meant); ``int()`` takes ``"١٢"``, ``" 5"``, ``"+5"`` and ``"1_0"``, which no client means,
    and raises on 4,301 digits. Callers check their own range and name the field.
    """
    if not (isinstance(text, str) and text.isascii() and text.isdigit()):
        return None
    longest = MAX_DIGITS if maximum is None else len(str(maximum))
    if len(text.lstrip("0")) > longest:
        return None
    value = int(text)
    return value if maximum is None or value <= maximum else None


def nul_message(field: str) -> str:
    return (
        f"{field} contains a NUL character (\\u0000); send the text without it "
        "(no field of this application stores one)"
    )


def text_pairs_check(pairs: Iterable[tuple[str, str]], *, where: str) -> None:
    """Refuse the first (name, value) pair of a query string or form whose name or value
    holds a NUL character: a 400 naming it (never stripped silently)."""
    for name, value in pairs:
        if NUL in name:
            raise ApplicationError(
                nul_message(f"the {where} parameter name {name!r}"), field=name.replace(NUL, "")
            )
        if isinstance(value, str) and NUL in value:
            raise ApplicationError(nul_message(name), field=name)


def json_body_check(data: Any) -> None:
    """Refuse parsed JSON nested deeper than MAX_JSON_DEPTH, or holding a NUL character in a
    key or a string: a 400 naming the field (dotted path, list positions left out, as in every
    other error). Iterative, so the check itself cannot run out of stack."""
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                raise ApplicationError(nul_message(path or "the body"), field=path or None)
            continue
        if not isinstance(value, Mapping | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise ApplicationError(
                f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep"
                + (f" at {path}" if path else "")
                + "; send the documented shape (see /api/docs/)",
                field=path or None,
            )
        if isinstance(value, Mapping):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if NUL in str(key):
                    raise ApplicationError(
                        nul_message(f"the key {key!r}"), field=child.replace(NUL, "")
                    )
                stack.append((item, child, depth + 1))
        else:
            stack.extend((item, path, depth + 1) for item in value)
