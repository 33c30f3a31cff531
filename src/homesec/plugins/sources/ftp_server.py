"""The FTP server behind the `ftp` source: pyftpdlib in a thread, shared by the cameras that
are configured with the same listen address (host, port).

FTP users' home is `{root_dir}/incoming/`, with one folder per camera (`ftp_subdir`). A user
may create folders and store files inside the folders of the cameras that name that user,
nothing else: no reads, deletes, renames, appends or resumed uploads. Every path is checked
before pyftpdlib acts on it; traversal (`..`), backslashes, control characters, odd names,
non-video files and paths outside the user's camera folders are refused (550) and logged.
An address that gives too many wrong passwords is refused, even the right one, for the rest
of a minute (`homesec.throttle`, the same rule as the API's keys).
Each upload writes a part file of its own (two uploads of one name at once never mix); a
completed one goes to its camera's `on_upload` with the name it was sent under; an aborted,
reset or oversized one is deleted. Callbacks run on the server thread and must not block.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pyftpdlib.exceptions import AuthenticationFailed  # type: ignore[import-untyped]
from pyftpdlib.handlers import DTPHandler, FTPHandler  # type: ignore[import-untyped]
from pyftpdlib.ioloop import IOLoop, _RetryError  # type: ignore[import-untyped]
from pyftpdlib.servers import FTPServer  # type: ignore[import-untyped]

from homesec.errors import StartupError
from homesec.models.clip import VIDEO_EXTENSIONS
from homesec.throttle import GuessThrottle

logger = logging.getLogger(__name__)
# pyftpdlib installs its own stderr handler (bypassing our redacting formatter) when its logger
# has none; a NullHandler keeps its records flowing to the application's handlers instead.
logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())

ANONYMOUS_USERS = frozenset({"anonymous", "ftp"})
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+@()-]{0,127}$")
_MAX_DEPTH = 8
_POLL_S = 0.2
_PATH_COMMANDS = frozenset(
    {"APPE", "CWD", "XCWD", "DELE", "LIST", "NLST", "MDTM", "MFMT", "MKD", "XMKD", "MLSD"}
    | {"MLST", "RETR", "RMD", "XRMD", "RNFR", "RNTO", "SIZE", "STAT", "STOR", "STOU", "SITE"}
)
_PART_SUFFIX = ".part"
# A resumed or appended upload would stitch onto a part already deleted as incomplete.
_REFUSED_COMMANDS = frozenset({"APPE", "STOU", "REST"})


class LoginRefusal(StrEnum):
    """Why a login was refused; the value is the FTP client's 530 reply."""

    THROTTLED = "Too many wrong passwords from this address; try again later."
    ANONYMOUS = "Anonymous logins are not allowed."
    BAD_CREDENTIALS = "Authentication failed."


@dataclass(frozen=True)
class ServerSettings:
    """What every camera sharing one server must agree on."""

    host: str
    port: int
    root_dir: Path
    passive_ports: tuple[int, int] | None
    masquerade_address: str | None
    login_failure_delay_s: float


@dataclass(frozen=True)
class CameraRoute:
    """One camera on a server: its folder, its user and where finished clips go."""

    camera_name: str
    subdir: str
    username: str
    password: str
    max_file_size_bytes: int
    on_upload: Callable[[Path, str, str], None]
    """Called on the server thread with a completed upload (its part file), the name it was
    sent under and the uploader's address."""


class FtpServer:
    """One listening FTP server and the cameras it serves."""

    def __init__(self, settings: ServerSettings, throttle: GuessThrottle | None = None) -> None:
        self.settings = settings
        self._throttle = throttle or GuessThrottle("FTP password")
        self.incoming = settings.root_dir / "incoming"
        self._routes: dict[str, CameraRoute] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ftpd: Any = None

    # --- lifecycle (event loop side, under the registry lock)

    def attach(self, route: CameraRoute) -> None:
        with self._lock:
            for other in self._routes.values():
                if other.subdir == route.subdir:
                    raise StartupError(
                        f"cameras {other.camera_name!r} and {route.camera_name!r} "
                        f"share the FTP folder {route.subdir!r}"
                    )
                if other.username == route.username and not _same(other.password, route.password):
                    raise StartupError(
                        f"cameras {other.camera_name!r} and {route.camera_name!r} use the FTP "
                        f"user {route.username!r} with different passwords"
                    )
            (self.incoming / route.subdir).mkdir(parents=True, exist_ok=True)
            self._routes[route.subdir] = route

    def detach(self, route: CameraRoute) -> bool:
        """Remove a camera; True when no camera is left."""
        with self._lock:
            self._routes.pop(route.subdir, None)
            return not self._routes

    def start(self) -> None:
        self.incoming.mkdir(parents=True, exist_ok=True)
        _discard_leftovers(self.incoming)
        try:
            self._ftpd = FTPServer(
                (self.settings.host, self.settings.port), self._handler_class(), ioloop=IOLoop()
            )
        except OSError as exc:
            raise StartupError(
                f"FTP server cannot listen on {self.settings.host}:{self.settings.port}: {exc}",
                cause=exc,
            ) from exc
        name = f"ftp-server:{self.settings.host}:{self.settings.port}"
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _serve(self) -> None:
        # Polling in short slices lets stop() end the loop from another thread.
        try:
            while not self._stopping.is_set():
                self._ftpd.ioloop.loop(timeout=_POLL_S, blocking=False)
        except Exception:
            logger.exception("FTP server on port %d crashed", self.settings.port)
        finally:
            self._ftpd.close_all()

    def _handler_class(self) -> type:
        settings = self.settings
        attrs: dict[str, Any] = {
            "hub": self,
            "authorizer": self,
            "banner": "HomeSec FTP ready.",
            "auth_failed_timeout": settings.login_failure_delay_s,
            "masquerade_address": settings.masquerade_address,
            "passive_ports": (
                list(range(settings.passive_ports[0], settings.passive_ports[1] + 1))
                if settings.passive_ports
                else None
            ),
        }
        return type("HomeSecFTPHandler", (_CameraHandler,), attrs)

    # --- pyftpdlib's authorizer interface, answered from the attached cameras (server thread)

    def validate_authentication(
        self, username: str, password: str, handler: _CameraHandler
    ) -> None:
        handler.login_refusal = refusal = self._login_refusal(username, password, handler.remote_ip)
        if refusal is not None:
            raise AuthenticationFailed(refusal.value)

    def _login_refusal(self, username: str, password: str, client: str) -> LoginRefusal | None:
        """Why this login from `client` is refused, or None; a wrong one counts against it."""
        if self._throttle.retry_after_s(client) is not None:
            return LoginRefusal.THROTTLED
        if username.lower() in ANONYMOUS_USERS:
            refusal = LoginRefusal.ANONYMOUS
        elif any(_same(route.password, password) for route in self._routes_of(username)):
            return None
        else:
            refusal = LoginRefusal.BAD_CREDENTIALS
        self._throttle.failed(client)
        return refusal

    def _routes_of(self, username: str) -> list[CameraRoute]:
        with self._lock:
            return [route for route in self._routes.values() if route.username == username]

    def has_user(self, username: str) -> bool:
        return bool(self._routes_of(username))

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        # e: change folder, l: list, anywhere in the home; w: store, m: mkdir, in own folders.
        if perm in "el":
            return True
        route = self._route_of(Path(path)) if perm in "wm" and path is not None else None
        return route is not None and route.username == username

    def get_home_dir(self, username: str) -> str:
        return str(self.incoming)

    def get_perms(self, username: str) -> str:
        return "elwm"

    def get_msg_login(self, username: str) -> str:
        return "Welcome."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."

    def impersonate_user(self, username: str, password: str) -> None:
        return None

    def terminate_impersonation(self, username: str) -> None:
        return None

    # --- decisions (server thread)

    def write_refusal(self, username: str, virtual_path: str, is_file: bool) -> str | None:
        """Why storing (or creating a folder at) this virtual path is refused, or None."""
        parts = [part for part in virtual_path.split("/") if part]
        with self._lock:
            route = self._routes.get(parts[0]) if parts else None
        if route is None or len(parts) < 2:
            return "not inside a camera folder"
        if route.username != username:
            return f"the folder of camera {route.camera_name!r} is not this user's"
        if len(parts) > _MAX_DEPTH or not all(_PLAIN_NAME.match(part) for part in parts):
            return "odd name"
        if is_file and Path(parts[-1]).suffix.lower() not in VIDEO_EXTENSIONS:
            return "not a video file"
        return None

    def upload_limit(self, fs_path: str) -> int | None:
        route = self._route_of(Path(fs_path))
        return route.max_file_size_bytes if route else None

    def finish_upload(self, fs_path: str, remote: str) -> None:
        path = Path(fs_path)
        route = self._route_of(path)
        if route is None:
            self.discard_upload(fs_path, remote, "its camera has stopped")
            return
        route.on_upload(path, sent_name(path), remote)

    def discard_upload(self, fs_path: str, remote: str, why: str) -> None:
        path = Path(fs_path)
        route = self._route_of(path)
        path.unlink(missing_ok=True)
        logger.warning(
            "Discarded the upload of %s from %s: %s",
            sent_name(path),
            remote,
            why,
            extra={"camera_name": route.camera_name if route else None},
        )

    def _route_of(self, fs_path: Path) -> CameraRoute | None:
        try:
            parts = fs_path.relative_to(self.incoming).parts
        except ValueError:
            return None
        with self._lock:
            return self._routes.get(parts[0]) if len(parts) > 1 else None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def part_for(fs_path: str) -> str:
    """The file an upload to `fs_path` writes: hidden, and its own (a random token)."""
    path = Path(fs_path)
    return str(path.with_name(f".{secrets.token_hex(8)}.{path.name}{_PART_SUFFIX}"))


def sent_name(part: Path) -> str:
    """The name an upload was sent under, from its part file."""
    name = part.name
    if not (name.startswith(".") and name.endswith(_PART_SUFFIX)):
        return name
    return name[1:].removesuffix(_PART_SUFFIX).split(".", 1)[-1]


def _discard_leftovers(incoming: Path) -> None:
    # A file here at start-up was being uploaded when the previous run ended: incomplete.
    for folder, _, files in os.walk(incoming):
        for name in files:
            Path(folder, name).unlink(missing_ok=True)
            logger.warning("Discarded an unfinished upload left from the last run: %s", name)


class _UploadDTP(DTPHandler):  # type: ignore[misc]
    """The data connection of an upload: a reset breaks it, and so does passing the size limit."""

    def recv(self, buffer_size: int) -> bytes:
        try:
            data: bytes = self.socket.recv(buffer_size)
        except (ConnectionResetError, ConnectionAbortedError):
            # pyftpdlib takes a reset for the end of the file; for an upload it is a break.
            self._resp = ("426 Connection reset; transfer aborted.", logger.debug)
            self.close()
            return b""
        except (BlockingIOError, InterruptedError) as exc:
            raise _RetryError from exc
        if not data:
            self.handle_close()
        return data

    def handle_read(self) -> None:
        super().handle_read()
        limit = self.cmd_channel.upload_limit
        if not self._closed and limit is not None and self.tot_bytes_received > limit:
            self.cmd_channel.oversized = True
            self._resp = ("552 The clip exceeds the size limit; transfer aborted.", logger.debug)
            self.close()

    # pyftpdlib binds this alias to the base method at class creation.
    handle_read_event = handle_read

    def close(self) -> None:
        # pyftpdlib answers 226 before it reports the file: a completed upload is on disk
        # and handed over (out of FTP reach) first, so a crash after the 226 loses nothing.
        finished = self.receive and self.transfer_finished and not self._closed
        if finished and self.file_obj is not None and not self.file_obj.closed:
            self._hand_over(self.file_obj)
        super().close()

    def _hand_over(self, file: Any) -> None:
        try:
            file.flush()
            os.fsync(file.fileno())
            file.close()
            self.cmd_channel.hub.finish_upload(file.name, self.cmd_channel.remote_ip)
        except OSError:
            logger.exception("Cannot spool the upload %s", file.name)


class _CameraHandler(FTPHandler):  # type: ignore[misc]
    """pyftpdlib's control connection, with HomeSec's checks and upload hooks."""

    hub: FtpServer
    dtp_handler = _UploadDTP
    upload_limit: int | None = None
    oversized = False
    login_refusal: LoginRefusal | None = None

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        refusal = self._refusal(cmd, arg) if self.authenticated else None
        if refusal is None:
            super().pre_process_command(line, cmd, arg)
            return
        self.respond(f"550 Refused: {refusal}.")
        logger.warning(
            "FTP %s %r by %r from %s refused: %s",
            cmd,
            arg,
            self.username,
            self.remote_ip,
            refusal,
        )

    def _refusal(self, cmd: str, arg: str) -> str | None:
        if cmd in _REFUSED_COMMANDS:
            return "appending, resuming and unique names are not supported"
        if cmd not in _PATH_COMMANDS or not arg:
            return None
        if ".." in arg.split("/"):
            return "path traversal"
        if "\\" in arg or any(ord(char) < 32 or ord(char) == 127 for char in arg):
            return "odd name"
        if cmd in ("STOR", "MKD", "XMKD"):
            refusal = self.hub.write_refusal(self.username, self.fs.ftpnorm(arg), cmd == "STOR")
            if refusal is None and cmd == "STOR":
                self.upload_limit = self.hub.upload_limit(self.fs.ftp2fs(arg))
                self.oversized = False
            return refusal
        return None

    def log(self, msg: str, logfun: Any = None) -> None:
        # Session chatter (connects, health probes) at DEBUG; HomeSec logs what matters itself.
        super().log(msg, logfun=logging.getLogger("pyftpdlib").debug)

    def on_login_failed(self, username: str, password: str) -> None:
        match self.login_refusal:
            case LoginRefusal.THROTTLED:
                return  # the throttle logs the lockout once per window, not every attempt
            case LoginRefusal.ANONYMOUS:
                reason = "anonymous login"
            case _:
                reason = "bad credentials"
        logger.warning(
            "FTP login refused for user %r from %s: %s",
            username,
            self.remote_ip,
            reason,
        )

    def ftp_STOR(self, file: str, mode: str = "w") -> Any:
        # Each upload writes a part file of its own: uploads of one name at once never mix.
        return super().ftp_STOR(part_for(file), mode)

    def on_file_received(self, file: str) -> None:
        if not Path(file).exists():
            return  # handed over before the 226 (see _UploadDTP.close)
        try:
            self.hub.finish_upload(file, self.remote_ip)
        except OSError:
            logger.exception("Cannot spool the upload %s", file)

    def on_incomplete_file_received(self, file: str) -> None:
        why = "over the size limit" if self.oversized else "the transfer did not complete"
        self.hub.discard_upload(file, self.remote_ip, why)


_servers: dict[tuple[str, int], FtpServer] = {}
_servers_lock = threading.Lock()


def acquire(settings: ServerSettings, route: CameraRoute) -> FtpServer:
    """The server for `settings`' address, started when it is the first camera there."""
    key = (settings.host, settings.port)
    with _servers_lock:
        server = _servers.get(key)
        if server is not None:
            if server.settings != settings:
                raise StartupError(
                    f"camera {route.camera_name!r} shares the FTP server {key[0]}:{key[1]} with "
                    "other cameras but not its settings (root_dir, passive_ports, "
                    "masquerade_address, login_failure_delay_s must match)"
                )
            server.attach(route)
            return server
        server = FtpServer(settings)
        server.attach(route)
        server.start()
        _servers[key] = server
        return server


def release(server: FtpServer, route: CameraRoute) -> None:
    """Detach a camera; the last one out stops the server."""
    with _servers_lock:
        if server.detach(route):
            server.stop()
            _servers.pop((server.settings.host, server.settings.port), None)
