"""ASGI middleware in front of KServe's app: a bounded request body, and binary BYTES made JSON.

- A body over ``max_bytes`` gets 413: by its Content-Length before it is read, or as soon as a
  chunked body outgrows the limit.
- A v2 request using the binary data extension whose binary inputs are all ``BYTES`` (raw JPEG/PNG
  bytes, 4-byte little-endian length before each element) is rewritten to plain JSON with the
  elements base64-encoded: KServe 0.21 insists on decoding binary BYTES as UTF-8 and answers 500
  for image bytes. A malformed binary request gets 400 here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_LENGTH_HEADER = b"inference-header-content-length"


class BadBinary(ValueError):
    pass


def split_bytes_tensor(raw: bytes) -> list[bytes]:
    """The elements of a binary BYTES tensor (each preceded by its uint32 little-endian length). Pure."""
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise BadBinary("binary BYTES data ends inside an element's length")
        n = int.from_bytes(raw[i:i + 4], "little")
        if i + 4 + n > len(raw):
            raise BadBinary("binary BYTES data is shorter than its element lengths say")
        out.append(raw[i + 4:i + 4 + n])
        i += 4 + n
    return out


def binary_to_json(body: bytes, json_length: int) -> bytes | None:
    """A v2 binary-extension body as plain JSON, or None when a binary input is not BYTES. Pure."""
    try:
        head = json.loads(body[:json_length])
        inputs = head["inputs"]
    except (ValueError, KeyError, TypeError):
        raise BadBinary("the JSON part of the binary request is not a v2 request with inputs") from None
    pos = json_length
    for inp in inputs:
        params = inp.get("parameters") or {}
        size = params.get("binary_data_size")
        if size is None:
            continue
        if inp.get("datatype") != "BYTES":
            return None  # KServe decodes numeric binary tensors itself
        if not isinstance(size, int) or size < 0 or pos + size > len(body):
            raise BadBinary(f"input {inp.get('name')!r}: binary_data_size {size} exceeds the body")
        inp["data"] = [base64.b64encode(e).decode() for e in split_bytes_tensor(body[pos:pos + size])]
        pos += size
        inp["parameters"] = {k: v for k, v in params.items() if k != "binary_data_size"}
    return json.dumps(head).encode()


class RequestGuard:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._error(send, 413, self._too_large(int(length)))
            return
        # Read the body here (bounded), then replay it: a chunked body cannot outgrow the limit either.
        chunks, total = [], 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                await self.app(scope, receive, send)  # the client went away; let the app see it
                return
            chunks.append(msg.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_bytes:
                await self._error(send, 413, self._too_large(total))
                return
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        json_length = headers.get(JSON_LENGTH_HEADER)
        if json_length is not None:
            try:
                rewritten = binary_to_json(body, int(json_length))
            except (BadBinary, ValueError) as exc:
                await self._error(send, 400, f"binary data extension: {exc}")
                return
            if rewritten is not None:
                body = rewritten
                kept = [(k, v) for k, v in scope["headers"]
                        if k not in (JSON_LENGTH_HEADER, b"content-length", b"content-type")]
                scope = {**scope, "headers": [*kept, (b"content-type", b"application/json"),
                                              (b"content-length", str(len(body)).encode())]}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self, size: int) -> str:
        return (f"request body of {size} bytes is larger than the limit of {self.max_bytes} bytes "
                "(FRESHNESS_MAX_REQUEST_BYTES)")

    async def _error(self, send: Send, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
