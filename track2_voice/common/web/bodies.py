"""A request's body, read against a cap as it arrives."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

_CLOSE = {"connection": "close"}


async def read_bounded(request: Request, cap: int) -> bytes | Response:
    """The request's body, or the error response: a declared Content-Length over ``cap`` is
    refused before a byte is read, and the body is counted as it arrives (a missing or false
    Content-Length cannot get more than ``cap`` buffered)."""
    declared = request.headers.get("content-length")
    too_big = PlainTextResponse(f"body over {cap} bytes\n", status_code=413, headers=_CLOSE)
    if declared is not None:
        declared = declared.strip()
        if not (declared.isascii() and declared.isdigit()):
            return PlainTextResponse(
                "Content-Length is not a number\n", status_code=400, headers=_CLOSE
            )
        if len(declared) > 12 or int(declared) > cap:
            return too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            return too_big
    return bytes(body)
