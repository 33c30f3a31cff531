"""rtsp recorder, clip names: a clip's name is claimed from the service's ClipNames when its
recording starts, every live segment of it says so, and the finished clip gets that name,
even after a crash."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from homesec.models.clip import Clip, LiveSegment, clip_id_for
from homesec.pipeline.naming import ClipNames
from homesec.plugins.sources.rtsp.recorder import ClipRecorder, Segment

SEGMENT_S = 2.0  # the shared clip has a keyframe every 2 s


class Recorded:
    """What a recorder handed on: live segments and finished clips (from its threads)."""

    def __init__(self) -> None:
        self.live: list[LiveSegment] = []
        self.clips: list[Clip] = []
        self._clip_came = threading.Event()

    def on_live(self, segment: LiveSegment) -> None:
        self.live.append(segment)

    def hand_on(self, clip: Clip) -> None:
        self.clips.append(clip)
        self._clip_came.set()

    def wait_for_clips(self, count: int, timeout: float = 20.0) -> list[Clip]:
        deadline = time.monotonic() + timeout
        while len(self.clips) < count:
            assert time.monotonic() < deadline, f"timed out waiting for {count} clip(s)"
            self._clip_came.wait(0.1)
            self._clip_came.clear()
        return self.clips


class NamerOnLoop:
    """ClipNames on an event loop of its own thread, asked from the recorder's threads as the
    rtsp source asks it; a new one is a new process (it remembers no earlier claim)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._names = ClipNames()
        self._claims: list[Future[Path]] = []

    def claim(self, unix_seconds: int) -> Future[Path]:
        claim = self._names.claim("cam", unix_seconds, ".mp4", self._folder)
        future = asyncio.run_coroutine_threadsafe(claim, self._loop)
        self._claims.append(future)
        return future

    def wait(self) -> None:
        """Until every name asked for so far is given (and handed to the recorder)."""
        for future in self._claims:
            future.result(timeout=10)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self._loop).result(timeout=10)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def names(tmp_path: Path) -> Iterator[NamerOnLoop]:
    namer = NamerOnLoop(tmp_path / "clips")
    yield namer
    namer.close()


@pytest.fixture(scope="module")
def segment_files(tmp_path_factory: pytest.TempPathFactory, person_clip: Path) -> list[Path]:
    """Three MPEG-TS pieces of the person clip, cut at its keyframes as the stream's are."""
    folder = tmp_path_factory.mktemp("segments")
    cut = ["-t", "6", "-c", "copy", "-f", "segment", "-segment_time", "2"]
    pieces = ["-segment_format", "mpegts", str(folder / "piece_%03d.ts")]
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(person_clip), *cut, *pieces], check=True)
    return sorted(folder.glob("piece_*.ts"))[:3]


def _recorder(root: Path, recorded: Recorded, names: NamerOnLoop) -> ClipRecorder:
    return ClipRecorder(
        camera_name="cam",
        recordings_dir=root / "clips",
        segments_dir=root / "buffer",
        pre_roll_s=3.0,
        claim_name=names.claim,
        hand_on=recorded.hand_on,
        on_live=recorded.on_live,
    )


def _settled(root: Path, folder: str, timeout: float = 10.0) -> None:
    """Until the recorder took the clip's name: its segment folder is renamed after it (the
    name comes to the recorder on a thread of its own, after the claim)."""
    deadline = time.monotonic() + timeout
    while not (root / "buffer" / folder).is_dir():
        assert time.monotonic() < deadline, f"the recorder never settled {folder}"
        time.sleep(0.01)


def _segments(files: list[Path], root: Path, start: float) -> list[Segment]:
    """Copies of `files` in the buffer folder, back to back from `start` (unix seconds)."""
    segments = []
    for index, source in enumerate(files):
        path = root / "buffer" / f"c00001_{index:06d}.ts"
        shutil.copyfile(source, path)
        began = start + index * SEGMENT_S
        segments.append(Segment(path, began, began + SEGMENT_S))
    return segments


def test_live_segments_carry_the_name_the_finished_clip_gets(
    tmp_path: Path, segment_files: list[Path], names: NamerOnLoop
) -> None:
    # Given a recorder with one segment in its pre-roll buffer
    recorded = Recorded()
    recorder = _recorder(tmp_path, recorded, names)
    recorder.start()
    start = 1_700_000_000.25
    first, second, third = _segments(segment_files, tmp_path, start)
    recorder.add_segment(first)

    # When motion starts a clip (its name is claimed), two more segments arrive, and the
    # motion ends
    recorder.start_clip(start + 1.0)
    names.wait()
    _settled(tmp_path, "clip_1700000000250_1")
    recorder.add_segment(second)
    recorder.add_segment(third)
    recorder.end_clip(start + 5.0)
    recorder.stop()

    # Then every segment, pre-roll included, was handed on live with the clip's name...
    (clip,) = recorded.wait_for_clips(1)
    assert [segment.path.name for segment in recorded.live] == [
        "c00001_000000.ts",
        "c00001_000001.ts",
        "c00001_000002.ts",
    ]
    assert {segment.clip_id for segment in recorded.live} == {"cam_1700000000.mp4"}
    assert recorded.live[0].start_ts.timestamp() == pytest.approx(start)
    # ...and the finished clip has that name, in the folder the segments said
    assert clip.clip_id == "cam_1700000000.mp4"
    assert recorded.live[0].clip_path == clip.local_path
    assert clip.local_path.is_file()


def test_a_clip_gets_a_suffix_when_its_second_is_taken_or_promised(
    tmp_path: Path, segment_files: list[Path], names: NamerOnLoop
) -> None:
    # Given a clip file of second S already written, and a recorder
    recorded = Recorded()
    recorder = _recorder(tmp_path, recorded, names)
    recorder.start()
    start = 1_700_000_000.0
    (tmp_path / "clips" / clip_id_for("cam", 1_700_000_000)).write_bytes(b"taken")
    first, second, third = _segments(segment_files, tmp_path, start)

    # When a clip of second S records, ends before it holds its last motion (so it is
    # still waiting for a segment, its file not written), and another starts in second S
    recorder.start_clip(start)
    names.wait()
    _settled(tmp_path, "clip_1700000000000_2")
    recorder.add_segment(first)
    recorder.end_clip(start + 3.0)
    recorder.start_clip(start + 0.5)
    names.wait()
    _settled(tmp_path, "clip_1700000000500_3")
    recorder.add_segment(second)  # ends the first clip
    recorder.add_segment(third)  # the first segment of the second clip
    recorder.stop()

    # Then the first clip is S_2 (S is taken) and the second S_3 (S_2 was promised)
    clip_ids = [segment.clip_id for segment in recorded.live]
    assert clip_ids == ["cam_1700000000_2.mp4", "cam_1700000000_2.mp4", "cam_1700000000_3.mp4"]
    clips = recorded.wait_for_clips(2)
    assert sorted(clip.clip_id for clip in clips) == [
        "cam_1700000000_2.mp4",
        "cam_1700000000_3.mp4",
    ]


def test_a_clip_cut_short_by_a_crash_is_finished_under_its_reserved_name(
    tmp_path: Path, segment_files: list[Path], names: NamerOnLoop
) -> None:
    # Given a recorder that was recording a clip of a second whose first name was taken
    before_crash = Recorded()
    crashed = _recorder(tmp_path, before_crash, names)
    crashed.start()
    (tmp_path / "clips" / clip_id_for("cam", 1_700_000_000)).write_bytes(b"taken")
    first, second, _ = _segments(segment_files, tmp_path, 1_700_000_000.5)
    crashed.start_clip(first.start)
    names.wait()
    crashed.add_segment(first)
    crashed.add_segment(second)
    (promised,) = {segment.clip_id for segment in before_crash.live}

    # When the process dies there (the recorder is never stopped) and a new one starts
    (tmp_path / "clips" / clip_id_for("cam", 1_700_000_000)).unlink()  # pruned meanwhile
    after_restart = Recorded()
    restarted_names = NamerOnLoop(tmp_path / "clips")
    try:
        recorder = _recorder(tmp_path, after_restart, restarted_names)
        recorder.start()
        recorder.stop()
    finally:
        restarted_names.close()

    # Then the interrupted clip is finished under the name its live segments carried
    (clip,) = after_restart.wait_for_clips(1)
    assert promised == "cam_1700000000_2.mp4"
    assert clip.clip_id == promised
    assert clip.local_path.is_file()


def test_a_clip_cut_short_before_its_name_came_is_named_at_the_next_start(
    tmp_path: Path, segment_files: list[Path], names: NamerOnLoop
) -> None:
    # Given a clip's segments left by a crash before its name was known (folder without n)
    folder = tmp_path / "buffer" / "clip_1700000000500"
    folder.mkdir(parents=True)
    for index, source in enumerate(segment_files[:2]):
        shutil.copyfile(source, folder / f"c00001_{index:06d}.ts")
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / clip_id_for("cam", 1_700_000_000)).write_bytes(b"taken")

    # When a recorder starts there
    recorded = Recorded()
    recorder = _recorder(tmp_path, recorded, names)
    recorder.start()
    recorder.stop()

    # Then the clip is finished under a name claimed now: the next free one of its second
    (clip,) = recorded.wait_for_clips(1)
    assert clip.clip_id == "cam_1700000000_2.mp4"
    assert clip.local_path.is_file() and not folder.exists()
