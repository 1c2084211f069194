"""Motion figures of a dubbed video against its source (``retalk.evaluate.mouth_motion``)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from retalk.evaluate.mouth_motion import mouth_motion
from retalk.media import VideoSink
from retalk.samples import moving_frames


def _write(path, frames):
    with VideoSink(path, 320, 320, Fraction(25), crf=0, preset="ultrafast") as sink:
        for f in frames:
            sink.write(f)
    return path


@pytest.fixture(scope="module")
def moving_then_still(tmp_path_factory):
    """40 frames, coded losslessly: the head moves for 20 frames, then holds still for 20."""
    d = tmp_path_factory.mktemp("motion")
    moving = list(moving_frames(20, 320, 320, motion=1.5))
    frames = moving + [moving[-1]] * 20
    return d, frames, _write(d / "source.mp4", frames)


def test_output_is_compared_with_the_source_frames_it_plays(moving_then_still):
    d, frames, source = moving_then_still
    # a dub cut to the first half (shorter speech): the same frames as the moving half of the source
    out = _write(d / "cut.mp4", frames[:20])
    r = mouth_motion(source, out)
    assert r.frames == 20
    # the whole source changes half as much per frame (its second half is still); on the frames played, equal
    assert r.change_ratio == pytest.approx(1.0, abs=0.01)
    assert r.aligned_change_ratio == pytest.approx(1.0, abs=0.01)
    assert r.change_p99_ratio == pytest.approx(1.0, abs=0.01)


def test_flicker_around_the_mouth_reads_above_one(moving_then_still):
    d, frames, source = moving_then_still
    rng = np.random.default_rng(1)
    flick = []
    for i, f in enumerate(frames[:20]):
        g = f.astype(np.int16)
        if i % 2:  # every other frame: the area around the mouth (near (138, 91)) brightens with noise
            g[55:130, 95:185] += rng.integers(10, 30, (75, 90, 1), dtype=np.int16)
        flick.append(np.clip(g, 0, 255).astype(np.uint8))
    r = mouth_motion(source, _write(d / "flicker.mp4", flick))
    assert r.change_ratio > 1.3 and r.change_p99_ratio > 1.1 and r.aligned_change_ratio > 1.3


def test_a_different_size_is_refused(moving_then_still, tmp_path):
    _, frames, source = moving_then_still
    small = tmp_path / "small.mp4"
    with VideoSink(small, 160, 160, Fraction(25), preset="ultrafast") as sink:
        for f in frames[:5]:
            sink.write(np.ascontiguousarray(f[::2, ::2]))
    with pytest.raises(ValueError, match="160x160"):
        mouth_motion(source, small)


def test_a_still_picture_has_no_motion_to_compare_with(moving_then_still, tmp_path):
    import cv2

    _, frames, source = moving_then_still
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    with pytest.raises(ValueError, match="single picture"):
        mouth_motion(photo, source)
