from fractions import Fraction

import av
import numpy as np
import pytest

from retalk.errors import InputError
from retalk.media import VideoSink, check_not_silent, iter_frames, load_audio, probe_video, write_wav


def _streams(path):
    with av.open(str(path)) as c:
        return {s.type: s for s in c.streams}, float(c.duration / 1e6)


def test_sink_roundtrip_with_audio(tmp_path, vowel_wav):
    out = tmp_path / "o.mp4"
    with VideoSink(out, 96, 64, Fraction(25), audio_path=vowel_wav, duration=2.0) as sink:
        for i in range(50):
            f = np.full((64, 96, 3), i * 4, np.uint8)
            sink.write(f)
    info = probe_video(out)
    assert (info.width, info.height, float(info.fps)) == (96, 64, 25.0)
    frames = list(iter_frames(info))
    assert len(frames) == 50
    assert abs(int(frames[10].mean()) - 40) <= 3
    streams, _ = _streams(out)
    assert "audio" in streams
    assert abs(load_audio(out).duration - 2.0) < 0.05


def test_sink_abort_leaves_nothing(tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError):
        with VideoSink(out, 32, 32, Fraction(25)) as sink:
            sink.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_odd_size_kept(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoSink(out, 33, 21, Fraction(30000, 1001)) as sink:
        for _ in range(5):
            sink.write(np.zeros((21, 33, 3), np.uint8))
    info = probe_video(out)
    assert (info.width, info.height) == (33, 21)
    assert info.fps == Fraction(30000, 1001)
    assert len(list(iter_frames(info))) == 5


def test_variable_frame_rate_is_resampled(tmp_path):
    """Frames shown for 1, 2 and 3 ticks of 1/25 s come out as 1, 2 and 3 constant-rate frames."""
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        t = 0
        for value, ticks in [(0, 1), (80, 2), (160, 3), (240, 1)]:
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), value, np.uint8), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
            t += 40 * ticks
        for p in s.encode(None):
            c.mux(p)
    info = probe_video(path)
    info = type(info)(info.path, info.width, info.height, Fraction(25), info.n_frames, 0, False)
    levels = [int(round(f.mean() / 80)) for f in iter_frames(info)]
    assert levels[:6] == [0, 1, 1, 2, 2, 2]


def test_load_audio_errors(tmp_path, face_clip):
    with pytest.raises(InputError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_audio(empty)
    with pytest.raises(InputError, match="no audio stream"):
        load_audio(face_clip)
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n" * 10)
    with pytest.raises(InputError):
        load_audio(text)


def test_silence_detected(tmp_path):
    p = tmp_path / "s.wav"
    write_wav(p, np.zeros(8000, np.float32), 16000)
    with pytest.raises(InputError, match="silent"):
        check_not_silent(load_audio(p))
    write_wav(p, 0.2 * np.sin(np.arange(8000) / 5.0).astype(np.float32), 16000)
    check_not_silent(load_audio(p))


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_rotation_metadata_is_applied(tmp_path, degrees):
    """A phone clip stored sideways with a display matrix comes out upright, at its displayed size."""
    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        s.set_display_rotation(degrees)
        for i in range(3):
            f = np.zeros((32, 64, 3), np.uint8)
            f[:, :16] = 255  # stored: white on the left
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    info = probe_video(path)
    frame = next(iter_frames(info))
    expected = np.rot90(np.where(np.arange(64) < 16, 255, 0)[None, :].repeat(32, 0), k=degrees // 90)
    assert (info.width, info.height) == (expected.shape[1], expected.shape[0])
    assert frame.shape[:2] == expected.shape
    assert np.abs(frame[..., 0].astype(int) - expected).mean() < 20


def test_output_permissions_follow_umask(tmp_path):
    import os

    out = tmp_path / "perm.mp4"
    old = os.umask(0o022)
    try:
        with VideoSink(out, 32, 32, Fraction(25)) as sink:
            sink.write(np.zeros((32, 32, 3), np.uint8))
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o644


def test_png_alpha_is_put_on_white(tmp_path):
    import cv2

    from retalk.media import read_image

    rgba = np.zeros((40, 30, 4), np.uint8)
    rgba[..., 2] = 200  # red in BGR order
    rgba[:20, :, 3] = 255  # top half opaque, bottom half transparent
    rgba[20:, :, 3] = 0
    rgba[10, 10, 3] = 128
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), rgba)
    img = read_image(p)
    assert img.shape == (40, 30, 3)
    assert tuple(img[0, 0]) == (200, 0, 0)
    assert tuple(img[30, 5]) == (255, 255, 255)
    assert abs(int(img[10, 10, 1]) - 127) <= 1  # half transparent over white


def test_default_preset_keeps_files_small(tmp_path):
    """The default preset keeps x264's macroblock tree: files near veryfast's size, not plain superfast's 2.5x."""
    from retalk.samples import moving_frames

    frames = list(moving_frames(40, 320, 240, 25.0, 1.0))
    sizes = {}
    for name, preset in (("default", None), ("veryfast", "veryfast")):
        path = tmp_path / f"{name}.mp4"
        kwargs = {} if preset is None else {"preset": preset}
        with VideoSink(path, 320, 240, Fraction(25), **kwargs) as sink:
            for f in frames:
                sink.write(f)
        sizes[name] = path.stat().st_size
    assert sizes["default"] < 1.35 * sizes["veryfast"], sizes


def test_output_suffix_and_input_checks(tmp_path):
    from retalk.media.sink import check_not_an_input, check_output

    with pytest.raises(InputError, match=r"o\.webm: output must end in \.mp4, \.m4v, \.mov or \.mkv"):
        check_output(tmp_path / "o.webm")
    assert [check_output(tmp_path / f"o{s}") for s in (".mp4", ".M4V", ".mov", ".mkv")] == ["mp4", "mp4", "mov",
                                                                                          "matroska"]
    src = tmp_path / "in.mov"
    src.write_bytes(b"x")
    with pytest.raises(InputError, match="is also the --face input"):
        check_not_an_input(tmp_path / "." / "in.mov", {"--audio": None, "--face": src})
    check_not_an_input(tmp_path / "in.mp4", {"--face": src})
