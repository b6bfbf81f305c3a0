"""The API's JSON parsers (a module of their own: DRF imports the default parser classes while
``rest_framework.views`` loads, so they cannot live beside code that imports it)."""

from __future__ import annotations

from rest_framework.parsers import JSONParser

from backtestlab.errors import ApplicationError
from backtestlab.inputs import MAX_JSON_DEPTH, json_body_check


class CheckedJSONParser(JSONParser):
    """Every JSON body of the API (the default parser): one nested deeper than MAX_JSON_DEPTH
    (Python's decoder raised RecursionError, a 500, past ~1,000 levels) or holding a NUL
    character in a key or a string (PostgreSQL cannot store one) is a 400 naming the field."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ApplicationError(
                f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep; send the "
                "documented shape (see /api/docs/)"
            ) from None
        json_body_check(data)
        return data


class NonStrictJSONParser(CheckedJSONParser):
    """Parses NaN/Infinity literals into floats, so validation can name the field at fault
    (the strict parser refuses the whole body without saying where)."""

    strict = False
