"""Expiring HMAC signatures: the one token helper behind signed media URLs and UI sessions.

A signature binds a message (what it grants, e.g. `video:{clip_id}`) to an expiry time, with
HMAC-SHA256 under a secret. With auth on, the secret is derived from the API key, so links
and sessions survive a restart and die when the key changes; without a key (auth off) a
random per-process secret is used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple
from urllib.parse import quote, urlencode

_KEY_DERIVATION_LABEL = b"homesec-signing-v1"


class Verdict(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


class Signature(NamedTuple):
    expires: int
    sig: str


class Signer:
    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    @classmethod
    def for_api_key(cls, api_key: str | None) -> Signer:
        if api_key is None:
            return cls(secrets.token_bytes(32))
        return cls(hmac.digest(api_key.encode(), _KEY_DERIVATION_LABEL, hashlib.sha256))

    def sign(self, message: str, ttl_s: float) -> Signature:
        expires = int(self._clock() + ttl_s)
        return Signature(expires, self._mac(message, expires))

    def verify(self, message: str, expires: int, sig: str) -> Verdict:
        # Compare first, so an expired-but-forged signature is reported as forged.
        if not hmac.compare_digest(sig.encode(), self._mac(message, expires).encode()):
            return Verdict.INVALID
        return Verdict.VALID if self._clock() < expires else Verdict.EXPIRED

    def token(self, message: str, ttl_s: float) -> str:
        """`expires.sig` in one string (a cookie value)."""
        expires, sig = self.sign(message, ttl_s)
        return f"{expires}.{sig}"

    def verify_token(self, message: str, token: str) -> Verdict:
        expires, _, sig = token.partition(".")
        if not expires.isdigit() or not sig:
            return Verdict.INVALID
        return self.verify(message, int(expires), sig)

    def _mac(self, message: str, expires: int) -> str:
        digest = hmac.digest(self._secret, f"{message}\n{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


MEDIA_TTL_S = 15 * 60
MEDIA_KINDS = ("video", "snapshot")


def media_message(clip_id: str, kind: str) -> str:
    """What a media signature grants: one kind of one clip."""
    return f"{kind}:{clip_id}"


def signed_media_url(signer: Signer, clip_id: str, kind: str, ttl_s: float = MEDIA_TTL_S) -> str:
    """A relative URL of a clip's video or snapshot that plays without the API key."""
    expires, sig = signer.sign(media_message(clip_id, kind), ttl_s)
    query = urlencode({"exp": expires, "sig": sig})
    return f"/api/v1/clips/{quote(clip_id, safe='')}/{kind}?{query}"
