"""Which moments of a clip the VLM sees, and how they are encoded."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from homesec.plugins.analyzers.frames import (
    FrameRun,
    Moment,
    extract_frames,
    pick_frame_times,
    plan_frames,
    snap_to_keyframes,
)
from homesec.video.clip import VideoReadError
from homesec.video.sampler import keyframe_times
from tests.video.clips import splice_clip

# The shared 1080p clips have a keyframe every 2 s.
EVERY_2_S = [float(t) for t in range(0, 20, 2)]


@pytest.fixture(scope="module")
def long_gop_clip(tmp_path_factory: pytest.TempPathFactory, person_clip: Path) -> Path:
    """12 s of the front door at 320x180 with a keyframe every 6 s, as some cameras send."""
    return splice_clip(
        tmp_path_factory.mktemp("clips") / "garage_1700000300.mp4",
        [(person_clip, 0.0, 12.0)],
        size=(320, 180),
        gop=90,
    )


def test_half_of_the_frames_go_around_the_first_sighting() -> None:
    # Given a 20 s clip where a person was first seen at 12 s
    first_seen_s = [12.0]

    # When ten frames are picked
    times = pick_frame_times(20.0, first_seen_s, 10)

    # Then five are between 1 s before and 4 s after the sighting, and the other five are
    # shared by the 11 s before and the 4 s after that window in proportion
    assert len(times) == 10
    assert times == sorted(times)
    near = [t for t in times if 11.0 <= t <= 16.0]
    far = [t for t in times if t not in near]
    assert len(near) == 5
    assert len([t for t in far if t < 11.0]) == 4
    assert len([t for t in far if t > 16.0]) == 1
    assert all(0.0 < t < 20.0 for t in times)


def test_without_a_sighting_frames_are_spread_evenly() -> None:
    # Given a 20 s clip where nothing was detected
    # When four frames are picked
    times = pick_frame_times(20.0, [], 4)

    # Then each is the middle of a quarter of the clip
    assert times == [2.5, 7.5, 12.5, 17.5]


def test_one_frame_is_taken_where_the_target_was_seen() -> None:
    # Given a person first seen at 3 s
    # When one frame is picked
    times = pick_frame_times(20.0, [3.0], 1)

    # Then it falls inside the window around the sighting
    assert len(times) == 1
    assert 2.0 <= times[0] <= 7.0


def test_sightings_of_several_classes_share_one_window() -> None:
    # Given a person at 4 s and a car at 6 s in a 30 s clip
    # When eight frames are picked
    times = pick_frame_times(30.0, [6.0, 4.0], 8)

    # Then four cover 3 s to 10 s and the others the rest of the clip
    assert len([t for t in times if 3.0 <= t <= 10.0]) == 4
    assert len(times) == 8


def test_a_window_covering_the_clip_spreads_frames_evenly() -> None:
    # Given a 4 s clip with a person from the start
    # When four frames are picked
    times = pick_frame_times(4.0, [0.0], 4)

    # Then they are evenly spread (there is nothing outside the window)
    assert times == [0.5, 1.5, 2.5, 3.5]


def test_max_frames_must_be_positive() -> None:
    # Given a clip with nothing detected
    # When zero frames are asked for
    # Then it is refused as a programming error
    with pytest.raises(ValueError, match="max_frames"):
        pick_frame_times(20.0, [], 0)


def test_the_plan_is_a_few_evenly_spaced_runs() -> None:
    # Given a 20 s clip with a person first seen at 12 s
    # When ten frames are planned
    runs = plan_frames(20.0, [12.0], 10)

    # Then there is a run before the window, the window, and a run after it
    assert [(run.count, run.end_s) for run in runs] == [(4, 11.0), (5, 16.0), (1, 20.0)]
    assert runs[1].times == pytest.approx([11.5, 12.5, 13.5, 14.5, 15.5])


def test_moments_move_onto_the_nearest_keyframe_within_half_a_step() -> None:
    # Given four moments 5 s apart (2.5, 7.5, 12.5, 17.5 s) and a keyframe every 2 s
    runs = plan_frames(20.0, [], 4)

    # When they are snapped to keyframes
    moments = snap_to_keyframes(runs, EVERY_2_S)

    # Then each moved to its nearest keyframe, still inside its own quarter of the clip
    assert moments == [
        Moment(2.0, on_keyframe=True),
        Moment(8.0, on_keyframe=True),
        Moment(12.0, on_keyframe=True),
        Moment(18.0, on_keyframe=True),
    ]


def test_moments_without_a_keyframe_that_close_stay_where_planned() -> None:
    # Given four moments 5 s apart and keyframes only at 1 s and 11 s (a long-GOP camera)
    runs = plan_frames(20.0, [], 4)

    # When they are snapped to keyframes
    moments = snap_to_keyframes(runs, [1.0, 11.0])

    # Then only the two moments within 2.5 s of a keyframe moved; the others are decoded exactly
    assert moments == [
        Moment(1.0, on_keyframe=True),
        Moment(7.5, on_keyframe=False),
        Moment(11.0, on_keyframe=True),
        Moment(17.5, on_keyframe=False),
    ]


def test_a_keyframe_serves_one_moment() -> None:
    # Given two moments half a second apart on either side of a keyframe at 12 s
    runs = [FrameRun(first_s=11.8, step_s=0.5, count=2, end_s=12.55)]

    # When they are snapped to keyframes
    moments = snap_to_keyframes(runs, [12.0])

    # Then the nearer takes the keyframe and the other keeps its own moment
    assert moments == [Moment(12.0, on_keyframe=True), Moment(12.3, on_keyframe=False)]


def test_snapping_keeps_half_of_the_frames_around_the_first_sighting() -> None:
    # Given ten moments for a person first seen at 12 s, and a keyframe every 2 s
    runs = plan_frames(20.0, [12.0], 10)

    # When they are snapped to keyframes
    times = [moment.time_s for moment in snap_to_keyframes(runs, EVERY_2_S)]

    # Then all ten are distinct, five still cover 1 s before to 4 s after the sighting, and
    # none moved by more than half the spacing of its run
    assert len(set(times)) == 10
    assert len([t for t in times if 11.0 <= t <= 16.0]) == 5
    planned = sorted((t, run.step_s) for run in runs for t in run.times)
    assert all(abs(t - p) <= step / 2 for t, (p, step) in zip(times, planned, strict=True))


def test_extracted_frames_are_jpegs_fitted_to_max_size(person_clip: Path) -> None:
    # Given three evenly spread moments of the 1080p clip (3.3, 10 and 16.7 s)
    runs = plan_frames(20.0, [], 3)

    # When they are extracted at 400 pixels, quality 75
    frames = extract_frames(person_clip, runs, max_size=400, quality=75)

    # Then each is a 16:9 JPEG of 400 pixels wide, from the keyframe nearest its moment
    assert [frame.time_s for frame in frames] == [4.0, 10.0, 16.0]
    for frame in frames:
        image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        assert image.shape == (225, 400, 3)
        assert (frame.width, frame.height) == (400, 225)
        assert frame.data_url.startswith("data:image/jpeg;base64,/9j/")


def test_moments_far_from_keyframes_are_decoded_exactly(person_clip: Path) -> None:
    # Given a person first seen at 0.5 s: five moments 0.9 s apart in the first 4.5 s, where
    # keyframes (every 2 s) are too sparse for two of them, and five over the rest
    runs = plan_frames(20.0, [0.5], 10)

    # When the frames are extracted
    frames = extract_frames(person_clip, runs, max_size=96, quality=60)

    # Then those two are the frames at their moments (within a frame), the others keyframes
    times = [frame.time_s for frame in frames]
    assert times[:5] == pytest.approx([0.0, 1.35, 2.0, 3.15, 4.0], abs=0.07)
    assert times[5:] == [6.0, 10.0, 12.0, 16.0, 18.0]


@pytest.mark.slow
def test_a_long_gop_clip_is_decoded_exactly_where_no_keyframe_is_near(
    long_gop_clip: Path,
) -> None:
    # Given a 12 s clip with keyframes only at 0 and 6 s, and six moments planned around a
    # sighting at 5 s: 1, 3, 4.83, 6.5, 8.17 and 10.5 s
    runs = plan_frames(12.0, [5.0], 6)
    assert keyframe_times(long_gop_clip) == [0.0, 6.0]

    # When the frames are extracted
    frames = extract_frames(long_gop_clip, runs, max_size=96, quality=60)

    # Then the two moments within half their run's step of a keyframe got it, and the other
    # four their own frame
    assert [frame.time_s for frame in frames] == pytest.approx(
        [0.0, 3.0, 4.83, 6.0, 8.17, 10.5], abs=0.07
    )


def test_moments_on_the_same_frame_give_it_once(person_clip: Path) -> None:
    # Given two moments a hundredth of a second apart (the clip has 15 fps)
    runs = [FrameRun(first_s=5.0, step_s=0.01, count=2, end_s=5.5)]

    # When they are extracted
    frames = extract_frames(person_clip, runs, max_size=128, quality=60)

    # Then one frame comes back
    assert len(frames) == 1


def test_moments_past_the_end_are_skipped(person_clip: Path) -> None:
    # Given one moment inside the 20 s clip and one after its end
    runs = [FrameRun(2.0, 1.0, 1, 3.0), FrameRun(25.0, 1.0, 1, 26.0)]

    # When they are extracted
    frames = extract_frames(person_clip, runs, max_size=128, quality=60)

    # Then only the readable one comes back
    assert [round(frame.time_s) for frame in frames] == [2]


def test_a_file_that_is_not_a_video_raises(tmp_path: Path) -> None:
    # Given a file of text
    clip = tmp_path / "garden_1700000000.mp4"
    clip.write_text("hello")

    # When frames are extracted
    # Then the sampler's error comes through
    with pytest.raises(VideoReadError):
        extract_frames(clip, [FrameRun(1.0, 1.0, 1, 2.0)], max_size=128, quality=60)


@pytest.mark.slow
@pytest.mark.parametrize("cores", [1, 2, 16])
def test_frames_do_not_depend_on_the_core_count(
    person_clip: Path, monkeypatch: pytest.MonkeyPatch, cores: int
) -> None:
    # Given a plan of ten moments around a sighting at 0.5 s, snapped as on one core, and a
    # machine of `cores` cores (one pass after another, or passes read in parallel)
    runs = plan_frames(20.0, [0.5], 10)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    one_core = extract_frames(person_clip, runs, max_size=96, quality=60)
    monkeypatch.setattr("os.cpu_count", lambda: cores)

    # When the frames are extracted
    frames = extract_frames(person_clip, runs, max_size=96, quality=60)

    # Then they are the same frames
    assert len(frames) == 10
    assert [frame.time_s for frame in frames] == [frame.time_s for frame in one_core]
    assert [frame.jpeg for frame in frames] == [frame.jpeg for frame in one_core]
