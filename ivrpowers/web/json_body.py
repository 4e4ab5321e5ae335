"""A request's JSON body and an error's JSON answer: read and shaped the same way by every route."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aiohttp import web


def json_error(error: type[web.HTTPException], message: str, *, headers: dict[str, str] | None = None,
               **extra: Any) -> web.HTTPException:
    """`{"error": message, **extra}` with the status of `error`."""
    return error(text=json.dumps({"error": message, **extra}), content_type="application/json", headers=headers)


def _number(text: str) -> int | float:
    # JSON has one kind of number: 20.0 is 20, as JSON Schema's "integer" says (the strict models
    # refuse a float where they take an integer).
    value = float(text)
    return int(value) if value.is_integer() else value


async def read_json(request: web.Request) -> Any:
    """The body as JSON; a 400 (not JSON) or a 413 (over the size limit) in JSON otherwise."""
    try:
        return await request.json(loads=partial(json.loads, parse_float=_number))
    except (ValueError, UnicodeDecodeError, LookupError, RecursionError):
        # LookupError: a charset Python does not know; RecursionError: arrays nested thousands deep.
        raise json_error(web.HTTPBadRequest, "the body is not JSON") from None
    except web.HTTPRequestEntityTooLarge:  # aiohttp's own answer is plain text
        limit = request.client_max_size
        raise web.HTTPRequestEntityTooLarge(limit, text=json.dumps({"error": f"the body is over {limit} bytes"}),
                                            content_type="application/json") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    """The body, which must be a JSON object (a 422 otherwise)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise json_error(web.HTTPUnprocessableEntity, "the body must be a JSON object", problems=[])
    return body
