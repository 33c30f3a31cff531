"""Who may call what: the API key for every route but the public probes, sessions, signed URLs.

With `server.auth_enabled` a request is let in by any of:
- the API key, as `X-API-Key: KEY` or `Authorization: Bearer KEY` (constant-time comparison);
- the web UI's session cookie: the login form checks the key once and sets an HttpOnly
  cookie holding a signed, expiring session token, so the key itself never sits in the
  browser (JavaScript cannot read the cookie, and it is only sent to this origin); logging
  out ends that session for good (`sessions.py`);
- for media only, a signed URL (`exp` + `sig`, see `signing.py`), so a `<video>` tag or a
  notification can fetch one clip's video and snapshot for a short time.
No credentials at all answers 401; an expired or tampered signature answers 403. A client
address that presented too many wrong keys answers 429 until its window has passed
(`homesec.throttle`, shared with the FTP server's passwords).
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from homesec.api.sessions import UiSessions
from homesec.api.signing import Signer, Verdict, media_message
from homesec.throttle import GuessThrottle

API_KEY_HEADER = "X-API-Key"
SESSION_COOKIE = "homesec_session"


class Authenticator:
    def __init__(
        self,
        api_key: str | None,
        signer: Signer,
        sessions: UiSessions,
        throttle: GuessThrottle | None = None,
    ) -> None:
        self._api_key = api_key
        self.signer = signer
        self.sessions = sessions
        self._throttle = throttle or GuessThrottle("API key")

    @property
    def enabled(self) -> bool:
        return self._api_key is not None

    def key_matches(self, presented: str, client: str) -> bool:
        """Whether `presented` is the key; a wrong one counts against `client`'s address."""
        if self._api_key is None:
            return True
        matches = hmac.compare_digest(presented.encode(), self._api_key.encode())
        if not matches:
            self._throttle.failed(client)
        return matches

    def retry_after_s(self, client: str) -> float | None:
        """Seconds the client must wait after too many wrong keys; None when it may try."""
        return self._throttle.retry_after_s(client)

    def is_authenticated(self, request: Request) -> bool:
        """Auth off, or the request carries the key or a valid session cookie.

        Raises the 429 HTTPException while the client is locked out for wrong keys.
        """
        if not self.enabled:
            return True
        presented = request.headers.get(API_KEY_HEADER) or _bearer(request)
        if presented is not None:
            client = client_address(request)
            wait_s = self.retry_after_s(client)
            if wait_s is not None:
                raise HTTPException(
                    status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                    detail="too many wrong API keys from this address; try again later",
                    headers={"Retry-After": str(max(1, round(wait_s)))},
                )
            return self.key_matches(presented, client)
        session = request.cookies.get(SESSION_COOKIE)
        return session is not None and self.sessions.is_valid(session)


def authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


async def require_key(request: Request) -> None:
    """Dependency of every protected route: the key (header) or a UI session."""
    if not authenticator(request).is_authenticated(request):
        raise _unauthorized()


async def require_media_access(request: Request) -> None:
    """Dependency of the media routes: the key, a UI session, or a signed URL for this clip."""
    auth = authenticator(request)
    if auth.is_authenticated(request):
        return
    expires, sig = request.query_params.get("exp"), request.query_params.get("sig")
    if expires is None or sig is None:
        raise _unauthorized()
    match auth.signer.verify(media_message(request.path_params["clip_id"]), expires, sig):
        case Verdict.EXPIRED:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "signed URL expired")
        case Verdict.INVALID:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid signature")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid API key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None
