"""`ftp` source: cameras upload finished clips to a built-in FTP server.

Each camera has its own sub-folder (`ftp_subdir`) and user; cameras configured with the same
listen address (host, port) share one server (see `ftp_server`), so one port can serve a whole
house of cameras, each confined to its own folder. A clip is handed on only once its upload has
completed; partial, aborted and oversized uploads are deleted, never processed. Each finished
upload is moved out of FTP reach at once, into `{root_dir}/clips/{camera_name}/.arrivals/`
(kept across a crash), then named by the service's `ClipNamer` (the camera's name when it
follows the clip_id rule and is free, else the next free one; the upload time when the name
lacks the rule) and moved into `{root_dir}/clips/{camera_name}/` (the spool): every upload is
a clip of its own, also two uploads of one name at once, or a name used before.

Health: the server thread is alive and a periodic connection check gets the FTP greeting; each
successful check is the source's heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from homesec.errors import CheckFailed
from homesec.interfaces import SelfCheck, SourceConfig
from homesec.models.clip import Clip, is_valid_camera_name
from homesec.models.config import FolderPath
from homesec.models.enums import PluginType
from homesec.models.env import PlainEnv, SecretEnv
from homesec.plugins.registry import plugin
from homesec.plugins.sources.base import SourceBase
from homesec.plugins.sources.ftp_server import (
    ANONYMOUS_USERS,
    CameraRoute,
    FtpServer,
    ServerSettings,
    acquire,
    release,
)

logger = logging.getLogger(__name__)

BACKEND = "ftp"
_PROBE_TIMEOUT_S = 3.0
_WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}
_BIND_FIXES = {
    errno.EADDRINUSE: "another program listens there (a running HomeSec?): stop it or change port",
    errno.EACCES: "ports below 1024 need root: use a higher port (the default is 2121)",
    errno.EADDRNOTAVAIL: "host is not an address of this machine: use one of its own, or 0.0.0.0",
}


class FtpSourceConfig(SourceConfig):
    host: str = Field(
        default="0.0.0.0",
        description="Listen address; cameras with the same host and port share one server",
    )
    port: int = Field(default=2121, ge=1, le=65535, description="FTP control port")
    root_dir: FolderPath = Field(
        default=Path("var/ftp"),
        description="Server data folder: uploads land in incoming/{ftp_subdir}, finished clips "
        "are kept in clips/{camera_name}; the same for every camera sharing the server",
    )
    ftp_subdir: str | None = Field(
        default=None, description="Folder this camera uploads into (default: the camera name)"
    )
    username_env: PlainEnv = Field(description="Env var holding this camera's FTP user name")
    password_env: SecretEnv = Field(description="Env var holding this camera's FTP password")
    max_file_size_bytes: int = Field(
        default=1_073_741_824, gt=0, description="Uploads larger than this are aborted and deleted"
    )
    passive_ports: tuple[int, int] | None = Field(
        default=None,
        description="First and last port of the passive data range (open them in a firewall); "
        "default: any free port",
    )
    masquerade_address: str | None = Field(
        default=None, description="Address announced in passive replies when behind NAT/Docker"
    )
    login_failure_delay_s: float = Field(
        default=3.0,
        ge=0,
        le=60,
        description="Delay before answering a failed login (slows guessing)",
    )
    health_check_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between connection checks (the heartbeat)"
    )

    @field_validator("ftp_subdir")
    @classmethod
    def _plain_subdir(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_camera_name(value):
            raise ValueError("must be one folder name: letters, digits, '_' or '-'")
        return value

    @field_validator("passive_ports")
    @classmethod
    def _ordered_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1024 <= value[0] <= value[1] <= 65535:
            raise ValueError("must be [first, last] with 1024 <= first <= last <= 65535")
        return value

    @model_validator(mode="after")
    def _named_user(self) -> FtpSourceConfig:
        if self.username_env.value.lower() in ANONYMOUS_USERS | {""}:
            raise ValueError(f"{self.username_env.name}: anonymous FTP users are not allowed")
        if not self.password_env.value.get_secret_value():
            raise ValueError(f"{self.password_env.name}: the FTP password is empty")
        return self


@plugin(PluginType.SOURCE, BACKEND, config=FtpSourceConfig)
class FtpSource(SourceBase[FtpSourceConfig]):
    backend = BACKEND

    def __init__(self, config: FtpSourceConfig) -> None:
        super().__init__(config)
        self._root = config.root_dir.expanduser().resolve()
        self._spool = self._root / "clips" / config.camera_name
        self._arrivals = self._spool / ".arrivals"
        self._spooling: set[asyncio.Task[None]] = set()
        self._server: FtpServer | None = None
        self._route: CameraRoute | None = None
        self._check_ok = False

    async def _open(self) -> None:
        config = self._config
        settings = ServerSettings(
            host=config.host,
            port=config.port,
            root_dir=self._root,
            passive_ports=config.passive_ports,
            masquerade_address=config.masquerade_address,
            login_failure_delay_s=config.login_failure_delay_s,
        )
        self._route = CameraRoute(
            camera_name=self.camera_name,
            subdir=config.ftp_subdir or self.camera_name,
            username=config.username_env.value,
            password=config.password_env.value.get_secret_value(),
            max_file_size_bytes=config.max_file_size_bytes,
            on_upload=self._on_upload,
        )
        await asyncio.to_thread(self._arrivals.mkdir, parents=True, exist_ok=True)
        # Uploads that completed just before the last run ended are clips too.
        for staged in await asyncio.to_thread(sorted, self._arrivals.iterdir()):
            self._spool_soon(staged)
        self._server = await asyncio.to_thread(acquire, settings, self._route)
        await self._check()
        self._task = asyncio.create_task(
            self._check_periodically(), name=f"ftp-health:{self.camera_name}"
        )

    async def aclose(self) -> None:
        await self._cancel_task()
        if self._server is not None and self._route is not None:
            await asyncio.to_thread(release, self._server, self._route)
            # Uploads the server finished before it stopped are queued on the loop: hand
            # them on (a spooled upload is never lost: the next start finishes it).
            await asyncio.sleep(0)
            await asyncio.gather(*self._spooling, return_exceptions=True)
        self._server = None
        self._check_ok = False

    def is_healthy(self) -> bool:
        fresh = time.time() - self._heartbeat < 3 * self._config.health_check_interval_s + 5
        return self._server is not None and self._server.is_alive() and self._check_ok and fresh

    def self_checks(self) -> list[SelfCheck]:
        return [SelfCheck("listen port free", self._check_port)]

    async def _check_port(self, timeout_s: float) -> str:
        where = f"{self._config.host}:{self._config.port}"
        try:
            await asyncio.to_thread(_bind_once, self._config.host, self._config.port)
        except OSError as exc:
            fix = _BIND_FIXES.get(exc.errno or 0, "check host and port")
            reason = exc.strerror or type(exc).__name__
            raise CheckFailed(f"cannot listen on {where} ({reason}): {fix}", exc) from exc
        return f"{where} is free"

    def spooled_clips(self) -> list[Clip]:
        return self._clips_in(self._spool)

    def _on_upload(self, part: Path, sent_name: str, remote: str) -> None:
        """Server thread: move a completed upload out of FTP reach, then name it on the loop."""
        size = part.stat().st_size
        if size == 0:
            part.unlink()
            logger.warning(
                "Discarded the empty upload %s from %s", sent_name, remote, extra=self._log_extra
            )
            return
        # The part's random token keeps two uploads of one name apart here too.
        token = part.name[1:].split(".", 1)[0]
        staged = self._arrivals / f"{token}.{sent_name}"
        part.rename(staged)
        logger.info(
            "Received %s (%d bytes) from %s", sent_name, size, remote, extra=self._log_extra
        )
        if not self._on_loop(self._spool_soon, staged):
            logger.error("No event loop for %s; the next start takes it", sent_name)

    def _spool_soon(self, staged: Path) -> None:
        task = asyncio.create_task(self._spool_arrival(staged), name=f"ftp-spool:{staged.name}")
        self._spooling.add(task)
        task.add_done_callback(self._spooling.discard)

    async def _spool_arrival(self, staged: Path) -> None:
        """Name the upload as a new clip, move it into the spool and hand it on."""
        sent_name = staged.name.split(".", 1)[-1]
        try:
            arrived = (await asyncio.to_thread(staged.stat)).st_mtime
            # A name without the clip_id rule gets the upload's completion time.
            target = await self._names.claim(
                self.camera_name, int(arrived), staged.suffix, self._spool, wanted=sent_name
            )
            await asyncio.to_thread(staged.rename, target)
            clip = await asyncio.to_thread(self._clip_for, target)
        except OSError:
            logger.exception(
                "Cannot spool the upload %s; the next start tries again",
                sent_name,
                extra=self._log_extra,
            )
            return
        self._hand_on(clip, f", uploaded as {sent_name}")

    async def _check_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._config.health_check_interval_s)
            await self._check()

    async def _check(self) -> None:
        """Connect as a client would and expect the FTP greeting."""
        host = _WILDCARD_HOSTS.get(self._config.host, self._config.host)
        try:
            async with asyncio.timeout(_PROBE_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(host, self._config.port)
                try:
                    greeting = await reader.readline()
                    # Closing at once, before the server answers: TIME_WAIT stays on this
                    # side, not on the server's port (ftplib's QUIT waits for the answer).
                    writer.write(b"QUIT\r\n")
                    await writer.drain()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            self._check_ok = False
            logger.warning(
                "FTP server %s:%d does not answer: %s",
                host,
                self._config.port,
                exc,
                extra=self._log_extra,
            )
            return
        self._check_ok = greeting.startswith(b"220")
        if self._check_ok:
            self._heartbeat = time.time()


def _bind_once(host: str, port: int) -> None:
    """Bind the FTP server's address (and let it go): fails when it cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family):
        pass
