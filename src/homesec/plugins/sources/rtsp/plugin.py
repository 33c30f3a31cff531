"""`rtsp` source: an IP camera watched for motion, clips recorded from its main stream.

One supervisor task per camera (`rtsp:{camera}`) keeps a connection (`CameraStream`, one
ffmpeg) open forever: when ffmpeg ends, or no frame came for `frame_timeout_s` (a stalled
camera keeps its socket open), the connection is stopped and reaped, the clip being recorded
is finished and handed on, and a new connection is made after an exponential backoff with
jitter. Motion detection runs in the connection's frame thread; clips are finished on the
recorder's thread; the callbacks (finished clips, and the segments of clips still being
recorded for whoever registered a live callback) run on the event loop's thread.

Camera URLs carry credentials: only redacted forms are logged, and the URLs and their
passwords are registered with telemetry (by their config type) so that no log line shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import cv2

from homesec.backoff import Backoff, Jitter
from homesec.errors import CheckFailed
from homesec.interfaces import LiveSegmentCallback, SelfCheck
from homesec.models.clip import Clip, LiveSegment
from homesec.models.enums import PluginType
from homesec.models.env import SecretEnv
from homesec.plugins.registry import plugin
from homesec.plugins.sources.base import SourceBase
from homesec.plugins.sources.rtsp import motion
from homesec.plugins.sources.rtsp.config import RTSPSourceConfig
from homesec.plugins.sources.rtsp.hardware import DecoderChoice, decoder_candidates
from homesec.plugins.sources.rtsp.recorder import BACKEND, CLIP_EXTENSION, ClipRecorder
from homesec.plugins.sources.rtsp.stream import CameraStream, StreamSpec, rtsp_input_args
from homesec.telemetry import redact
from homesec.video.ffmpeg import FfmpegError, run_ffmpeg

logger = logging.getLogger(__name__)

# Health is judged from frames; this is how often the supervisor looks.
_WATCH_INTERVAL_S = 0.5
# Opening a stream (RTSP handshake, a second of probing, the first keyframe) comes on top
# of frame_timeout_s before the first frame.
_CONNECT_GRACE_S = 5.0
# A segment ends at a keyframe: cameras with long keyframe intervals (smart codecs) take
# this long for one, so a recording counts as stalled only after it.
_SEGMENT_TIMEOUT_S = 30.0
# How long ffmpeg gets to finish its last segment when stopped (then it is killed).
_STOP_GRACE_S = 5.0
_STALLED_GRACE_S = 1.0
# How long aclose() waits for the supervisor to finish the last clip before cancelling it.
_STOP_TIMEOUT_S = 60.0


@plugin(PluginType.SOURCE, BACKEND, config=RTSPSourceConfig)
class RTSPSource(SourceBase[RTSPSourceConfig]):
    backend = BACKEND

    def __init__(self, config: RTSPSourceConfig) -> None:
        super().__init__(config)
        self._main_url = _rtsp_url(config.rtsp_url_env)
        self._detect_url = _rtsp_url(config.detect_url_env) if config.detect_url_env else None
        self._recordings_dir = config.recordings_dir.expanduser().resolve()
        # Per camera: cameras may share a recordings folder or a segments folder.
        buffer_root = config.segments_dir or self._recordings_dir / ".buffer"
        self._segments_dir = buffer_root.expanduser().resolve() / config.camera_name
        self._recorder = ClipRecorder(
            camera_name=config.camera_name,
            recordings_dir=self._recordings_dir,
            segments_dir=self._segments_dir,
            pre_roll_s=config.pre_roll_s,
            claim_name=self._claim_name,
            hand_on=self._hand_on_threadsafe,
            on_live=self._live_threadsafe,
        )
        self._live_callbacks: list[LiveSegmentCallback] = []
        self._stopping = asyncio.Event()
        self._decoder = DecoderChoice([None], config.camera_name)
        self._connections = 0
        self._latest: tuple[motion.GrayFrame, float] | None = None

    async def live_picture(self) -> bytes | None:
        """The latest frame of the motion stream (grayscale, `motion.width` wide) as a JPEG;
        None when none came in the last `frame_timeout_s`."""
        latest = self._latest
        if latest is None or time.time() - latest[1] > self._config.frame_timeout_s:
            return None
        encoded, jpeg = await asyncio.to_thread(cv2.imencode, ".jpg", latest[0])
        return jpeg.tobytes() if encoded else None

    def register_live_callback(self, callback: LiveSegmentCallback) -> None:
        self._live_callbacks.append(callback)

    async def _open(self) -> None:
        self._stopping = asyncio.Event()
        await asyncio.to_thread(self._recorder.start)
        candidates = await asyncio.to_thread(decoder_candidates, self._config.hwaccel)
        self._decoder = DecoderChoice(candidates, self.camera_name)
        self._task = asyncio.create_task(self._supervise(), name=f"rtsp:{self.camera_name}")

    async def aclose(self) -> None:
        if self._task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), _STOP_TIMEOUT_S)
        except TimeoutError:
            logger.error("Camera did not stop in time", extra=self._log_extra)
        await self._cancel_task()

    def is_healthy(self) -> bool:
        return self._running and time.time() - self._heartbeat < 3 * self._config.frame_timeout_s

    def self_checks(self) -> list[SelfCheck]:
        """Each stream opens and sends a video packet, with the configured credentials."""
        config = self._config
        checks = [
            SelfCheck(
                "stream opens",
                partial(self._check_stream, self._main_url, config.rtsp_url_env.name),
            )
        ]
        if self._detect_url is not None and config.detect_url_env is not None:
            detect = partial(self._check_stream, self._detect_url, config.detect_url_env.name)
            checks.append(SelfCheck("detect stream opens", detect))
        return checks

    async def _check_stream(self, url: str, env_name: str, timeout_s: float) -> str:
        args = [
            *rtsp_input_args(self._config.rtsp_transport, timeout_s),
            *["-i", url, "-map", "0:v:0", "-c", "copy", "-frames:v", "1", "-f", "null", "-"],
        ]
        try:
            await asyncio.to_thread(run_ffmpeg, args, timeout_s=timeout_s)
        except FfmpegError as exc:  # its message is redacted
            raise CheckFailed(
                f"cannot open the stream in ${env_name} ({exc}): is the camera on and "
                "reachable? check the URL, its user and password",
                exc,
            ) from exc
        return f"{redact(url)} sends video"

    def spooled_clips(self) -> list[Clip]:
        return self._clips_in(self._recordings_dir)

    async def _supervise(self) -> None:
        # Jittered: cameras behind one switch or NVR do not reconnect in lockstep.
        backoff = Backoff(
            self._config.reconnect_initial_s, self._config.reconnect_max_s, Jitter.UPPER_HALF
        )
        try:
            while not self._stopping.is_set():
                try:
                    frames, reason = await self._connect_once()
                except Exception:
                    # Whatever goes wrong, the camera must come back: log it and reconnect.
                    logger.exception("Camera connection failed", extra=self._log_extra)
                    frames, reason = 0, "internal error"
                if self._stopping.is_set():
                    break
                retry_now = self._decoder.connection_ended(frames > 0)
                if frames > 0:
                    backoff.reset()
                delay = 0.0 if retry_now else backoff.next_s()
                logger.warning(
                    "Camera %s: %s; reconnecting in %.1f s",
                    redact(self._main_url),
                    reason,
                    delay,
                    extra=self._log_extra,
                )
                await self._wait_unless_stopping(delay)
        finally:
            await asyncio.to_thread(self._recorder.stop)

    async def _connect_once(self) -> tuple[int, str]:
        """Run one connection until it ends, stalls or is stopped: (frames seen, why it ended)."""
        stream = self._new_stream()
        try:
            await asyncio.to_thread(stream.start)
        except FfmpegError as exc:
            return 0, str(exc)
        grace_s = _STOP_GRACE_S
        try:
            while not self._stopping.is_set():
                if stream.ended:
                    return stream.frames, f"the stream ended ({stream.failure()})"
                if (stalled := self._stalled(stream)) is not None:
                    # A stalled ffmpeg may take seconds to notice SIGINT; what it holds of
                    # the last segment is on disk and kept anyway.
                    grace_s = _STALLED_GRACE_S
                    return stream.frames, stalled
                await self._wait_unless_stopping(_WATCH_INTERVAL_S)
            return stream.frames, "stopping"
        finally:
            await asyncio.to_thread(stream.stop, grace_s)
            # The recording of a lost stream is finished now, not when it comes back.
            await asyncio.to_thread(self._recorder.stream_ended)

    async def _wait_unless_stopping(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay_s)

    def _stalled(self, stream: CameraStream) -> str | None:
        """Why the connection counts as stalled, or None while it works."""
        now = time.time()
        allowed_s = self._config.frame_timeout_s + (0 if stream.frames else _CONNECT_GRACE_S)
        quiet_s = now - stream.last_frame_at
        if quiet_s > allowed_s:
            return f"no frame for {quiet_s:.1f} s (stalled)"
        # Frames flowing while the main stream stopped (it has its own RTSP session).
        unrecorded_s = now - stream.last_segment_at
        if unrecorded_s > max(_SEGMENT_TIMEOUT_S, 3 * self._config.frame_timeout_s):
            return f"nothing recorded for {unrecorded_s:.1f} s (main stream stalled)"
        return None

    def _new_stream(self) -> CameraStream:
        self._connections += 1
        config = self._config
        spec = StreamSpec(
            main_url=self._main_url,
            detect_url=self._detect_url,
            transport=config.rtsp_transport,
            width=config.motion.width,
            fps=config.motion.fps,
            hwaccel=self._decoder.current,
            audio=config.audio,
            segments_dir=self._segments_dir,
            prefix=f"c{self._connections:05d}_",
            # A backstop: the watchdog above sees a stall first and says so.
            io_timeout_s=2 * config.frame_timeout_s,
        )
        stream_started = time.time()
        # A new connection starts with a fresh background model and no clip running (the
        # recorder finished the last one when the old connection ended).
        detector = motion.MotionDetector(config.motion)
        trigger = motion.MotionTrigger(
            pre_roll_s=config.pre_roll_s,
            stop_delay_s=config.stop_delay_s,
            max_clip_s=config.max_clip_s,
            min_frames=config.motion.min_motion_frames,
        )

        def on_frame(frame: motion.GrayFrame, now: float) -> None:
            if self._heartbeat < stream_started:
                logger.info(
                    "Receiving frames from %s (%dx%d, hardware decoding: %s)",
                    redact(self._main_url),
                    frame.shape[1],
                    frame.shape[0],
                    spec.hwaccel or "off",
                    extra=self._log_extra,
                )
            self._heartbeat = now
            self._latest = (frame, now)  # a reference: the frame is not written to again
            self._act_on(trigger.update(now, detector.detect(frame)))

        return CameraStream(
            spec,
            on_frame=on_frame,
            on_segment=self._recorder.add_segment,
            name=f"rtsp-ffmpeg:{self.camera_name}",
            log_extra=self._log_extra,
        )

    def _act_on(self, decision: motion.ClipDecision | None) -> None:
        """Frame thread: carry a motion decision out on the recorder."""
        match decision:
            case motion.StartClip(motion_start=start):
                logger.info("Motion: recording", extra=self._log_extra)
                self._recorder.start_clip(start)
            case motion.EndClip(last_motion=last):
                logger.info("Motion ended: finishing the clip", extra=self._log_extra)
                self._recorder.end_clip(last)
            case motion.RotateClip():
                logger.info("Clip reached max_clip_s: going on in a new one", extra=self._log_extra)
                self._recorder.rotate_clip()
            case None:
                pass

    def _claim_name(self, unix_seconds: int) -> Future[Path]:
        """Recorder's threads: a new clip's name, claimed on the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._namer is None:
            raise RuntimeError("the source is not running")
        claim = self._names.claim(
            self.camera_name, unix_seconds, CLIP_EXTENSION, self._recordings_dir
        )
        return asyncio.run_coroutine_threadsafe(claim, loop)

    def _hand_on_threadsafe(self, clip: Clip) -> None:
        if not self._on_loop(self._hand_on, clip):
            # The loop is gone (shutdown): the clip stays in the spool for recovery.
            logger.warning("Clip %s left for recovery", clip.clip_id, extra=self._log_extra)

    def _live_threadsafe(self, segment: LiveSegment) -> None:
        # Nobody watching, or shutting down: the finalized clip is checked as a whole anyway.
        if self._live_callbacks:
            self._on_loop(self._hand_on_live, segment)

    def _hand_on_live(self, segment: LiveSegment) -> None:
        for callback in self._live_callbacks:
            callback(segment)


def _rtsp_url(env: SecretEnv) -> str:
    url = env.value.get_secret_value()
    if urlsplit(url).scheme not in ("rtsp", "rtsps"):
        raise ValueError(f"not an rtsp:// URL: {redact(url)}")
    return url
