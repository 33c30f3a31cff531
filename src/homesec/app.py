"""Wires config -> plugins -> pipeline -> HTTP server, and runs their lifecycle.

Start order: database, notifiers, HTTP API, recovery of unfinished clips, sources.
Stop order: sources first (no new clips), in-flight clips get `shutdown_timeout_s`, then the
server and every plugin release their pools, sessions and connections.
Sources that hand on the segments of the clips they are recording (`LiveClipSource`) feed
early detection, so a detection event can go out before the clip is finalized.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from homesec.api.app import ApiServer, create_api
from homesec.config_loader import analyzer_config, notifier_config, source_config
from homesec.errors import ConfigError, StartupError
from homesec.health import CameraWatch, HealthMonitor
from homesec.interfaces import (
    AlertPolicy,
    LiveClipSource,
    Notifier,
    ObjectFilter,
    StorageBackend,
    VLMAnalyzer,
)
from homesec.models.clip import Clip
from homesec.models.config import Config
from homesec.models.enums import RunMode
from homesec.pipeline.core import ClipPipeline
from homesec.pipeline.early import EarlyDetection
from homesec.pipeline.naming import ClipNames
from homesec.pipeline.notify import NotificationFanout, Sink
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

    async def start(self) -> None:
        await self.repository.start()
        for notifier in self.notifiers:
            await notifier.start()

    async def close(self) -> None:
        """Release every plugin's resources; one failing does not stop the others."""
        closers = [self.object_filter.shutdown(), self.storage.close()]
        if self.analyzer is not None:
            closers.append(self.analyzer.shutdown())
        closers += [notifier.close() for notifier in self.notifiers]
        for result in await asyncio.gather(*closers, return_exceptions=True):
            if isinstance(result, Exception):
                logger.error("Error while closing a plugin: %s", result)
        await self.repository.close()


@contextlib.contextmanager
def startup_errors() -> Iterator[None]:
    """An OSError while starting (a folder that cannot be created, a file that cannot be
    opened) is a StartupError: one line for the user, not a traceback."""
    try:
        yield
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        raise StartupError(f"cannot start: {where}{exc.strerror or exc}", exc) from exc


def build_components(config: Config) -> Components:
    repository = ClipRepository.from_config(config.state_store)
    storage = load_storage(config.storage.backend, config.storage.config)
    object_filter = load_filter(config.filter.backend, config.filter.config)
    analyzer = None
    if config.vlm.run_mode != RunMode.NEVER and config.vlm.backend:
        analyzer = load_analyzer(config.vlm.backend, analyzer_config(config.vlm))
    policy = None
    if config.alert_policy.enabled:
        policy = load_alert_policy(config.alert_policy.backend, config.alert_policy.config)
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
    pipeline = ClipPipeline(
        config,
        repository=repository,
        storage=storage,
        object_filter=object_filter,
        analyzer=analyzer,
        alert_policy=policy,
        fanout=NotificationFanout(sinks, config.retry),
    )
    clip_names = ClipNames(repository, storage)
    return Components(
        repository, storage, object_filter, analyzer, policy, notifiers, pipeline, clip_names
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
        """Run until `stop` is set, then shut down gracefully."""
        components = self.components
        with startup_errors():
            await components.start()
        monitor = HealthMonitor(
            components.pipeline,
            components.repository,
            components.storage,
            self.sources,
            components.notifiers,
            self._retention,
        )
        watch = CameraWatch(
            self.sources,
            self._config.pipeline.camera_unhealthy_alert_s,
            components.pipeline.system_alert,
        )
        heartbeat = asyncio.create_task(monitor.beat_forever(), name="heartbeat")
        camera_watch = asyncio.create_task(watch.watch_forever(), name="camera-watch")
        background = [heartbeat, camera_watch]
        if self._retention is not None:
            sweep = self._retention.sweep_forever(self._config.retention.sweep_interval_s)
            background.append(asyncio.create_task(sweep, name="retention-sweep"))
        try:
            with startup_errors():
                await self._start_server(monitor)
                await recover_unfinished(components.pipeline, self.sources, components.repository)
                await self._start_sources()
            logger.info("HomeSec running with %d camera(s)", len(self.sources))
            await monitor.publish()
            await stop.wait()
        finally:
            for task in background:
                task.cancel()
            await self._shutdown()

    def _on_clip(self, clip: Clip) -> None:
        self._early.clip_finalized(clip)
        self.components.pipeline.submit(clip)
        if self._retention is not None:
            self._retention.trigger("clip_arrived")

    async def _start_server(self, monitor: HealthMonitor) -> None:
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
        )
        self.server = ApiServer(api, server_config.host, server_config.port)
        await self.server.start()
        logger.info("HTTP API on %s:%d", server_config.host, self.server.port)

    async def _start_sources(self) -> None:
        for source in self.sources:
            source.register_callback(self._on_clip)
            source.use_namer(self.components.names)
            if isinstance(source, LiveClipSource):
                source.register_live_callback(self._early.on_segment)
            await source.start()

    async def _shutdown(self) -> None:
        logger.info("Shutting down")
        for source in self.sources:
            try:
                await source.stop()
            except Exception:
                logger.exception("Source %s did not stop cleanly", source.camera_name)
        await self._early.close()
        await self.components.pipeline.drain(self._config.pipeline.shutdown_timeout_s)
        if self._retention is not None:
            await self._retention.wait()
        if self.server is not None:
            await self.server.stop()
        await self.components.close()
        logger.info("Shutdown complete")
