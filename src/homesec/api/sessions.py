"""The web UI's sessions: signed cookie tokens with an id, and logouts that end them for good.

A session token is `{id}.{expires}.{sig}`, signed by the one token helper (`signing.py`) over
the session's random id and the current generation of sessions. Logging out revokes that id
until the session would have expired: a copy of the cookie is refused from then on, also after
a restart, because the revoked ids (with their expiry) are kept in a small JSON file in the
work folder.

Why a list of revoked sessions rather than a table of live ones: logging in stays stateless
(any number of browsers, nothing written), only a logout writes, and an entry is dropped once
its session would have expired anyway, so the file holds a few lines. A file that cannot be
read fails closed: a new generation starts, which ends every session issued until then, and
users log in again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from homesec.api.signing import Signer, Verdict

logger = logging.getLogger(__name__)

SESSION_TTL_S = 7 * 24 * 3600


class _Revocations(BaseModel):
    """The file's content."""

    model_config = ConfigDict(extra="forbid")

    revoked: dict[str, int] = Field(default_factory=dict)
    """Session id -> the expiry of that session (epoch seconds)."""
    generation: str = ""
    """Part of every session's signature; a new one ended all earlier sessions at once."""


class UiSessions:
    """Issues, checks and ends UI sessions; `load()` once before serving."""

    def __init__(self, signer: Signer, revoked_file: Path) -> None:
        self._signer = signer
        self._file = revoked_file
        self._revocations = _Revocations()
        self._write_lock = asyncio.Lock()

    async def load(self) -> None:
        try:
            content = await asyncio.to_thread(self._file.read_bytes)
        except FileNotFoundError:
            return
        except OSError as exc:
            await self._end_all(f"cannot read it ({exc})")
            return
        try:
            self._revocations = _Revocations.model_validate_json(content)
        except ValidationError:
            await self._end_all("it is not a valid list of revoked sessions")
            return
        self._prune()

    def new(self) -> str:
        session_id = secrets.token_urlsafe(16)
        return f"{session_id}.{self._signer.token(self._message(session_id), SESSION_TTL_S)}"

    def is_valid(self, token: str) -> bool:
        session_id, _, signed = token.partition(".")
        verdict = self._signer.verify_token(self._message(session_id), signed)
        return verdict == Verdict.VALID and session_id not in self._revocations.revoked

    async def end(self, token: str) -> None:
        """Revoke the session `token` belongs to (nothing to do for an invalid token)."""
        if not self.is_valid(token):
            return
        # A valid token is `{id}.{expires}.{sig}`, its expiry digits.
        session_id, expires, _ = token.split(".", 2)
        self._prune()
        self._revocations.revoked[session_id] = int(expires)
        await self._save()

    def _message(self, session_id: str) -> str:
        """What a session signature grants: the UI session with this id, in this generation."""
        return f"ui-session:{self._revocations.generation}:{session_id}"

    def _prune(self) -> None:
        now = self._signer.now()
        revoked = self._revocations.revoked
        for session_id in [sid for sid, expires in revoked.items() if expires <= now]:
            del revoked[session_id]

    async def _end_all(self, why: str) -> None:
        logger.warning(
            "Ending every UI session (users log in again): the revoked-session file %s: %s",
            self._file,
            why,
        )
        self._revocations = _Revocations(generation=secrets.token_urlsafe(8))
        await self._save()

    async def _save(self) -> None:
        # Dumped under the lock, so the last write holds every revocation made before it.
        async with self._write_lock:
            content = self._revocations.model_dump_json(indent=1)
            try:
                await asyncio.to_thread(_replace, self._file, content)
            except OSError:
                logger.exception(
                    "Cannot write the revoked-session file %s: a logout holds until a restart",
                    self._file,
                )


def _replace(path: Path, content: str) -> None:
    # Written aside and renamed over, so a crash never leaves a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(content)
    partial.replace(path)
