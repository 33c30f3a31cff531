"""rtsp recorder, clip names: a clip's name is reserved when its recording starts, every live
segment of it says so, and the finished clip gets that name, even after a crash."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from homesec.models.clip import Clip, LiveSegment, clip_id_for
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


@pytest.fixture(scope="module")
def segment_files(tmp_path_factory: pytest.TempPathFactory, person_clip: Path) -> list[Path]:
    """Three MPEG-TS pieces of the person clip, cut at its keyframes as the stream's are."""
    folder = tmp_path_factory.mktemp("segments")
    cut = ["-t", "6", "-c", "copy", "-f", "segment", "-segment_time", "2"]
    pieces = ["-segment_format", "mpegts", str(folder / "piece_%03d.ts")]
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(person_clip), *cut, *pieces], check=True)
    return sorted(folder.glob("piece_*.ts"))[:3]


def _recorder(root: Path, recorded: Recorded) -> ClipRecorder:
    return ClipRecorder(
        camera_name="cam",
        recordings_dir=root / "clips",
        segments_dir=root / "buffer",
        pre_roll_s=3.0,
        hand_on=recorded.hand_on,
        on_live=recorded.on_live,
    )


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
    tmp_path: Path, segment_files: list[Path]
) -> None:
    # Given a recorder with one segment in its pre-roll buffer
    recorded = Recorded()
    recorder = _recorder(tmp_path, recorded)
    recorder.start()
    start = 1_700_000_000.25
    first, second, third = _segments(segment_files, tmp_path, start)
    recorder.add_segment(first)

    # When motion starts a clip, two more segments arrive, and the motion ends
    recorder.start_clip(start + 1.0)
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
    tmp_path: Path, segment_files: list[Path]
) -> None:
    # Given a clip file of second S already written, and a recorder
    recorded = Recorded()
    recorder = _recorder(tmp_path, recorded)
    recorder.start()
    start = 1_700_000_000.0
    (tmp_path / "clips" / clip_id_for("cam", 1_700_000_000)).write_bytes(b"taken")
    first, second, third = _segments(segment_files, tmp_path, start)

    # When a clip of second S records, ends before it holds its last motion (so it is
    # still waiting for a segment, its file not written), and another starts in second S
    recorder.start_clip(start)
    recorder.add_segment(first)
    recorder.end_clip(start + 3.0)
    recorder.start_clip(start + 0.5)
    recorder.add_segment(second)  # ends the first clip
    recorder.add_segment(third)  # the first segment of the second clip
    recorder.stop()

    # Then the first clip is S_2 (S is taken) and the second S_3 (S_2 was promised)
    names = [segment.clip_id for segment in recorded.live]
    assert names == ["cam_1700000000_2.mp4", "cam_1700000000_2.mp4", "cam_1700000000_3.mp4"]
    clips = recorded.wait_for_clips(2)
    assert sorted(clip.clip_id for clip in clips) == [
        "cam_1700000000_2.mp4",
        "cam_1700000000_3.mp4",
    ]


def test_a_clip_cut_short_by_a_crash_is_finished_under_its_reserved_name(
    tmp_path: Path, segment_files: list[Path]
) -> None:
    # Given a recorder that was recording a clip of a second whose first name was taken
    before_crash = Recorded()
    crashed = _recorder(tmp_path, before_crash)
    crashed.start()
    (tmp_path / "clips" / clip_id_for("cam", 1_700_000_000)).write_bytes(b"taken")
    first, second, _ = _segments(segment_files, tmp_path, 1_700_000_000.5)
    crashed.start_clip(first.start)
    crashed.add_segment(first)
    crashed.add_segment(second)
    (promised,) = {segment.clip_id for segment in before_crash.live}

    # When the process dies there (the recorder is never stopped) and a new one starts
    (tmp_path / "clips" / clip_id_for("cam", 1_700_000_000)).unlink()  # pruned meanwhile
    after_restart = Recorded()
    recorder = _recorder(tmp_path, after_restart)
    recorder.start()
    recorder.stop()

    # Then the interrupted clip is finished under the name its live segments carried
    (clip,) = after_restart.wait_for_clips(1)
    assert promised == "cam_1700000000_2.mp4"
    assert clip.clip_id == promised
    assert clip.local_path.is_file()
