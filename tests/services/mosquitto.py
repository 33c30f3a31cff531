"""Real Mosquitto brokers for tests, and a subscriber that collects what they deliver.

- `mqtt_broker`: the machine's shared Mosquitto on 127.0.0.1:1883 (started, or installed, when
  missing). Never stopped by tests; use `mqtt_topic_prefix` so runs do not see each other.
- `throwaway_broker`: a private Mosquitto on a free port that a test may `stop()` and `start()`
  again on the same port (outage tests) or `pause()` (a hung broker); `make_throwaway_broker`
  builds more, optionally with users and passwords.
- `MQTTSubscriber`: `async with MQTTSubscriber(broker, "prefix/#") as sub:` then
  `await sub.next()`, `await sub.collect(3)` or `await sub.expect_silence(0.5)`; with
  `session="id"` it keeps what is published while it is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import aiomqtt
import pytest

SHARED_HOST = "127.0.0.1"
SHARED_PORT = 1883
SHARED_CONFIG = Path("/etc/mosquitto/mosquitto.conf")
_READY_TIMEOUT_S = 10.0


# The MQTT alert payload of SPEC.md section 3: exactly these fields.
ALERT_CONTRACT_FIELDS = {
    "clip_id",
    "camera_name",
    "storage_uri",
    "view_url",
    "risk_level",
    "activity_type",
    "notify_reason",
    "summary",
    "ts",
    "dedupe_key",
    "upload_failed",
}


@dataclass(frozen=True)
class BrokerAddress:
    """Where a test broker listens."""

    host: str
    port: int


def _accepts_connections(address: BrokerAddress) -> bool:
    with (
        contextlib.suppress(OSError),
        socket.create_connection((address.host, address.port), timeout=0.5),
    ):
        return True
    return False


def _wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _mosquitto_binary() -> str:
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if binary is None:
        # Tests need a real broker; install it the way the dev container does.
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "mosquitto"]):
            subprocess.run(command, check=True, capture_output=True)
        binary = shutil.which("mosquitto", path="/usr/sbin:/usr/bin")
    if binary is None:
        raise RuntimeError("mosquitto is not installed (apt-get install -y mosquitto)")
    return binary


@pytest.fixture(scope="session")
def mqtt_broker() -> BrokerAddress:
    """The shared Mosquitto at 127.0.0.1:1883, started when it is not running."""
    address = BrokerAddress(SHARED_HOST, SHARED_PORT)
    if not _accepts_connections(address):
        subprocess.run([_mosquitto_binary(), "-d", "-c", str(SHARED_CONFIG)], check=True)
        _wait_until(lambda: _accepts_connections(address), f"mosquitto on {address}")
    return address


@pytest.fixture
def mqtt_topic_prefix() -> str:
    """A topic prefix no other test (or earlier run) uses."""
    return f"homesec-test/{uuid.uuid4().hex}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((SHARED_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class ThrowawayBroker:
    """A private Mosquitto process on a fixed free port; stop() and start() simulate outages."""

    def __init__(
        self, work_dir: Path, users: dict[str, str] | None = None, *, tls: bool = False
    ) -> None:
        self.address = BrokerAddress(SHARED_HOST, _free_port())
        self._work_dir = work_dir
        self._binary = _mosquitto_binary()
        work_dir.mkdir(parents=True, exist_ok=True)
        self.ca_file = _self_signed_certificate(work_dir) if tls else None
        self._config = self._write_config(users or {})
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return self.address.host

    @property
    def port(self) -> int:
        return self.address.port

    @property
    def log_file(self) -> Path:
        return self._work_dir / "mosquitto.log"

    def start(self) -> None:
        """Start the broker (same port every time) and wait until it accepts connections."""
        if self._process is not None:
            return
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [self._binary, "-c", str(self._config)], stdout=log, stderr=subprocess.STDOUT
            )
        _wait_until(self._ready, f"throwaway mosquitto on {self.address}")

    def stop(self) -> None:
        """Stop the broker; connected clients see their connection drop."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """Freeze the broker: connections stay open but nothing is answered (a hung broker)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo pause()."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            log = self.log_file.read_text(errors="replace")
            raise RuntimeError(f"mosquitto exited with {self._process.returncode}:\n{log}")
        return _accepts_connections(self.address)

    def _write_config(self, users: dict[str, str]) -> Path:
        lines = [
            f"listener {self.port} {self.host}",
            *(_tls_lines(self.ca_file) if self.ca_file else []),
            # Persistent sessions survive a restart, so a test subscriber's queue does too.
            "persistence true",
            f"persistence_location {self._work_dir}/",
            "log_dest stdout",
            "log_type all",
            # Running as root, mosquitto would switch to the `mosquitto` user and lose access
            # to this private folder.
            "user root",
        ]
        if users:
            lines += ["allow_anonymous false", f"password_file {self._write_passwords(users)}"]
        else:
            lines.append("allow_anonymous true")
        config = self._work_dir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _write_passwords(self, users: dict[str, str]) -> Path:
        password_file = self._work_dir / "passwords"
        password_file.touch(mode=0o600)
        tool = shutil.which("mosquitto_passwd") or "mosquitto_passwd"
        for user, password in users.items():
            subprocess.run([tool, "-b", str(password_file), user, password], check=True)
        return password_file


def _self_signed_certificate(work_dir: Path) -> Path:
    """A certificate for `localhost` only (not 127.0.0.1), so hostname checks can fail."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(work_dir / "broker.key"), "-out", str(work_dir / "broker.crt"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return work_dir / "broker.crt"


def _tls_lines(certificate: Path) -> list[str]:
    key = certificate.with_suffix(".key")
    return [f"cafile {certificate}", f"certfile {certificate}", f"keyfile {key}"]


@pytest.fixture
def make_throwaway_broker(tmp_path: Path) -> Iterator[Callable[..., ThrowawayBroker]]:
    """Builds started private brokers: `users={"name": "password"}` turns auth on, `tls=True`
    serves TLS with a self-signed certificate for `localhost` (trust it with `broker.ca_file`).
    """
    brokers: list[ThrowawayBroker] = []

    def make(users: dict[str, str] | None = None, *, tls: bool = False) -> ThrowawayBroker:
        broker = ThrowawayBroker(tmp_path / f"broker-{len(brokers)}", users, tls=tls)
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def throwaway_broker(make_throwaway_broker: Callable[..., ThrowawayBroker]) -> ThrowawayBroker:
    """A started private broker with anonymous access, killed at teardown."""
    return make_throwaway_broker()


class MQTTSubscriber:
    """Subscribes to a topic filter on a real broker and keeps what arrives, in order.

    Subscribes with QoS 2, so a received message's `qos` is the QoS it was published with.
    With `session` (a client id) the session is persistent: the broker keeps QoS 1/2 messages
    published while this subscriber is away (even across a throwaway broker's restart) and
    delivers them when a subscriber with the same `session` connects again. That makes outage
    tests deterministic: register the session first, then cause the outage.
    """

    def __init__(
        self,
        broker: BrokerAddress | ThrowawayBroker,
        topic_filter: str,
        *,
        username: str | None = None,
        password: str | None = None,
        session: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        address = broker.address if isinstance(broker, ThrowawayBroker) else broker
        self._client = aiomqtt.Client(
            address.host,
            address.port,
            tls_context=tls_context,
            username=username,
            password=password,
            identifier=session,
            clean_session=session is None,
        )
        self._topic_filter = topic_filter
        self._received: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        await self._client.subscribe(self._topic_filter, qos=2)
        self._reader = asyncio.create_task(self._read(), name="mqtt-test-subscriber")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(exc_type, exc, tb)
        finally:
            # Once disconnected, the reader ends by itself and takes the disconnection error
            # with it (cancelling it first would leave "exception never retrieved" noise).
            if self._reader is not None:
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    await asyncio.wait_for(self._reader, 1.0)

    async def next(self, timeout: float = 5.0) -> aiomqtt.Message:
        """The next message, or AssertionError when none arrives within `timeout` seconds."""
        try:
            return await asyncio.wait_for(self._received.get(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no MQTT message on {self._topic_filter!r} within {timeout} s"
            ) from None

    async def collect(self, count: int, timeout: float = 5.0) -> list[aiomqtt.Message]:
        """Exactly the next `count` messages, all within `timeout` seconds."""
        messages: list[aiomqtt.Message] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(messages) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                messages.append(await self.next(max(remaining, 0.0)))
            except AssertionError:
                raise AssertionError(
                    f"got {len(messages)} of {count} MQTT messages on {self._topic_filter!r} "
                    f"within {timeout} s: {[m.payload for m in messages]!r}"
                ) from None
        return messages

    async def expect_silence(self, within: float = 0.5) -> None:
        """AssertionError when any message arrives within `within` seconds."""
        with contextlib.suppress(TimeoutError):
            message = await asyncio.wait_for(self._received.get(), within)
            raise AssertionError(f"unexpected MQTT message on {message.topic}: {message.payload!r}")

    async def _read(self) -> None:
        async for message in self._client.messages:
            self._received.put_nowait(message)
