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
from urllib.parse import quote

_KEY_DERIVATION_LABEL = b"homesec-signing-v1"


class Verdict(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


class Signer:
    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    @classmethod
    def for_api_key(cls, api_key: str | None) -> Signer:
        if api_key is None:
            return cls(secrets.token_bytes(32))
        return cls(hmac.digest(api_key.encode(), _KEY_DERIVATION_LABEL, hashlib.sha256))

    def now(self) -> float:
        return self._clock()

    def sign(self, message: str, expires: int) -> str:
        digest = hmac.digest(self._secret, f"{message}\n{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def verify(self, message: str, expires: str, sig: str) -> Verdict:
        """Check `sig` over `message` until `expires` (epoch seconds, as the client sent them)."""
        # isascii: str.isdigit also takes digits such as "²" that int() refuses.
        if not (expires.isascii() and expires.isdigit()) or not sig:
            return Verdict.INVALID
        # Compare first, so an expired-but-forged signature is reported as forged.
        if not hmac.compare_digest(sig.encode(), self.sign(message, int(expires)).encode()):
            return Verdict.INVALID
        return Verdict.VALID if self._clock() < int(expires) else Verdict.EXPIRED

    def token(self, message: str, ttl_s: float) -> str:
        """`expires.sig` in one string (a cookie value)."""
        expires = int(self._clock() + ttl_s)
        return f"{expires}.{self.sign(message, expires)}"

    def verify_token(self, message: str, token: str) -> Verdict:
        expires, _, sig = token.partition(".")
        return self.verify(message, expires, sig)


MEDIA_TTL_S = 15 * 60


def media_message(clip_id: str) -> str:
    """What a media signature grants: the media (video and snapshot) of one clip."""
    return f"media:{clip_id}"


class MediaLinks(NamedTuple):
    video: str
    snapshot: str


def signed_media_links(signer: Signer, clip_id: str, ttl_s: float = MEDIA_TTL_S) -> MediaLinks:
    """Relative URLs of a clip's video and snapshot that work without the API key."""
    return _links(signer, clip_id, int(signer.now() + ttl_s))


class MediaLinker:
    """Signed media links for listed clips, each signed once a minute however often listed.

    Expiry times are cut on minute boundaries (`ttl_s` to `ttl_s` + 60 s ahead), so within a
    minute a clip's links are the same and one HMAC serves every page that shows it.
    """

    def __init__(self, signer: Signer, ttl_s: float = MEDIA_TTL_S) -> None:
        self._signer = signer
        self._ttl_s = ttl_s
        self._expires = 0
        self._links: dict[str, MediaLinks] = {}

    def links(self, clip_id: str) -> MediaLinks:
        expires = (int(self._signer.now() + self._ttl_s) // 60 + 1) * 60
        if expires != self._expires:
            self._expires, self._links = expires, {}
        found = self._links.get(clip_id)
        if found is None:
            found = self._links[clip_id] = _links(self._signer, clip_id, expires)
        return found


def _links(signer: Signer, clip_id: str, expires: int) -> MediaLinks:
    # One signature covers both media of the clip: one HMAC per listed clip, not two.
    sig = signer.sign(media_message(clip_id), expires)
    base = f"/api/v1/clips/{quote(clip_id, safe='')}"
    query = f"exp={expires}&sig={sig}"  # digits and base64url: nothing to escape
    return MediaLinks(f"{base}/video?{query}", f"{base}/snapshot?{query}")
