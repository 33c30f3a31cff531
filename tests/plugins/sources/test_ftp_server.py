"""The FTP server's logins against a real FTP client (ftplib): wrong passwords are throttled."""

from __future__ import annotations

import ftplib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from homesec.plugins.sources.ftp_server import CameraRoute, FtpServer, ServerSettings
from homesec.throttle import WRONG_GUESS_LIMIT, WRONG_GUESS_WINDOW_S, GuessThrottle
from tests.services.postgres import free_port

USER, PASSWORD = "cam-front", "front-secret-1"
GUESSER, NEIGHBOUR = "127.0.0.1", "127.0.0.2"
THROTTLED = "530 Too many wrong passwords from this address; try again later."


class FrozenClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextmanager
def _serving(root: Path, clock: FrozenClock) -> Iterator[int]:
    """A started server for one camera, its wrong-password window on `clock`; yields its port."""
    port = free_port()
    settings = ServerSettings(
        host="127.0.0.1",
        port=port,
        root_dir=root,
        passive_ports=None,
        masquerade_address=None,
        login_failure_delay_s=0.0,
    )
    server = FtpServer(settings, GuessThrottle("FTP password", clock=clock))
    server.attach(CameraRoute("front_door", "front_door", USER, PASSWORD, 10**8, _ignore))
    server.start()
    try:
        yield port
    finally:
        server.stop()


def _ignore(path: Path, sent_name: str, remote: str) -> None:
    return None


def _login(port: int, password: str, source: str = GUESSER) -> str:
    """The server's reply to one login from the address `source`, on a new connection."""
    with ftplib.FTP(source_address=(source, 0)) as ftp:
        ftp.connect("127.0.0.1", port, timeout=5)
        try:
            return ftp.login(USER, password)
        except ftplib.error_perm as refused:
            return str(refused)


def test_an_address_that_keeps_guessing_is_refused_even_the_right_password_for_a_minute(
    tmp_path: Path,
) -> None:
    # Given a running FTP server, and a clock we control for the wrong-password window
    clock = FrozenClock(1_000.0)
    with _serving(tmp_path, clock) as port:
        # When one address gives the limit of wrong passwords, then the right one; a neighbour
        # gives the right one; and the guesser again once the window has passed
        guesses = [_login(port, f"guess-{n}") for n in range(WRONG_GUESS_LIMIT)]
        locked = _login(port, PASSWORD)
        neighbour = _login(port, PASSWORD, source=NEIGHBOUR)
        clock.now += WRONG_GUESS_WINDOW_S + 1
        later = _login(port, PASSWORD)

    # Then the guesses are refused, then the right password too until the window has passed;
    # the neighbour's address is not affected
    assert guesses == ["530 Authentication failed."] * WRONG_GUESS_LIMIT
    assert locked == THROTTLED
    assert neighbour.startswith("230")
    assert later.startswith("230")


def test_a_lockout_is_logged_once_not_for_every_refused_attempt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a running FTP server, and a clock we control for the wrong-password window
    clock = FrozenClock(1_000.0)
    with _serving(tmp_path, clock) as port:
        # When one address gives the limit of wrong passwords, then keeps trying, wrong and
        # right, during the window
        for n in range(WRONG_GUESS_LIMIT):
            _login(port, f"guess-{n}")
        refused = [_login(port, password) for password in ["more-1", PASSWORD, "more-2"] * 3]

    # Then every later try is refused; each wrong password before the lockout is logged, the
    # lockout once (naming the address), and the refused tries not at all
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    lockouts = [message for message in warnings if "Too many wrong FTP passwords" in message]
    assert refused == [THROTTLED] * 9
    assert len([m for m in warnings if "FTP login refused" in m]) == WRONG_GUESS_LIMIT
    assert len(lockouts) == 1 and GUESSER in lockouts[0]
    assert PASSWORD not in caplog.text
