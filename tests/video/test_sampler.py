"""The shared frame sampler: rate, moments, coverage, scaling, cheap decoding, damaged clips."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest

from homesec.video.clip import VideoReadError, probe_clip
from homesec.video.decoding import SamplerStats
from homesec.video.sampler import keyframe_times, sample_frames, sample_moments
from tests.video.clips import remux_shifted, scramble, truncate


def decode_all(clip: Path) -> dict[float, np.ndarray]:
    """Every frame of the clip, decoded in full, as RGB by time (rounded to the millisecond)."""
    with av.open(str(clip)) as container:
        container.streams.video[0].thread_type = "AUTO"
        return {
            round(float(frame.time or 0.0), 3): frame.to_ndarray(format="rgb24")
            for frame in container.decode(video=0)
        }


def test_probe_describes_the_clip_without_decoding(person_clip: Path) -> None:
    # Given a 20 s 1080p clip at 15 fps
    # When it is probed
    info = probe_clip(person_clip)

    # Then its headers tell size, rate, length and codec
    assert (info.width, info.height) == (1920, 1080)
    assert info.fps == pytest.approx(15.0)
    assert info.duration_s == pytest.approx(20.0, abs=0.1)
    assert info.frame_count == 300
    assert info.codec == "h264"


@pytest.mark.slow
def test_samples_cover_the_whole_clip_at_the_requested_rate(person_clip: Path) -> None:
    # Given a 20 s clip
    # When it is sampled at 2 frames per second
    frames = list(sample_frames(person_clip, fps=2.0, fit=(64, 64)))

    # Then there is a frame about every half second, from the start to the last second
    times = [frame.time_s for frame in frames]
    assert len(frames) == 40
    assert times[0] == 0.0
    assert times[-1] >= 19.0
    assert all(0.3 <= later - earlier <= 0.7 for earlier, later in pairwise(times))


def test_frames_are_scaled_to_fit_in_the_requested_pixel_format(person_clip: Path) -> None:
    # Given a 1920x1080 clip
    # When its first frame is sampled to fit 416x416, once as BGR and once as RGB
    bgr = next(sample_frames(person_clip, fit=(416, 416), pixel_format="bgr24"))
    rgb = next(sample_frames(person_clip, fit=(416, 416), pixel_format="rgb24"))

    # Then the aspect ratio is kept, the source size is known, and channels are swapped
    assert bgr.image.shape == (234, 416, 3)
    assert bgr.image.dtype == np.uint8
    assert bgr.source_size == (1920, 1080)
    swapped = rgb.image[..., ::-1].astype(int)
    assert np.abs(bgr.image.astype(int) - swapped).mean() < 3.0


def test_max_frames_spreads_the_frames_over_the_whole_clip(person_clip: Path) -> None:
    # Given a 20 s clip
    # When at most 5 frames are wanted at 2 fps
    frames = list(sample_frames(person_clip, fps=2.0, max_frames=5, fit=(64, 64)))

    # Then 5 frames come, 4 s apart, the last one in the final seconds
    assert [round(frame.time_s) for frame in frames] == [0, 4, 8, 12, 16]


def test_a_window_of_the_clip_can_be_sampled(person_clip: Path) -> None:
    # Given a 20 s clip
    # When only 7.3 s to 12 s is sampled at 2 fps
    frames = list(sample_frames(person_clip, fps=2.0, start_s=7.3, end_s=12.0, fit=(64, 64)))

    # Then every frame lies in that window
    assert len(frames) >= 8
    assert all(7.2 <= frame.time_s < 12.0 for frame in frames)


@pytest.mark.slow
def test_sparse_sampling_decodes_only_what_it_needs(person_clip: Path) -> None:
    # Given a 300-frame clip with a keyframe every 2 s
    sparse, dense = SamplerStats(), SamplerStats()

    # When it is sampled at 0.5 fps, and its first 4 s at the full 15 fps
    list(sample_frames(person_clip, fps=0.5, fit=(64, 64), stats=sparse))
    list(sample_frames(person_clip, fps=15.0, end_s=4.0, fit=(64, 64), stats=dense))

    # Then sparse sampling decodes a few frames per sample, dense sampling every frame
    assert sparse.frames_sampled == 10
    assert sparse.frames_decoded <= 20
    assert dense.frames_sampled == dense.frames_decoded == 60


@pytest.mark.slow
def test_skipping_ahead_yields_the_same_pictures_as_decoding_everything(
    person_clip: Path,
) -> None:
    # Given one frame every 3 s, sampled by skipping whole groups of pictures
    frames = list(sample_frames(person_clip, fps=1 / 3, pixel_format="rgb24"))
    wanted = {round(frame.time_s, 3): frame.image for frame in frames}

    # When the same clip is decoded frame by frame
    reference = decode_all(person_clip)

    # Then each sampled picture is the very frame decoded in full at that time
    assert len(frames) == 7
    assert wanted.keys() <= reference.keys()
    for time_s, image in wanted.items():
        assert np.abs(image.astype(int) - reference[time_s].astype(int)).mean() < 1.0


def test_leaving_early_reads_little_of_the_clip(person_clip: Path) -> None:
    # Given a sampling run
    stats = SamplerStats()
    frames = sample_frames(person_clip, fps=2.0, fit=(64, 64), stats=stats)

    # When the consumer takes one frame and stops
    next(frames)
    frames.close()

    # Then only the first packets were read
    assert stats.frames_sampled == 1
    assert stats.packets_read < 15


def test_other_containers_and_codecs_are_read(media_dir: Path) -> None:
    # Given a 79.5 s MS-MPEG4 clip in an AVI container
    # When it is sampled at 1 fps
    frames = list(sample_frames(media_dir / "vtest.avi", fps=1.0, fit=(128, 128)))

    # Then the whole clip is covered
    assert len(frames) == 80
    assert frames[-1].time_s >= 79.0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "no such file"),
        ("empty", "the file is empty"),
        ("text", "not a readable video file"),
        ("cut_before_index", "not a readable video file"),
        ("cut_after_index", "the clip is truncated"),
        ("scrambled", "the video is corrupt"),
    ],
)
def test_unreadable_clips_raise_a_readable_error(
    tmp_path: Path,
    person_clip: Path,
    faststart_empty_scene: Path,
    damage: str,
    message: str,
) -> None:
    # Given a clip damaged in one way
    path = tmp_path / f"{damage}.mp4"
    match damage:
        case "empty":
            path.write_bytes(b"")
        case "text":
            path.write_text("a shopping list, not a video\n" * 50)
        case "cut_before_index":
            truncate(person_clip, path, keep=0.5)
        case "cut_after_index":
            truncate(faststart_empty_scene, path, keep=0.5)
        case "scrambled":
            scramble(person_clip, path, start=0.01)

    # When it is sampled
    # Then the error names the file and says what is wrong
    with pytest.raises(VideoReadError, match=message) as caught:
        list(sample_frames(path, fps=2.0, fit=(64, 64)))
    assert str(path) in str(caught.value)


def test_a_frame_just_before_its_slot_fills_only_that_slot(person_clip: Path) -> None:
    # Given a schedule whose slots fall between frames of a 15 fps clip
    # When sampling one frame a second from 0.5 s to 5 s, at most five
    frames = list(sample_frames(person_clip, fps=1.0, max_frames=5, start_s=0.5, end_s=5.0))

    # Then exactly five frames come back, one per slot (0.5, 1.5, ... 4.5 s)
    assert len(frames) == 5
    assert all(abs(frame.time_s - (0.5 + i)) < 0.1 for i, frame in enumerate(frames))


def test_keyframe_times_are_read_from_the_packets(person_clip: Path) -> None:
    # Given a 20 s clip with a keyframe every 2 s
    # When its keyframe times are read
    times = keyframe_times(person_clip)

    # Then there are ten, from the first frame on
    assert times == pytest.approx([0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0])


@pytest.mark.slow
def test_keyframes_wanted_alone_are_decoded_alone(person_clip: Path) -> None:
    # Given three of the clip's keyframes
    moments = keyframe_times(person_clip)[1::3]
    stats = SamplerStats()

    # When they are sampled, keyframes only
    frames = list(
        sample_moments(person_clip, moments, keyframes_only=True, pixel_format="rgb24", stats=stats)
    )

    # Then only those three packets were decoded, and the pictures are the very frames a
    # decoding of the whole clip gives at those times
    assert [frame.time_s for frame in frames] == pytest.approx([2.0, 8.0, 14.0])
    assert stats.packets_decoded == stats.frames_decoded == 3
    reference = decode_all(person_clip)
    for frame in frames:
        assert np.array_equal(frame.image, reference[round(frame.time_s, 3)])


def test_moments_are_read_in_one_pass_from_the_keyframe_before_each(person_clip: Path) -> None:
    # Given a keyframe and a moment after it, in two groups of pictures (keyframes at 0, 2, 4 s)
    moments = [2.0, 3.15, 0.0, 1.35]
    stats = SamplerStats()

    # When they are sampled
    frames = list(sample_moments(person_clip, moments, fit=(64, 64), stats=stats))

    # Then each gets the frame at (or a frame after) its moment, in time order, from one read
    # of the clip that stopped just past the last moment (its first 4 s hold 60 packets)
    assert [frame.time_s for frame in frames] == pytest.approx([0.0, 1.35, 2.0, 3.15], abs=0.07)
    assert stats.frames_sampled == 4
    assert stats.packets_decoded <= stats.packets_read < 60


def test_moments_past_the_end_get_no_frame(person_clip: Path) -> None:
    # Given one moment inside the 20 s clip and one after its end
    # When they are sampled
    frames = list(sample_moments(person_clip, [5.0, 25.0], fit=(64, 64)))

    # Then only the first gets a frame
    assert [round(frame.time_s) for frame in frames] == [5]


def test_a_clip_whose_stream_starts_late_is_timed_from_its_first_frame(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given a Matroska clip whose timestamps start at 5 s (its header does not say so)
    clip = remux_shifted(person_clip, tmp_path / "porch_1700000400.mkv", shift_s=5.0, end_s=6.0)

    # When its keyframes and a frame a second are read
    keyframes = keyframe_times(clip)
    frames = list(sample_frames(clip, fps=1.0, end_s=4.0, fit=(64, 64)))

    # Then times count from the first frame
    assert keyframes == pytest.approx([0.0, 2.0, 4.0])
    assert [frame.time_s for frame in frames] == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=0.07)


def test_a_recording_segment_without_an_index_gives_the_frame_inside_its_first_gop(
    tmp_path: Path, person_clip: Path
) -> None:
    # Given a camera's MPEG-TS segment: stamped from 10 s, one keyframe, no index to seek by
    segment = remux_shifted(person_clip, tmp_path / "segment.ts", shift_s=10.0, end_s=1.9)

    # When the frame half a second in is asked for (as the snapshot of a detection there)
    frames = list(sample_frames(segment, fps=1.0, max_frames=1, start_s=0.5, fit=(64, 64)))

    # Then it is the first frame at or after 0.5 s (15 fps), decoded from the keyframe
    assert [frame.time_s for frame in frames] == pytest.approx([8 / 15])
