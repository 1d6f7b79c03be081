"""Reading a posted form so that a malformed body (a broken multipart boundary, an unknown
charset) is a clear 400 for the sender instead of a 500 and a traceback in the log."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDictProxy

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]


async def read_form(request: web.Request, max_size: int | None = None) -> Form | None:
    """The form, or None when the body cannot be read as one.

    A body over ``max_size`` still raises ``HTTPRequestEntityTooLarge`` (the caller says so)."""
    try:
        target = request.clone(client_max_size=max_size) if max_size else request
        return await target.post()
    except web.HTTPRequestEntityTooLarge:
        raise
    except (ValueError, LookupError, AssertionError, web.HTTPBadRequest):
        return None
