"""The rolling buffer of recorded segments, and the clips cut from it.

The stream's ffmpeg copies the main stream, without re-encoding, into MPEG-TS segments of
about a second (cut at keyframes). While no clip runs, only the last `pre_roll_s` (and some
slack) are kept. A clip that starts takes the buffered segments reaching back `pre_roll_s`
before the motion, then every new segment until it ends. Each segment belongs to one clip
at most. A clip's segments move into the clip's own folder as they arrive, so a clip cut
short by a crash is found and finished at the next start.

A clip's name (its clip_id) is reserved when its recording starts, and its folder's name
says which: whoever watches the segments as they arrive (`on_live`) knows the clip_id the
finished clip will have, also when a crash leaves the clip to be finished at the next start.

Finishing a clip (join, remux, probe) runs on one worker thread per camera: detection and
recording never wait on it, and it never waits on upload or analysis.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from homesec.models.clip import Clip, LiveSegment, clip_id_for, free_clip_path, parse_clip_id
from homesec.plugins.sources.rtsp.clipfile import assemble_clip

logger = logging.getLogger(__name__)

BACKEND = "rtsp"
SEGMENT_SUFFIX = ".ts"
# Segments older than the pre-roll are kept this much longer: motion is reported a little
# after it happened (consecutive frames needed, decoding latency).
_BUFFER_SLACK_S = 5.0
CLIP_EXTENSION = ".mp4"
# clip_{start in unix ms}_{n}: the clip's reserved name is clip_id_for(camera, start s, n).
_CLIP_FOLDER_RE = re.compile(r"^clip_(?P<ms>\d+)_(?P<n>\d+)$")


@dataclass(frozen=True)
class Segment:
    """A finished piece of the recording; times are unix seconds (wall clock)."""

    path: Path
    start: float
    end: float


@dataclass
class _Recording:
    folder: Path
    clip_path: Path  # reserved when the recording starts
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
        hand_on: Callable[[Clip], None],
        on_live: Callable[[LiveSegment], None] | None = None,
    ) -> None:
        self._camera_name = camera_name
        self._recordings_dir = recordings_dir
        self._segments_dir = segments_dir
        self._pre_roll_s = pre_roll_s
        self._hand_on = hand_on
        self._on_live = on_live
        self._lock = threading.Lock()
        self._buffer: list[Segment] = []
        self._current: _Recording | None = None
        self._closing: list[_Recording] = []
        self._reserved: set[str] = set()  # names of clips not written yet
        self._finisher: ThreadPoolExecutor | None = None

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
        for entry in sorted(self._segments_dir.iterdir()):
            name = _CLIP_FOLDER_RE.match(entry.name)
            if entry.is_dir() and name is not None:
                logger.warning(
                    "Finishing a clip interrupted by the last shutdown (%s)",
                    entry.name,
                    extra=self._log_extra,
                )
                start = int(name["ms"]) / 1000
                segments = [Segment(path, start, start) for path in sorted(entry.iterdir())]
                with self._lock:
                    clip_path = self._reserve(int(start), int(name["n"]))
                    self._finish(_Recording(entry, clip_path, segments))
            elif entry.is_file() and entry.suffix == SEGMENT_SUFFIX:
                entry.unlink()  # an old pre-roll buffer: no clip asked for it

    def stop(self) -> None:
        """Finish what is recorded and wait until every clip is handed on (blocking)."""
        self.stream_ended()
        if self._finisher is not None:
            self._finisher.shutdown(wait=True)
            self._finisher = None

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
        clip_path = self._reserve(int(start))
        name = parse_clip_id(clip_path.name)
        if name is None:
            raise AssertionError(f"{clip_path.name} breaks the clip_id rule")
        folder = self._segments_dir / f"clip_{int(start * 1000)}_{name.n}"
        folder.mkdir(parents=True, exist_ok=True)
        return _Recording(folder, clip_path)

    def _reserve(self, unix_seconds: int, n: int = 1) -> Path:
        """The clip's name from now on: the n-th of its second when free, else the next free."""
        wanted = self._recordings_dir / clip_id_for(
            self._camera_name, unix_seconds, n, CLIP_EXTENSION
        )
        if wanted.name in self._reserved or wanted.exists():
            wanted = free_clip_path(
                self._recordings_dir,
                self._camera_name,
                unix_seconds,
                CLIP_EXTENSION,
                self._reserved,
            )
        self._reserved.add(wanted.name)
        return wanted

    def _take(self, recording: _Recording, segment: Segment) -> None:
        moved = recording.folder / segment.path.name
        segment.path.replace(moved)
        recording.segments.append(Segment(moved, segment.start, segment.end))
        if self._on_live is not None:
            self._on_live(
                LiveSegment(
                    camera_name=self._camera_name,
                    clip_path=recording.clip_path,
                    path=moved,
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
        # A segment's end is seen as it happens; its start is derived from its length, and
        # the first segments of a connection arrive in a burst. So the clip is placed
        # backwards from its end.
        end = recording.segments[-1].end
        length = sum(segment.end - segment.start for segment in recording.segments)
        paths = [segment.path for segment in recording.segments]
        try:
            written = assemble_clip(paths, recording.clip_path, self._camera_name)
        except Exception:
            # A worker thread's error would vanish in its future. The segments stay in their
            # folder (and the name reserved), so the next start tries again.
            logger.exception("Cannot write a clip", extra=self._log_extra)
            return
        with self._lock:
            self._reserved.discard(recording.clip_path.name)
        shutil.rmtree(recording.folder, ignore_errors=True)
        duration = length if written.duration_s is None else written.duration_s
        self._hand_on(clip_record(written.path, self._camera_name, end - length, duration))


def clip_record(path: Path, camera_name: str, start: float, duration: float) -> Clip:
    """The `Clip` of a finished file of this source (times in unix seconds)."""
    duration = max(0.0, duration)
    return Clip(
        clip_id=path.name,
        camera_name=camera_name,
        local_path=path,
        start_ts=datetime.fromtimestamp(start, UTC),
        end_ts=datetime.fromtimestamp(start + duration, UTC),
        duration_s=duration,
        source_backend=BACKEND,
    )
