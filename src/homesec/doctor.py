"""`homesec doctor`: every configured part checked for real, each check bounded in time.

Parts and their checks, in the table's order:
- database: connects, then applies the pending migrations as `homesec run` would (a user
  without the right to create tables fails here, not at start-up);
- storage: writes a small probe object, finds it, deletes it;
- filter: the plugin loads (for `yolo`: the model file resolves and opens);
- vlm, each notifier, each camera: the plugin loads, then its own `self_checks()` (a broker
  login, a model list, a stream that opens, a free port...); a notifier without any is asked
  its `ping()`.

Plugins are created but never started. Parts are checked at once; a part's first failure ends
its checks. Each check gets `timeout_s` and is abandoned a little after: blocking work runs on
daemon threads that nobody waits for (`run_diagnosis`), so a hung service cannot hang doctor,
not even at exit. What a check says is redacted: no secret, URL password or DSN reaches the
table.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, ParamSpec, Protocol, TypeVar
from uuid import uuid4

from sqlalchemy.exc import DBAPIError

from homesec.config_loader import analyzer_config, notifier_config, source_config
from homesec.errors import CheckFailed, ConfigError
from homesec.interfaces import (
    ClipSource,
    Notifier,
    ObjectFilter,
    SelfCheck,
    SelfChecking,
    StorageBackend,
    VLMAnalyzer,
)
from homesec.models.config import Config
from homesec.models.enums import RunMode
from homesec.plugins.registry import (
    load_analyzer,
    load_filter,
    load_notifier,
    load_source,
    load_storage,
)
from homesec.state.store import StateStore
from homesec.telemetry import redact

DEFAULT_TIMEOUT_S = 10.0
# A check past its own timeout gets this long to notice before it is abandoned.
_GRACE_S = 1.0

P = ParamSpec("P")
T = TypeVar("T")


class _Closable(Protocol):
    """What doctor lets go of: a plugin never started, or the state store."""

    async def aclose(self) -> None: ...


PluginT = TypeVar("PluginT", bound=_Closable)


@dataclass(frozen=True)
class Finding:
    """One row of doctor's table: on failure, `detail` says what is wrong and what to fix."""

    part: str
    check: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class _Part(Generic[PluginT]):
    """A part of the config: how to create it and check it (`aclose()` lets it go)."""

    name: str
    hint: str
    """Where to look when a check fails without saying so itself."""
    create: Callable[[], PluginT]
    checks: Callable[[PluginT], list[SelfCheck]]
    create_check: str = "loads"


def run_diagnosis(config: Config, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Finding]:
    """Check every part at once, on an event loop of its own whose blocking work runs on
    daemon threads; the findings come in the config's order."""

    async def diagnose() -> list[list[Finding]]:
        return await asyncio.gather(*(_check_part(part, timeout_s) for part in _parts(config)))

    with asyncio.Runner() as runner:
        runner.get_loop().set_default_executor(_DaemonThreads())
        found = runner.run(diagnose())
    return [finding for findings in found for finding in findings]


def _parts(config: Config) -> list[_Part[Any]]:
    storage, filter_ref, vlm = config.storage, config.filter, config.vlm
    parts: list[_Part[Any]] = [
        _database_part(config),
        _Part[StorageBackend](
            f"storage ({storage.backend})",
            "check `storage.config` and that the storage service takes these credentials",
            partial(load_storage, storage.backend, storage.config),
            _storage_checks,
        ),
        _Part[ObjectFilter](
            f"filter ({filter_ref.backend})",
            "check `filter.config`",
            partial(load_filter, filter_ref.backend, filter_ref.config),
            _own_checks,
            create_check="model loads",
        ),
    ]
    if vlm.run_mode != RunMode.NEVER and vlm.backend:
        parts.append(
            _Part[VLMAnalyzer](
                f"vlm ({vlm.backend})",
                "check `vlm.config` (base_url, model, api_key_env)",
                partial(load_analyzer, vlm.backend, analyzer_config(vlm)),
                _own_checks,
            )
        )
    for index, ref in enumerate(config.notifiers):
        name = ref.config.get("name")
        parts.append(
            _Part[Notifier](
                f"notifier {name} ({ref.backend})" if name else f"notifier ({ref.backend})",
                f"check `notifiers[{index}].config`",
                partial(load_notifier, ref.backend, notifier_config(ref, config)),
                _notifier_checks,
            )
        )
    for index, camera in enumerate(config.cameras):
        parts.append(
            _Part[ClipSource](
                f"camera {camera.name} ({camera.source.backend})",
                f"check `cameras[{index}].source.config`",
                partial(load_source, camera.source.backend, source_config(camera)),
                _own_checks,
            )
        )
    return parts


def _database_part(config: Config) -> _Part[StateStore]:
    hint = (
        f"check the DSN in ${config.state_store.dsn_env.name} (host, port, database, user, "
        "password) and that the server is up; without a DSN, that sqlite_path is writable"
    )

    def checks(store: StateStore) -> list[SelfCheck]:
        where = f"{store.backend_name} at {store.location}"

        async def connect(timeout_s: float) -> str:
            async with _database_errors(hint):
                await store.ping()
            return f"connected to {where}"

        async def migrate(timeout_s: float) -> str:
            async with _database_errors(hint):
                await store.ensure_schema()
            return "the schema is at the latest migration"

        connects, migrations = SelfCheck("connects", connect), SelfCheck("migrations", migrate)
        # The migrations create SQLite's file (and its folder) on a first run.
        return [migrations, connects] if store.dialect == "sqlite" else [connects, migrations]

    return _Part[StateStore](
        "database",
        hint,
        partial(StateStore.from_config, config.state_store),
        checks,
        create_check="configured",
    )


@contextlib.asynccontextmanager
async def _database_errors(hint: str) -> AsyncIterator[None]:
    """The driver's own words (`database "x" does not exist`), not SQLAlchemy's wrapping."""
    try:
        yield
    except DBAPIError as exc:
        driver = exc.orig.__cause__ if exc.orig is not None else None
        reason = f"{type(driver).__name__}: {exc.orig}" if driver else str(exc.orig or exc)
        raise CheckFailed(f"{reason}: {hint}", exc) from exc


def _storage_checks(storage: StorageBackend) -> list[SelfCheck]:
    """Write, find and delete a probe object whose key no clip can have."""
    key = f".homesec-doctor-{uuid4().hex}.json"
    fix = "does the storage keep what it is given? check `storage.config`"

    async def write(timeout_s: float) -> str:
        outcome = await storage.put_json({"written_by": "homesec doctor"}, key)
        return f"wrote {outcome.storage_uri}"

    async def read_back(timeout_s: float) -> str:
        if not await storage.exists(key):
            raise CheckFailed(f"the probe {key} just written is not found: {fix}")
        return "found the probe"

    async def delete(timeout_s: float) -> str:
        await storage.delete(key)
        if await storage.exists(key):
            raise CheckFailed(f"the probe {key} is still there after its delete: {fix}")
        return "deleted the probe"

    return [
        SelfCheck("write", write),
        SelfCheck("read back", read_back),
        SelfCheck("delete", delete),
    ]


def _notifier_checks(notifier: Notifier) -> list[SelfCheck]:
    if isinstance(notifier, SelfChecking):
        return notifier.self_checks()

    async def ping(timeout_s: float) -> str:
        if not await notifier.ping():
            raise CheckFailed("the notifier says it is not working: see its log lines")
        return "no live check for this notifier: its ping() says it works"

    return [SelfCheck("ping", ping)]


def _own_checks(plugin: object) -> list[SelfCheck]:
    return plugin.self_checks() if isinstance(plugin, SelfChecking) else []


async def _check_part(part: _Part[PluginT], timeout_s: float) -> list[Finding]:
    def finding(check: str, outcome: str | CheckFailed) -> Finding:
        ok, text = (False, str(outcome)) if isinstance(outcome, CheckFailed) else (True, outcome)
        # One line per row: errors of some libraries span several.
        return Finding(part.name, check, ok, " ".join(redact(text).split()))

    plugin = await _bounded(lambda _: asyncio.to_thread(part.create), timeout_s, part.hint)
    if isinstance(plugin, CheckFailed):
        return [finding(part.create_check, plugin)]
    findings: list[Finding] = []
    try:
        checks = part.checks(plugin)
        if not checks:
            findings.append(finding(part.create_check, ""))
        for check in checks:
            outcome = await _bounded(check.run, timeout_s, part.hint)
            findings.append(finding(check.name, outcome))
            if isinstance(outcome, CheckFailed):
                break
    finally:
        # Doctor's own plugins: one that does not close cleanly changes no finding.
        await _bounded(lambda _: plugin.aclose(), timeout_s, part.hint)
    return findings


async def _bounded(
    run: Callable[[float], Awaitable[T]], timeout_s: float, hint: str
) -> T | CheckFailed:
    """What `run(timeout_s)` returns, or what is wrong and what to fix."""
    try:
        async with asyncio.timeout(timeout_s + _GRACE_S):
            return await run(timeout_s)
    except CheckFailed as exc:
        return exc
    except TimeoutError:
        return CheckFailed(f"no answer within {timeout_s:g} s: is it up and reachable? {hint}")
    except ConfigError as exc:
        return CheckFailed(f"{'; '.join(exc.problems)}: {hint}")
    except Exception as exc:
        return CheckFailed(f"{type(exc).__name__}: {exc}: {hint}")


class _DaemonThreads(ThreadPoolExecutor):
    """A daemon thread per call, never waited for: a call stuck on a dead service (a silent
    S3 endpoint, a hung network mount) is left behind when its check gives up, and does not
    hold the process at exit as a pool's thread would."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=work, name="homesec-doctor", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to wait for (see the class)."""
