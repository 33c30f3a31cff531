"""The campaign: every service up, `homesec run` started, load and faults, drain, verdict."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tests.security.secret_scan import SecretScanner
from tests.services.postgres import free_port

from bench._support import MEDIA, MODELS
from bench.soak.api_probe import ApiProbe
from bench.soak.faults import FaultLog, run_schedule, slot_seconds
from bench.soak.homesec_process import HomesecProcess, processes_mentioning
from bench.soak.load import (
    Camera,
    FtpAccount,
    Ledger,
    ProducedClip,
    SourceKind,
    prepare_media,
    produce,
)
from bench.soak.observers import AlertCollector, SpoolFolder, SpoolWatcher
from bench.soak.services import Services, make_faults, running_services
from bench.soak.soak_config import (
    RETENTION_CAP_BYTES,
    Endpoints,
    SoakSecrets,
    build_config,
    secret_env,
)
from bench.soak.verify import Outcome, judge, read_states, resource_growth, stored_clip_keys

FOLDER_CAMERAS = ["yard_a", "yard_b"]
FTP_CAMERA = "gate"
_DRAIN_POLL_S = 3.0


@dataclass(frozen=True)
class CampaignSettings:
    duration_s: float
    work_dir: Path
    rtsp_cameras: int = 1
    clip_every_s: float = 5.0
    warmup_s: float = 20.0
    drain_timeout_s: float = 600.0


@dataclass
class CampaignResult:
    outcome: Outcome
    growth: list[str]
    leaks: list[str]
    leftover_processes: list[int]
    deleted_early: list[str]
    faults: FaultLog
    exit_code: int
    process: HomesecProcess
    pruned: int
    drain_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.outcome.lost or self.growth or self.leaks or self.leftover_processes
            or self.deleted_early or self.exit_code != 0
        )  # fmt: skip


async def run_campaign(settings: CampaignSettings) -> CampaignResult:
    work = settings.work_dir
    work.mkdir(parents=True, exist_ok=True)
    values = SoakSecrets.fresh()
    with running_services(work, settings.rtsp_cameras, values) as services:
        return await _run(settings, services, values)


async def _run(
    settings: CampaignSettings, services: Services, values: SoakSecrets
) -> CampaignResult:
    work = settings.work_dir
    rtsp_names = [f"street_{i + 1}" for i in range(len(services.cameras))]
    ends = Endpoints(
        s3=services.proxy.endpoint_url, bucket=services.s3.create_bucket(),
        vlm=services.vlm.base_url, broker=(services.broker.host, services.broker.port),
        ftp_port=free_port(), api_port=free_port(), topic_prefix=f"soak-{secrets.token_hex(4)}",
    )  # fmt: skip
    config = build_config(
        work, MODELS / "yolox_nano.onnx", ends, FOLDER_CAMERAS, FTP_CAMERA, rtsp_names
    )
    config_file = work / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    rtsp_urls = [c.url_with("soak", values.rtsp_password) for c in services.cameras]
    env = {**os.environ, **secret_env(values, services.postgres.dsn, rtsp_urls)}
    base = f"http://127.0.0.1:{ends.api_port}"
    process = HomesecProcess(config_file, env, f"{base}/health")

    s3 = services.s3.client()
    folders = [SpoolFolder(name, work / "inbox" / name) for name in FOLDER_CAMERAS]
    folders.append(SpoolFolder(FTP_CAMERA, work / "ftp" / "clips" / FTP_CAMERA))
    folders += [SpoolFolder(name, work / "rtsp" / name) for name in rtsp_names]
    watcher = SpoolWatcher(folders, _in_storage(s3, ends.bucket))
    alerts = AlertCollector(*ends.broker, ends.topic_prefix, session=f"{ends.topic_prefix}-harness")
    probe = ApiProbe(base, values.api_key)
    ledger = Ledger()
    fault_log = FaultLog()

    await process.start()
    background = [
        asyncio.create_task(alerts.run(), name="alerts"),
        asyncio.create_task(watcher.run(), name="spool-watcher"),
        asyncio.create_task(process.sample_forever(), name="resources"),
        asyncio.create_task(probe.run(), name="api-probe"),
    ]
    try:
        media = prepare_media(MEDIA, work / "media")
        account = FtpAccount("127.0.0.1", ends.ftp_port, "gatecam", values.ftp_password, FTP_CAMERA)
        cameras = [
            Camera(n, SourceKind.FOLDER, watch_dir=work / "inbox" / n) for n in FOLDER_CAMERAS
        ]
        cameras.append(Camera(FTP_CAMERA, SourceKind.FTP, ftp=account))
        for camera in cameras:
            if camera.watch_dir is not None:
                camera.watch_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        until = started + settings.duration_s
        faults = make_faults(services, process)
        hold, gap = slot_seconds(settings.duration_s, settings.warmup_s, len(faults))
        await asyncio.gather(
            produce(cameras, media, ledger, settings.clip_every_s, until),
            run_schedule(faults, fault_log, started + settings.warmup_s, until, hold, gap),
        )
        for rtsp_camera in services.cameras:  # no more RTSP clips: what was recorded must drain
            rtsp_camera.close()
        drain_started = time.monotonic()
        outcome = await _drain(settings, services, ends.bucket, ledger, watcher, alerts, rtsp_names)
        drain_s = time.monotonic() - drain_started
        await probe.fetch_all()
        exit_code = await process.stop()
    finally:
        process.ensure_stopped()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    leftovers = processes_mentioning(str(work / "rtsp"))
    texts = {
        "homesec log": process.log_file.read_text(errors="replace"),
        "API responses": "\n".join(probe.responses),
        "MQTT messages": b"\n".join(alerts.payloads).decode(errors="replace"),
    }
    return CampaignResult(
        outcome=outcome,
        growth=resource_growth(process.samples),
        leaks=[str(leak) for leak in _scan(SecretScanner(values.named()), texts)],
        leftover_processes=leftovers,
        deleted_early=watcher.deleted_early,
        faults=fault_log,
        exit_code=exit_code,
        process=process,
        pruned=watcher.pruned,
        drain_s=drain_s,
        notes=[f"storage re-PUTs of one key: {sum(n - 1 for n in services.proxy.puts.values())}",
               f"storage requests refused: {services.proxy.refused}",
               f"API responses scanned: {len(probe.responses)}",
               f"clips alerted more than once: {sum(n > 1 for n in alerts.alerts.values())}",
               f"spool at the end: {watcher.bytes_on_disk() / 1e6:.1f} MB "
               f"(retention cap {RETENTION_CAP_BYTES / 1e6:.1f} MB)"],
    )  # fmt: skip


async def _drain(
    settings: CampaignSettings,
    services: Services,
    bucket: str,
    ledger: Ledger,
    watcher: SpoolWatcher,
    alerts: AlertCollector,
    rtsp_names: list[str],
) -> Outcome:
    """Wait until every produced clip is proven (or the drain time is up); the last verdict."""
    deadline = time.monotonic() + settings.drain_timeout_s
    s3 = services.s3.client()
    while True:
        states = await read_states(services.postgres.dsn)
        _add_rtsp_clips(ledger, watcher, states, rtsp_names)
        keys = await asyncio.to_thread(stored_clip_keys, s3, bucket)
        outcome = judge(ledger, states, keys, alerts.alerts)
        if outcome.lost == 0 or time.monotonic() > deadline:
            return outcome
        await asyncio.sleep(_DRAIN_POLL_S)


def _add_rtsp_clips(
    ledger: Ledger, watcher: SpoolWatcher, states: dict[str, Any], rtsp_names: list[str]
) -> None:
    # RTSP clips are made by HomeSec itself: produced = seen in its recordings folder (or
    # known to its database, should one have come and gone between two looks).
    seen = {clip_id: camera for clip_id, (camera, _) in watcher.seen.items()}
    seen.update({clip_id: s.camera_name for clip_id, s in states.items()})
    for clip_id, camera in seen.items():
        if camera in rtsp_names:
            ledger.add(ProducedClip(clip_id, camera, SourceKind.RTSP, None, time.monotonic()))


def _scan(scanner: SecretScanner, texts: dict[str, str]) -> list[object]:
    return [leak for where, text in texts.items() for leak in scanner.scan_text(text, where)]


def _in_storage(s3: Any, bucket: str) -> Callable[[str, str], bool]:
    def check(camera: str, clip_id: str) -> bool:
        try:
            s3.head_object(Bucket=bucket, Key=f"{camera}/{clip_id}")
        except s3.exceptions.ClientError:
            return False
        return True

    return check
