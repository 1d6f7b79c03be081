"""Who is on the web chat, and what keeps it from being abused.

A resident on the web has no chat id: the page keeps an anonymous contact in a long-lived
cookie (a random id, HttpOnly, SameSite=Lax, Secure behind https). The CSRF token of every form
is an HMAC of that id, so it needs no server state and works across processes: a page of another
site can neither read the cookie nor compute the token.

Rate limits are token buckets per client address and per cookie contact, kept in this process:
several processes behind a load balancer each allow the rate (documented in the README).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

COOKIE = "prima_chat"
LANG_COOKIE = "prima_chat_lang"
COOKIE_AGE = 400 * 86400  # browsers cap cookies at about 400 days
ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,64}")


def new_contact_id() -> str:
    return secrets.token_urlsafe(18)  # 144 random bits, 24 characters


def contact_id(request: web.Request) -> str | None:
    """The cookie's contact id when it has the right shape (anything else is a new visitor)."""
    value = request.cookies.get(COOKIE, "")
    return value if ID_SHAPE.fullmatch(value) else None


def set_contact(response: web.StreamResponse, value: str, secure: bool) -> None:
    response.set_cookie(COOKIE, value, max_age=COOKIE_AGE, httponly=True, samesite="Lax",
                        secure=secure, path="/chat")


def csrf_token(cid: str) -> str:
    return hmac.new(cid.encode(), b"prima-webchat-csrf", hashlib.sha256).hexdigest()[:32]


def csrf_ok(cid: str | None, given: str) -> bool:
    return bool(cid) and hmac.compare_digest(csrf_token(cid or ""), given or "")


def client_address(request: web.Request) -> str:
    """The peer's address (behind a reverse proxy: the proxy's, unless it is this machine and
    sends X-Forwarded-For, whose last entry it added)."""
    peer = request.remote or "-"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and peer in ("127.0.0.1", "::1"):
        return forwarded.split(",")[-1].strip() or peer
    return peer


@dataclass
class Bucket:
    tokens: float
    at: float


class RateLimit:
    """Token buckets by key: ``rate`` per second, up to ``burst`` at once; at most ``keys`` kept."""

    def __init__(self, rate: float, burst: float, keys: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.keys, self.clock = rate, burst, keys, clock
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def allow(self, key: str, cost: float = 1.0) -> bool:
        now = self.clock()
        bucket = self._buckets.pop(key, None) or Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket  # most recent last; the oldest is forgotten first
        while len(self._buckets) > self.keys:
            self._buckets.popitem(last=False)
        if bucket.tokens < cost:
            return False
        bucket.tokens -= cost
        return True


@dataclass
class Limits:
    """The web chat's limits (per process). Posts: a resident answers a question every second or
    two; an address may be a whole office behind one NAT, so it gets more. Status lookups by
    ticket and secret are few, so guessing a secret takes years."""

    per_address: RateLimit
    per_contact: RateLimit
    lookups: RateLimit

    @classmethod
    def default(cls) -> Limits:
        return cls(per_address=RateLimit(rate=20.0, burst=120.0),
                   per_contact=RateLimit(rate=2.0, burst=20.0),
                   lookups=RateLimit(rate=5 / 60, burst=5.0))
