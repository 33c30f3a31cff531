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
from bench.soak.faults import (
    FaultKind,
    FaultLog,
    run_schedule,
    slot_seconds,
    vlm_outage_seconds,
)
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
    FTP_USER,
    RETENTION_CAP_BYTES,
    RETENTION_SWEEP_S,
    Endpoints,
    SoakSecrets,
    build_config,
    secret_env,
)
from bench.soak.verify import Outcome, judge, read_states, resource_growth, stored_clip_keys

FOLDER_CAMERAS = ["yard_a", "yard_b"]
FTP_CAMERA = "gate"
_DRAIN_POLL_S = 3.0
_DRAIN_STALL_S = 180.0
# Clips still being processed hold their local copy: the spool may pass its cap by them.
_IN_FLIGHT_ALLOWANCE_CLIPS = 3


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
    spool: SpoolVerdict
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.outcome.lost or self.growth or self.leaks or self.leftover_processes
            or self.deleted_early or self.exit_code != 0 or not self.spool.held
        )  # fmt: skip


@dataclass(frozen=True)
class SpoolVerdict:
    """Whether retention held the spool to its cap through the VLM outage and at the end
    (or said why it could not: the `spool_over_limit` system alert)."""

    cap: int
    allowance: int
    peak_in_vlm_outage: int
    at_end: int
    reported_over_limit: int

    @property
    def held(self) -> bool:
        within = self.peak_in_vlm_outage <= self.cap + self.allowance and self.at_end <= self.cap
        return within or self.reported_over_limit > 0


async def run_campaign(settings: CampaignSettings) -> CampaignResult:
    work = settings.work_dir
    work.mkdir(parents=True, exist_ok=True)
    values = SoakSecrets.fresh()
    with running_services(work, settings.rtsp_cameras, values) as services:
        return await _run(settings, services, values)


@dataclass(frozen=True)
class _Observers:
    """What watches HomeSec from the outside for the whole run."""

    watcher: SpoolWatcher
    alerts: AlertCollector
    probe: ApiProbe

    def tasks(self, process: HomesecProcess) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(self.alerts.run(), name="alerts"),
            asyncio.create_task(self.watcher.run(), name="spool-watcher"),
            asyncio.create_task(process.sample_forever(), name="resources"),
            asyncio.create_task(self.probe.run(), name="api-probe"),
        ]


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
    process = _homesec(settings.work_dir, services, values, ends, rtsp_names)
    in_storage = _in_storage(services.s3.client(), ends.bucket)
    observers = _Observers(
        SpoolWatcher(_spool_folders(work, rtsp_names), in_storage),
        AlertCollector(*ends.broker, ends.topic_prefix, session=f"{ends.topic_prefix}-harness"),
        ApiProbe(f"http://127.0.0.1:{ends.api_port}", values.api_key),
    )
    ledger, fault_log = Ledger(), FaultLog()
    await process.start()
    background = observers.tasks(process)
    try:
        cameras = _load_cameras(work, ends, values)
        media = prepare_media(MEDIA, work / "media")
        started = time.monotonic()
        until = started + settings.duration_s
        faults = make_faults(services, process, vlm_outage_seconds(settings.duration_s))
        hold, gap = slot_seconds(settings.duration_s, settings.warmup_s, faults)
        await asyncio.gather(
            produce(cameras, media, ledger, settings.clip_every_s, until),
            run_schedule(faults, fault_log, started + settings.warmup_s, until, hold, gap),
        )
        for rtsp_camera in services.cameras:  # no more RTSP clips: what was recorded must drain
            rtsp_camera.close()
        drain_started = time.monotonic()
        outcome = await _drain(settings, services, ends.bucket, ledger, observers, rtsp_names)
        drain_s = time.monotonic() - drain_started
        await _settle_spool(observers.watcher)
        await observers.probe.fetch_all()
        exit_code = await process.stop()
    finally:
        process.ensure_stopped()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    return CampaignResult(
        outcome=outcome,
        growth=resource_growth(process.samples),
        leaks=_leaks(values, process, observers),
        leftover_processes=[
            *process.orphans,
            *(str(pid) for pid in processes_mentioning(str(work / "rtsp"))),
        ],
        deleted_early=observers.watcher.deleted_early,
        faults=fault_log,
        exit_code=exit_code,
        process=process,
        pruned=observers.watcher.pruned,
        drain_s=drain_s,
        spool=_spool_verdict(observers, fault_log, media),
        notes=_notes(services, observers),
    )


async def _settle_spool(watcher: SpoolWatcher) -> None:
    """Give retention a few sweeps to prune what settled last."""
    for _ in range(3 * int(RETENTION_SWEEP_S) + 5):
        if watcher.bytes_on_disk() <= RETENTION_CAP_BYTES:
            return
        await asyncio.sleep(1.0)


def _spool_verdict(observers: _Observers, faults: FaultLog, media: list[Any]) -> SpoolVerdict:
    watcher = observers.watcher
    largest = max(clip.path.stat().st_size for clip in media)
    outages = faults.of(FaultKind.VLM_OUTAGE)
    return SpoolVerdict(
        cap=RETENTION_CAP_BYTES,
        allowance=_IN_FLIGHT_ALLOWANCE_CLIPS * largest,
        peak_in_vlm_outage=max((watcher.peak_between(a, b) for a, b in outages), default=0),
        at_end=watcher.bytes_on_disk(),
        reported_over_limit=observers.alerts.system_alerts.get("spool_over_limit", 0),
    )


def _homesec(
    work: Path, services: Services, values: SoakSecrets, ends: Endpoints, rtsp_names: list[str]
) -> HomesecProcess:
    config = build_config(
        work, MODELS / "yolox_nano.onnx", ends, FOLDER_CAMERAS, FTP_CAMERA, rtsp_names
    )
    config_file = work / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    rtsp_urls = [c.url_with("soak", values.rtsp_password) for c in services.cameras]
    env = {**os.environ, **secret_env(values, services.postgres.dsn, rtsp_urls)}
    return HomesecProcess(config_file, env, f"http://127.0.0.1:{ends.api_port}/health")


def _spool_folders(work: Path, rtsp_names: list[str]) -> list[SpoolFolder]:
    folders = [SpoolFolder(name, work / "inbox" / name) for name in FOLDER_CAMERAS]
    folders.append(SpoolFolder(FTP_CAMERA, work / "ftp" / "clips" / FTP_CAMERA))
    return folders + [SpoolFolder(name, work / "rtsp" / name) for name in rtsp_names]


def _load_cameras(work: Path, ends: Endpoints, values: SoakSecrets) -> list[Camera]:
    cameras = []
    for name in FOLDER_CAMERAS:
        (work / "inbox" / name).mkdir(parents=True, exist_ok=True)
        cameras.append(Camera(name, SourceKind.FOLDER, watch_dir=work / "inbox" / name))
    account = FtpAccount("127.0.0.1", ends.ftp_port, FTP_USER, values.ftp_password, FTP_CAMERA)
    return [*cameras, Camera(FTP_CAMERA, SourceKind.FTP, ftp=account)]


def _leaks(values: SoakSecrets, process: HomesecProcess, observers: _Observers) -> list[str]:
    texts = {
        "homesec log": process.log_file.read_text(errors="replace"),
        "API responses": "\n".join(observers.probe.responses),
        "MQTT messages": b"\n".join(observers.alerts.payloads).decode(errors="replace"),
    }
    scanner = SecretScanner(values.named())
    return [str(leak) for where, text in texts.items() for leak in scanner.scan_text(text, where)]


def _notes(services: Services, observers: _Observers) -> list[str]:
    alerts = observers.alerts.alerts
    return [
        f"storage re-PUTs of one key: {sum(n - 1 for n in services.proxy.puts.values())}",
        f"storage requests refused: {services.proxy.refused}",
        f"API responses scanned: {len(observers.probe.responses)}",
        f"clips alerted more than once: {sum(n > 1 for n in alerts.values())}",
        f"system alerts: {dict(sorted(observers.alerts.system_alerts.items()))}",
    ]


async def _drain(
    settings: CampaignSettings,
    services: Services,
    bucket: str,
    ledger: Ledger,
    observers: _Observers,
    rtsp_names: list[str],
) -> Outcome:
    """Wait until every produced clip is proven, the drain time is up, or nothing has moved
    for `_DRAIN_STALL_S` (background upload retries are seconds apart); the last verdict."""
    deadline = time.monotonic() + settings.drain_timeout_s
    s3 = services.s3.client()
    last_change, last_problems = time.monotonic(), None
    while True:
        states = await read_states(services.postgres.dsn)
        _add_rtsp_clips(ledger, observers.watcher, states, rtsp_names)
        keys = await asyncio.to_thread(stored_clip_keys, s3, bucket)
        outcome = judge(ledger, states, keys, observers.alerts.alerts)
        problems = [(v.clip.clip_id, v.problems) for v in outcome.unfinished()]
        if problems != last_problems:
            last_change, last_problems = time.monotonic(), problems
        stalled = time.monotonic() - last_change > _DRAIN_STALL_S
        if outcome.lost == 0 or stalled or time.monotonic() > deadline:
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


def _in_storage(s3: Any, bucket: str) -> Callable[[str, str], bool]:
    def check(camera: str, clip_id: str) -> bool:
        try:
            s3.head_object(Bucket=bucket, Key=f"{camera}/{clip_id}")
        except s3.exceptions.ClientError:
            return False
        return True

    return check
