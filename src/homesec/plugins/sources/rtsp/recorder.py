"""The rolling buffer of recorded segments, and the clips cut from it.

The stream's ffmpeg copies the main stream, without re-encoding, into MPEG-TS segments of
about a second (cut at keyframes). While no clip runs, only the last `pre_roll_s` (and some
slack) are kept. A clip that starts takes the buffered segments reaching back `pre_roll_s`
before the motion, then every new segment until it ends. Each segment belongs to one clip
at most. A clip's segments move into the clip's own folder as they arrive, so a clip cut
short by a crash is found and finished at the next start.

A clip's name (its clip_id) is claimed from the service's `ClipNamer` when its recording
starts (`claim_name`, answered on the event loop), and its folder's name says which once it
is known (`clip_{ms}_{n}`): whoever watches the segments as they arrive (`on_live`) gets them
with the clip_id the finished clip will have, also when a crash leaves the clip to be
finished at the next start. Segments taken before the name is known (the pre-roll) are not
held back: the newest of them is handed on as soon as it is.

Finishing a clip (join, remux, probe) runs on one worker thread per camera: detection and
recording never wait on it, and it never waits on upload or analysis.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from homesec.models.clip import Clip, LiveSegment, clip_id_for, free_clip_path, parse_clip_id
from homesec.plugins.sources.base import clip_record
from homesec.plugins.sources.rtsp.clipfile import assemble_clip

logger = logging.getLogger(__name__)

BACKEND = "rtsp"
SEGMENT_SUFFIX = ".ts"
# Segments older than the pre-roll are kept this much longer: motion is reported a little
# after it happened (consecutive frames needed, decoding latency).
_BUFFER_SLACK_S = 5.0
CLIP_EXTENSION = ".mp4"
# clip_{start in unix ms}[_{n}]: once claimed, the clip's name is clip_id_for(camera, start s, n).
_CLIP_FOLDER_RE = re.compile(r"^clip_(?P<ms>\d+)(?:_(?P<n>\d+))?$")
# How long finishing a clip waits for its name (the database and storage are asked).
_NAME_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Segment:
    """A finished piece of the recording; times are unix seconds (wall clock)."""

    path: Path
    start: float
    end: float


@dataclass
class _Recording:
    folder: Path
    start_ms: int
    name: Future[Path]  # claimed when the recording starts
    clip_path: Path | None = None  # the name, once settled
    segments: list[Segment] = field(default_factory=list)
    end_after: float | None = None  # finish once a segment ends at or after this time


class ClipRecorder:
    """Cuts clips out of the segment stream of one camera; thread-safe."""

    def __init__(
        self,
        *,
        camera_name: str,
        recordings_dir: Path,
        segments_dir: Path,
        pre_roll_s: float,
        claim_name: Callable[[int], Future[Path]],
        hand_on: Callable[[Clip], None],
        on_live: Callable[[LiveSegment], None],
    ) -> None:
        self._camera_name = camera_name
        self._recordings_dir = recordings_dir
        self._segments_dir = segments_dir
        self._pre_roll_s = pre_roll_s
        self._claim_name = claim_name
        self._hand_on = hand_on
        self._on_live = on_live
        # Re-entrant: a name already claimed settles on the thread that asked for it.
        self._lock = threading.RLock()
        self._buffer: list[Segment] = []
        self._current: _Recording | None = None
        self._closing: list[_Recording] = []
        self._finisher: ThreadPoolExecutor | None = None
        # Names arrive on the event loop's thread: they are settled here, off the loop.
        self._naming: ThreadPoolExecutor | None = None

    @property
    def _log_extra(self) -> dict[str, str]:
        return {"camera_name": self._camera_name}

    def start(self) -> None:
        """Prepare the folders; finish the clips a previous run left unfinished (blocking)."""
        self._recordings_dir.mkdir(parents=True, exist_ok=True)
        self._segments_dir.mkdir(parents=True, exist_ok=True)
        self._finisher = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"rtsp-finish:{self._camera_name}"
        )
        self._naming = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"rtsp-name:{self._camera_name}"
        )
        for entry in sorted(self._segments_dir.iterdir()):
            name = _CLIP_FOLDER_RE.match(entry.name)
            if entry.is_dir() and name is not None:
                self._finish_interrupted(entry, int(name["ms"]), name["n"])
            elif entry.is_file() and entry.suffix == SEGMENT_SUFFIX:
                entry.unlink()  # an old pre-roll buffer: no clip asked for it

    def _finish_interrupted(self, folder: Path, start_ms: int, n: str | None) -> None:
        start = start_ms / 1000
        if n is None:  # the clip had no name yet: claim one now
            name = self._claim(int(start))
        else:
            name = Future()
            name.set_result(
                self._recordings_dir / clip_id_for(self._camera_name, int(start), int(n))
            )
            if name.result().exists():  # written just before the crash, not yet cleaned up
                shutil.rmtree(folder, ignore_errors=True)
                return
        logger.warning(
            "Finishing a clip interrupted by the last shutdown (%s)",
            folder.name,
            extra=self._log_extra,
        )
        segments = [Segment(path, start, start) for path in sorted(folder.iterdir())]
        with self._lock:
            self._finish(_Recording(folder, start_ms, name, segments=segments))

    def stop(self) -> None:
        """Finish what is recorded and wait until every clip is handed on (blocking)."""
        self.stream_ended()
        for pool in (self._finisher, self._naming):
            if pool is not None:
                pool.shutdown(wait=True)
        self._finisher = self._naming = None

    def add_segment(self, segment: Segment) -> None:
        """A segment is complete: it goes to the oldest clip still taking segments."""
        with self._lock:
            if self._closing:
                recording = self._closing[0]
                self._take(recording, segment)
                if recording.end_after is not None and segment.end >= recording.end_after:
                    self._finish(self._closing.pop(0))
            elif self._current is not None:
                self._take(self._current, segment)
            else:
                self._buffer.append(segment)
                self._prune(segment.end - self._pre_roll_s - _BUFFER_SLACK_S)

    def start_clip(self, motion_start: float) -> None:
        """Motion began: open a clip holding the pre-roll."""
        with self._lock:
            if self._current is not None:
                return
            self._prune(motion_start - self._pre_roll_s)
            pre_roll, self._buffer = self._buffer, []
            first = pre_roll[0].start if pre_roll else motion_start
            self._current = self._new_recording(first)
            for segment in pre_roll:
                self._take(self._current, segment)

    def end_clip(self, last_motion: float) -> None:
        """No more motion: finish the clip once it holds the moment of the last motion."""
        with self._lock:
            recording, self._current = self._current, None
            if recording is None:
                return
            if recording.segments and recording.segments[-1].end >= last_motion:
                self._finish(recording)
            else:
                recording.end_after = last_motion
                self._closing.append(recording)

    def rotate_clip(self) -> None:
        """The clip is long enough: finish it now and go on in a new one (no pre-roll)."""
        with self._lock:
            if self._current is None or not self._current.segments:
                return
            self._finish(self._current)
            self._current = self._new_recording(time.time())

    def stream_ended(self) -> None:
        """The connection is gone: finish every clip with what it holds; drop the buffer."""
        with self._lock:
            recordings = [*self._closing, *([self._current] if self._current else [])]
            self._closing, self._current = [], None
            for recording in recordings:
                self._finish(recording)
            self._prune(float("inf"))

    def _new_recording(self, start: float) -> _Recording:
        start_ms = int(start * 1000)
        folder = self._segments_dir / f"clip_{start_ms}"
        folder.mkdir(parents=True, exist_ok=True)
        recording = _Recording(folder, start_ms, self._claim(int(start)))
        recording.name.add_done_callback(lambda _: self._settle_soon(recording))
        return recording

    def _settle_soon(self, recording: _Recording) -> None:
        naming = self._naming
        if naming is None:
            return  # stopping: the finisher settles the name itself
        try:
            naming.submit(self._named, recording)
        except RuntimeError:  # shut down meanwhile
            return

    def _claim(self, unix_seconds: int) -> Future[Path]:
        try:
            return self._claim_name(unix_seconds)
        except RuntimeError as exc:  # no event loop to ask (shutting down)
            failed: Future[Path] = Future()
            failed.set_exception(exc)
            return failed

    def _named(self, recording: _Recording) -> None:
        """The name came: a clip still recording hands its newest segment on live now."""
        with self._lock:
            if recording.clip_path is not None:
                return
            self._settle(recording)
            recording_now = recording is self._current or recording in self._closing
            if recording_now and recording.segments:
                self._live(recording, recording.segments[-1])

    def _settle(self, recording: _Recording) -> Path:
        """The clip's name from now on (under the lock); its folder says it."""
        if recording.clip_path is not None:
            return recording.clip_path
        clip_path = recording.clip_path = self._claimed(recording)
        name = parse_clip_id(clip_path.name)
        if name is None:
            raise AssertionError(f"{clip_path.name} breaks the clip_id rule")
        named = self._segments_dir / f"clip_{recording.start_ms}_{name.n}"
        if recording.folder != named and recording.folder.exists():
            recording.folder.rename(named)
            recording.segments = [
                Segment(named / segment.path.name, segment.start, segment.end)
                for segment in recording.segments
            ]
            recording.folder = named
        return clip_path

    def _claimed(self, recording: _Recording) -> Path:
        future = recording.name
        if future.done() and future.exception() is None:
            return future.result()
        # The loop is gone or stuck: a name free in the spool at least (never a lost clip).
        logger.error(
            "No clip name from the service (%s); naming by the local spool only",
            future.exception() if future.done() else "no answer in time",
            extra=self._log_extra,
        )
        return free_clip_path(
            self._recordings_dir,
            self._camera_name,
            recording.start_ms // 1000,
            CLIP_EXTENSION,
        )

    def _take(self, recording: _Recording, segment: Segment) -> None:
        moved = recording.folder / segment.path.name
        segment.path.replace(moved)
        taken = Segment(moved, segment.start, segment.end)
        recording.segments.append(taken)
        self._live(recording, taken)

    def _live(self, recording: _Recording, segment: Segment) -> None:
        if recording.clip_path is None:
            return  # handed on once the name is known (see _named)
        self._on_live(
            LiveSegment(
                camera_name=self._camera_name,
                clip_path=recording.clip_path,
                path=segment.path,
                start_ts=datetime.fromtimestamp(segment.start, UTC),
            )
        )

    def _prune(self, before: float) -> None:
        kept = []
        for segment in self._buffer:
            if segment.end <= before:
                segment.path.unlink(missing_ok=True)
            else:
                kept.append(segment)
        self._buffer = kept

    def _finish(self, recording: _Recording) -> None:
        if not recording.segments:
            shutil.rmtree(recording.folder, ignore_errors=True)
            return
        if self._finisher is None:
            raise RuntimeError("the recorder is not started")
        self._finisher.submit(self._write, recording)

    def _write(self, recording: _Recording) -> None:
        with contextlib.suppress(Exception):  # settled below, by the local spool if need be
            recording.name.result(timeout=_NAME_TIMEOUT_S)
        with self._lock:
            clip_path = self._settle(recording)
        # A segment's end is seen as it happens; its start is derived from its length, and
        # the first segments of a connection arrive in a burst. So the clip is placed
        # backwards from its end.
        end = recording.segments[-1].end
        length = sum(segment.end - segment.start for segment in recording.segments)
        paths = [segment.path for segment in recording.segments]
        try:
            written = assemble_clip(paths, clip_path, self._camera_name)
        except Exception:
            # A worker thread's error would vanish in its future. The segments stay in their
            # folder (named after the clip), so the next start tries again.
            logger.exception("Cannot write a clip", extra=self._log_extra)
            return
        shutil.rmtree(recording.folder, ignore_errors=True)
        duration = length if written.duration_s is None else written.duration_s
        self._hand_on(clip_record(written.path, self._camera_name, BACKEND, end - length, duration))
