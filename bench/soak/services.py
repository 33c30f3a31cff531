"""The services the campaign runs HomeSec against, and the faults each of them can suffer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.services.mosquitto import ThrowawayBroker
from tests.services.openai_server import OpenAIServer, ScriptedReply, serve_openai
from tests.services.postgres import ThrowawayPostgres, serve_throwaway_postgres
from tests.services.rtsp_server import RTSPCamera, make_walk_in_footage
from tests.services.s3_server import S3Server, serve_s3

from bench._support import MEDIA
from bench.soak.faults import Action, Fault, FaultKind
from bench.soak.homesec_process import HomesecProcess
from bench.soak.soak_config import VLM_TIMEOUT_S, SoakSecrets
from bench.soak.storage_proxy import ProxyMode, StorageProxy, serve_storage_proxy


@dataclass
class Services:
    postgres: ThrowawayPostgres
    broker: ThrowawayBroker
    s3: S3Server
    proxy: StorageProxy
    vlm: OpenAIServer
    cameras: list[RTSPCamera]


@contextlib.contextmanager
def running_services(work: Path, rtsp_cameras: int, values: SoakSecrets) -> Iterator[Services]:
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(serve_throwaway_postgres())
        broker = ThrowawayBroker(work / "broker")
        broker.start()
        stack.callback(broker.stop)
        s3 = stack.enter_context(serve_s3())
        proxy = stack.enter_context(serve_storage_proxy(s3.endpoint_url))
        vlm = stack.enter_context(serve_openai())
        vlm.api_key = values.vlm_key
        vlm.default_reply = _HEALTHY_VLM
        footage = make_walk_in_footage(MEDIA, work / "walk_in.mp4")
        cameras = []
        for _ in range(rtsp_cameras):
            camera = RTSPCamera(footage, user="soak", password=values.rtsp_password)
            camera.start()
            stack.callback(camera.close)
            cameras.append(camera)
        yield Services(postgres, broker, s3, proxy, vlm, cameras)


_HEALTHY_VLM = ScriptedReply.analysis(risk_level="high", activity_type="person_at_door")
_SLOW_VLM = ScriptedReply.analysis(delay_s=VLM_TIMEOUT_S * 3)
_GARBAGE_VLM = ScriptedReply.completion("Sure! Here is the analysis: {risk: maybe")
_FAILING_VLM = ScriptedReply.error(500)


def make_faults(services: Services, process: HomesecProcess, vlm_outage_s: float) -> list[Fault]:
    proxy, vlm, pg, broker = services.proxy, services.vlm, services.postgres, services.broker

    def mode(value: ProxyMode) -> Action:
        async def set_mode() -> None:
            proxy.mode = value

        return set_mode

    def reply(value: ScriptedReply) -> Action:
        async def set_reply() -> None:
            vlm.default_reply = value

        return set_reply

    def thread(call: Callable[[], object]) -> Action:
        async def run() -> None:
            await asyncio.to_thread(call)

        return run

    # The restart comes first: recovery at start-up would otherwise mend what a later fault
    # broke, and hide it.
    faults = [
        Fault(FaultKind.HOMESEC_SIGKILL, thread(process.kill), process.start),
        # The AI down for minutes: people are still alerted, the spool still held to its cap.
        Fault(FaultKind.VLM_OUTAGE, reply(_FAILING_VLM), reply(_HEALTHY_VLM), vlm_outage_s),
        Fault(FaultKind.POSTGRES_DOWN, thread(pg.stop), thread(pg.start)),
        Fault(FaultKind.STORAGE_FAILING, mode(ProxyMode.FAIL), mode(ProxyMode.PASS)),
        Fault(FaultKind.VLM_TIMEOUT, reply(_SLOW_VLM), reply(_HEALTHY_VLM)),
        Fault(FaultKind.BROKER_DOWN, thread(broker.stop), thread(broker.start)),
        Fault(FaultKind.STORAGE_SLOW, mode(ProxyMode.SLOW), mode(ProxyMode.PASS)),
        Fault(FaultKind.VLM_GARBAGE, reply(_GARBAGE_VLM), reply(_HEALTHY_VLM)),
    ]
    # One camera vanishes (power cut) and comes back on the same port.
    faults += [
        Fault(FaultKind.RTSP_VANISH, thread(camera.vanish), thread(camera.start))
        for camera in services.cameras[:1]
    ]
    return faults
