"""Back-and-forth playback (retalk.media.backward): frames identical to a plain decode, no temporary disk."""
from __future__ import annotations

import tempfile
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from retalk.media import iter_frames, probe_video
from retalk.media import backward
from retalk.media.backward import ScheduledFrames
from retalk.pipeline import SyncOptions, ping_pong, sync

W, H = 96, 64


def _pictures(n: int, seed: int = 0) -> list[np.ndarray]:
    """Frames that all differ: noise plus a bar whose position encodes the index."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        f = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        f[:, (k * 3) % W] = 255
        out.append(f)
    return out


def _write(path: Path, n: int, gop: int | None, durations: list[int] | None = None) -> Path:
    """H.264 clip of ``n`` frames at 25 fps; ``gop``: frames between keyframes (None: x264's default, 250);
    ``durations``: frame durations in 1/100 s (a variable-rate clip), else 4 (25 fps)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "20", **({"g": str(gop)} if gop else {})}
        s.codec_context.time_base = Fraction(1, 100)
        pts = 0
        for k, img in enumerate(_pictures(n)):
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts, fr.time_base = pts, Fraction(1, 100)
            pts += durations[k % len(durations)] if durations else 4
            for pkt in s.encode(fr):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("backward")
    return {
        "one keyframe": _write(d / "long_gop.mp4", 60, None),
        "keyframe every 8": _write(d / "gop8.mp4", 60, 8),
        "variable rate": _write(d / "vfr.mp4", 60, 7, durations=[4, 3, 6, 2, 5]),
    }


def _check(info, n_source: int, n_out: int, window: int, **kw) -> ScheduledFrames:
    """Every frame of a ping-pong schedule equals the plain decode's frame (the last one past its end)."""
    ref = [f.copy() for f in iter_frames(info)]
    schedule = ping_pong(n_source, n_out)
    frames = ScheduledFrames(info, schedule, n_source, window_bytes=window * W * H * 3, **kw)
    got = 0
    for i, (src, f) in enumerate(zip(schedule, frames)):
        assert np.array_equal(f, ref[min(src, len(ref) - 1)]), f"output frame {i} (source frame {src}) differs"
        got += 1
    assert got == n_out
    return frames


@pytest.mark.parametrize("kind", ["one keyframe", "keyframe every 8", "variable rate"])
@pytest.mark.parametrize("window", [2, 5, 1000])
def test_forward_backward_forward_matches_the_plain_decode(clips, kind, window):
    """Audio 2.5× the video: 0…N−1, N−2…0, 1…; windows of 2 and 5 frames (many seeks) and one holding all."""
    info = probe_video(clips[kind])
    n = sum(1 for _ in iter_frames(info))
    frames = _check(info, n, int(2.5 * n), window)
    assert 0 < frames.stats.max_window <= min(window, n)
    if window < n:
        assert frames.stats.seeks > 0  # the backward runs really came from seeks, not one decode
    if kind != "variable rate":
        assert frames.stats.mismatches == 0  # constant-rate H.264: every seek lands on its frame


def test_backward_windows_step_down_without_overlap(clips):
    info = probe_video(clips["keyframe every 8"])
    frames = _check(info, 60, 120, 7)
    down = frames.stats.windows[:9]  # the backward run 58…0 in windows of 7, highest first
    assert down[0] == (52, 58) and down[-1] == (0, 2)
    assert all(b[1] == a[0] - 1 for a, b in zip(down, down[1:]))


def test_a_seek_that_misses_its_frame_is_decoded_again_from_the_start(clips, monkeypatch):
    """A decoder that lands one frame late after a seek: the CRC check catches every such frame."""
    real = backward.video.iter_frames

    def late(info, start=0):
        frames = real(info, start)
        if start > 0:
            next(frames, None)
        return frames

    monkeypatch.setattr(backward.video, "iter_frames", late)
    info = probe_video(clips["keyframe every 8"])
    frames = _check(info, 60, 150, 5)
    assert frames.stats.mismatches == frames.stats.seeks > 0


def test_fewer_frames_than_the_analysis_counted_repeat_the_last(clips):
    info = probe_video(clips["keyframe every 8"])
    _check(info, 63, 160, 4)


def test_a_one_frame_video_and_a_schedule_with_repeats(tmp_path):
    info = probe_video(_write(tmp_path / "one.mp4", 1, None))
    frames = _check(info, 1, 40, 3)
    assert frames.stats.frames_read == 1  # a repeated slot is not decoded again
    info = probe_video(_write(tmp_path / "ten.mp4", 10, 4))
    ref = [f.copy() for f in iter_frames(info)]
    schedule = np.array([0, 1, 1, 2, 2, 2, 1, 0, 0, 3, 9, 9, 5, 6, 7, 6, 6, 4])
    got = list(ScheduledFrames(info, schedule, 10, window_bytes=3 * W * H * 3))
    assert [np.array_equal(g, ref[s]) for g, s in zip(got, schedule)] == [True] * len(schedule)


class _TempWatcher:
    """Samples the bytes in a folder (recursively) every 5 ms while a dub runs; keeps the peak."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.peak, self.seen = folder, 0, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for p in self.folder.rglob("*"):
                try:
                    total += p.stat().st_size if p.is_file() else 0
                    self.seen.add(p.name)
                except OSError:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.005)

    def __enter__(self) -> _TempWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def test_a_1080p_back_and_forth_dub_keeps_the_temp_folder_bound(tmp_path, monkeypatch):
    """Issue 15: a 60 s 1080p back-and-forth dub must use under 200 MB of temp folder, i.e. under
    200 MB / 1500 source frames ≈ 133 kB per source frame. A raw spool needs 1920 × 1080 × 3 ≈ 6.2 MB per
    frame; here a 2 s 1080p clip is dubbed with 5 s of speech, the temp folder watched throughout."""
    from retalk.samples import write_face_clip, write_vowel_speech

    face = write_face_clip(tmp_path / "face.mp4", seconds=2.0, width=1920, height=1080)
    wav = write_vowel_speech(tmp_path / "speech.wav", seconds=5.0)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    out = tmp_path / "out.mp4"
    with _TempWatcher(temp) as watch:
        res = sync(face, wav, out, SyncOptions(engine="passthrough", recognize=False, preset="ultrafast",
                                               progress=False))
    assert res.frames == 125
    per_frame = watch.peak / 50
    assert per_frame < 200e6 / 1500, (watch.peak, sorted(watch.seen))
    assert list(temp.iterdir()) == []
