"""The Graph API client and its error codes mapped onto the outbox's rules.

The client is a small typed wrapper over aiohttp rather than a library: the Graph API base
must be configurable (``WHATSAPP_API_BASE``, for tests and proxies).
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import Any

import aiohttp

from bot.channels.whatsapp.ids import address
from bot.channels.whatsapp.inbound import _int
from bot.outbox.store import SendError

log = logging.getLogger(__name__)

# Graph API error codes (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)
THROUGHPUT = 130429  # too many messages per second from this number
PAIR_RATE = 131056  # too many messages to one recipient in a short time
OUTSIDE_WINDOW = 131047  # more than 24 hours since the resident's last message
RETRY_CODES = frozenset({1, 2, 4, 80007, 131000, 131016, 133004, THROUGHPUT, PAIR_RATE})
AUTH_CODES = frozenset({0, 3, 10, 190, 200})  # a token problem the operator can fix: keep rows
WINDOW_CODES = frozenset({OUTSIDE_WINDOW, 470})


class GraphError(Exception):
    """An error answer from the Graph API."""

    def __init__(self, http_status: int, code: int | None, message: str, details: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({details})" if details else ""))
        self.http_status = http_status
        self.code = code
        self.message = message
        self.details = details


def classify(code: int | None, http_status: int, reason: str) -> SendError:
    """Map a Graph API error onto the outbox's rules."""
    label = str(code) if code is not None else str(http_status)  # counted in /metrics
    if code == THROUGHPUT:
        return SendError(reason, retry_after=2.0, code=label)  # pause the whole number a little
    if code in WINDOW_CODES:
        return SendError(reason, wait_for_contact=True, code=label)
    if code in RETRY_CODES or code in AUTH_CODES:
        if code in AUTH_CODES:
            log.error("WhatsApp refused our credentials (%s); check WHATSAPP_TOKEN", reason)
        return SendError(reason, code=label)  # exponential backoff (131056: only this recipient waits)
    if code is None and (http_status >= 500 or http_status == 429):
        return SendError(reason, code=label)
    return SendError(reason, permanent=True, code=label)


class GraphClient:
    """The two Cloud API calls we need: send a message, upload a file."""

    def __init__(self, token: str, phone_number_id: str, api_base: str, timeout: float = 30.0) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.api_base = api_base.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, headers={"Authorization": f"Bearer {self.token}"})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.api_base}/{self.phone_number_id}/{path}"
        async with self.session.post(url, **kwargs) as resp:
            try:
                data = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                data = None
            if resp.status >= 400 or not isinstance(data, dict) or "error" in data:
                err = (data or {}).get("error") if isinstance(data, dict) else None
                if not isinstance(err, dict):
                    raise GraphError(resp.status, None, f"HTTP {resp.status}")
                raise GraphError(resp.status, _int(err.get("code")), str(err.get("message") or ""),
                                 (err.get("error_data") or {}).get("details"))
            return data

    async def send(self, to: str, message: dict[str, Any]) -> str:
        data = await self._call("messages", json={"messaging_product": "whatsapp",
                                                  "recipient_type": "individual",
                                                  **address(to), **message})
        try:
            return str(data["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise GraphError(200, None, "no message id in the answer") from None

    async def download(self, media_id: str, limit: int = 16 * 1024 * 1024) -> tuple[bytes, str | None]:
        """A resident's media: look up its short-lived URL, then fetch it (with the token)."""
        url = f"{self.api_base}/{media_id}"
        async with self.session.get(url) as resp:
            info = await resp.json(content_type=None)
            if resp.status >= 400 or not isinstance(info, dict) or not info.get("url"):
                raise GraphError(resp.status, None, f"media {media_id} not available")
        if int(info.get("file_size") or 0) > limit:
            raise GraphError(413, None, f"media {media_id} too large ({info.get('file_size')} bytes)")
        async with self.session.get(str(info["url"])) as resp:
            if resp.status >= 400:
                raise GraphError(resp.status, None, f"media {media_id}: HTTP {resp.status}")
            data = await resp.content.read(limit + 1)
        if len(data) > limit:
            raise GraphError(413, None, f"media {media_id} too large")
        return data, info.get("mime_type")

    async def upload(self, path: str) -> str:
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", Path(path).read_bytes(), filename=Path(path).name, content_type=mime)
        data = await self._call("media", data=form)
        return str(data["id"])
