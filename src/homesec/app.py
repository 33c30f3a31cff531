"""Wires config -> plugins -> pipeline -> HTTP server, and runs their lifecycle.

Every long-lived part has one lifecycle, `start()` then `aclose()` (`interfaces.Lifecycle`),
and the app holds them all on one `AsyncExitStack`, so they stop in the reverse of their start
order, also after a start that failed half-way; a part that fails to close is logged and the
others close anyway.
Start order: database, plugins, HTTP API, retention, recovery of unfinished clips, sources.
Stop order: sources first (no new clips), in-flight clips get `shutdown_timeout_s`, then the
server and every plugin release their pools, sessions and connections.
Sources that hand on the segments of the clips they are recording (`LiveClipSource`) feed
early detection, so a detection event can go out before the clip is finalized; sources that
show analyses where the clip came from (`AnalysisListener`, an NVR) are told of each one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

from homesec.api.app import ApiServer, create_api
from homesec.config_loader import (
    analyzer_config,
    notifier_config,
    policy_problems,
    source_config,
)
from homesec.digest import Digests
from homesec.errors import ConfigError, StartupError
from homesec.health import CameraWatch, HealthMonitor
from homesec.interfaces import (
    AlertPolicy,
    AnalysisListener,
    Lifecycle,
    LiveClipSource,
    ModeFollower,
    Notifier,
    ObjectFilter,
    StorageBackend,
    VLMAnalyzer,
)
from homesec.lifecycle import close_in_order, close_logged, close_together, enter
from homesec.models.clip import Clip
from homesec.models.config import Config, VLMSection
from homesec.models.enums import RunMode
from homesec.modes import Modes
from homesec.pipeline.core import ClipPipeline
from homesec.pipeline.early import EarlyDetection
from homesec.pipeline.naming import ClipNames
from homesec.pipeline.notify import NotificationFanout, Sink
from homesec.pipeline.providers import Provider, VLMProviders
from homesec.pipeline.recovery import recover_unfinished
from homesec.pipeline.retention import RetentionPruner
from homesec.plugins.registry import (
    load_alert_policy,
    load_analyzer,
    load_filter,
    load_notifier,
    load_source,
    load_storage,
)
from homesec.repository.clip_repository import ClipRepository
from homesec.reviews import ReviewCounts
from homesec.vlm_budget import DailyBudget

logger = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything the pipeline needs, loaded from the config (sources aside)."""

    repository: ClipRepository
    storage: StorageBackend
    object_filter: ObjectFilter
    analyzer: VLMAnalyzer | None
    alert_policy: AlertPolicy | None
    notifiers: list[Notifier]
    pipeline: ClipPipeline
    names: ClipNames
    modes: Modes | None
    reviews: ReviewCounts
    digests: Digests | None
    budget: DailyBudget | None

    async def start(self) -> None:
        await self.repository.start()
        if self.modes is not None:
            await self.modes.start()
        if self.budget is not None:
            await self.budget.start()
        for _, plugin in self._plugins():
            await plugin.start()
        self.reviews.refresh_soon()
        if self.digests is not None:
            await self.digests.start()

    async def aclose(self) -> None:
        """Close every plugin at once, then the modes and the repository; also after a start
        that failed or never ran. One failing to close is logged and does not stop the others."""
        if self.digests is not None:
            await close_logged("Digests", self.digests.aclose)
        await close_together(self._plugins())
        await close_logged("Review counts", self.reviews.aclose)
        if self.modes is not None:
            await close_logged("Modes", self.modes.aclose)
        await close_logged("State repository", self.repository.aclose)

    def _plugins(self) -> list[tuple[str, Lifecycle]]:
        plugins: list[tuple[str, Lifecycle]] = [
            ("Storage", self.storage),
            ("Object filter", self.object_filter),
        ]
        if self.analyzer is not None:
            plugins.append(("VLM analyzer", self.analyzer))
        plugins += [(f"Notifier {notifier.name}", notifier) for notifier in self.notifiers]
        return plugins


@contextlib.contextmanager
def startup_errors() -> Iterator[None]:
    """An OSError while starting (a folder that cannot be created, a file that cannot be
    opened) is a StartupError: one line for the user, not a traceback."""
    try:
        yield
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        raise StartupError(f"cannot start: {where}{exc.strerror or exc}", exc) from exc


def _analyzer(vlm: VLMSection) -> VLMAnalyzer | None:
    """The VLM, or the VLMs tried in order when there are fallbacks (or a time limit)."""
    if vlm.run_mode == RunMode.NEVER or not vlm.backend:
        return None
    first = load_analyzer(vlm.backend, analyzer_config(vlm))
    if not vlm.fallbacks and vlm.timeout_s is None:
        return first
    providers = [Provider(vlm.name, first, vlm.timeout_s)]
    for fallback in vlm.fallbacks:
        analyzer = load_analyzer(fallback.backend, analyzer_config(vlm, fallback.config))
        providers.append(Provider(fallback.name, analyzer, fallback.timeout_s))
    return VLMProviders(providers)


def build_components(config: Config) -> Components:
    repository = ClipRepository.from_config(config.state_store)
    storage = load_storage(config.storage.backend, config.storage.config)
    object_filter = load_filter(config.filter.backend, config.filter.config)
    analyzer = _analyzer(config.vlm)
    policy = None
    if config.alert_policy.enabled:
        policy = load_alert_policy(config.alert_policy.backend, config.alert_policy.config)
        if problems := policy_problems(config, policy):
            raise ConfigError(problems)
    cameras = [camera.name for camera in config.cameras]
    modes = Modes(config.modes, cameras, repository) if config.modes.names else None
    sinks = [
        Sink(load_notifier(ref.backend, notifier_config(ref, config)), ref)
        for ref in config.notifiers
    ]
    names = [sink.name for sink in sinks]
    if len(set(names)) != len(names):
        raise ConfigError(
            [f"notifiers: sink names must be unique (set config.name): {', '.join(names)}"]
        )
    notifiers = [sink.notifier for sink in sinks]
    for notifier in notifiers:
        if modes is not None and isinstance(notifier, ModeFollower):
            notifier.follow_modes(modes)
    reviews = ReviewCounts(repository, notifiers, cameras)
    budget = None
    if analyzer is not None and config.vlm.budget.limited:
        # Its system alert goes out through the pipeline, built next.
        budget = DailyBudget(
            config.vlm.budget, repository, lambda alert: pipeline.system_alert(alert)
        )
    digests = None
    if config.digest.enabled:
        wanted = [sink.name for sink in sinks if sink.route.digest]
        writes = not isinstance(analyzer, VLMProviders) or analyzer.writes_text()
        writer = analyzer if writes else None
        digest_sinks = Digests.sinks_of(notifiers, wanted)
        digests = Digests(config.digest, repository, digest_sinks, writer, budget=budget)
        if modes is not None and config.digest.on_mode is not None:
            digests.follow_modes(modes)
    pipeline = ClipPipeline(
        config,
        repository=repository,
        storage=storage,
        object_filter=object_filter,
        analyzer=analyzer,
        alert_policy=policy,
        fanout=NotificationFanout(sinks, config.retry),
        modes=modes,
        budget=budget,
    )
    # A new review request, or an analysis done again (which may have dropped one).
    pipeline.after_rounds(
        lambda state: reviews.refresh_soon() if state.needs_review or state.reanalysed_at else None
    )
    clip_names = ClipNames(repository, storage)
    return Components(
        repository,
        storage,
        object_filter,
        analyzer,
        policy,
        notifiers,
        pipeline,
        clip_names,
        modes,
        reviews,
        digests,
        budget,
    )


class HomeSecApp:
    """The long-running service behind `homesec run`."""

    def __init__(self, config: Config) -> None:
        self._config = config
        with startup_errors():
            self.components = build_components(config)
            self.sources = [
                load_source(camera.source.backend, source_config(camera))
                for camera in config.cameras
            ]
        self.server: ApiServer | None = None
        self._early = EarlyDetection(
            self.components.object_filter,
            self.components.pipeline.detections,
            self.components.pipeline.journals,
            self.components.pipeline,
        )
        retention = config.retention
        pipeline = self.components.pipeline
        self._retention = (
            RetentionPruner(
                retention,
                self.sources,
                self.components.repository,
                busy=pipeline.busy,
                system_alert=pipeline.system_alert,
                work_dir=config.pipeline.work_dir,
            )
            if retention.max_local_size_bytes is not None or retention.min_free_bytes > 0
            else None
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down gracefully (the start order reversed)."""
        async with AsyncExitStack() as stack:
            stack.callback(logger.info, "Shutdown complete")
            try:
                with startup_errors():
                    monitor = await self._start(stack)
                logger.info("HomeSec running with %d camera(s)", len(self.sources))
                await monitor.publish()
                await stop.wait()
            finally:
                logger.info("Shutting down")

    async def _start(self, stack: AsyncExitStack) -> HealthMonitor:
        """Start every part, each with its way out on `stack` before it starts."""
        components = self.components
        await enter(stack, components, "Plugins")
        monitor = HealthMonitor(
            components.pipeline,
            components.repository,
            components.storage,
            self.sources,
            components.notifiers,
            self._retention,
        )
        _in_background(stack, monitor.beat_forever(), "heartbeat")
        await self._start_server(stack, monitor)
        if self._retention is not None:
            await enter(stack, self._retention, "Retention")
        # Run once the sources are closed: in-flight clips get a bounded time to finish.
        timeout_s = self._config.pipeline.shutdown_timeout_s
        stack.push_async_callback(
            close_logged, "Pipeline", partial(components.pipeline.drain, timeout_s)
        )
        await enter(stack, self._early, "Early detection")
        await recover_unfinished(components.pipeline, self.sources, components.repository)
        await self._start_sources(stack)
        watch = CameraWatch(
            self.sources,
            self._config.pipeline.camera_unhealthy_alert_s,
            components.pipeline.system_alert,
        )
        _in_background(stack, watch.watch_forever(), "camera-watch")
        return monitor

    def _on_clip(self, clip: Clip) -> None:
        self._early.clip_finalized(clip)
        self.components.pipeline.submit(clip)
        if self._retention is not None:
            self._retention.trigger("clip_arrived")

    async def _start_server(self, stack: AsyncExitStack, monitor: HealthMonitor) -> None:
        server_config = self._config.server
        if not server_config.enabled:
            return
        api_key = (
            server_config.api_key_env.required().get_secret_value()
            if server_config.auth_enabled
            else None
        )
        api = create_api(
            monitor,
            api_key,
            repository=self.components.repository,
            storage=self.components.storage,
            sources=self.sources,
            media_cache_dir=self._config.pipeline.work_dir / "api-media",
            revoked_sessions_file=self._config.pipeline.work_dir / "revoked-sessions.json",
            camera_zones={camera.name: camera.zones for camera in self._config.cameras},
            modes=self.components.modes,
            reviews=self.components.reviews,
        )
        self.server = ApiServer(api, server_config.host, server_config.port)
        await enter(stack, self.server, "HTTP API")
        logger.info("HTTP API on %s:%d", server_config.host, self.server.port)

    async def _start_sources(self, stack: AsyncExitStack) -> None:
        """Start the sources; at shutdown they are closed first, in the config's order."""
        named = [(f"Source {source.camera_name}", source) for source in self.sources]
        stack.push_async_callback(close_in_order, named)
        for source in self.sources:
            source.register_callback(self._on_clip)
            source.use_namer(self.components.names)
            if isinstance(source, LiveClipSource):
                source.register_live_callback(self._early.on_segment)
            if isinstance(source, AnalysisListener):
                self.components.pipeline.listen(source.camera_name, source)
            await source.start()


def _in_background(stack: AsyncExitStack, loop: Coroutine[Any, Any, None], name: str) -> None:
    task = asyncio.create_task(loop, name=name)
    stack.push_async_callback(close_logged, f"Task {name}", partial(_cancel, task))


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
